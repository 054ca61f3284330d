"""The per-work arrays of a generation, kept in chunks of rows so that a run rewrites only what changed.

A generation's large arrays (the three embeddings and the relu4_1 moments: about 6 KB a work, 6 GB for a million
works) are stored in chunks of :data:`CHUNK_ROWS` rows in id order: ``style.npy`` holds rows 0 … 65,535,
``style-0001.npy`` the next 65,536, and so on (a collection of up to 65,536 works has one plain file per array).
Each chunk is named in the manifest by a digest of what its rows were computed from: the works' ids, sizes,
modification times and checksums, and the basis of the array (the feature spec and precision; for the style
embeddings the fitted projections; for content the content model too). A run whose chunk has the digest of the
published generation's takes that file over as a hard link instead of writing it again, so adding a thousand works
to a million rewrites one chunk per array, not 6 GB.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["CHUNK_ROWS", "CHUNKED", "chunk_file", "basis_digests", "write_chunks", "kept_works", "unchanged_rows",
           "ChunkedArray", "open_array"]

#: Rows in one chunk of a generation's per-work arrays.
CHUNK_ROWS = 65_536
#: The arrays kept in chunks (the others, ids and scales, are small and written whole).
CHUNKED = ("style", "l_style", "content", "moments")


def chunk_file(name: str, k: int) -> str:
    """The file of chunk *k* of array *name*: ``style.npy`` for the first, ``style-0001.npy`` after it."""
    return f"{name}.npy" if k == 0 else f"{name}-{k:04d}.npy"


def _hash_file(h, path: Path) -> None:
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)


def basis_digests(spec: dict, precision: str, projection_files: dict, content_model) -> dict:
    """For each chunked array, a digest of what every one of its rows is computed from besides the work itself."""
    base = hashlib.sha256(json.dumps({"spec": spec, "precision": precision}, sort_keys=True).encode())
    out = {"moments": base.hexdigest()}
    proj = base.copy()
    for by in sorted(projection_files):
        proj.update(by.encode())
        _hash_file(proj, Path(projection_files[by]))
    out["style"] = out["l_style"] = proj.hexdigest()
    content = proj.copy()
    for name, a in sorted(content_model.arrays().items()):
        if name != "fitted_on":
            content.update(name.encode())
            content.update(np.ascontiguousarray(a).tobytes())
    out["content"] = content.hexdigest()
    return out


def _row_digests(works, rows: int) -> list[str]:
    """Per chunk, a digest of its works' ids, sizes, modification times and checksums."""
    cols = [works[c].to_numpy() for c in ("id", "size", "mtime_ns")]
    checksums = works["checksum"].astype(str).to_numpy()
    out = []
    for s in range(0, len(works), rows):
        h = hashlib.sha256()
        for c in cols:
            h.update(np.ascontiguousarray(c[s:s + rows], np.int64).tobytes())
        h.update("\n".join(checksums[s:s + rows]).encode())
        out.append(h.hexdigest())
    return out


def write_chunks(builder, previous, works, arrays: dict, basis: dict, *, rows: int | None = None) -> dict:
    """Store each of *arrays* (rows in the order of *works*, sorted by id) in chunks, linking each chunk whose
    digest equals the *previous* generation's instead of writing it. Returns the manifest's ``chunks`` entry:
    ``{"rows", "count", "basis", "digests": {name: [...]}, "written": {name: how many chunks were written}}``.
    *rows* defaults to :data:`CHUNK_ROWS`."""
    rows = rows or CHUNK_ROWS
    row_digests = _row_digests(works, rows)
    old = (previous.manifest.get("chunks") or {}) if previous.folder is not None and previous.healthy else {}
    old_digests = old.get("digests", {}) if old.get("rows") == rows else {}
    old_files = previous.manifest.get("files", {}) if old_digests else {}
    digests, written = {}, {}
    for name, array in arrays.items():
        names = [hashlib.sha256((basis[name] + r).encode()).hexdigest() for r in row_digests]
        digests[name], written[name] = names, 0
        before = old_digests.get(name, [])
        for k, digest in enumerate(names):
            file = chunk_file(name, k)
            src = previous.folder / file if old_digests else None
            if (k < len(before) and before[k] == digest and file in old_files
                    and src.is_file() and src.stat().st_size == old_files[file]):
                builder.link(src, file)
                continue
            np.save(builder.path(file), np.ascontiguousarray(array[k * rows:(k + 1) * rows]), allow_pickle=False)
            written[name] += 1
    return {"rows": rows, "count": len(row_digests), "basis": basis, "digests": digests, "written": written}


def kept_works(previous, works) -> np.ndarray | None:
    """A boolean per row of *works*: the work was in the *previous* generation with the same id, size, modification
    time and checksum. None when there is no intact previous generation to compare with."""
    if previous.folder is None or not previous.healthy or previous.works is None:
        return None
    before = previous.works[["id", "size", "mtime_ns", "checksum"]]
    merged = works[["id", "size", "mtime_ns", "checksum"]].merge(before, on="id", how="left", suffixes=("", "_old"))
    return ((merged["size"] == merged["size_old"]) & (merged["mtime_ns"] == merged["mtime_ns_old"])
            & (merged["checksum"].astype(str) == merged["checksum_old"].astype(str))).fillna(False).to_numpy(bool)


def unchanged_rows(previous, kept: np.ndarray | None, basis: dict, name: str) -> np.ndarray | None:
    """The rows of array *name* that equal the *previous* generation's: the *kept* works (:func:`kept_works`),
    where the basis of *name* is the same as then. None when the previous generation cannot tell."""
    old = previous.manifest.get("chunks") or {}
    return kept if kept is not None and old.get("basis", {}).get(name) == basis[name] else None


class ChunkedArray:
    """Several memory-mapped chunks read as one array of rows: ``a[rows]`` for an int, a slice or an integer array
    of any shape gathers those rows; ``np.asarray(a)`` reads everything into one array.

    A gather of a few rows (a query's candidates) reads each row with ``pread`` instead of touching the mapping: a
    page fault maps the neighbouring pages of the page cache too (the kernel's fault-around), so re-ranking 100
    queries on a million works through the mapping kept 2 GB resident; read this way, it keeps what it reads."""

    #: gathers of at most this many rows are read with pread
    PREAD_ROWS = 65_536

    def __init__(self, parts: list):
        self.parts = parts
        # pread only where a part is a whole file mapping (not a view of one), in row order
        self._files = [(p.filename, p.offset) if isinstance(p, np.memmap) and isinstance(p.base, mmap.mmap)
                       and p.flags.c_contiguous and p.filename else (None, 0) for p in parts]
        self._fds: dict = {}
        self.starts = np.cumsum([0] + [len(p) for p in parts])
        self.shape = (int(self.starts[-1]), *parts[0].shape[1:])
        self.dtype = parts[0].dtype
        self.ndim = len(self.shape)
        self._width = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize  # bytes a row

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            k = int(key) + len(self) if key < 0 else int(key)
            c = int(np.searchsorted(self.starts, k, side="right")) - 1
            return self.parts[c][k - self.starts[c]]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:  # a run of rows: slices of the parts it crosses, read as they lie
                pieces = [p[max(start - a, 0):max(min(stop, b) - a, 0)]
                          for p, a, b in zip(self.parts, self.starts[:-1], self.starts[1:]) if a < stop and b > start]
                return np.concatenate(pieces) if pieces else np.empty((0, *self.shape[1:]), self.dtype)
            key = np.arange(start, stop, step)
        key = np.asarray(key)
        if key.dtype == bool:
            key = np.flatnonzero(key)
        flat = key.reshape(-1).astype(np.int64)
        flat = np.where(flat < 0, flat + len(self), flat)
        out = np.empty((len(flat), *self.shape[1:]), self.dtype)
        chunk = np.searchsorted(self.starts, flat, side="right") - 1
        for c in np.unique(chunk):
            at = chunk == c
            if len(flat) <= self.PREAD_ROWS and self._files[c][0] is not None:
                out[at] = self._pread(c, flat[at] - self.starts[c])
            else:
                out[at] = self.parts[c][flat[at] - self.starts[c]]
        return out.reshape(*key.shape, *self.shape[1:])

    def _pread(self, c: int, rows: np.ndarray) -> np.ndarray:
        """Rows *rows* of chunk *c*, each read from its file at its offset."""
        name, offset = self._files[c]
        fd = self._fds.get(c)
        if fd is None:
            fd = self._fds[c] = os.open(name, os.O_RDONLY)
        width = self._width
        buf = bytearray(width * len(rows))
        view = memoryview(buf)
        for j, r in enumerate(rows.tolist()):
            got = os.preadv(fd, [view[j * width:(j + 1) * width]], offset + r * width)
            if got != width:
                raise OSError(f"{name}: row {r} is cut short ({got} of {width} bytes)")
        return np.frombuffer(buf, self.dtype).reshape(len(rows), *self.shape[1:])

    def __del__(self):
        for fd in getattr(self, "_fds", {}).values():
            try:
                os.close(fd)
            except OSError:
                pass

    def __array__(self, dtype=None, copy=None):
        out = np.concatenate(self.parts)
        return out if dtype is None else out.astype(dtype, copy=False)

    def max(self):
        return max(p.max() for p in self.parts)


def open_array(manifest: dict, name: str, load: Callable[[str], np.ndarray]):
    """Array *name* of a generation: one memory-mapped file, or a :class:`ChunkedArray` of its chunks. *load* maps
    a file name to its memory-mapped array."""
    chunks = manifest.get("chunks") or {}
    count = int(chunks.get("count", 1)) if name in CHUNKED else 1
    if count <= 1:
        return load(f"{name}.npy")
    return ChunkedArray([load(chunk_file(name, k)) for k in range(count)])
