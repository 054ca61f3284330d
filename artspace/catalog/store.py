"""A catalog on disk: immutable generations, one writer at a time, readers that never see a mix.

Layout of a catalog directory (default ``<collection>/.artspace/``)::

    CURRENT                 {"generation": 12, "manifest_sha256": ...}: the published generation and the digest
                            of its manifest, replaced by one atomic rename
    lock                    flock held by the one writer (index, cluster, map: anything that stores results)
    generations/000012/     manifest.json and the files a query reads (works table, embeddings, faiss indexes...),
                            never changed once published
    generations/000012.lease   readers hold a shared flock on it while they read generation 12
    log/                    the indexer's working state: shards/ (the extraction log), projections, log.json
    cache/                  recomputable caches (unit responses)

A writer builds the next generation in a temporary folder beside the published ones (unchanged files are hard
links, so a new generation costs only the files that changed), flushes it, renames it into place and then
replaces ``CURRENT``: killed at any instant, the catalog is the old generation or the new one. Generations that no
reader holds any more are removed by the next writer. A reader (:func:`open_generation`) takes a shared lock on the
generation it opens, so a generation is never removed under a query that is still reading it.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Callable, Iterable

from ..atomic import TMP_MARK, atomic_write, fault_point, fsync_dir
from ..errors import CatalogLocked, CatalogNotFound, CorruptCatalog, IncompatibleCatalog

__all__ = ["CATALOG_DIRNAME", "FORMAT_VERSION", "find_catalog", "locate_catalog", "WriterLock", "Lease",
           "open_generation", "GenerationBuilder", "collect_garbage", "damaged_files", "read_json", "repair_hint"]

#: 4: generations (CURRENT + generations/); 3 and 2 were single-folder catalogs that `index` converts.
FORMAT_VERSION = 4
LEGACY_FORMATS = (2, 3)
CATALOG_DIRNAME = ".artspace"
POINTER = "CURRENT"
GENERATIONS = "generations"
_GEN_NAME = re.compile(r"^(\d{6,})$")


def _is_catalog(cand: Path, *, named: bool) -> bool:
    if any((cand / name).exists() for name in (POINTER, GENERATIONS, "manifest.json")):
        return True
    return named and (cand / "log").is_dir()  # a first `index` run stopped before publishing


def _default_catalog(folder: Path) -> Path | None:
    """*folder*'s own ``.artspace`` catalog, or *folder* itself when it is one named so; else ``None``."""
    if folder.name == CATALOG_DIRNAME and _is_catalog(folder, named=True):
        return folder
    inner = folder / CATALOG_DIRNAME
    return inner if inner.is_dir() and _is_catalog(inner, named=True) else None


def find_catalog(path: str | os.PathLike) -> Path:
    """The catalog directory for *path*: *path* itself if it is one, else ``path/.artspace``."""
    p = Path(path).expanduser()
    if _is_catalog(p, named=p.name == CATALOG_DIRNAME):
        return p
    found = _default_catalog(p)
    if found is not None:
        return found
    raise CatalogNotFound(
        f"no artspace catalog at {p} (looked for {p / POINTER} and {p / CATALOG_DIRNAME / POINTER}); "
        f"create one with `artspace index {p}`, or point --catalog at an existing one")


def locate_catalog(catalog: str | os.PathLike | None = None, *, near: Iterable = ()) -> Path:
    """The catalog every command uses: *catalog* if given; else the nearest ``.artspace`` in the working folder or
    a folder above it; else the nearest one above any of the files *near* (a query's image, say).

    Raises :class:`CatalogNotFound` saying where it looked and how to make one.
    """
    if catalog is not None:
        return find_catalog(catalog)
    starts = [Path.cwd()]
    for q in near:
        try:
            qp = Path(str(q)).expanduser()
            if qp.exists():
                starts.append(qp.resolve().parent)
        except (OSError, ValueError):
            continue
    for start in starts:
        for folder in (start, *start.parents):
            found = _default_catalog(folder)
            if found is not None:
                return found
    where = " or ".join(f"{s} and the folders above it" for s in dict.fromkeys(starts))
    raise CatalogNotFound(f"no artspace catalog found in {where}; create one with `artspace index FOLDER`, or "
                          f"give --catalog")


def index_command(cdir: Path) -> str:
    """``artspace index …`` for the catalog *cdir* (its collection is the folder above a default catalog)."""
    root = cdir.parent if cdir.name == CATALOG_DIRNAME else "<collection>"
    return f"artspace index {root}" + ("" if cdir.name == CATALOG_DIRNAME else f" --catalog {cdir}")


def repair_hint(cdir: Path) -> str:
    """The command that repairs the catalog *cdir*."""
    return f"`{index_command(cdir)}` repairs it"


def read_json(path: Path, cdir: Path) -> dict:
    """A JSON object from a catalog file, or :class:`CorruptCatalog` naming the file and the repair."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorruptCatalog(f"catalog file {path} is missing; {repair_hint(cdir)}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptCatalog(f"catalog file {path} is damaged ({e}); {repair_hint(cdir)}") from None
    if not isinstance(obj, dict):
        raise CorruptCatalog(f"catalog file {path} is damaged (not a JSON object); {repair_hint(cdir)}")
    return obj


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


class WriterLock:
    """The catalog's one writer: an exclusive flock on ``<catalog>/lock``, released by the kernel even after
    ``kill -9``.

    ``wait=False`` refuses at once with :class:`CatalogLocked` (``index``: a second run would only repeat the
    first); ``wait=True`` waits for the holder to finish (analyses storing results), telling *notify* once.
    """

    def __init__(self, directory: Path, *, wait: bool = False, notify: Callable[[str], None] | None = None):
        self.path = Path(directory) / "lock"
        self.wait = wait
        self.notify = notify
        self.fh = None

    def __enter__(self):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fh = open(self.path, "a+")
        except OSError as e:
            raise CatalogLocked(f"cannot write to the catalog {self.path.parent} ({e.strerror or e}); run this where "
                                f"you may write, or give --catalog a folder of your own") from None
        told = False
        while True:
            try:
                fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                self.fh.seek(0)
                holder = self.fh.read().strip() or "another process"
                if not self.wait:
                    self.fh.close()
                    raise CatalogLocked(
                        f"the catalog {self.path.parent} is being written by {holder}; wait for that `artspace "
                        f"index` to finish (or stop it: the next run resumes where it stopped)") from None
                if not told and self.notify is not None:
                    self.notify(f"waiting for {holder} to finish writing the catalog {self.path.parent}...")
                    told = True
                time.sleep(0.2)
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {_now()}")
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        try:
            self.fh.seek(0)
            self.fh.truncate()
        finally:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
            self.fh.close()


def _generations(cdir: Path) -> dict[int, Path]:
    gdir = cdir / GENERATIONS
    if not gdir.is_dir():
        return {}
    return {int(m.group(1)): p for p in gdir.iterdir() if (m := _GEN_NAME.match(p.name)) and p.is_dir()}


def read_pointer(cdir: Path) -> int | None:
    """The published generation's number; ``None`` for a catalog that has published none."""
    return read_pointer_entry(cdir)[0]


def read_pointer_entry(cdir: Path) -> tuple[int | None, str | None]:
    """``(generation, manifest SHA-256)`` as ``CURRENT`` records them, read at once; the digest is None for a
    catalog published before artspace recorded it, the generation None for one that has published none."""
    path = cdir / POINTER
    if not path.exists():
        return None, None
    obj = read_json(path, cdir)
    n = obj.get("generation")
    if not isinstance(n, int) or n < 1:
        raise CorruptCatalog(f"catalog file {path} is damaged (no generation number); {repair_hint(cdir)}")
    digest = obj.get("manifest_sha256")
    return n, digest if isinstance(digest, str) else None


def manifest_digest(folder: Path) -> str:
    """SHA-256 of a generation's ``manifest.json`` as written (what ``CURRENT`` records at publication)."""
    return hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()


class Lease:
    """A reader's shared lock on one generation: while held, no writer removes that generation."""

    def __init__(self, fd: int | None):
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)  # closing the last descriptor drops the flock
            finally:
                self.fd = None

    def __del__(self):
        self.release()


def _folder(cdir: Path, n: int) -> Path:
    """Generation *n*'s folder."""
    return cdir / GENERATIONS / f"{n:06d}"


def _lease_path(cdir: Path, n: int) -> Path:
    return _folder(cdir, n).with_suffix(".lease")


def _take_lease(cdir: Path, n: int) -> Lease | None:
    """A shared lock on generation *n*, or ``None`` when that generation is gone (removed by a writer)."""
    try:
        fd = os.open(_lease_path(cdir, n), os.O_RDONLY)
    except FileNotFoundError:
        if (_folder(cdir, n) / "manifest.json").is_file():
            return Lease(None)  # a copy made without its lease files: read it; writers recreate them
        return None
    except OSError:
        return Lease(None)  # a read-only copy without lease files: nobody removes generations there
    fcntl.flock(fd, fcntl.LOCK_SH)
    lease = Lease(fd)
    if not (_folder(cdir, n) / "manifest.json").is_file():
        lease.release()
        return None
    return lease


def open_generation(cdir: Path) -> tuple[int, Path, dict, Lease]:
    """Open the published generation of *cdir* for reading: ``(number, folder, manifest, lease)``.

    Raises :class:`IncompatibleCatalog` for a catalog of an older or newer format and :class:`CorruptCatalog` for
    a damaged one, each naming the command that mends it.
    """
    for _ in range(100):
        n, digest = read_pointer_entry(cdir)
        if n is None:
            _refuse_unpublished(cdir)
        lease = _take_lease(cdir, n)
        if lease is None:
            if read_pointer(cdir) == n:  # published but missing: damage, not a race
                raise CorruptCatalog(f"catalog generation {_folder(cdir, n)} is missing; {repair_hint(cdir)}")
            continue  # a writer published a newer generation and removed this one meanwhile
        folder = _folder(cdir, n)
        manifest = read_json(folder / "manifest.json", cdir)
        _check_format(manifest, cdir)
        _check_intact(folder, manifest, cdir, digest)
        return n, folder, manifest, lease
    raise CatalogLocked(f"the catalog {cdir} changed 100 times while being opened; try again")


def _refuse_unpublished(cdir: Path):
    legacy = cdir / "manifest.json"
    if legacy.is_file():
        v = read_json(legacy, cdir).get("format_version")
        _check_format({"format_version": v}, cdir)
    raise CatalogNotFound(f"the catalog {cdir} holds no finished index yet (no `artspace index` run has finished: "
                          f"one was stopped, or found fewer than 2 readable images); `{index_command(cdir)}` builds "
                          f"it")


def _check_format(manifest: dict, cdir: Path) -> None:
    v = manifest.get("format_version")
    if v == FORMAT_VERSION:
        return
    from .. import __version__

    if v in LEGACY_FORMATS:
        raise IncompatibleCatalog(
            f"the catalog {cdir} has format version {v}, and artspace {__version__} reads format {FORMAT_VERSION}; "
            f"run `artspace index <folder> --catalog {cdir}` once to bring it up to date (no image is read again)")
    raise IncompatibleCatalog(
        f"the catalog {cdir} has format version {v}, but artspace {__version__} reads format {FORMAT_VERSION}; "
        f"rebuild it with `artspace index <folder> --catalog {cdir} --rebuild`")


#: What every generation's manifest records.
REQUIRED = ("spec", "root", "works", "files", "generation")


def _check_intact(folder: Path, manifest: dict, cdir: Path, digest: str | None = None) -> None:
    """Refuse a generation whose manifest lacks what a reader needs, differs from the one published (*digest*), or
    whose files changed since publication: a stat of each file, so that a damaged catalog fails when opened rather
    than half-way through an answer."""
    for name, why in damaged_files(folder, manifest, digest)[:1]:
        raise CorruptCatalog(f"catalog file {folder / name} is damaged ({why}); {repair_hint(cdir)}")


def damaged_files(folder: Path, manifest: dict, digest: str | None = None) -> list[tuple[str, str]]:
    """``(name, what is wrong)`` of each file of a generation that is missing or whose size differs from the one
    recorded at publication; the manifest itself when it lacks what a reader needs, or when its SHA-256 is not the
    *digest* ``CURRENT`` recorded (edited after publication)."""
    if digest is not None and manifest_digest(folder) != digest:
        return [("manifest.json", "changed after publication: its SHA-256 is not the one CURRENT recorded")]
    missing = [key for key in REQUIRED if key not in manifest]
    if missing or not isinstance(manifest["spec"], dict) or not isinstance(manifest["files"], dict):
        return [("manifest.json", f"no {', '.join(missing) or 'spec'}")]
    bad = []
    for name, size in manifest["files"].items():
        try:
            if (folder / name).stat().st_size != size:
                bad.append((name, "truncated or changed"))
        except OSError:
            bad.append((name, "missing"))
    return bad


class GenerationBuilder:
    """The next generation, written in a temporary folder and published by :meth:`publish`.

    Call only while holding the :class:`WriterLock`.
    """

    def __init__(self, cdir: Path, base: Path | None = None):
        self.cdir = cdir
        self.base = base
        gdir = cdir / GENERATIONS
        gdir.mkdir(parents=True, exist_ok=True)
        self.folder = gdir / f".building-{os.getpid()}"
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir()

    def path(self, name: str) -> Path:
        """Where to write the file *name* of the new generation."""
        return self.folder / name

    def keep(self, names: Iterable[str]) -> None:
        """Carry files over unchanged from the base generation (hard links: no copy, no extra space)."""
        for name in names:
            if (self.base / name).is_file():
                self.link(self.base / name, name)

    def link(self, src: Path, name: str) -> None:
        """Make *src* the new generation's file *name* without copying it (a hard link; a copy where the file
        system has none). Safe because artspace replaces files by renaming, never rewrites them in place."""
        dst = self.folder / name
        if dst.exists():
            return
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    def publish(self, manifest: dict) -> int:
        """Flush every file, name the folder, then replace ``CURRENT``: the one step readers see. Returns the
        new generation's number."""
        existing = _generations(self.cdir)
        current = read_pointer_quiet(self.cdir)
        n = max([0, current or 0, *existing]) + 1
        files = {p.name: _flushed_size(p) for p in sorted(self.folder.iterdir()) if p.name != "manifest.json"}
        manifest = {**manifest, "format_version": FORMAT_VERSION, "generation": n, "files": files}
        (self.folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        _flushed_size(self.folder / "manifest.json")
        fsync_dir(self.folder)
        final = _folder(self.cdir, n)
        lease = _lease_path(self.cdir, n)
        lease.touch()
        fault_point("name generation")
        os.rename(self.folder, final)
        fsync_dir(final.parent)
        # the manifest's digest beside its number: a manifest edited after publication (a spec changed by hand)
        # is then refused rather than trusted
        pointer = {"generation": n, "manifest_sha256": manifest_digest(final)}
        atomic_write(self.cdir / POINTER, lambda p: p.write_text(json.dumps(pointer) + "\n"))
        return n

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _flushed_size(path: Path) -> int:
    """Flush *path* to disk and return its size."""
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
        return os.fstat(fh.fileno()).st_size


def read_pointer_quiet(cdir: Path) -> int | None:
    """The published generation's number, or ``None`` if there is none or ``CURRENT`` is damaged."""
    try:
        return read_pointer(cdir)
    except CorruptCatalog:
        return None


def collect_garbage(cdir: Path) -> list[str]:
    """Remove what no reader can need: generations other than the published one that no reader holds, folders of
    writers that were killed, and temporary files. Call only while holding the :class:`WriterLock`.

    Returns the names removed.
    """
    removed = []
    current = read_pointer_quiet(cdir)
    gdir = cdir / GENERATIONS
    for n, folder in sorted(_generations(cdir).items()):
        if n == current:
            continue
        if _remove_if_unread(cdir, n, folder):
            removed.append(folder.name)
    if gdir.is_dir():
        for p in gdir.iterdir():
            if p.name.startswith(".building-") or p.name.startswith(".trash-"):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
            elif p.suffix == ".lease" and not (gdir / p.stem).is_dir():
                p.unlink(missing_ok=True)
    for folder in (cdir, cdir / "log", cdir / "log" / "shards", cdir / "cache"):
        if folder.is_dir():
            for p in folder.iterdir():
                if p.name.startswith(".") and TMP_MARK in p.name and p.is_file():
                    p.unlink(missing_ok=True)
                    removed.append(p.name)
    return removed


def _remove_if_unread(cdir: Path, n: int, folder: Path) -> bool:
    lease = _lease_path(cdir, n)
    try:
        fd = os.open(lease, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False  # a reader still reads it; the next writer tries again
            raise
        trash = folder.with_name(f".trash-{folder.name}")
        os.rename(folder, trash)  # readers that take the lease from now on find no manifest and retry
        shutil.rmtree(trash, ignore_errors=True)
        lease.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)
