"""Writing files so that a crash, Ctrl-C or ``kill -9`` leaves the old file or the new one, never half of one.

Every file artspace writes — catalogs, images, tables, maps — goes through :func:`atomic_write`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Create *path* by calling ``write(tmp)`` on a temporary path beside it, flushing it to disk, then renaming.

    The temporary name keeps the suffix (``.pastiche.1234.tmp.png``), so writers that infer the format from it work;
    on any error the temporary file is removed and the old *path*, if any, is left untouched.

    Examples
    --------
    >>> import tempfile
    >>> p = atomic_write(Path(tempfile.mkdtemp()) / "a.txt", lambda tmp: tmp.write_text("done"))
    >>> p.read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
