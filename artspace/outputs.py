"""Guards for the files artspace writes: never over one of the command's inputs, never a formula in a CSV cell.

* :func:`check_output` refuses an output path that is one of the inputs (also through a symlink or a hard link) or
  that lies inside a folder artspace manages (the catalog's ``.artspace``). Every command calls it before any
  work, so a slip such as ``artspace transfer painting.png style.png -o painting.png`` costs nothing.
* :func:`neutralise_formulas` escapes the text cells of a table that a spreadsheet would run as a formula (OWASP
  "CSV injection"): metadata comes from the collection's own CSV and file names, which artspace does not vet.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from .errors import OutputConflict

__all__ = ["CATALOG_DIRNAME", "FORMULA_PREFIXES", "check_output", "neutralise_formulas"]

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
