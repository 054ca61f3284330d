"""The files analyses write: where they go by default, and the writers every analysis (and the CLI) uses.

* :func:`check_out` refuses, before any work, an output inside the catalog folder (whose files artspace alone
  writes; :func:`artspace.outputs.check_output`).
* :func:`default_out` keeps the default output folders out of the collection: ``clusters-style`` in the working
  folder, unless the working folder is the collection or lies inside it; then ``<collection>-artspace/`` beside it.
* :func:`write_csv` escapes text cells a spreadsheet would run as formulas
  (:func:`artspace.outputs.neutralise_formulas`); :func:`save_figure` saves a matplotlib figure. Both write
  atomically (a temporary name renamed into place), and replace an existing file only when it is their own earlier
  output (:func:`artspace.outputs.replaceable`): a CSV with the same header line, a PNG that says artspace made it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..atomic import atomic_write
from ..errors import InvalidOption
from ..outputs import CSV_UNLIKE, check_output, csv_made_by, made_by_artspace, marker, neutralise_formulas, replaceable
from .source import is_catalog

__all__ = ["check_out", "default_out", "metadata_file", "save_figure", "save_picture", "write_csv"]


def write_csv(df: pd.DataFrame, path) -> Path:
    """Write *df* as CSV atomically, its text cells escaped so that no spreadsheet runs them as formulas.

    Metadata values and file names come from the collection, so a cell such as ``=HYPERLINK(...)`` is written as
    ``'=HYPERLINK(...)`` (:func:`artspace.outputs.neutralise_formulas`); numbers are written as they are.
    """
    path = csv_target(df, path)
    table = neutralise_formulas(df)
    return atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))


def csv_target(df: pd.DataFrame, path) -> Path:
    """*path* if :func:`write_csv` may write *df* there: never inside a catalog folder, and an existing file only
    when it is an earlier output of this table (the same header line). Checked again when writing; call it first
    to refuse a run before any of its files is written."""
    path = check_output(Path(path))
    replaceable(path, csv_made_by(neutralise_formulas(df.head(0)).to_csv(index=False)), unlike=CSV_UNLIKE)
    return path


def figure_target(path) -> Path:
    """*path* if :func:`save_figure` may write there: a ``.png`` outside any catalog folder, replacing only a figure
    artspace made (its PNG ``Software`` text)."""
    path = check_output(Path(path))
    if path.suffix.lower() not in ("", ".png"):
        raise InvalidOption(f"{path}: figures are written as .png, not {path.suffix!r}")
    return replaceable(path, made_by_artspace)


def save_figure(fig, path, *, dpi: int = 110) -> Path:
    """Save a matplotlib figure atomically as PNG (:func:`figure_target` says where it may go)."""
    path = figure_target(path)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight",
                                                      metadata={"Software": marker()}))


def picture_target(path) -> Path:
    """*path* if :func:`save_picture` may write there: outside any catalog folder, an image suffix, and no existing
    file but one artspace made."""
    from ..images import image_output

    return image_output(check_output(Path(path)))


def save_picture(image, path) -> Path:
    """Save a PIL image (a contact sheet) atomically, never inside a catalog folder."""
    from ..images import save_image  # imports torch: only when a picture is written

    return save_image(image, check_output(Path(path)))  # save_image replaces only images artspace made


def check_out(source, out) -> Path:
    """The output folder (or file) *out* as a Path; :class:`~artspace.errors.OutputConflict` when it is or lies
    inside *source*'s catalog folder. Called before any work is done."""
    cat = getattr(source, "catalog", source)  # a Source or a Catalog
    return check_output(Path(out), protected_dirs=[cat.dir] if is_catalog(cat) else [])


def default_out(source, name: str) -> Path:
    """Where an analysis writes when no folder is given: *name* in the working folder, unless that folder is the
    catalogued collection or lies inside it; then ``<collection>-artspace/<name>`` beside the collection, so that
    an analysis never adds files to the collection it reads unless asked to (``-o``).

    Examples
    --------
    >>> default_out(None, "clusters-style")
    PosixPath('clusters-style')
    """
    cat = getattr(source, "catalog", source)
    if not is_catalog(cat):
        return Path(name)
    root, here = Path(cat.root).resolve(), Path(os.getcwd()).resolve()
    if here == root or root in here.parents:
        return root.parent / f"{root.name}-artspace" / name
    return Path(name)


def metadata_file(source) -> Path | None:
    """The metadata CSV a catalog joins on every ``artspace index`` (an input no export may overwrite)."""
    cat = getattr(source, "catalog", source)
    rel = cat.manifest.get("metadata") if is_catalog(cat) else None
    return Path(cat.root) / rel if rel else None
