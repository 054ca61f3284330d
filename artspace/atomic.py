"""Writing files so that a crash, Ctrl-C or ``kill -9`` leaves the old file or the new one, never half of one.

Every file artspace writes — catalogs, images, tables, maps — goes through :func:`atomic_write`. A whole catalog
generation is the same idea one level up (:mod:`artspace.catalog.store`): files are written beside, then one
rename publishes them.

For tests of that guarantee, every rename that publishes something is a *fault point*: with the environment variable
``ARTSPACE_KILL_AT=N`` the process kills itself (SIGKILL, as ``kill -9`` would) just before the N-th one, so a test
can stop a real run between any two file replacements.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write", "atomic_savez", "fsync_dir", "fault_point"]

_faults_seen = 0


def fault_point(label: str) -> None:
    """Kill this process here if ``ARTSPACE_KILL_AT`` names this fault point's number (counting from 1)."""
    global _faults_seen
    target = os.environ.get("ARTSPACE_KILL_AT")
    if not target:
        return
    _faults_seen += 1
    if _faults_seen == int(target):
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a folder's entries (new names, renames) to disk; a no-op where the platform cannot."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Create *path* by calling ``write(tmp)`` on a temporary path beside it, flushing it to disk, then renaming.

    The temporary name keeps the suffix (``.pastiche.1234.tmp.png``), so writers that infer the format from it work;
    on any error the temporary file is removed and the old *path*, if any, is left untouched. A temporary file left
    by a killed process is recognised by :data:`TMP_MARK` in its name and removed by the next catalog writer.

    Examples
    --------
    >>> import tempfile
    >>> p = atomic_write(Path(tempfile.mkdtemp()) / "a.txt", lambda tmp: tmp.write_text("done"))
    >>> p.read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}{TMP_MARK}{path.suffix}")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        fault_point(f"replace {path.name}")
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


#: What every temporary file's name contains.
TMP_MARK = ".tmp"


def atomic_savez(path: str | os.PathLike, /, *, compressed: bool = False, **arrays) -> Path:
    """:func:`numpy.savez` (or ``savez_compressed``) of *arrays* to *path*, atomically. The arrays go through an
    open file, so that numpy never adds ``.npz`` to the temporary name (an output such as ``-o axes`` then works,
    and leaves no stray temporary file)."""
    import numpy as np

    save = np.savez_compressed if compressed else np.savez

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            save(fh, **arrays)

    return atomic_write(path, write)
