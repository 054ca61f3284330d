"""Guards for the files artspace writes: never over one of the command's inputs, never a formula in a CSV cell.

* :func:`check_output` refuses an output path that is one of the inputs (also through a symlink or a hard link) or
  that lies inside a folder artspace manages (the catalog's ``.artspace``). Every command calls it before any
  work, so a slip such as ``artspace transfer painting.png style.png -o painting.png`` costs nothing.
* :func:`replaceable` refuses to replace an existing file that artspace did not make: an output name that happens
  to be a scholar's own notes, a painting of the collection or last year's spreadsheet is never written over. Each
  writer says how it knows its own files (a marker in an image's header, the table's own header line in a CSV).
* :func:`neutralise_formulas` escapes the text cells of a table that a spreadsheet would run as a formula (OWASP
  "CSV injection"): metadata comes from the collection's own CSV and file names, which artspace does not vet.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from .errors import OutputConflict

__all__ = ["CATALOG_DIRNAME", "FORMULA_PREFIXES", "MADE_BY", "check_output", "csv_made_by", "made_by_artspace", "marker",
           "neutralise_formulas", "replaceable", "sidecar_made_here"]

#: The catalog folder's usual name (:data:`artspace.catalog.CATALOG_DIRNAME`, repeated here so that this module stays
#: free of the catalog's heavy imports). Every folder of this name is protected, even without its catalog at hand.
CATALOG_DIRNAME = ".artspace"

#: First characters with which Excel, LibreOffice and Google Sheets start a formula (OWASP's list).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A plain decimal number written as text ("-3.5", "+2", "1e-4"): a spreadsheet reads it as that number, never as a
# formula, so escaping it would only turn a number into text.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file *path* names, symlinks followed; None when there is no such file."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _resolved(path: Path) -> Path:
    # strict=False: an output usually does not exist yet, but the folders above it may be symlinks
    return Path(os.path.abspath(path)).resolve()


def _same_file(a: Path, b: Path) -> bool:
    ia, ib = _identity(a), _identity(b)
    if ia is not None and ib is not None:
        return ia == ib  # a hard link or a symlink to the input is the input
    return _resolved(a) == _resolved(b)


def _inside(path: Path, folder: Path) -> bool:
    """Whether *path* is *folder* or lies below it, compared by resolved path and, where the folders exist, by
    identity (which also sees through case-insensitive file systems and bind mounts)."""
    rp, rf = _resolved(path), _resolved(folder)
    if rp == rf or rf in rp.parents:
        return True
    target = _identity(rf)
    if target is None:
        return False
    return any(_identity(p) == target for p in (rp, *rp.parents))


def check_output(path: str | os.PathLike, *, inputs: Iterable = (), protected_dirs: Iterable = ()) -> Path:
    """Refuse to write *path* when that would overwrite one of *inputs* or write inside one of *protected_dirs*.

    Parameters
    ----------
    path : path
        A file (or folder) about to be written.
    inputs : iterable of path
        Files the command reads. Items that are not paths (None, a PIL image, a tensor) are skipped, so a caller
        can pass its inputs as given. Two paths name the same file when ``os.stat`` gives the same device and
        inode (symlinks and hard links included) or, when either does not exist, when they resolve to the same
        absolute path.
    protected_dirs : iterable of path
        Folders no output may be in or be, such as a catalog's folder (``Catalog.dir``). Any folder named
        ``.artspace`` is protected anyway: a catalog's files are written by artspace alone.

    Returns
    -------
    Path
        *path*, as a :class:`~pathlib.Path`.

    Raises
    ------
    OutputConflict
        One line naming the output, the input or folder it would overwrite, and the fix.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); (d / "a.png").write_bytes(b"x")
    1
    >>> check_output(d / "b.png", inputs=[d / "a.png"]).name
    'b.png'
    >>> check_output(d / "." / "a.png", inputs=[d / "a.png"])
    Traceback (most recent call last):
    ...
    artspace.errors.OutputConflict: ...a.png would overwrite the input ...a.png; choose another output (-o)
    """
    path = Path(path)
    for item in inputs:
        if not isinstance(item, (str, os.PathLike)):
            continue
        if _same_file(path, Path(item)):
            raise OutputConflict(f"{path} would overwrite the input {item}; choose another output (-o)")
    resolved = _resolved(path)
    default = [p for p in (resolved, *resolved.parents) if p.name == CATALOG_DIRNAME][-1:]
    for folder in [*default, *protected_dirs]:
        if folder is not None and _inside(path, Path(folder)):
            raise OutputConflict(f"{path} lies inside {folder}, whose files artspace manages; choose another "
                                 f"output (-o) outside it")
    return path


def replaceable(path: str | os.PathLike, made_here: Callable[[Path], bool], *,
                unlike: str = "was not made by artspace") -> Path:
    """*path*, if writing there loses nothing: it does not exist yet, or *made_here* says artspace made it.

    Parameters
    ----------
    path : path
        The file about to be written.
    made_here : callable
        ``made_here(path) -> bool``: whether the existing file is artspace's own output (and so may be replaced by
        a new run of the same command); never called when there is no file.
    unlike : str
        What the error says of a file *made_here* refuses (after "exists and").

    Raises
    ------
    OutputConflict
        One line naming the file and the fix, when *path* is a folder or a file artspace did not make.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "notes.csv").write_text("my notes")
    >>> replaceable(d / "new.csv", lambda p: False).name
    'new.csv'
    >>> replaceable(d / "notes.csv", lambda p: False)
    Traceback (most recent call last):
    ...
    artspace.errors.OutputConflict: ...notes.csv exists and was not made by artspace; choose another output (-o) or move it
    """
    path = Path(path)
    if path.is_dir():
        raise OutputConflict(f"output {path} is a folder; give a file name inside it")
    if (path.exists() or path.is_symlink()) and not made_here(path):
        raise OutputConflict(f"{path} exists and {unlike}; choose another output (-o) or move it")
    return path


def sidecar_made_here(path: str | os.PathLike) -> bool:
    """Whether *path* is a JSON sidecar artspace wrote beside a pastiche or a reconstruction, i.e. one
    :func:`replaceable` may let a new run replace: an object naming the artspace version (every sidecar does now),
    or one of the feed-forward methods with the record only artspace writes beside it (sidecars of before the
    version was recorded). A scholar's own JSON with a ``method`` key is not one."""
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    if not isinstance(data, dict):
        return False
    return "artspace_version" in data or (
        data.get("method") == "feed-forward" and "model_header" in data) or (
        data.get("method") == "adain" and "decoder_training" in data)


#: What :func:`replaceable` says of a CSV file whose first line is not the header of the table about to be written.
CSV_UNLIKE = ("is not an earlier output of this table (its header differs: another catalog's table, another "
              "version's, or not artspace's; artspace replaces only an output with the same columns)")


def csv_made_by(header: str) -> Callable[[Path], bool]:
    """A test for :func:`replaceable`: whether a CSV file starts with *header* (the first line that the table about
    to be written has), i.e. is an earlier output of the same table rather than some other file of that name."""
    head = header.rstrip("\r\n").encode("utf-8")

    def made_here(path: Path) -> bool:
        try:
            with open(path, "rb") as f:
                first = f.read(len(head) + 2)
        except OSError:
            return False
        return first.startswith(head) and first[len(head):len(head) + 1] in (b"\n", b"\r")

    return made_here


def marker() -> str:
    """What artspace writes into the files it makes: ``artspace <version>``."""
    from . import __version__

    return f"{MADE_BY} {__version__}"


def made_by_artspace(path: str | os.PathLike) -> bool:
    """Whether the image file *path* was written by artspace (:func:`artspace.images.save_image`, a figure, a map's
    thumbnail), read from its header only; :func:`artspace.images.open_image` records the same in
    ``info["made_by_artspace"]``."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return _made_by_artspace(im)
    except Exception:  # noqa: BLE001 - unreadable: open_image gives the reason
        return False


def _made_by_artspace(im) -> bool:
    text = im.info.get("Software") or im.info.get("comment") or ""
    if not text and im.format in ("WEBP", "TIFF"):  # their EXIF sits in the header; PNG's may not
        text = im.getexif().get(_EXIF_SOFTWARE, "")
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return str(text).startswith(MADE_BY + " ")


#: What artspace writes into the files it makes (see :func:`artspace.images.save_image`).
MADE_BY = "artspace"
_EXIF_SOFTWARE = 0x0131


def _escape(value):
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of *df* whose text cells (and column names) cannot run as spreadsheet formulas.

    A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``, which
    spreadsheets show as text (OWASP, "CSV injection"). Numbers, missing values and numeric columns are left as
    they are, and so is text that is just a number (``"-3.5"``), which a spreadsheet reads as that number. Use it
    for CSV only: Parquet and JSON keep the raw values.

    Parameters
    ----------
    df : DataFrame

    Returns
    -------
    DataFrame
        A new table; *df* is not changed.

    Examples
    --------
    >>> t = neutralise_formulas(pd.DataFrame({"title": ["=1+1", "Vue de Delft"], "x": [-3.5, 2.0]}))
    >>> t["title"].tolist(), t["x"].tolist()
    (["'=1+1", 'Vue de Delft'], [-3.5, 2.0])
    """
    out = df.copy()
    for j in range(out.shape[1]):
        col = out.iloc[:, j]
        # numeric, boolean and datetime columns hold no text; object, string and categorical ones may
        if not (col.dtype == object or isinstance(col.dtype, (pd.StringDtype, pd.CategoricalDtype))):
            continue
        values = col.astype(object).to_numpy()
        escaped = np.array([_escape(v) for v in values], dtype=object)
        if any(a is not b for a, b in zip(values, escaped)):
            out.isetitem(j, escaped)
    out.columns = pd.Index([_escape(c) for c in out.columns], name=out.columns.name)
    return out
