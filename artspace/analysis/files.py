"""The files analyses write: where they go by default, and the writers every analysis (and the CLI) uses.

* :func:`check_out` refuses, before any work, an output inside the catalog folder (whose files artspace alone
  writes; :func:`artspace.outputs.check_output`).
* :func:`default_out` keeps the default output folders out of the collection: ``clusters-style`` in the working
  folder, unless the working folder is the collection or lies inside it; then ``<collection>-artspace/`` beside it.
* An analysis folder belongs to one catalog. :func:`check_out` records the catalog in the folder
  (:data:`OWNER_FILE`) and refuses a folder that holds another catalog's analyses, so that ``artspace cluster -c
  rembrandt`` then ``artspace cluster -c vermeer`` from one working folder never replace the first's contact sheets
  with the second's; :func:`default_out` then chooses ``<collection>-artspace/`` beside the collection instead.
* :func:`write_csv` escapes text cells a spreadsheet would run as formulas
  (:func:`artspace.outputs.neutralise_formulas`); :func:`save_figure` saves a matplotlib figure. Both write
  atomically (a temporary name renamed into place), and replace an existing file only when it is their own earlier
  output (:func:`artspace.outputs.replaceable`): a CSV with the same header line, a PNG that says artspace made it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ..atomic import atomic_write
from ..errors import InvalidOption, OutputConflict
from ..outputs import CSV_UNLIKE, check_output, csv_made_by, made_by_artspace, marker, neutralise_formulas, replaceable
from .source import is_catalog

__all__ = ["OWNER_FILE", "check_out", "default_out", "folder_owner", "metadata_file", "save_figure", "save_picture",
           "write_csv"]

#: The file in an analysis folder that names the catalog whose analyses the folder holds (:func:`check_out`).
OWNER_FILE = "artspace-outputs.json"


def write_csv(df: pd.DataFrame, path) -> Path:
    """Write *df* as CSV atomically, its text cells escaped so that no spreadsheet runs them as formulas.

    Metadata values and file names come from the collection, so a cell such as ``=HYPERLINK(...)`` is written as
    ``'=HYPERLINK(...)`` (:func:`artspace.outputs.neutralise_formulas`); numbers are written as they are.
    """
    path = csv_target(df, path)
    table = neutralise_formulas(df)
    return _settle(atomic_write(path, lambda tmp: table.to_csv(tmp, index=False)))


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
    return _settle(atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight",
                                                              metadata={"Software": marker()})))


def picture_target(path) -> Path:
    """*path* if :func:`save_picture` may write there: outside any catalog folder, an image suffix, and no existing
    file but one artspace made."""
    from ..images import image_output

    return image_output(check_output(Path(path)))


def save_picture(image, path) -> Path:
    """Save a PIL image (a contact sheet) atomically, never inside a catalog folder."""
    from ..images import save_image  # imports torch: only when a picture is written

    return _settle(save_image(image, check_output(Path(path))))  # save_image replaces only images artspace made


def check_out(source, out, *, folder: bool = True) -> Path:
    """The output folder (or, with ``folder=False``, file) *out* as a Path, checked before any work is done.

    Raises :class:`~artspace.errors.OutputConflict` when *out* is or lies inside *source*'s catalog folder, or when
    the folder holds the analyses of another catalog (its :data:`OWNER_FILE` names another collection and it holds
    other files). A folder that is free is recorded as this catalog's when the analysis writes its first file there,
    so that another catalog's analysis never replaces this one's files, and a refused run leaves the folder as it
    was.
    """
    cat = getattr(source, "catalog", source)  # a Source or a Catalog
    path = check_output(Path(out), protected_dirs=[cat.dir] if is_catalog(cat) else [])
    if folder and is_catalog(cat):
        _claim(path, Path(cat.root).resolve())
    return path


def folder_owner(folder) -> Path | None:
    """The collection whose analyses *folder* holds, as its :data:`OWNER_FILE` records it; None when the folder
    holds nothing but that record, has no record (an empty folder, one written before records were kept, or not an
    analysis folder), or a record artspace did not write.

    Examples
    --------
    >>> import tempfile
    >>> folder_owner(tempfile.mkdtemp()) is None
    True
    """
    folder = Path(folder)
    record = _owner_record(folder / OWNER_FILE)
    if record is None:
        return None
    try:
        others = any(p.name != OWNER_FILE for p in folder.iterdir())
    except OSError:
        return None
    return Path(record["catalog"]) if others else None


def _owner_record(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if (not isinstance(data, dict) or not str(data.get("made_by", "")).startswith("artspace ")
            or not isinstance(data.get("catalog"), str)):
        return None
    return data


#: Folders :func:`check_out` found free, waiting for their first file: {resolved folder: collection root}. The
#: record is written beside that first file, so a run refused before it writes anything leaves the folder as it was.
_PENDING: dict[Path, Path] = {}


def _claim(folder: Path, root: Path) -> None:
    """Refuse *folder* when another catalog's analyses are in it; else note it as the catalog at *root*'s, to be
    recorded when the first file is written there (:func:`_settle`)."""
    if folder.exists() and not folder.is_dir():
        return  # a file where a folder is expected: the writers give that error
    owner = folder_owner(folder)
    if owner is not None and owner != root:
        raise OutputConflict(f"{folder} holds the analyses of another catalog ({owner}); choose another output "
                             f"folder (-o) or move those files")
    record = folder / OWNER_FILE
    if owner == root and record.is_file():
        return
    replaceable(record, lambda p: _owner_record(p) is not None,
                unlike="is not artspace's record of the catalog whose analyses this folder holds")
    _PENDING[Path(os.path.abspath(folder))] = root


def _settle(written: Path) -> Path:
    """Record the catalog whose analysis just wrote *written*, if :func:`check_out` left its folder pending."""
    folder = Path(os.path.abspath(written)).parent
    root = _PENDING.pop(folder, None)
    if root is not None:
        about = {"made_by": marker(), "catalog": str(root),
                 "about": "artspace writes the analyses of this catalog here, and refuses to write another catalog's",
                 "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        atomic_write(folder / OWNER_FILE,
                     lambda tmp: tmp.write_text(json.dumps(about, indent=1) + "\n", encoding="utf-8"))
    return written


def default_out(source, name: str) -> Path:
    """Where an analysis writes when no folder is given: *name* in the working folder, unless that folder is the
    catalogued collection or lies inside it, or ``./<name>`` holds another catalog's analyses; then
    ``<collection>-artspace/<name>`` beside the collection, so that an analysis never adds files to the collection
    it reads unless asked to (``-o``), nor replaces another catalog's.

    Examples
    --------
    >>> default_out(None, "clusters-style")
    PosixPath('clusters-style')
    """
    cat = getattr(source, "catalog", source)
    if not is_catalog(cat):
        return Path(name)
    root, here = Path(cat.root).resolve(), Path(os.getcwd()).resolve()
    owner = folder_owner(Path(name))
    if here == root or root in here.parents or (owner is not None and owner != root):
        return root.parent / f"{root.name}-artspace" / name
    return Path(name)


def metadata_file(source) -> Path | None:
    """The metadata CSV a catalog joins on every ``artspace index`` (an input no export may overwrite)."""
    cat = getattr(source, "catalog", source)
    rel = cat.manifest.get("metadata") if is_catalog(cat) else None
    return Path(cat.root) / rel if rel else None
