"""Commands that make pictures: ``transfer`` (pastiches) and ``reconstruct`` (what a layer keeps).

The options of these two commands default to None, "the library's default": their defaults, checks and help texts
are those of artspace.transfer.options.TransferOptions (which imports no torch, so reading it here costs nothing),
and a bad value comes back from the library as InvalidOption, which handle_errors prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import app, echo_err, fail, given, handle_errors, quiet_option



def _table():
    from ..transfer import options

    return options


def _lib(name: str, *aliases: str, extra: str = ""):
    """The --NAME option of a library option: not given (None) means the library's default; help from the table."""
    return typer.Option(None, "--" + name.replace("_", "-"), *aliases, help=_table().TransferOptions.help(name, extra))


_TRANSFER_HELP = {
    "catalog": "Catalog (made by `artspace index`) in which CONTENT and STYLE may name works by id, relative path "
               "or file name (default: the nearest .artspace above the working folder or the images, if any).",
    "layers": " Comma-separated or repeated.",
    "only": "content (the features) or style (the Gram matrices): the reconstructions of Gatys et al. 2016, Fig. 1. "
            f"Default: {_table().RECONSTRUCT_ONLY[0]}.",
    "init": "Starting image: noise, content, style or an image file. Default: "
            f"{_table().RECONSTRUCT_INIT} (feature inversion starts from white noise, Mahendran & Vedaldi 2015).",
    "reconstruct_layers": "Layers, comma-separated or repeated. Default: those of `artspace transfer` "
                          f"({','.join(_table().DEFAULT_CONTENT_LAYERS)} for content, "
                          f"{','.join(_table().DEFAULT_STYLE_LAYERS)} for style).",
}


def _catalog(catalog: Optional[Path], near) -> Optional[Path]:
    """The catalog in which the images may name works: --catalog, else the one every command finds (the nearest
    .artspace above the working folder or the images), else none (the images are files)."""
    from ..catalog import locate_catalog
    from ..errors import CatalogNotFound

    if catalog is not None:
        return catalog
    try:
        return locate_catalog(None, near=[n for n in near if isinstance(n, str)])
    except CatalogNotFound:
        return None


@app.command("transfer")
@handle_errors
def transfer_cmd(
    content: str = typer.Argument(..., help="Content image file, or catalogued work (with --catalog)."),
    style: List[str] = typer.Argument(..., help="One or more style images (or catalogued works)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image (.png, .jpg...); a .json sidecar is "
                                "written next to it."),
    catalog: Optional[Path] = typer.Option(None, "--catalog", "-c", help=_TRANSFER_HELP["catalog"]),
    size: Optional[int] = _lib("size"),
    style_scale: Optional[float] = _lib("style_scale"),
    style_blend: Optional[str] = _lib("style_blend"),
    content_layers: Optional[List[str]] = _lib("content_layers", extra=_TRANSFER_HELP["layers"]),
    style_layers: Optional[List[str]] = _lib("style_layers", extra=_TRANSFER_HELP["layers"]),
    content_layer_weights: Optional[str] = _lib("content_layer_weights"),
    style_layer_weights: Optional[str] = _lib("style_layer_weights"),
    content_weight: Optional[float] = _lib("content_weight"),
    style_weight: Optional[float] = _lib("style_weight"),
    tv_weight: Optional[float] = _lib("tv_weight"),
    loss: Optional[str] = _lib("loss"),
    optimizer: Optional[str] = _lib("optimizer"),
    lr: Optional[float] = _lib("lr"),
    iterations: Optional[str] = _lib("iterations", "-n"),
    tolerance: Optional[float] = _lib("tolerance"),
    init: Optional[str] = _lib("init"),
    seed: Optional[int] = _lib("seed"),
    preserve_colors: Optional[bool] = _lib("preserve_colors"),
    match_histogram: Optional[bool] = _lib("match_histogram"),
    scales: Optional[int] = _lib("scales"),
    tile: Optional[int] = _lib("tile"),
    tile_overlap: Optional[int] = _lib("tile_overlap"),
    save_every: Optional[int] = _lib("save_every"),
    weights: Optional[str] = _lib("weights"),
    pooling: Optional[str] = _lib("pooling"),
    device: Optional[str] = _lib("device"),
    method: str = typer.Option("gatys", "--method", help="gatys: optimise the image (Gatys et al. 2016); adain: one "
                               "pass of a decoder (Huang & Belongie 2017), in a second; catalogued styles are read "
                               "from the catalog's stored statistics, and --size defaults to 512 px (the long side "
                               "of the pastiche; a smaller content image is enlarged to it)."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="adain: how much style, 0 to 1. Default: 1."),
    decoder: Optional[Path] = typer.Option(None, "--decoder", help="adain: a decoder from `artspace train-decoder`. "
                                           "Default: the one shipped with artspace."),
    precision: Optional[str] = _lib("precision"),
    quiet: bool = quiet_option(),
):
    """Synthesise a pastiche: CONTENT painted in the style of STYLE (Gatys et al. 2016, Image style transfer using
    convolutional neural networks, CVPR; or --method adain, Huang & Belongie 2017).

    Example: artspace transfer photo.jpg starry_night.jpg -o out.png --size 384 --scales 2
    """
    options = given(locals(), _table().TransferOptions.names())
    if method == "adain":
        _adain(content, style, output, catalog, options, given(locals(), {"alpha", "decoder"}))
        return
    if method != "gatys":
        fail(f"--method must be gatys or adain, not {method!r}")
    for name in ("alpha", "decoder"):
        if locals()[name] is not None:
            fail(f"--{name} applies to --method adain only")
    from ..transfer import synthesise

    result = synthesise(content, style, catalog=_catalog(catalog, [content, *style]), output=output,
                        progress=not quiet, log=None if quiet else echo_err, **options)
    written = result.output or output  # an interrupted run keeps an earlier pastiche and writes beside it
    typer.echo(f"wrote {written} ({result.image.width}x{result.image.height}) and {written}.json: "
               f"loss {result.losses.get('total', float('nan')):.6g} after {result.evaluations} evaluations "
               f"in {result.elapsed_s:.1f} s ({result.stopped})")
    if result.stopped == "interrupted":
        fail(f"interrupted; the best image so far is in {written}", 130)


_ADAIN_OPTIONS = {"size", "style_blend", "preserve_colors", "weights", "device", "precision"}
#: Options only AdaIN takes (named in the refusal of a Gatys-only option too).
_ADAIN_OWN = {"alpha", "decoder", "catalog"}


def _adain(content, style, output, catalog, options: dict, extra: dict) -> None:
    """``transfer --method adain``: the options that mean something to AdaIN, from the catalog when there is one."""
    other = sorted(set(options) - _ADAIN_OPTIONS)
    if other:
        fail(f"--{other[0].replace('_', '-')} applies to --method gatys only; AdaIN takes "
             + ", ".join("--" + o.replace("_", "-") for o in sorted(_ADAIN_OPTIONS | set(extra) | _ADAIN_OWN)))
    options.update(extra)
    found = _catalog(catalog, [content, *style])
    if found is not None:
        from ..catalog import Catalog

        with Catalog.open(found) as cat:
            result = cat.transfer(content, style, output, method="adain", **options)
    else:
        from ..feedforward import adain_transfer

        result = adain_transfer(content, style, output, **options)
    s = result.settings
    typer.echo(f"wrote {output} ({result.image.width}x{result.image.height}) and {output}.json: AdaIN, alpha "
               f"{s['alpha']:g}, {result.elapsed_s:.2f} s in the networks ({s['precision']})")


@app.command("reconstruct")
@handle_errors
def reconstruct_cmd(
    image: str = typer.Argument(..., help="Image file (or catalogued work, with --catalog) to invert."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image; with several layers, one file per "
                                "layer: out-relu1_1.png, ..."),
    only: Optional[str] = typer.Option(None, "--only", help=_TRANSFER_HELP["only"]),
    layers: Optional[List[str]] = typer.Option(None, "--layers", help=_TRANSFER_HELP["reconstruct_layers"]),
    together: bool = typer.Option(False, "--together", help="One image from all the layers at once. Default: one "
                                  "image per layer (content: each layer alone; style: the layers up to each one)."),
    catalog: Optional[Path] = typer.Option(None, "--catalog", "-c", help=_TRANSFER_HELP["catalog"].replace(
        "CONTENT and STYLE", "IMAGE")),
    size: Optional[int] = _lib("size"),
    iterations: Optional[str] = _lib("iterations", "-n"),
    optimizer: Optional[str] = _lib("optimizer"),
    lr: Optional[float] = _lib("lr"),
    tolerance: Optional[float] = _lib("tolerance"),
    loss: Optional[str] = _lib("loss"),
    init: Optional[str] = typer.Option(None, "--init", help=_TRANSFER_HELP["init"]),
    seed: Optional[int] = _lib("seed"),
    scales: Optional[int] = _lib("scales"),
    weights: Optional[str] = _lib("weights"),
    pooling: Optional[str] = _lib("pooling"),
    device: Optional[str] = _lib("device"),
    quiet: bool = quiet_option(),
):
    """Show what a layer keeps: optimise white noise to match IMAGE's content or style on chosen layers (feature
    inversion, Mahendran & Vedaldi 2015; Gatys et al. 2016, Fig. 1).

    Example: artspace reconstruct tubingen.jpg --only content --layers relu1_1,relu2_1,relu3_1,relu4_1 -o rec.png
    """
    options = given(locals(), _table().TransferOptions.names())
    from ..transfer import reconstruct, reconstruct_layers

    names = _table().parse_names(layers)
    if layers is not None and not names:  # --layers "": not the default quietly
        fail("--layers names no layer; give layers such as relu1_1,relu2_1, or leave --layers out for the default")
    options.update(catalog=_catalog(catalog, [image]), progress=not quiet, log=None if quiet else echo_err)
    if only is not None:
        options["only"] = only
    if together or not names or len(names) == 1:
        runs = [(None, reconstruct(image, layers=names, output=output, **options))]
    else:
        runs = reconstruct_layers(image, layers=names, output=output, **options)
    for _, r in runs:
        used = r.settings["content_layers"] or r.settings["style_layers"]
        what = "content" if r.settings["content_layers"] else "style"
        typer.echo(f"wrote {r.output} from {what} of {','.join(used)}: loss {r.losses.get('total', float('nan')):.6g}"
                   f" after {r.evaluations} evaluations ({r.stopped})")
        if r.stopped == "interrupted":
            fail(f"interrupted; the best image so far is in {r.output}", 130)
