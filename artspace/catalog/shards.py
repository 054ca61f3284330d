"""The extraction log: what the indexer has computed so far, kept in ``<catalog>/log/`` between runs.

``shards/part-NNNNNN.npz`` hold one batch each (paths, sizes, modification times, checksums, compact embeddings,
content descriptors, relu4_1 channel moments, and the files that could not be read, with the reason), written atomically as batches finish:
a killed run loses at most the batches in flight, and the next run skips every file already recorded with the same
size and modification time. ``projection.npz`` and ``signature_projection.npz`` are the projections the shards'
compact embeddings were made with; ``log.json`` the feature spec and the next free work id.

The log is the writer's alone (it is read and written under the catalog's writer lock); queries read only the
published generations built from it. Every part of it can be recomputed from the images, so a damaged shard is
dropped (its images are extracted again) and damaged projections drop the whole log.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_savez
from .metadata import WORK_COLUMNS

__all__ = ["Log", "ShardLog", "Record", "next_shard", "shard_path", "MOMENTS_DIM"]

#: Columns of the works table that come from the shards.
SHARD_COLUMNS = WORK_COLUMNS
#: relu4_1's 512 channel means then 512 standard deviations (float16); shards written before artspace kept them
#: have none, and their works get NaN rows (AdaIN then reads the work's image instead).
MOMENTS_DIM = 1024
_DTYPES = {"id": np.int64, "size": np.int64, "mtime_ns": np.int64, "width": np.int32, "height": np.int32}


#: Shard members larger than this are memory-mapped instead of read (see :func:`read_npz`).
MAP_BYTES = 16 << 20


def read_npz(path: Path) -> dict:
    """The arrays of a shard. A member above :data:`MAP_BYTES` stored uncompressed (``np.savez`` stores them so) is
    memory-mapped: reading a million works' log then costs the pages that are used, not a copy and a CRC of
    gigabytes. Such a member is checked for truncation but not against its CRC; every other member is read as
    ``np.load`` reads it, CRC checked."""
    import struct

    out = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        loaded = None
        for info in zf.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            try:
                if info.compress_type != zipfile.ZIP_STORED or info.file_size < MAP_BYTES:
                    raise ValueError("read whole")
                fh.seek(info.header_offset)
                local = fh.read(30)
                if local[:4] != b"PK\x03\x04":
                    raise ValueError("no local header")
                name_len, extra_len = struct.unpack("<HH", local[26:30])
                fh.seek(info.header_offset + 30 + name_len + extra_len)
                version = np.lib.format.read_magic(fh)
                shape, fortran, dtype = (np.lib.format.read_array_header_1_0(fh) if version == (1, 0)
                                         else np.lib.format.read_array_header_2_0(fh))
                if dtype.hasobject:
                    raise ValueError("object array")
                count = int(np.prod(shape, dtype=np.int64))
                if fh.tell() + count * dtype.itemsize > info.header_offset + 30 + name_len + extra_len + \
                        info.file_size:
                    raise ValueError("truncated")
                out[name] = np.memmap(path, dtype=dtype, mode="r", offset=fh.tell(), shape=shape,
                                      order="F" if fortran else "C") if count else np.zeros(shape, dtype)
            except ValueError:
                if loaded is None:
                    loaded = np.load(path, allow_pickle=False)
                out[name] = loaded[name]
        if loaded is not None:
            loaded.close()
    return out


def write_npz(target: Path, /, **arrays) -> None:
    atomic_savez(target, **arrays)


@dataclass(slots=True)  # not frozen: making a million frozen ones takes 1.7 s a run, these 0.45 s
class Record:
    """The latest record of one file: a work (``shard``, ``row``, ``id``) or a skip (``reason``)."""

    ok: bool
    size: int
    mtime_ns: int
    shard: Path | None = None
    row: int = -1
    id: int = -1
    reason: str = ""


class Log:
    """The paths of the extraction log of the catalog *cdir*."""

    def __init__(self, cdir: Path):
        self.dir = cdir / "log"
        self.shards = self.dir / "shards"
        self.projection = self.dir / "projection.npz"
        self.signature_projection = self.dir / "signature_projection.npz"
        self.state = self.dir / "log.json"

    def create(self) -> None:
        self.shards.mkdir(parents=True, exist_ok=True)

    def discard(self) -> None:
        """Forget everything extracted (``--rebuild``, or projections that cannot be read)."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def projection_files(self) -> dict:
        """The projections' files by space (:mod:`artspace.spaces`)."""
        return {"l_style": self.projection, "style": self.signature_projection}


def shard_number(p: Path) -> int:
    return int(re.search(r"part-(\d+)", p.name).group(1))


def next_shard(shard_dir: Path) -> Path:
    """The path of the next shard to write in *shard_dir* (numbers only grow, so the latest record wins)."""
    numbers = [shard_number(p) for p in shard_dir.glob("part-*.npz")]
    return shard_path(shard_dir, max(numbers) + 1 if numbers else 1)


def shard_path(shard_dir: Path, number: int) -> Path:
    return shard_dir / f"part-{number:06d}.npz"


class ShardLog:
    """What the shards record: for each relative path, its latest :class:`Record`.

    Shards that cannot be read (truncated, not an archive) are deleted and listed in :attr:`damaged`; the files
    they recorded are then simply not known, and the indexer extracts them again.
    """

    def __init__(self, shard_dir: Path):
        self.shard_dir = shard_dir
        self.records: dict[str, Record] = {}
        self.max_id = -1
        self.damaged: list[str] = []
        self.shards = []
        #: extracted works the shards hold, live or not (a file extracted twice counts twice)
        self.rows = 0
        self._live = None
        for shard in sorted(shard_dir.glob("part-*.npz"), key=shard_number):
            try:
                self._read(shard)
                self.shards.append(shard)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
                self.damaged.append(f"{shard.name} ({e})")
                shard.unlink(missing_ok=True)

    def add(self, shard: Path) -> None:
        """Take in the records of *shard*, written after the log was read (its records are the latest)."""
        self._read(shard)
        self.shards.append(shard)
        self._live = None

    def _read(self, shard: Path) -> None:
        found = {}
        z = read_npz(shard)
        # plain Python values (tolist), not numpy scalars: a million records in a second or two
        for j, (rel, size, mtime, wid) in enumerate(zip(z["path"].tolist(), z["size"].tolist(),
                                                       z["mtime_ns"].tolist(), z["id"].tolist())):
            found[rel] = Record(True, size, mtime, shard, j, wid)
        rows = len(z["id"])
        for rel, size, mtime, reason in zip(z["skip_path"], z["skip_size"], z["skip_mtime_ns"], z["skip_reason"]):
            found[str(rel)] = Record(False, int(size), int(mtime), reason=str(reason))
        for key in ("style", "signature", "descriptor"):
            if key not in z and "sketch" not in z:
                raise KeyError(f"no {key} array")
        self.records.update(found)
        self.rows += rows
        if rows:
            self.max_id = max(self.max_id, int(np.max(z["id"])))

    def is_current(self, rel: str, size: int, mtime: int) -> bool:
        r = self.records.get(rel)
        return r is not None and (r.size, r.mtime_ns) == (size, mtime)

    def live(self, present: set) -> tuple[dict, list]:
        """The records of files still *present*: ``({shard: [(rel, row)]}, [(rel, reason, size, mtime)])``
        (computed once per *present* set: a run asks several times)."""
        if self._live is not None and self._live[0] is present:
            return self._live[1]
        by_shard: dict[Path, list] = {}
        skipped = []
        for rel, r in self.records.items():
            if rel not in present:
                continue
            if r.ok:
                by_shard.setdefault(r.shard, []).append((rel, r.row))
            else:
                skipped.append((rel, r.reason, r.size, r.mtime_ns))
        self._live = (present, (by_shard, skipped))
        return by_shard, skipped


#: The arrays of a fit-phase shard that its projection replaces.
_SKETCH_KEYS = ("sketch", "sig_sketch", "sketch_scale", "sig_sketch_scale")


def pack_sketches(**sketches: np.ndarray) -> dict:
    """Fit-phase sketches as float16 rows of at most unit size, each with its float32 scale (``<name>_scale``):
    half the bytes of float32, and no overflow — an l_style sketch holds Gram entries at Caffe scale, which a
    striped or high-contrast image takes past float16's 65,504.

    >>> packed = pack_sketches(sketch=np.array([[3e5, -4e5]], np.float32))
    >>> unpack_sketch(packed, "sketch").tolist()
    [[300000.0, -400000.0]]
    """
    out = {}
    for name, x in sketches.items():
        x = np.asarray(x, np.float32)
        scale = np.abs(x).max(1, keepdims=True) if x.size else np.zeros((len(x), 1), np.float32)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0).astype(np.float32)
        out[name], out[f"{name}_scale"] = (x / scale).astype(np.float16), scale
    return out


def unpack_sketch(z, name: str) -> np.ndarray:
    """The float32 sketch *name* of a fit-phase shard (*z*: an open npz or a dict); shards written before the
    scales were kept hold the float16 values themselves."""
    x = np.asarray(z[name], np.float32)
    key = f"{name}_scale"
    return x * np.asarray(z[key], np.float32) if key in (z.files if hasattr(z, "files") else z) else x


def project_fit_shards(shard_dir: Path, projections: tuple) -> bool:
    """Rewrite fit-phase shards (sketches) as ordinary shards (compact style), then delete them. Idempotent.
    Returns whether any shard was rewritten."""
    rewritten = False
    for shard in sorted(shard_dir.glob("part-*.npz"), key=shard_number):
        with np.load(shard) as z:
            if "sketch" not in z.files:
                continue
            rewritten = True
            arrays = {k: z[k] for k in z.files if k not in _SKETCH_KEYS}
            sketch, sig = unpack_sketch(z, "sketch"), unpack_sketch(z, "sig_sketch")
            arrays["style"] = projections["l_style"].embed(sketch)
            arrays["signature"] = projections["style"].embed(sig)
            # in the column order of artspace.catalog.generation.OFF_AXES
            arrays["off_axes"] = np.stack([projections["l_style"].off_axes(sketch),
                                           projections["style"].off_axes(sig)], 1)
        write_npz(next_shard(shard_dir), **arrays)
        shard.unlink()
    return rewritten


def compact(log: ShardLog, works, style, sig, desc, moments, skipped, off_axes=None) -> None:
    """Replace the log by one shard holding every live record and current skip, so that it stays small."""
    arrays = {c: works[c].to_numpy().astype(_DTYPES.get(c, str)) for c in SHARD_COLUMNS}
    if off_axes is not None:
        arrays["off_axes"] = np.asarray(off_axes, np.float32)
    write_npz(next_shard(log.shard_dir), **arrays,
              style=style, signature=sig, descriptor=desc, moments=moments,
              skip_path=np.array([s[0] for s in skipped], dtype=str),
              skip_size=np.array([s[2] for s in skipped], np.int64),
              skip_mtime_ns=np.array([s[3] for s in skipped], np.int64),
              skip_reason=np.array([s[1] for s in skipped], dtype=str))
    for shard in log.shards:
        shard.unlink(missing_ok=True)
