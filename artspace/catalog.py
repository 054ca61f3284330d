"""The catalog: works, their embeddings and faiss indexes, stored beside the images.

Layout of a catalog directory (default ``<collection>/.artspace/``)::

    manifest.json       format version, feature spec (weights, size, layers), projection, index kinds, versions
    works.parquet       one row per work: id, path, size, mtime_ns, checksum, width, height, + metadata columns
    skipped.csv         files that could not be read: path, reason
    embeddings.npz      ids, style (n × 384 compact L_style embedding), signature (n × 128 compact style
                        signature), content (n × 512 style-free content embedding)
    projection.npz      the fitted L_style projection (see artspace.projection)
    signature_projection.npz  the fitted style-signature projection
    content_model.npz   style-group means removed from content descriptors (see artspace.index)
    style.faiss         faiss index of L_style embeddings (squared L2 ≈ L_style)
    signature.faiss     faiss index of style signatures (squared L2 ≈ mean squared Hellinger distance)
    content.faiss       faiss index of content embeddings (inner product; distance 1 − cos)
    shards/             the extraction log: one .npz per batch, written atomically — the source of truth
    lock                held (flock) by the one `index` run allowed at a time

Every file is written to a temporary name, flushed, and renamed over the old one, so a crash or ``kill -9`` at any
moment leaves either the old file or the new one, never half of one. The shards make indexing resumable: a run
records each batch as it finishes, and the next run skips every file whose path, size and modification time are
already recorded.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import datetime as _dt
import fcntl
import hashlib
import json
import math
import os
import platform
import re
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image

from . import __version__
from .atomic import atomic_write
from .errors import ArtspaceError, CatalogLocked, CatalogNotFound, IncompatibleCatalog, UnreadableImage, WorkNotFound
from .features import Extractor, FeatureSpec
from .images import walk_images
from .index import (CONTEXT_K, ContentModel, NeighbourLists, VectorIndex, neighbourhood_scales, relative_search,
                    scale_floor)
from .projection import SKETCH_DIM, CountSketch, StyleProjection

__all__ = ["FORMAT_VERSION", "CATALOG_DIRNAME", "Catalog", "IndexReport", "index", "find_catalog"]

FORMAT_VERSION = 3  # 2: style signatures added (similar --by style ranks by them); 3: their neighbourhood scales
#: Older formats that `artspace index` brings up to date without extracting anything again.
UPGRADABLE_FORMATS = (2,)
CATALOG_DIRNAME = ".artspace"
SIG_PROJECTION = "signature_projection.npz"
#: Each work's nearest works in the signature space, kept so that a re-run updates the neighbourhood scales cheaply.
NEIGHBOURS = "signature_neighbours.npz"
#: Columns artspace itself writes in the works table; metadata columns with these names get a ``meta_`` prefix.
WORK_COLUMNS = ("id", "path", "size", "mtime_ns", "checksum", "width", "height")


# ---------------------------------------------------------------------------------------------------------------
# Small file helpers


def _write_json(path: Path, obj) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=True)))


def _write_npz(target: Path, /, **arrays) -> None:
    atomic_write(target, lambda p: np.savez(p, **arrays))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_catalog(path: str | os.PathLike) -> Path:
    """The catalog directory for *path*: *path* itself if it holds a manifest, else ``path/.artspace``."""
    p = Path(path).expanduser()
    for cand in (p, p / CATALOG_DIRNAME):
        if (cand / "manifest.json").is_file():
            return cand
    raise CatalogNotFound(
        f"no artspace catalog at {p} (looked for {p / 'manifest.json'} and {p / CATALOG_DIRNAME / 'manifest.json'}); "
        f"create one with `artspace index {p}`, or point --catalog at an existing one")


class _Lock:
    """An exclusive, non-blocking flock on ``<catalog>/lock``; released by the kernel even after ``kill -9``."""

    def __init__(self, directory: Path):
        self.path = directory / "lock"
        self.fh = None

    def __enter__(self):
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "another process"
            self.fh.close()
            raise CatalogLocked(
                f"the catalog {self.path.parent} is being written by {holder}; wait for that `artspace index` to "
                f"finish (or stop it: the next run resumes where it stopped)") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{_dt.datetime.now().isoformat(timespec='seconds')}")
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        try:
            self.fh.seek(0)
            self.fh.truncate()
        finally:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
            self.fh.close()


# ---------------------------------------------------------------------------------------------------------------
# Indexing


@dataclass
class IndexReport:
    """What an :func:`index` run did. ``skipped`` lists (path, reason) of every unreadable file in the folder."""

    catalog: Path
    works: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list = field(default_factory=list)
    newly_skipped: list = field(default_factory=list)
    seconds: float = 0.0
    extracted: int = 0
    notes: list = field(default_factory=list)
    #: works whose signature neighbours were searched in the whole collection (the others were updated in place)
    neighbours_searched: int = 0

    @property
    def images_per_second(self) -> float:
        return self.extracted / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        s = (f"{self.works} works in {self.catalog}: {self.added} added, {self.updated} updated, {self.removed} removed, "
             f"{self.unchanged} unchanged")
        if self.extracted:
            s += f"; {self.extracted} images in {self.seconds:.1f} s ({self.images_per_second:.2f} img/s)"
        if self.skipped:
            s += f"; {len(self.skipped)} skipped (listed in {self.catalog / 'skipped.csv'})"
        return s


@dataclass
class _Item:
    rel: str
    id: int
    size: int
    mtime_ns: int


class _State:
    """What the shards record: for each relative path, its latest record (work or skip)."""

    def __init__(self, shard_dir: Path):
        self.shard_dir = shard_dir
        self.records: dict[str, tuple] = {}  # rel -> ("ok", shard, row, size, mtime, id) | ("skip", size, mtime, reason)
        self.max_id = -1
        self.shards = sorted(shard_dir.glob("part-*.npz"), key=self.number)
        for shard in self.shards:
            with np.load(shard) as z:
                for j, (rel, size, mtime, wid) in enumerate(zip(z["path"], z["size"], z["mtime_ns"], z["id"])):
                    self.records[str(rel)] = ("ok", shard, j, int(size), int(mtime), int(wid))
                    self.max_id = max(self.max_id, int(wid))
                for rel, size, mtime, reason in zip(z["skip_path"], z["skip_size"], z["skip_mtime_ns"],
                                                    z["skip_reason"]):
                    self.records[str(rel)] = ("skip", int(size), int(mtime), str(reason))

    @staticmethod
    def number(p: Path) -> int:
        return int(re.search(r"part-(\d+)", p.name).group(1))

    def next_number(self) -> int:
        return _next_shard_number(self.shard_dir)

    def is_current(self, rel: str, size: int, mtime: int) -> bool:
        r = self.records.get(rel)
        if r is None:
            return False
        return (r[3], r[4]) == (size, mtime) if r[0] == "ok" else (r[1], r[2]) == (size, mtime)


def _next_shard_number(shard_dir: Path) -> int:
    numbers = [_State.number(p) for p in shard_dir.glob("part-*.npz")]
    return max(numbers) + 1 if numbers else 1


def _load_one(root: Path, item: _Item, extractor: Extractor):
    path = root / item.rel
    try:
        with Image.open(path) as probe:
            w, h = probe.size
            try:
                if probe.getexif().get(0x0112) in (5, 6, 7, 8):
                    w, h = h, w
            except Exception:
                pass
    except Exception:
        w = h = 0  # open_image below produces the precise reason
    try:
        x = extractor.load(path)
        checksum = _sha256(path)
    except UnreadableImage as e:
        return item, None, e.reason, None
    except OSError as e:
        return item, None, f"cannot read file ({e})", None
    return item, x, None, {"checksum": checksum, "width": w, "height": h}


def _stream_count(streams: int | None, device: torch.device) -> int:
    if streams is not None:
        if int(streams) < 1:
            raise ValueError(f"streams must be at least 1, not {streams!r}")
        return int(streams)
    return 2 if device.type == "cpu" and torch.get_num_threads() >= 2 else 1


class _Streams:
    """Runs batches on *n* threads, each with ``total // n`` intra-op threads; inline (no thread) when *n* is 1."""

    def __init__(self, n: int):
        self.n = n
        self.pool = None
        self.total = torch.get_num_threads()

    def __enter__(self):
        if self.n > 1:
            per = max(1, self.total // self.n)
            self.pool = cf.ThreadPoolExecutor(max_workers=self.n, initializer=torch.set_num_threads,
                                              initargs=(per,), thread_name_prefix="artspace-stream")
        return self

    def submit(self, fn, *args) -> cf.Future:
        if self.pool is not None:
            return self.pool.submit(fn, *args)
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args))
        except BaseException as e:  # delivered where the result is read, as from a thread
            future.set_exception(e)
        return future

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            # torch keeps the last count set in any thread as the default for threads it meets next: restore it
            torch.set_num_threads(self.total)
        return False


def _prefetch(items: Sequence[_Item], root: Path, extractor: Extractor, workers: int) -> Iterator:
    """Decode images in worker threads (Pillow releases the GIL) while the network runs on the previous batch."""
    if workers <= 0:
        for it in items:
            yield _load_one(root, it, extractor)
        return
    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
        ahead = max(4 * workers, 16)
        futures = [pool.submit(_load_one, root, it, extractor) for it in items[:ahead]]
        nxt = len(futures)
        for k in range(len(items)):
            yield futures[k].result()
            futures[k] = None
            if nxt < len(items):
                futures.append(pool.submit(_load_one, root, items[nxt], extractor))
                nxt += 1


def _join_metadata(works: pd.DataFrame, metadata: Path, root: Path, notes: list) -> pd.DataFrame:
    try:
        md = pd.read_csv(metadata)
    except FileNotFoundError:
        raise ArtspaceError(f"metadata file {metadata} does not exist; pass --metadata PATH.csv") from None
    except Exception as e:
        raise ArtspaceError(f"{metadata}: cannot read as CSV ({e})") from None
    key = next((c for c in ("path", "file", "filename", "image") if c in md.columns), None)
    if key is None:
        raise ArtspaceError(
            f"{metadata}: needs a column naming each image (path, file, filename or image); it has "
            f"{', '.join(map(str, md.columns))}")
    md = md.copy()
    rename = {c: f"meta_{c}" for c in md.columns if c in WORK_COLUMNS and c != key}
    md = md.rename(columns=rename)
    # Paths in the CSV may be relative to the collection root or to the CSV's own folder, or bare file names.
    md_dir = metadata.resolve().parent
    root_r = root.resolve()

    def norm(v):
        p = Path(str(v))
        if p.is_absolute():
            try:
                return p.resolve().relative_to(root_r).as_posix()
            except ValueError:
                return p.as_posix()
        try:
            return (md_dir / p).resolve().relative_to(root_r).as_posix()
        except ValueError:
            return p.as_posix()

    md["__rel"] = md[key].map(norm)
    md = md.drop_duplicates("__rel", keep="last")
    cols = [c for c in md.columns if c not in (key, "__rel")]
    by_rel = md.set_index("__rel")[cols]
    joined = works.join(by_rel, on="path")
    unmatched = joined[cols[0]].isna() if cols else pd.Series(False, index=joined.index)
    if cols and unmatched.any():
        # Fall back to the bare file name where it is unique in both tables.
        md["__name"] = md[key].map(lambda v: Path(str(v)).name)
        names = md.drop_duplicates("__name", keep=False).set_index("__name")[cols]
        work_names = works["path"].map(lambda r: r.rsplit("/", 1)[-1])
        unique_names = ~work_names.duplicated(keep=False)
        fill = works.loc[unmatched & unique_names, "path"].map(lambda r: r.rsplit("/", 1)[-1])
        for c in cols:
            joined.loc[fill.index, c] = fill.map(names[c]).to_numpy()
        missing = int(joined[cols[0]].isna().sum())
        if missing:
            notes.append(f"{missing} works have no row in {metadata.name}")
    return joined


def index(root: str | os.PathLike, *, catalog: str | os.PathLike | None = None,
          metadata: str | os.PathLike | None = None, spec: FeatureSpec | None = None, batch_size: int = 8,
          device: str = "auto", workers: int = 2, fit_size: int = 2048, embed_dim: int = 384,
          signature_dim: int = 128, rebuild: bool = False, quiet: bool = False, streams: int | None = None,
          on_skip: Callable[[str, str], None] | None = None) -> IndexReport:
    """Index every image below *root* into a catalog: extract, store, fit, and build the search indexes.

    Incremental and resumable: only new or changed files (path, size, modification time) are processed, deleted
    files are dropped, and an interrupted run continues where it stopped.

    Parameters
    ----------
    root : path
        The collection folder, walked recursively.
    catalog : path, optional
        Catalog directory; default ``<root>/.artspace``.
    metadata : path, optional
        A CSV joined on relative path (or bare file name) to the works table; remembered for later runs.
    spec : FeatureSpec, optional
        Backbone weights, input size and layers; must match an existing catalog's.
    batch_size, device, workers
        Images per forward pass; ``auto``/``cpu``/``cuda``/``mps``; image-decoding threads.
    fit_size : int
        Works sampled to fit the style projections (the first run fits them; see :mod:`artspace.projection`).
    embed_dim, signature_dim : int
        Dimensions of the compact L_style embedding and of the compact style signature (float32: the defaults,
        384 + 128, make 2 KB a work).
    rebuild : bool
        Discard the catalog's stored features and start over (needed to change the spec or refit).
    streams : int, optional
        Batches computed at once, each by its own thread with an equal share of the CPU threads. Default: 2 on a
        CPU with at least 2 threads (two single-threaded streams outrun one two-threaded one on 2 cores: the deep
        layers' small images parallelise badly), 1 on a GPU.
    on_skip : callable(path, reason), optional
        Called for each file that cannot be read.

    Returns
    -------
    IndexReport
    """
    t0 = time.time()
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ArtspaceError(f"{root} is not a folder; `artspace index` takes the folder that holds the images")
    cdir = Path(catalog).expanduser() if catalog else root / CATALOG_DIRNAME
    cdir.mkdir(parents=True, exist_ok=True)
    shard_dir = cdir / "shards"
    shard_dir.mkdir(exist_ok=True)
    report = IndexReport(catalog=cdir)
    with _Lock(cdir):
        manifest_path = cdir / "manifest.json"
        old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
        if old is not None and rebuild:
            if metadata is None and old.get("metadata"):
                metadata = root / old["metadata"]
            # The manifest goes first: a rebuild interrupted half-way is then a fresh catalog, never a mixture.
            manifest_path.unlink()
            for p in list(shard_dir.glob("part-*.npz")) + [cdir / "projection.npz", cdir / SIG_PROJECTION,
                                                             cdir / NEIGHBOURS]:
                p.unlink(missing_ok=True)
            old = None
        if old is not None:
            _check_format(old, cdir, upgrading=True)
            old_spec = FeatureSpec.from_dict(old["spec"])
            if spec is not None and spec != old_spec:
                raise IncompatibleCatalog(
                    f"the catalog {cdir} was built with {old_spec.describe()}; this run asks for {spec.describe()}. "
                    f"Use the same settings, another --catalog, or --rebuild to start over")
            spec = old_spec
            if metadata is None and old.get("metadata"):
                metadata = root / old["metadata"]
        spec = spec or FeatureSpec()
        metadata = Path(metadata).expanduser() if metadata else None
        if metadata is not None and not metadata.is_file():
            raise ArtspaceError(f"metadata file {metadata} does not exist; pass --metadata PATH.csv")

        state = _State(shard_dir)
        files = []
        for p in walk_images(root, exclude=(CATALOG_DIRNAME, cdir.name)):
            if cdir in p.parents:
                continue
            st = p.stat()
            files.append((p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
        present = {rel for rel, _, _ in files}
        report.removed = sum(1 for rel, r in state.records.items() if r[0] == "ok" and rel not in present)
        next_id = max(state.max_id + 1, int(old.get("next_id", 0)) if old else 0)
        todo: list[_Item] = []
        for rel, size, mtime in files:
            if state.is_current(rel, size, mtime):
                continue
            r = state.records.get(rel)
            if r is not None and r[0] == "ok":
                wid = r[5]
                report.updated += 1
            else:
                wid = next_id
                next_id += 1
                report.added += 1
            todo.append(_Item(rel, wid, size, mtime))
        report.unchanged = len(files) - len(todo)

        extractor = None
        proj_path, sig_path = cdir / "projection.npz", cdir / SIG_PROJECTION
        sketch = CountSketch(sum(spec.style_dims), SKETCH_DIM)
        sig_sketch = CountSketch(sum(spec.signature_dims), SKETCH_DIM)
        progress = None
        n_streams = 1
        if todo:
            extractor = Extractor(spec, device=device)
            n_streams = _stream_count(streams, extractor.device)
            from tqdm.auto import tqdm

            progress = tqdm(total=len(todo), unit="img", disable=quiet, desc="index", dynamic_ncols=True,
                            file=sys.stderr)

        def compute(ok: list, projections: tuple | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            """Compact style rows, signatures and content descriptors of the readable images *ok* (in the streams).

            Without *projections* (the fit phase) the style rows and signatures are the sketches themselves.
            """
            dims = (projections[0].dim, projections[1].dim) if projections is not None else (SKETCH_DIM, SKETCH_DIM)
            style = np.zeros((len(ok), dims[0]), np.float32)
            sig = np.zeros((len(ok), dims[1]), np.float32)
            desc = np.zeros((len(ok), spec.descriptor_dim), np.float32)
            if ok:
                out = extractor.encode(torch.stack([b[1] for b in ok]))
                sk, sig_sk = sketch(out["style"]), sig_sketch(out["signature"])
                if projections is not None:
                    style, sig = projections[0].embed(sk), projections[1].embed(sig_sk)
                else:
                    style, sig = sk.numpy(), sig_sk.numpy()
                desc = out["descriptor"].numpy()
            return style, sig, desc

        def write(ok: list, bad: list, computed: tuple, projections: tuple | None, number: int) -> None:
            style, sig, desc = computed
            arrays = {
                "id": np.array([b[0].id for b in ok], np.int64),
                "path": np.array([b[0].rel for b in ok], dtype=str),
                "size": np.array([b[0].size for b in ok], np.int64),
                "mtime_ns": np.array([b[0].mtime_ns for b in ok], np.int64),
                "checksum": np.array([b[3]["checksum"] for b in ok], dtype=str),
                "width": np.array([b[3]["width"] for b in ok], np.int32),
                "height": np.array([b[3]["height"] for b in ok], np.int32),
                "skip_path": np.array([b[0].rel for b in bad], dtype=str),
                "skip_size": np.array([b[0].size for b in bad], np.int64),
                "skip_mtime_ns": np.array([b[0].mtime_ns for b in bad], np.int64),
                "skip_reason": np.array([b[2] for b in bad], dtype=str),
                "descriptor": desc,
            }
            if projections is None:
                # Fit sample: the sketches are kept until the projections exist.
                arrays["sketch"] = style.astype(np.float16)
                arrays["sig_sketch"] = sig.astype(np.float16)
            else:
                arrays["style"] = style
                arrays["signature"] = sig
            _write_npz(shard_dir / f"part-{number:06d}.npz", **arrays)
            for b in bad:
                report.newly_skipped.append((b[0].rel, b[2]))
                if on_skip is not None:
                    on_skip(b[0].rel, b[2])
            report.extracted += len(ok) + len(bad)
            progress.update(len(ok) + len(bad))

        def run(items: list[_Item], projections: tuple | None) -> None:
            """Extract *items* batch by batch; shards are written in order by this thread as batches finish."""
            number = _next_shard_number(shard_dir)
            pending: collections.deque = collections.deque()

            def start(batch: list) -> None:
                ok = [b for b in batch if b[1] is not None]
                bad = [b for b in batch if b[1] is None]
                pending.append((ok, bad, pool.submit(compute, ok, projections)))

            def finish_oldest() -> None:
                nonlocal number
                ok, bad, future = pending.popleft()
                write(ok, bad, future.result(), projections, number)
                number += 1

            with _Streams(n_streams) as pool:
                batch: list = []
                for loaded in _prefetch(items, root, extractor, workers):
                    batch.append(loaded)
                    if len(batch) >= batch_size:
                        start(batch)
                        batch = []
                        while len(pending) > n_streams:
                            finish_oldest()
                if batch:
                    start(batch)
                while pending:
                    finish_oldest()

        try:
            if not (proj_path.is_file() and sig_path.is_file()):
                # Fit phase: a seeded random sample of the collection, extracted first, fits the projections.
                rng = np.random.default_rng(0)
                order = rng.permutation(len(files))
                sample = {files[i][0] for i in order[:fit_size]}
                run([t for t in todo if t.rel in sample], None)
                todo = [t for t in todo if t.rel not in sample]
                state = _State(shard_dir)
                sk_rows, sig_rows = [], []
                for rel in sorted(sample):
                    r = state.records.get(rel)
                    if r is not None and r[0] == "ok":
                        with np.load(r[1]) as z:
                            if "sketch" in z.files:
                                sk_rows.append(z["sketch"][r[2]].astype(np.float32))
                                sig_rows.append(z["sig_sketch"][r[2]].astype(np.float32))
                if len(sk_rows) < 2:
                    raise ArtspaceError(
                        f"{root} holds {len(sk_rows)} readable image(s); a catalog needs at least 2 to compare")
                StyleProjection.fit(np.stack(sig_rows), k=signature_dim, seed=sig_sketch.seed).save(sig_path)
                StyleProjection.fit(np.stack(sk_rows), k=embed_dim, seed=sketch.seed).save(proj_path)
            projections = (StyleProjection.load(proj_path), StyleProjection.load(sig_path))
            _project_fit_shards(shard_dir, projections)
            run(todo, projections)
        finally:
            if progress is not None:
                progress.close()

        _finalize(root, cdir, spec, metadata, report, present, next_id, projections, old)
    report.seconds = time.time() - t0
    return report


def _project_fit_shards(shard_dir: Path, projections: tuple) -> None:
    """Rewrite fit-phase shards (sketches) as ordinary shards (compact style), then delete them. Idempotent."""
    for shard in sorted(shard_dir.glob("part-*.npz"), key=_State.number):
        with np.load(shard) as z:
            if "sketch" not in z.files:
                continue
            arrays = {k: z[k] for k in z.files if k not in ("sketch", "sig_sketch")}
            arrays["style"] = projections[0].embed(z["sketch"].astype(np.float32))
            arrays["signature"] = projections[1].embed(z["sig_sketch"].astype(np.float32))
        number = _next_shard_number(shard_dir)
        _write_npz(shard_dir / f"part-{number:06d}.npz", **arrays)
        shard.unlink()


def _check_format(manifest: dict, cdir: Path, *, upgrading: bool = False) -> None:
    v = manifest.get("format_version")
    if v == FORMAT_VERSION or (upgrading and v in UPGRADABLE_FORMATS):
        return
    if v in UPGRADABLE_FORMATS:
        raise IncompatibleCatalog(
            f"the catalog {cdir} has format version {v}, and artspace {__version__} reads format {FORMAT_VERSION}; "
            f"run `artspace index <folder> --catalog {cdir}` once to bring it up to date (no image is read again)")
    raise IncompatibleCatalog(
        f"the catalog {cdir} has format version {v}, but artspace {__version__} reads format {FORMAT_VERSION}; "
        f"rebuild it with `artspace index <folder> --catalog {cdir} --rebuild`")


def _finalize(root: Path, cdir: Path, spec: FeatureSpec, metadata: Path | None, report: IndexReport,
              present: set, next_id: int, projections: tuple, old: dict | None) -> None:
    """Consolidate the shards into the works table, embeddings and indexes (each file replaced atomically)."""
    shard_dir = cdir / "shards"
    state = _State(shard_dir)
    skipped = []
    by_shard: dict[Path, list] = {}
    for rel, r in state.records.items():
        if rel not in present:
            continue
        if r[0] == "ok":
            by_shard.setdefault(r[1], []).append((rel, r[2]))
        else:
            skipped.append((rel, r[3], r[1], r[2]))
    projection, sig_projection = projections
    meta_rows, style, sig, desc = [], [], [], []
    for shard, entries in by_shard.items():
        with np.load(shard) as z:
            idx = np.array([j for _, j in entries])
            cols = {k: z[k][idx] for k in ("id", "path", "size", "mtime_ns", "checksum", "width", "height")}
            style.append(z["style"][idx])
            sig.append(z["signature"][idx])
            desc.append(z["descriptor"][idx])
            meta_rows.append(pd.DataFrame(cols))
    works = pd.concat(meta_rows, ignore_index=True) if meta_rows else pd.DataFrame(
        {c: pd.Series(dtype="int64" if c not in ("path", "checksum") else "str") for c in WORK_COLUMNS})
    style = np.concatenate(style) if style else np.zeros((0, projection.dim), np.float32)
    sig = np.concatenate(sig) if sig else np.zeros((0, sig_projection.dim), np.float32)
    desc = np.concatenate(desc) if desc else np.zeros((0, spec.descriptor_dim), np.float32)
    order = np.argsort(works["id"].to_numpy(), kind="stable")
    works = works.iloc[order].reset_index(drop=True)
    style, sig, desc = style[order], sig[order], desc[order]
    works["path"] = works["path"].astype(str)
    works["checksum"] = works["checksum"].astype(str)
    notes = report.notes
    if metadata is not None:
        works = _join_metadata(works, metadata, root, notes)
    previous = cdir / "works.parquet"
    if previous.is_file():
        # Columns that analyses added (cluster labels, map coordinates) are the user's work: carry them over.
        old_works = pd.read_parquet(previous)
        extra = [c for c in old_works.columns if c not in works.columns and c not in WORK_COLUMNS]
        if metadata is not None:
            extra = [c for c in extra if c not in pd.read_csv(metadata, nrows=0).columns]
        if extra:
            works = works.join(old_works.set_index("id")[extra], on="id")
    if len(works) < 2:
        raise ArtspaceError(f"{root} holds {len(works)} readable image(s); a catalog needs at least 2 to compare")

    # Compaction: one shard with every live record (and current skips) replaces the log, so it stays small.
    if len(state.shards) > 1 or report.removed:
        number = state.next_number()
        _write_npz(
            shard_dir / f"part-{number:06d}.npz",
            **{c: works[c].to_numpy().astype(np.int64 if c in ("id", "size", "mtime_ns") else
                                              (np.int32 if c in ("width", "height") else str))
               for c in ("id", "path", "size", "mtime_ns", "checksum", "width", "height")},
            style=style, signature=sig, descriptor=desc,
            skip_path=np.array([s[0] for s in skipped], dtype=str),
            skip_size=np.array([s[2] for s in skipped], np.int64),
            skip_mtime_ns=np.array([s[3] for s in skipped], np.int64),
            skip_reason=np.array([s[1] for s in skipped], dtype=str))
        for shard in state.shards:
            shard.unlink()

    ids = works["id"].to_numpy(np.int64)
    content_model = ContentModel.fit(style, desc)
    content = content_model.transform(style, desc)
    style_index = VectorIndex.build(ids, style, metric="l2")
    sig_index = VectorIndex.build(ids, sig, metric="l2")
    neighbours, report.neighbours_searched = NeighbourLists.build(
        sig_index, ids, sig, previous=NeighbourLists.load(cdir / NEIGHBOURS))
    sig_scale = neighbours.scales
    content_index = VectorIndex.build(ids, content, metric="ip")

    atomic_write(cdir / "works.parquet", lambda p: works.to_parquet(p, index=False))
    skipped_df = pd.DataFrame({"path": [s[0] for s in skipped], "reason": [s[1] for s in skipped]})
    atomic_write(cdir / "skipped.csv", lambda p: skipped_df.to_csv(p, index=False))
    _write_npz(cdir / "embeddings.npz", ids=ids, style=style, signature=sig, content=content,
               signature_scale=sig_scale)
    neighbours.save(cdir / NEIGHBOURS)
    content_model.save(cdir / "content_model.npz")
    style_index.save(cdir / "style.faiss")
    sig_index.save(cdir / "signature.faiss")
    content_index.save(cdir / "content.faiss")
    import faiss

    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    manifest = {
        "format_version": FORMAT_VERSION,
        "artspace_version": __version__,
        "torch_version": torch.__version__,
        "faiss_version": faiss.__version__,
        "python_version": platform.python_version(),
        "created": (old or {}).get("created", now),
        "updated": now,
        "root": os.path.relpath(root.resolve(), cdir.resolve()),
        "metadata": os.path.relpath(metadata.resolve(), root.resolve()) if metadata else None,
        "spec": spec.to_dict(),
        "model": "vgg19",
        "works": int(len(works)),
        "skipped": int(len(skipped)),
        "next_id": int(max(next_id, int(ids.max()) + 1 if len(ids) else 0)),
        "style_embedding": {"dim": projection.dim, "sketch_dim": SKETCH_DIM, "sketch_seed": projection.seed,
                            "fitted_on": projection.n_fit, "variance_kept": projection.explained,
                            "distance": "squared L2 = L_style estimate"},
        "signature_embedding": {"dim": sig_projection.dim, "sketch_dim": SKETCH_DIM,
                                "sketch_seed": sig_projection.seed, "fitted_on": sig_projection.n_fit,
                                "variance_kept": sig_projection.explained,
                                "distance": "squared L2 = mean squared Hellinger distance estimate",
                                "neighbours": CONTEXT_K, "ranking": "distance / sqrt(scale_query * scale_work)"},
        "content_embedding": {"dim": int(content.shape[1]), "groups": int(len(content_model.centroids)),
                              "distance": "1 - cosine"},
        "index": {"style": style_index.kind, "signature": sig_index.kind, "content": content_index.kind},
    }
    _write_json(cdir / "manifest.json", manifest)
    report.works = len(works)
    report.skipped = [(s[0], s[1]) for s in skipped]
    n_fit = projection.n_fit
    if len(works) > 4 * n_fit and n_fit < 2048:
        notes.append(f"the style projections were fitted on {n_fit} works and the catalog now has {len(works)}: "
                     f"`--rebuild` refits them on the larger collection")


# ---------------------------------------------------------------------------------------------------------------
# Reading and querying


class Catalog:
    """An indexed collection: its works table, embeddings and indexes, and the queries a researcher runs.

    Open one with :meth:`Catalog.open`; build one with :func:`artspace.index`.

    Examples
    --------
    >>> cat = Catalog.open("data/demo")                       # doctest: +SKIP
    >>> cat.similar("dots/star_0.png", by="content", k=5)     # doctest: +SKIP
    """

    def __init__(self, directory: Path, manifest: dict):
        self.dir = directory
        self.manifest = manifest
        self.spec = FeatureSpec.from_dict(manifest["spec"])
        self.root = (directory / manifest.get("root", "..")).resolve()
        self._works = None
        self._emb = None
        self._indexes = {}
        self._extractor = None
        self._projections = None
        self._content_model = None
        self._sketches = None

    @classmethod
    def open(cls, path: str | os.PathLike = ".") -> "Catalog":
        """Open the catalog at *path* (a catalog directory, or a collection folder holding ``.artspace``)."""
        cdir = find_catalog(path)
        try:
            manifest = json.loads((cdir / "manifest.json").read_text())
        except json.JSONDecodeError as e:
            raise IncompatibleCatalog(f"{cdir / 'manifest.json'} is not valid JSON ({e}); rebuild the catalog") \
                from None
        _check_format(manifest, cdir)
        return cls(cdir, manifest)

    def __repr__(self):
        return f"Catalog({str(self.dir)!r}, works={self.manifest.get('works')})"

    def __len__(self):
        return len(self.works)

    # ---- stored data --------------------------------------------------------------------------------------------

    @property
    def works(self) -> pd.DataFrame:
        """The works table (a copy is not made: do not modify it in place; use :meth:`update_columns`)."""
        if self._works is None:
            self._works = pd.read_parquet(self.dir / "works.parquet")
        return self._works

    @property
    def skipped(self) -> pd.DataFrame:
        """Files that could not be read, with the reason."""
        p = self.dir / "skipped.csv"
        return pd.read_csv(p) if p.is_file() and p.stat().st_size else pd.DataFrame(columns=["path", "reason"])

    def embeddings(self, by: str = "style") -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` of every work in one of the stored spaces.

        ``style``: compact L_style embeddings (squared L2 ≈ :math:`L_{style}`); ``signature``: compact style
        signatures (squared L2 ≈ mean squared Hellinger distance); ``content``: unit content embeddings
        (1 − cos).
        """
        _check_space(by)
        if self._emb is None:
            with np.load(self.dir / "embeddings.npz") as z:
                self._emb = {k: z[k] for k in z.files}
        return self._emb["ids"], self._emb[by]

    def neighbourhood_scale(self, query) -> float:
        r"""The neighbourhood scale :math:`\rho` of *query* in the style-signature space: its mean estimated
        signature distance to its 10 nearest works of the catalog (itself left out), as stored for a catalogued
        work and computed for an outside image. ``similar(by="style")`` divides distances by
        :math:`\sqrt{\rho_q\rho_y}`."""
        vecs, wid = self.query_vectors(query)
        return self._query_scale(vecs["signature"], wid)

    def _scales(self) -> tuple[np.ndarray, np.ndarray]:
        ids, _ = self.embeddings("signature")
        return ids, self._emb["signature_scale"]

    def _query_scale(self, vec: np.ndarray, wid: int | None) -> float:
        ids, scales = self._scales()
        if wid is not None:
            return float(scales[np.searchsorted(ids, wid)])
        s = neighbourhood_scales(self._index("signature"), np.array([-1]), vec[None], k=CONTEXT_K)
        return max(float(s[0]), scale_floor(scales))

    def _index(self, space: str) -> VectorIndex:
        _check_space(space)
        if space not in self._indexes:
            self._indexes[space] = VectorIndex.load(self.dir / f"{space}.faiss", "ip" if space == "content" else "l2")
        return self._indexes[space]

    def update_columns(self, columns: pd.DataFrame) -> None:
        """Add or replace columns of the works table; *columns* is indexed by work id. Written atomically."""
        works = self.works.copy()
        reserved = set(WORK_COLUMNS) & set(columns.columns)
        if reserved:
            raise ValueError(f"columns {sorted(reserved)} are artspace's own and cannot be replaced")
        for c in columns.columns:
            works[c] = works["id"].map(columns[c])
        atomic_write(self.dir / "works.parquet", lambda p: works.to_parquet(p, index=False))
        self._works = works

    # ---- resolving queries ------------------------------------------------------------------------------------

    def lookup(self, query) -> int | None:
        """The id of the catalogued work *query* names (an id, a relative path, or a file inside the collection)."""
        works = self.works
        q = str(query)
        p = Path(q).expanduser()
        if p.is_file():
            try:
                rel = p.resolve().relative_to(self.root).as_posix()
            except ValueError:
                return None
            hit = works.index[works["path"] == rel]
            return int(works.at[hit[0], "id"]) if len(hit) else None
        if re.fullmatch(r"\d+", q):
            hit = works.index[works["id"] == int(q)]
            if len(hit):
                return int(q)
        hit = works.index[works["path"] == q]
        if len(hit):
            return int(works.at[hit[0], "id"])
        return None

    def image_path(self, query) -> Path:
        """The image file *query* names: a path to any image, a work's id, or a work's relative path."""
        wid = self.lookup(query)
        if wid is not None:
            rel = self.works.loc[self.works["id"] == wid, "path"].iloc[0]
            return self.root / rel
        p = Path(str(query)).expanduser()
        if p.is_file():
            return p
        raise WorkNotFound(
            f"{query!r} is neither an image file nor a work of the catalog {self.dir} (give a path to an image, "
            f"a work id such as {int(self.works['id'].iloc[0])}, or a relative path such as "
            f"{self.works['path'].iloc[0]!r})")

    @property
    def extractor(self) -> Extractor:
        """The feature extractor matching this catalog's spec (loaded on first use)."""
        if self._extractor is None:
            self._extractor = Extractor(self.spec, device="auto")
        return self._extractor

    def vectors(self, images: Iterable, by: str = "style") -> np.ndarray:
        """Embeddings of arbitrary images (paths or PIL images) in one of this catalog's spaces (see
        :meth:`embeddings`)."""
        _check_space(by)
        return self._all_vectors(images)[by]

    def _all_vectors(self, images: Iterable) -> dict[str, np.ndarray]:
        """Every space's embeddings of *images*, from one forward pass."""
        return self._embed(self.extractor.encode(self.extractor.batch(images)))

    def _embed(self, out: dict) -> dict[str, np.ndarray]:
        """Every space's embeddings of the images whose :meth:`Extractor.encode` output is *out*."""
        if self._projections is None:
            self._projections = (StyleProjection.load(self.dir / "projection.npz"),
                                 StyleProjection.load(self.dir / SIG_PROJECTION))
            self._content_model = ContentModel.load(self.dir / "content_model.npz")
            self._sketches = (CountSketch(sum(self.spec.style_dims), SKETCH_DIM, seed=self._projections[0].seed),
                              CountSketch(sum(self.spec.signature_dims), SKETCH_DIM, seed=self._projections[1].seed))
        style = self._projections[0].embed(self._sketches[0](out["style"]))
        return {"style": style, "signature": self._projections[1].embed(self._sketches[1](out["signature"])),
                "content": self._content_model.transform(style, out["descriptor"].numpy())}

    def query_vector(self, query, by: str = "style") -> tuple[np.ndarray, int | None]:
        """The embedding of *query* in space *by* and its work id (``None`` for an image from outside the catalog)."""
        _check_space(by)
        vecs, wid = self.query_vectors(query)
        return vecs[by], wid

    def query_vectors(self, query) -> tuple[dict[str, np.ndarray], int | None]:
        """The embeddings of *query* in every space (one forward pass for an outside image) and its work id."""
        wid = self.lookup(query)
        if wid is not None:
            out = {}
            for space in SPACES:
                ids, x = self.embeddings(space)
                out[space] = x[np.searchsorted(ids, wid)]
            return out, wid
        return {k: v[0] for k, v in self._all_vectors([self.image_path(query)]).items()}, None

    # ---- queries ---------------------------------------------------------------------------------------------

    def similar(self, query, *, by: str = "style", k: int = 10, where: str | None = None) -> pd.DataFrame:
        """The *k* works nearest to *query* by style or by content, nearest first.

        Parameters
        ----------
        query : path, id or relative path
            An image file (inside or outside the collection) or a catalogued work.
        by : {"style", "l_style", "content"}
            ``style`` ranks by the style signature (mean squared Hellinger distance between Gram matrices,
            :func:`artspace.features.style_signature`) relative to the two works' neighbourhoods, ``l_style`` by
            the seeds' :math:`L_{style}` itself, ``content`` by the style-free content embedding.
        k : int
        where : str, optional
            A pandas query on the works table, e.g. ``"style == 'Baroque'"``.

        Returns
        -------
        DataFrame with ``rank``, ``id``, ``path``, ``distance``, then for ``by="style"`` ``signature`` and
        ``l_style``, then ``width``, ``height`` and the metadata columns. ``distance`` is, for style, the relative
        signature distance :math:`d_{sig}/\\sqrt{\\rho_q\\rho_y}` (1: as far apart as the two works' 10 nearest
        works are on average; :meth:`neighbourhood_scale`), with the signature distance :math:`d_{sig}` (0 to 1)
        and :math:`L_{style}` beside it; for l_style :math:`L_{style}`; for content :math:`1-\\cos`. All are
        estimated from the compact embeddings; ``artspace distance`` gives the exact figures of a pair.
        """
        _check_by(by)
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        space = SEARCH_SPACES[by]
        vecs, wid = self.query_vectors(query)
        vec = vecs[space]
        allowed = None
        if where:
            try:
                sel = self.works.query(where)
            except Exception as e:
                raise ArtspaceError(f"--where {where!r} is not a valid filter on the works table ({e}); columns: "
                                    f"{', '.join(self.works.columns)}") from None
            allowed = sel["id"].to_numpy(np.int64)
        if by == "style":
            ids, scales = self._scales()
            distance, signature, found = relative_search(
                self._index(space), vec, k, query_scale=self._query_scale(vec, wid),
                scales=lambda f: scales[np.searchsorted(ids, f)], max_scale=float(scales.max()), allowed=allowed,
                exclude=wid)
        else:
            extra = 1 if wid is not None else 0
            d, i = self._index(space).search(vec[None], k + extra, allowed=allowed)
            keep = (i[0] >= 0) & (i[0] != (-1 if wid is None else wid))
            distance, found = np.maximum(d[0][keep], 0.0)[:k].astype(float), i[0][keep][:k]
        works = self.works.set_index("id", drop=False)
        rows = works.loc[found].drop(columns=["size", "mtime_ns", "checksum"])
        rows.insert(0, "rank", np.arange(1, len(found) + 1))
        rows.insert(3, "distance", distance)
        if by == "style":
            ids, x = self.embeddings("style")
            l_style = ((x[np.searchsorted(ids, np.asarray(found, np.int64))] - vecs["style"]) ** 2).sum(1)
            rows.insert(4, "signature", signature)
            rows.insert(5, "l_style", l_style.astype(float))
        return rows.reset_index(drop=True)

    def sheet(self, query, results: pd.DataFrame, *, by: str = "style") -> Image.Image:
        """A contact sheet of *query* and the works of a :meth:`similar` result, captioned with their distances."""
        from .sheets import contact_sheet, thumbnail

        items = [(thumbnail(self.image_path(query), 320), f"query\n{Path(str(query)).name}")]
        label = "relative style d" if by == "style" else f"{by} d"
        for row in results.itertuples(index=False):
            items.append((thumbnail(self.root / row.path, 320),
                          f"#{row.rank} id {row.id}\n{label} = {row.distance:.4g}"))
        return contact_sheet(items, columns=min(6, len(items)), title=f"nearest by {by}")

    def distance(self, a, b) -> dict:
        """Exact distances between two images or works: ``{"style", "style_layers", "signature",
        "signature_layers", "content"}``.

        ``style`` is the seeds' :math:`L_{style}=\\sum_l w_l E_l` and ``style_layers`` its terms :math:`w_l E_l`;
        ``signature`` is the style-signature distance (mean over its layers of the squared Hellinger distance
        :math:`H^2_l` between Gram matrices, ``signature_layers``) that ``similar --by style`` ranks by;
        ``content`` is :math:`\\tfrac12\\sum(F-P)^2` on the content layer; all at the catalog's input size.

        ``relative`` is the figure ``similar(by="style")`` ranks by and prints as its distance:
        ``{"distance": d / sqrt(scale_a * scale_b), "signature": d, "scale_a": …, "scale_b": …}``, with *d* the
        signature distance estimated from the catalog's compact signatures and the scales each work's mean *d* to
        its 10 nearest works (:meth:`neighbourhood_scale`).
        """
        ex = self.extractor
        out = ex.encode(ex.batch([self.image_path(a), self.image_path(b)]), content_maps=True)
        result = ex.exact_distances(out)
        # Compact signatures: a catalogued work's stored one, an outside image's from the same forward pass.
        wids = self.lookup(a), self.lookup(b)
        computed = self._embed(out)["signature"] if None in wids else None
        ids, stored = self.embeddings("signature")
        va, vb = [stored[np.searchsorted(ids, w)] if w is not None else computed[j] for j, w in enumerate(wids)]
        d = float(((va.astype(np.float64) - vb) ** 2).sum())
        ra, rb = self._query_scale(va, wids[0]), self._query_scale(vb, wids[1])
        result["relative"] = {"distance": d / math.sqrt(ra * rb), "signature": d, "scale_a": ra, "scale_b": rb}
        return result


#: Stored embedding spaces, and the space each ``similar(by=...)`` ranking searches.
SPACES = ("style", "signature", "content")
SEARCH_SPACES = {"style": "signature", "l_style": "style", "content": "content"}


def _check_by(by: str) -> None:
    if by not in SEARCH_SPACES:
        raise ValueError(f"by must be one of {', '.join(SEARCH_SPACES)}, not {by!r}")


def _check_space(space: str) -> None:
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}, not {space!r}")

