"""``artspace index``: extract every image's features into the log, then publish them as a new generation.

A run, under the catalog's writer lock:

1. *plan* — read and check the metadata CSV (before any image is touched), list the collection's files, and compare
   them with the extraction log (:mod:`.shards`): which files are new or changed, which were removed;
2. *extract* — decode images in worker threads and run VGG-19 on batches in parallel streams, writing one shard per
   batch as it finishes (a killed run resumes from them). The first run first extracts a seeded random sample and
   fits the compact style projections on it (:mod:`artspace.projection`);
3. *publish* — consolidate the log into the works table, embeddings, content model, faiss indexes and neighbour
   lists of a new generation (:mod:`.generation`), publish it with one rename (:mod:`.store`) and remove the
   generations no reader holds. A run that finds nothing changed publishes nothing.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import fnmatch
import functools
import hashlib
import os
import shutil
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ..backbone import resolve_device
from ..errors import ArtspaceError, IncompatibleCatalog, InvalidOption, UnreadableImage
from ..features import Extractor, FeatureSpec, prepare_image
from ..images import decode_image_bytes, file_sha256, open_image, walk_images
from ..projection import SKETCH_DIM, StyleProjection
from . import generation as gen
from .metadata import read_metadata
from .sources import RemoteSource, is_uri
from .shards import (MOMENTS_DIM, Log, ShardLog, next_shard, pack_sketches, project_fit_shards, read_npz,
                     shard_number, shard_path, unpack_sketch, write_npz)
from .store import CATALOG_DIRNAME, WriterLock, collect_garbage, read_json

__all__ = ["index", "IndexReport"]


@dataclass
class IndexReport:
    """What an :func:`index` run did.

    ``added``, ``updated``, ``removed`` and ``unchanged`` compare the works of the new generation with the previous
    one; ``skipped`` lists (path, reason) of every file of the folder that is not a work.
    """

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
    #: the generation the catalog publishes after the run (unchanged when nothing changed)
    generation: int = 0
    published: bool = False
    #: whether every work's features were computed afresh (``--rebuild``, or a damaged log started again): its
    #: files count as unchanged, but nothing was reused
    rebuilt: bool = False

    @property
    def images_per_second(self) -> float:
        """Images read per second of the whole run (model loading and publishing included)."""
        return self.extracted / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        s = (f"{self.works} works in {self.catalog}: {self.added} added, {self.updated} updated, "
             f"{self.removed} removed, {self.unchanged} unchanged, {len(self.skipped)} skipped")
        if self.extracted:
            # the whole run (loading VGG-19, listing, reading, fitting, publishing), not the extraction rate: the
            # progress bar shows that
            s += f"; {self.extracted} images read, the whole run took {self.seconds:.1f} s"
        if self.rebuilt:
            s += "; every work's features computed afresh (rebuilt)"
        if self.skipped:
            s += f" (skipped files listed in {self.catalog / 'generations'}/…/skipped.csv)"
        s += f"; generation {self.generation}" + ("" if self.published else " (nothing changed)")
        return s


@dataclass
class _Item:
    rel: str
    id: int
    size: int
    mtime_ns: int


#: What an artspace catalog folder holds (a catalog of any version has at least one of them).
_CATALOG_MARKS = ("CURRENT", "generations", "log", "lock", "manifest.json")


def _check_catalog_folder(cdir: Path, root) -> None:
    """Refuse, before anything is written, a catalog folder that is a file, the collection itself, or a folder of
    other files: the run would write its lock and extraction log among them."""
    if cdir.exists() and not cdir.is_dir():
        raise InvalidOption(f"{cdir} is a file, not a catalog folder; give --catalog a new folder or one made by "
                            f"`artspace index`")
    if isinstance(root, Path) and cdir.exists() and cdir.resolve() == root.resolve():
        raise InvalidOption(f"the catalog cannot be the collection folder {root} itself; leave --catalog out (the "
                            f"catalog goes to {root / CATALOG_DIRNAME}) or give another folder")
    if cdir.is_dir() and not any((cdir / m).exists() for m in _CATALOG_MARKS) and any(cdir.iterdir()):
        raise InvalidOption(f"{cdir} holds other files and is not an artspace catalog; give --catalog a new or empty "
                            f"folder (or one made by `artspace index`)")


#: The index options that the command line offers, by parameter name (errors name both).
_FLAGS = {"batch_size": "--batch-size", "workers": "--workers", "streams": "--streams"}


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        flag = f" ({_FLAGS[name]})" if name in _FLAGS else ""
        raise InvalidOption(f"{name}{flag} must be a whole number of at least {low}, not {value!r}")
    return int(value)


def index(root: str | os.PathLike, *, catalog: str | os.PathLike | None = None,
          metadata: str | os.PathLike | None = None, spec: FeatureSpec | None = None, batch_size: int | None = None,
          device: str = "auto", workers: int = 2, fit_size: int = 2048, embed_dim: int = 384,
          signature_dim: int = 128, rebuild: bool = False, quiet: bool = False, streams: int | None = None,
          max_pixels: int | None = None, exclude: Sequence[str] = (), include_outputs: bool = False,
          precision: str = "auto", engine: str = "local", address: str | None = None, compile: bool = False,
          content_projection: str | os.PathLike | None = None, medium_model: str | os.PathLike | None = None,
          on_skip: Callable[[str, str], None] | None = None) -> IndexReport:
    """Index every image below *root* into a catalog: extract, store, fit, and build the search indexes.

    Incremental and resumable: only new or changed files (path, size, modification time) are processed, deleted
    files are dropped, and an interrupted run continues where it stopped. Queries running meanwhile keep reading the
    previous generation; the new one appears at once, whole, when the run publishes it.

    Parameters
    ----------
    root : path or str
        The collection folder, walked recursively (hidden folders and the catalog are left out); or an object-store
        URI that pyarrow's filesystems read (``s3://bucket/prefix``, ``gs://bucket/prefix``: see
        :mod:`artspace.catalog.sources`), whose objects are read where they are decoded.
    catalog : path, optional
        Catalog directory; default ``<root>/.artspace`` (required for an object store).
    metadata : path or False, optional
        A CSV (``,`` ``;`` or tab) joined on relative path (or bare file name) to the works table; checked before
        any image is read, and remembered for later runs (None: the one remembered). False: no metadata, the
        remembered CSV forgotten and its columns dropped (``--no-metadata``).
    spec : FeatureSpec, optional
        Backbone weights, input size and layers; must match an existing catalog's (or use *rebuild*).
    batch_size, device, workers
        Images per forward pass (default 8 on a CPU; on a GPU as many as half its free memory holds, at most 256:
        :func:`auto_batch_size`); ``auto``/``cpu``/``cuda``/``mps``; image-decoding threads.
    fit_size : int
        Works sampled to fit the style projections (the first run fits them; see :mod:`artspace.projection`).
    embed_dim, signature_dim : int
        Dimensions of the compact L_style embedding and of the compact style signature (float32: the defaults,
        384 + 128, make 2 KB a work).
    rebuild : bool
        Discard the extraction log and start over (to change the spec or refit); works keep their ids, and the
        catalog stays readable until the new generation is published.
    streams : int, optional
        Batches computed at once, each by its own thread with an equal share of the CPU threads. Default: 2 on a
        CPU with at least 2 threads, 1 on a GPU.
    max_pixels : int, optional
        Largest image decoded, in pixels (default :data:`artspace.images.MAX_PIXELS`); larger files are skipped.
    exclude : sequence of str
        Glob patterns of files or folders to leave out, matched against each relative path and each folder name
        (``"drafts"``, ``"*/thumbs/*"``).
    include_outputs : bool
        Catalogue images that artspace itself wrote (pastiches, contact sheets: :func:`artspace.images.save_image`
        marks them); by default they are skipped with the reason.
    precision : {"auto", "float32", "bfloat16", "float16"}
        Precision of the network's convolutions (:mod:`artspace.precision`): ``auto`` takes bfloat16 where the
        hardware runs it natively (docs/benchmarks.md measures what it changes), or what an existing catalog was
        built with. Everything stored is float32. A catalog keeps one precision: another needs *rebuild*.
    engine : {"local", "ray"}
        ``ray`` runs decoding in Ray tasks and the network in a pool of Ray actors (one per GPU), on the cluster at
        *address* or a local Ray instance (:mod:`artspace.catalog.ray_engine`); the shards, the catalog and the
        resume rules are those of a local run. Needs ``pip install 'artspace[ray]'``.
    address : str, optional
        The Ray cluster to join (``auto``, ``ray://head:10001``); only with ``engine="ray"``.
    compile : bool
        Run VGG-19 through ``torch.compile`` (:class:`~artspace.features.Extractor`); batches then go through one
        stream. The catalog is the same, to float rounding.
    content_projection : path, optional
        A content projection made by :func:`artspace.analysis.content_fit.fit_content` (``artspace fit-content``) to blend into
        the content embeddings instead of the one the catalog has (at first, the one shipped with artspace).
    medium_model : path, optional
        A photograph model made by :func:`artspace.medium.fit_medium` (``artspace fit-medium``) to split the content
        model's style groups by, instead of the one the catalog has (at first, the one shipped with artspace).
    on_skip : callable(path, reason), optional
        Called for each file that is not catalogued.

    Returns
    -------
    IndexReport
    """
    t0 = time.time()
    if engine not in ("local", "ray"):
        raise InvalidOption(f"engine must be local or ray, not {engine!r}")
    if address is not None and engine != "ray":
        raise InvalidOption("--address names a Ray cluster: use it with --engine ray")
    if engine == "ray":
        from .ray_engine import require_ray

        require_ray()  # before any work: says how to install it
    for name, value, low in (("batch_size", 8 if batch_size is None else batch_size, 1), ("workers", workers, 0),
                             ("fit_size", fit_size, 2),
                             ("embed_dim", embed_dim, 1), ("signature_dim", signature_dim, 1)):
        _check_int(name, value, low)
    if is_uri(root):  # an object store: listed and read through pyarrow, the catalog on a local disk
        if not catalog:  # said before the store is reached (no network, no credentials needed to hear it)
            from .sources import public_uri

            raise InvalidOption(f"{public_uri(str(root))} is an object store: give --catalog DIR, a local folder for "
                                f"the catalog")
        root = RemoteSource(root)
        cdir = Path(catalog).expanduser()
        md = read_metadata(Path(metadata).expanduser(), Path(metadata).expanduser().parent) if metadata else None
    else:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise ArtspaceError(f"{root} is not a folder; `artspace index` takes the folder that holds the images "
                                f"(or an object-store URI such as s3://bucket/prefix)")
        cdir = Path(catalog).expanduser() if catalog else root / CATALOG_DIRNAME
        md = read_metadata(Path(metadata).expanduser(), root) if metadata else None  # checked before any image
    _check_catalog_folder(cdir, root)
    created = not cdir.exists()
    cdir.mkdir(parents=True, exist_ok=True)
    report = IndexReport(catalog=cdir)
    try:
        with WriterLock(cdir):
            collect_garbage(cdir)
            run = _Run(root, cdir, report, quiet=quiet, on_skip=on_skip)
            run.prepare(spec, md, rebuild, precision, device, forget_metadata=metadata is False)
            run.choose_content_projection(content_projection, medium_model)
            run.plan(exclude, include_outputs)
            if run.needs_publishing():
                run.extract(batch_size=batch_size, device=device, workers=workers, streams=streams,
                            max_pixels=max_pixels, include_outputs=include_outputs, fit_size=fit_size,
                            embed_dim=embed_dim, signature_dim=signature_dim, engine=engine, address=address,
                            compile=compile)
                gen.publish(run)
                report.published, report.rebuilt = True, bool(run.rebuilt)
            else:
                run.report_unchanged()
            collect_garbage(cdir)
            gen.remove_legacy_files(cdir)
    except BaseException:
        if created:
            _remove_if_unused(cdir)
        raise
    report.seconds = time.time() - t0
    return report


def _remove_if_unused(cdir: Path) -> None:
    """Remove the catalog folder a failed first run created, if the run left nothing in it worth keeping (no
    extraction shard to resume from, no generation): a refused run leaves no empty catalog behind."""
    if (cdir / "generations").is_dir() and any((cdir / "generations").iterdir()):
        return
    for shard in (cdir / "log" / "shards").glob("part-*.npz"):
        try:
            with np.load(shard) as z:
                if len(z["id"]):  # an image extracted: the next run resumes from it
                    return
        except Exception:  # noqa: BLE001 - an unreadable shard this run wrote holds nothing to resume from
            continue
    shutil.rmtree(cdir, ignore_errors=True)


class _Run:
    """The state of one :func:`index` run, filled in step by step."""

    def __init__(self, root: Path, cdir: Path, report: IndexReport, *, quiet: bool, on_skip):
        self.root, self.cdir, self.report = root, cdir, report
        self.quiet, self.on_skip = quiet, on_skip
        self.log = Log(cdir)
        self.previous = gen.Previous.find(cdir, report.notes)
        self.spec: FeatureSpec | None = None
        self.precision = "float32"
        self.metadata = None
        self.exclude: tuple[str, ...] = ()  # the --exclude patterns, set by plan()
        self.excluded = 0  # image files they left out
        self.files: list[tuple[str, int, int]] = []
        self.present: set[str] = set()  # the relative paths of self.files
        self.walk_skips: list[tuple[str, str]] = []
        self.todo: list[_Item] = []
        self.works_digest: str | None = None
        self.next_id = 0
        self.projections = None
        self.state: ShardLog | None = None
        #: whether the extraction log was started afresh (projections refitted: nothing derived from them is kept)
        self.rebuilt = False
        #: the learnt content projection asked for on this run (None: the catalog's own, or the shipped one)
        self.content_projection = None
        #: the photograph model asked for on this run (None: the catalog's own, or the shipped one)
        self.medium_model = None
        #: whether the collection was found at another place than the published generation records
        self.moved = False

    # ---- 1. plan ------------------------------------------------------------------------------------------------

    def prepare(self, spec: FeatureSpec | None, md, rebuild: bool, precision: str = "auto",
                device: str = "auto", forget_metadata: bool = False) -> None:
        """Settle the spec, the precision, the metadata and the extraction log (discarding it on *rebuild* or
        damage)."""
        prev = self.previous
        # everything that can refuse the run comes before the log is discarded: a refused --rebuild changes nothing
        if forget_metadata:
            self.metadata = None
            if prev.manifest.get("metadata"):
                self.report.notes.append(f"the metadata file {prev.manifest['metadata']} is no longer joined; its "
                                         f"columns are dropped (stored analysis columns are kept)")
        else:
            self.metadata = md if md is not None else prev.remembered_metadata(self.root)
            self._note_switched_metadata(md)
        self.rebuilt = rebuild
        if rebuild:
            self.log.discard()
        elif prev.legacy is not None:
            gen.adopt_legacy_log(self.cdir, self.log, prev)
        logged = self._read_log_state()
        known = logged.get("spec") or (None if rebuild else prev.manifest.get("spec"))
        known = FeatureSpec.from_dict(known) if known else None
        if known is not None and spec is not None and spec != known:
            raise IncompatibleCatalog(
                f"the catalog {self.cdir} was built with {known.describe()}; this run asks for {spec.describe()}. "
                f"Use the same settings, another --catalog, or --rebuild to start over")
        self.spec = spec or known or FeatureSpec()
        # a catalog made before precisions were recorded was made in float32
        made = logged.get("precision") or (None if rebuild or not known else prev.manifest.get("precision", "float32"))
        self.precision = _settle_precision(precision, made, device, self.cdir)
        self.next_id = max(int(logged.get("next_id", 0)), prev.next_id)
        self.log.create()
        gen.write_log_state(self.log, self.spec, self.next_id, self.precision)

    def _read_log_state(self) -> dict:
        if not self.log.state.is_file():
            if self.log.shards.is_dir() and any(self.log.shards.iterdir()):
                self.report.notes.append("the extraction log had no log.json; it was started again")
                self.log.discard()
                self.rebuilt = True
            return {}
        try:
            return read_json(self.log.state, self.cdir)
        except ArtspaceError as e:
            self.report.notes.append(f"{e}: the extraction log was started again")
            self.log.discard()
            self.rebuilt = True
            return {}

    def plan(self, exclude: Sequence[str], include_outputs: bool = False) -> None:
        """List the collection and decide what to extract (artspace's own images skipped before are read again
        when *include_outputs* asks for them)."""
        self.exclude = tuple(exclude)
        self.files, self.walk_skips, self.excluded = _list_files(self.root, self.cdir, exclude)
        self.present = {rel for rel, _, _ in self.files}
        self._check_collection()
        for rel, reason in self.walk_skips:
            self._skip(rel, reason)
        self._check_projections()
        self.state = ShardLog(self.log.shards)
        for d in self.state.damaged:
            self.report.notes.append(f"damaged extraction shard {d} removed; its images are read again")
        ids = None  # the published ids by path, read only if a file lacks a record (a million paths take a second)
        self.next_id = max(self.next_id, self.state.max_id + 1)
        for rel, size, mtime in self.files:
            r = self.state.records.get(rel)
            if self.state.is_current(rel, size, mtime) and not (include_outputs and r.reason == OUTPUT_REASON):
                continue
            if r is None or not r.ok:
                ids = self.previous.ids_by_path if ids is None else ids
            wid = r.id if r is not None and r.ok else ids.get(rel)
            if wid is None:
                wid, self.next_id = self.next_id, self.next_id + 1
            self.todo.append(_Item(rel, wid, size, mtime))
        if self.todo and self.projections is not None and isinstance(self.root, Path):
            self._keep_moved()

    #: The arrays a shard row is copied with when its file was moved (shards of every format since relu4_1's moments
    #: and the part off the style axes were kept; an older row is extracted again).
    _MOVED_KEYS = ("width", "height", "style", "signature", "descriptor", "moments", "off_axes")

    def _keep_moved(self) -> None:
        """Keep the features of works moved or renamed within the collection since they were extracted: a file to
        extract with the size, modification time (which a move keeps) and bytes (SHA-256) of a work whose file is
        gone is recorded at its new path by a new shard copying that work's row, and its image is not read again (a
        museum that sorts its files into folders would otherwise extract each one afresh). It is numbered as a new
        work, as before: the old record keeps its id, so a copy put back at the old place is never a second work
        under one id."""
        gone: dict[tuple[int, int], list[str]] = {}
        for rel, r in self.state.records.items():
            if r.ok and rel not in self.present:
                gone.setdefault((r.size, r.mtime_ns), []).append(rel)
        if not gone:
            return
        shards: dict[Path, dict] = {}
        moved = []  # (item, record of the file it was, its SHA-256)
        for item in self.todo:
            candidates = gone.get((item.size, item.mtime_ns))
            if not candidates:
                continue
            try:
                checksum = file_sha256(self.root / item.rel)
            except OSError:
                continue
            for old in candidates:
                r = self.state.records[old]
                if r.shard not in shards:
                    shards[r.shard] = read_npz(r.shard)
                z = shards[r.shard]
                if all(k in z for k in self._MOVED_KEYS) and str(z["checksum"][r.row]) == checksum:
                    moved.append((item, r, checksum))
                    candidates.remove(old)
                    break
        if not moved:
            return
        arrays = {"id": np.array([item.id for item, _, _ in moved], np.int64),
                  "path": np.array([item.rel for item, _, _ in moved], dtype=str),
                  "size": np.array([item.size for item, _, _ in moved], np.int64),
                  "mtime_ns": np.array([item.mtime_ns for item, _, _ in moved], np.int64),
                  "checksum": np.array([c for _, _, c in moved], dtype=str),
                  **{k: np.stack([np.asarray(shards[r.shard][k][r.row]) for _, r, _ in moved])
                     for k in self._MOVED_KEYS},
                  "skip_path": np.array([], dtype=str), "skip_size": np.zeros(0, np.int64),
                  "skip_mtime_ns": np.zeros(0, np.int64), "skip_reason": np.array([], dtype=str)}
        shard = next_shard(self.log.shards)
        write_npz(shard, **arrays)
        done = {item.rel for item, _, _ in moved}
        self.todo = [item for item in self.todo if item.rel not in done]
        self.state.add(shard)  # not the whole log read again (seconds at a million works)
        self.report.notes.append(f"{len(moved)} work(s) moved or renamed within the collection (the same bytes at a "
                                 f"new path): their features were kept, not read again")

    def _check_collection(self) -> None:
        """A catalog outside its collection records where the collection is. Indexed from another folder, it is the
        same collection moved (most of its works are there: the new place is recorded, no image read) or another
        collection, refused: that run would remove every work, their ids and what analyses stored with them."""
        was = self.previous.manifest.get("root")
        if was is None or not isinstance(self.root, Path) or self.rebuilt:
            return
        now = os.path.relpath(self.root.resolve(), self.cdir.resolve())
        if now == was:
            return
        before = self.previous.ids_by_path
        kept = sum(1 for rel in before if rel in self.present)
        old = (self.cdir / was).resolve()
        if old.is_dir() and old != self.root.resolve():  # a copy beside the collection, not the collection moved
            raise IncompatibleCatalog(
                f"the catalog {self.cdir} describes the collection at {old}, which is still there; index that "
                f"folder, give {self.root} a catalog of its own (--catalog), or pass --rebuild to make this catalog "
                f"describe {self.root} from scratch")
        if before and kept < len(before) / 2:
            raise IncompatibleCatalog(
                f"the catalog {self.cdir} describes the collection at {old} ({len(before)} works); {self.root} holds "
                f"{kept} of them. Index {self.root} into a catalog of its own (--catalog), or pass --rebuild to make "
                f"this catalog describe {self.root} from scratch (new ids; stored analyses and taught spaces go)")
        self.moved = True
        self.report.notes.append(f"the collection is now at {self.root.resolve()} (it was at {old}); the catalog "
                                 f"records the new place")

    def _check_projections(self) -> None:
        if not (self.log.projection.exists() or self.log.signature_projection.exists()):
            return
        try:
            if not (self.log.projection.exists() and self.log.signature_projection.exists()):
                raise ArtspaceError("one of the two is missing: the run that fitted them stopped half way")
            self.projections = {by: StyleProjection.load(f) for by, f in self.log.projection_files().items()}
        except Exception as e:  # noqa: BLE001 - any damage: the shards were made with them, so all goes
            self.report.notes.append(f"the style projections in {self.log.dir} could not be read ({e}); every "
                                     f"image is read again")
            self.log.discard()
            self.log.create()
            gen.write_log_state(self.log, self.spec, self.next_id, self.precision)
            self.projections = None
            self.rebuilt = True

    def choose_content_projection(self, path, medium=None) -> None:
        """Read the content projection and the photograph model asked for (refused here, before any image, if they
        do not fit the spec)."""
        from ..content import projection_for
        from ..medium import model_for

        if path is not None:
            self.content_projection = projection_for(self.spec, path)
        if medium is not None:
            self.medium_model = model_for(self.spec, medium)

    def needs_publishing(self) -> bool:
        """Whether a generation made now would differ from the published one (works, skips, metadata, damage, the
        content projection or photograph model asked for, a content model from before one of its rules)."""
        if (self.todo or self.state.damaged or self.projections is None or self.content_projection is not None
                or self.medium_model is not None or self.moved):
            return True
        outdated = gen.content_model_outdated(self.previous, self.spec)
        if outdated:
            self.report.notes.append(outdated)
            return True
        if gen.content_stats_missing(self.previous):
            self.report.notes.append("the catalog was published before content search standardised its "
                                     "similarities (docs/index.md); it is published again, no image read")
            return True
        present = self.present
        works = [(rel, r.size, r.mtime_ns, r.id) for rel, r in self.state.records.items() if r.ok and rel in present]
        skips = gen.digest(self.skipped())
        # the digest of the works a generation made now would hold, unless this run extracts (publish reuses it)
        self.works_digest = gen.digest(works)
        return self.previous.differs(self.metadata, self.works_digest, skips, self.root)

    def report_unchanged(self) -> None:
        prev, r = self.previous, self.report
        r.works = r.unchanged = int(prev.manifest.get("works", 0))
        r.generation = prev.number
        r.skipped = self.skipped()

    def skipped(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of every file of the folder that is not a work: unreadable ones the log records, and
        what the walk passed over."""
        _, skipped = self.state.live(self.present)
        return [(s[0], s[1]) for s in skipped] + list(self.walk_skips)

    def too_few(self, readable: int) -> str:
        """Why the collection cannot make a catalog: *readable* works, with what left the others out."""
        why = []
        if self.excluded:
            why.append(f"{self.excluded} left out by --exclude")
        skipped = list(dict(self.skipped() + list(self.report.newly_skipped)).items())  # this run's too, once
        if skipped:
            why.append(f"{len(skipped)} skipped (first: {skipped[0][0]}: {skipped[0][1]})")
        return (f"{self.root} holds {readable} readable image(s)" + (f" ({'; '.join(why)})" if why else "")
                + "; a catalog needs at least 2 to compare")

    def status(self, message: str) -> None:
        """A status line for the steps after extraction, which have no progress bar (unless quiet)."""
        if not self.quiet:
            print(f"index: {message}", file=sys.stderr, flush=True)

    def _skip(self, rel: str, reason: str) -> None:
        if self.on_skip is not None:
            self.on_skip(rel, reason)

    # ---- 2. extract ---------------------------------------------------------------------------------------------

    def extract(self, *, batch_size, device, workers, streams, max_pixels, include_outputs, fit_size, embed_dim,
                signature_dim, engine="local", address=None, compile=False):
        """Extract the planned files into shards, fitting the projections first on a new catalog."""
        if batch_size is None and engine != "ray":  # the Ray engine sizes batches for the cluster's devices
            batch_size = auto_batch_size(resolve_device(device), self.spec.size, self.precision)
        if engine == "ray" and self.todo:
            from .ray_engine import RayExtraction

            ray_run = RayExtraction(self, address=address, device=device, batch_size=batch_size,
                                    max_pixels=max_pixels, include_outputs=include_outputs, compile=compile)
            self.report.notes.append(f"Ray engine: {ray_run.actors} encoding actor(s)"
                                     + (f" on {ray_run.gpus} GPU(s)" if ray_run.gpus else
                                        f" of {ray_run.threads} CPU thread(s) each"))
            ex = _RayExtraction(self, ray_run, batch_size=ray_run.batch_size, max_pixels=max_pixels,
                                include_outputs=include_outputs)
        else:
            extractor = Extractor(self.spec, device=device, precision=self.precision, compile=compile) \
                if self.todo else None
            if compile:  # a compiled graph is run from one thread
                streams = 1
            ex = _Extraction(self, extractor, batch_size=batch_size, workers=workers, max_pixels=max_pixels,
                             include_outputs=include_outputs,
                             streams=_stream_count(streams, extractor.device if extractor else torch.device("cpu")))
        wrote = bool(self.todo) or self.projections is None
        with ex:
            if self.projections is None:
                self._fit(ex, fit_size, embed_dim, signature_dim)
            wrote |= project_fit_shards(self.log.shards, self.projections)
            ex.run(self.todo, self.projections)
        if wrote:  # read the log again only if this run added to it (a million records take seconds)
            self.state = ShardLog(self.log.shards)

    def _fit(self, ex: "_Extraction", fit_size: int, embed_dim: int, signature_dim: int) -> None:
        """Extract a seeded random sample of the collection first and fit the projections on it."""
        order = np.random.default_rng(0).permutation(len(self.files))
        sample = {self.files[i][0] for i in order[:fit_size]}
        ex.run([t for t in self.todo if t.rel in sample], None)
        self.todo = [t for t in self.todo if t.rel not in sample]
        state = ShardLog(self.log.shards)
        by_shard, _ = state.live(sample)  # {shard: [(rel, row)]}: each shard is read once, not once a work
        rows = {}
        for shard, entries in by_shard.items():
            with np.load(shard) as z:
                if "sketch" in z.files:
                    sketch, sig = unpack_sketch(z, "sketch"), unpack_sketch(z, "sig_sketch")
                    rows.update({rel: (sketch[j], sig[j]) for rel, j in entries})
        # in name order, whatever the shards: the fit does not depend on the batch size
        sk_rows = [rows[rel][0] for rel in sorted(rows)]
        sig_rows = [rows[rel][1] for rel in sorted(rows)]
        if len(sk_rows) < 2:
            raise ArtspaceError(self.too_few(len(sk_rows)))
        sketches = ex.embedder.sketches
        StyleProjection.fit(np.stack(sig_rows), k=signature_dim, seed=sketches["style"].seed).save(
            self.log.signature_projection)
        StyleProjection.fit(np.stack(sk_rows), k=embed_dim, seed=sketches["l_style"].seed).save(self.log.projection)
        self.projections = {by: StyleProjection.load(f) for by, f in self.log.projection_files().items()}

    def _note_switched_metadata(self, md) -> None:
        """A note when *md* replaces the CSV the catalog joined before: the old file's columns that the new one
        lacks are dropped with it (one CSV is joined at a time), which a scholar adding a second file of labels
        should hear at once, not find out from a missing column."""
        old = self.previous.manifest.get("metadata_file") or {}
        if (md is None or not old.get("path") or old.get("path") == gen._resolved(md.path)
                or old.get("checksum") == md.checksum):  # the same file, or the same CSV moved with the collection
            return
        lost = [c for c in old.get("columns") or [] if c not in md.columns]
        shared = [c for c in old.get("columns") or [] if c in md.columns]
        self.report.notes.append(
            f"{md.path.name} replaces the metadata file {old['path']} (one CSV is joined at a time)"
            + (f"; its column{'s' if len(lost) > 1 else ''} {', '.join(map(repr, lost))} "
               f"{'are' if len(lost) > 1 else 'is'} dropped" if lost else "")
            + (f"; {', '.join(map(repr, shared))} now {'hold' if len(shared) > 1 else 'holds'} only the new file's "
               f"values" if shared else "")
            + ("; put every column and row in one CSV to keep them" if lost or shared else "")
            + "; stored analysis columns are kept")

    def left_out(self, rel: str) -> bool:
        """Whether the collection-relative path *rel* falls under this run's ``--exclude`` patterns."""
        return bool(self.exclude) and _excluded(rel, self.exclude)


def _excluded(rel: str, patterns: Sequence[str]) -> bool:
    parts = rel.split("/")
    return any(fnmatch.fnmatchcase(rel, pat) or any(fnmatch.fnmatchcase(p, pat) for p in parts[:-1])
               for pat in patterns)


def _list_files(root: Path | RemoteSource, cdir: Path, exclude: Sequence[str]) -> tuple[list, list, int]:
    """``([(rel, size, mtime_ns)], [(rel, reason)], excluded)``: the collection's regular image files, what was
    passed over (dangling links, FIFOs, unreadable folders, names that are not UTF-8) with the reason, and how many
    image files the *exclude* patterns left out."""
    if isinstance(root, RemoteSource):
        files, skips = root.list((CATALOG_DIRNAME,))
        kept = [f for f in files if not (exclude and _excluded(f[0], exclude))]
        return kept, skips, len(files) - len(kept)
    files, skips, excluded = [], [], 0

    def skipped(path, reason):
        skips.append((_rel(path, root), reason))

    # string slicing, not pathlib: a million files are listed in seconds, not a minute
    prefix = os.path.join(str(root), "")
    inside = os.path.join(str(cdir), "")
    for s in walk_images(root, exclude=(CATALOG_DIRNAME, cdir.name), on_skip=skipped, as_strings=True):
        if s.startswith(inside):
            continue
        rel = s[len(prefix):] if s.startswith(prefix) else Path(s).relative_to(root).as_posix()
        if os.sep != "/":
            rel = rel.replace(os.sep, "/")
        if exclude and _excluded(rel, exclude):
            excluded += 1
            continue
        try:
            st = os.stat(s)
        except OSError as e:
            skips.append((rel, f"cannot read file ({e.strerror or e})"))
            continue
        if not stat.S_ISREG(st.st_mode):
            skips.append((rel, "not a regular file"))
            continue
        files.append((rel, st.st_size, st.st_mtime_ns))
    return files, skips, excluded


def _rel(path, root: Path) -> str:
    try:
        rel = Path(path).relative_to(root).as_posix()
    except ValueError:
        rel = str(path)
    # Names that are not UTF-8 are listed in a printable form (the work itself is skipped).
    return rel.encode("utf-8", "backslashreplace").decode("utf-8")


# ---- extraction machinery ----------------------------------------------------------------------------------------


#: Why an image artspace made is not catalogued.
OUTPUT_REASON = ("an image artspace wrote (a pastiche, a reconstruction or a contact sheet); move it out of the "
                 "collection, or pass --include-outputs to catalogue it")


#: Bytes of GPU memory one image of side 224 needs in a float32 forward pass to relu5_4 (the widest activations and
#: Gram products, with headroom); other sides and half precision scale it.
_BYTES_PER_IMAGE_224 = 40 * 2**20


def auto_batch_size(device: torch.device, size: int, precision: str = "float32", *, largest: int = 256) -> int:
    """Images per forward pass: 8 on a CPU (more gains nothing there); on a GPU as many as half its free memory
    holds, between 8 and *largest*."""
    if device.type != "cuda":
        return 8
    free, _ = torch.cuda.mem_get_info(device)
    per_image = _BYTES_PER_IMAGE_224 * (size / 224) ** 2 * (0.5 if precision in ("bfloat16", "float16") else 1.0)
    return int(max(8, min(largest, free * 0.5 // per_image)))


def shard_arrays(extractor: Extractor, embedder, x: torch.Tensor, fitting: bool) -> tuple[np.ndarray, ...]:
    """What a shard stores of a batch *x*: compact L_style rows, style signatures (their sketches while *fitting*),
    content descriptors, relu4_1 moments and each work's parts off the projections' axes (NaN while *fitting*: they
    are computed with the projection, :func:`~artspace.catalog.shards.project_fit_shards`). Both engines, local and
    Ray, call this one function."""
    if extractor.device.type == "cuda":
        x = x.pin_memory()  # page-locked: the copy to the GPU runs asynchronously (encode copies non-blocking)
    out = extractor.encode(x)
    if fitting:
        e = {by: v.numpy() for by, v in embedder.sketch(out).items()}
        off = np.full((len(x), len(gen.OFF_AXES)), np.nan, np.float32)
    else:
        e, off = embedder.compact_and_off_axes(out)
    # relu4_1's channel means and deviations stay far below float16's 65,504 (a 1-px black-and-white stripe
    # pattern reaches 14,048); clipped, an image beyond it keeps a saturated moment rather than an infinite one
    moments = np.clip(out["moments"].numpy(), -65504, 65504).astype(np.float16)
    return e["l_style"], e["style"], out["descriptor"].numpy(), moments, np.asarray(off, np.float32)


def _load_one(root: Path, item: _Item, size: int, max_pixels: int | None, include_outputs: bool):
    """``(item, tensor or None, skip reason or None, {checksum, width, height})`` of one file, resized to the
    catalog's *size*; *root* is the collection's folder or object store."""
    try:
        if isinstance(root, RemoteSource):
            data = root.read(item.rel)
            im = decode_image_bytes(data, f"{root}/{item.rel}", max_side=2 * size, max_pixels=max_pixels)
            digest = hashlib.sha256(data).hexdigest
        else:
            path = root / item.rel
            im = open_image(path, max_side=2 * size, max_pixels=max_pixels)
            digest = functools.partial(file_sha256, path)  # read again only for a work, not for a skipped output
        if not include_outputs and im.info["made_by_artspace"]:
            return item, None, OUTPUT_REASON, None
        w, h = im.info.get("source_size", im.size)  # the file's own size, EXIF orientation applied
        x = prepare_image(im, size)
        checksum = digest()
    except UnreadableImage as e:
        return item, None, e.reason, None
    except OSError as e:
        return item, None, f"cannot read file ({e.strerror or e})", None
    return item, x, None, {"checksum": checksum, "width": int(w), "height": int(h)}


def _settle_precision(asked: str, made: str | None, device: str, cdir: Path) -> str:
    """The precision of this run: what was *asked*, or for ``auto`` what the catalog was *made* with (else what the
    hardware runs natively); a different one than the catalog's is refused."""
    from ..precision import resolve_precision

    if asked in (None, "auto") and made:
        return made
    wanted = resolve_precision(asked, resolve_device(device))
    if made and wanted != made:
        raise IncompatibleCatalog(
            f"the catalog {cdir} was built in {made}; this run asks for {wanted}. Use --precision {made} (or auto), "
            f"another --catalog, or --rebuild to extract every image again in {wanted}")
    return wanted


def _stream_count(streams: int | None, device: torch.device) -> int:
    if streams is not None:
        return _check_int("streams", streams, 1)
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


def _prefetch(items: Sequence[_Item], root: Path, load, workers: int) -> Iterator:
    """Decode images in worker threads (Pillow releases the GIL) while the network runs on the previous batch;
    ``load(root, item)`` reads one."""
    if workers <= 0:
        for it in items:
            yield load(root, it)
        return
    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
        ahead = max(4 * workers, 16)
        futures = [pool.submit(load, root, it) for it in items[:ahead]]
        nxt = len(futures)
        for k in range(len(items)):
            yield futures[k].result()
            futures[k] = None
            if nxt < len(items):
                futures.append(pool.submit(load, root, items[nxt]))
                nxt += 1


class _Extraction:
    """Batches through the network in streams, each batch written as a shard in order as it finishes."""

    def __init__(self, run: _Run, extractor: Extractor | None, *, batch_size: int, workers: int, streams: int,
                 max_pixels: int | None, include_outputs: bool):
        self.run_, self.extractor = run, extractor
        self.batch_size, self.workers, self.streams, self.max_pixels = batch_size, workers, streams, max_pixels
        self.include_outputs = include_outputs
        self.embedder = gen.Embedder(run.spec, {})  # sketches only, until the projections exist
        self.progress = None

    def __enter__(self):
        if self.run_.todo:
            from tqdm.auto import tqdm

            self.progress = tqdm(total=len(self.run_.todo), unit="img", disable=self.run_.quiet, desc="index",
                                 dynamic_ncols=True, file=sys.stderr)
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.close()
        return False

    def compute(self, ok: list, projections: dict | None) -> tuple[np.ndarray, ...]:
        """Compact L_style rows, style signatures, content descriptors and relu4_1 moments of the readable images
        *ok*.

        Without *projections* (the fit phase) the rows are the sketches themselves.
        """
        dims = ((projections["l_style"].dim, projections["style"].dim) if projections is not None
                else (SKETCH_DIM, SKETCH_DIM))
        if not ok:
            return (np.zeros((0, dims[0]), np.float32), np.zeros((0, dims[1]), np.float32),
                    np.zeros((0, self.run_.spec.descriptor_dim), np.float32), np.zeros((0, MOMENTS_DIM), np.float16),
                    np.zeros((0, len(gen.OFF_AXES)), np.float32))
        return shard_arrays(self.extractor, self.embedder, torch.stack([b[1] for b in ok]), projections is None)

    def write(self, ok: list, bad: list, computed: tuple, projections: tuple | None, number: int) -> None:
        style, sig, desc, moments, off_axes = computed
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
            "moments": moments,
        }
        if projections is None:  # fit sample: the sketches are kept until the projections exist
            arrays.update(pack_sketches(sketch=style, sig_sketch=sig))
        else:
            arrays["style"], arrays["signature"], arrays["off_axes"] = style, sig, off_axes
        write_npz(shard_path(self.run_.log.shards, number), **arrays)
        for b in bad:
            self.run_.report.newly_skipped.append((b[0].rel, b[2]))
            self.run_._skip(b[0].rel, b[2])
        self.run_.report.extracted += len(ok) + len(bad)
        self.progress.update(len(ok) + len(bad))

    def run(self, items: list[_Item], projections: tuple | None) -> None:
        """Extract *items* batch by batch; shards are written in order by this thread as batches finish."""
        if not items:
            return
        if projections is not None:
            self.embedder = self.embedder.with_projections(projections)
        number = shard_number(next_shard(self.run_.log.shards))  # batches finish in order: numbered here
        pending: collections.deque = collections.deque()
        with _Streams(self.streams) as pool:
            batch: list = []
            load = functools.partial(_load_one, size=self.run_.spec.size, max_pixels=self.max_pixels,
                                     include_outputs=self.include_outputs)
            for loaded in _prefetch(items, self.run_.root, load, self.workers):
                batch.append(loaded)
                if len(batch) >= self.batch_size:
                    pending.append(self._start(pool, batch, projections))
                    batch = []
                    while len(pending) > self.streams:
                        number = self._finish(pending.popleft(), projections, number)
            if batch:
                pending.append(self._start(pool, batch, projections))
            while pending:
                number = self._finish(pending.popleft(), projections, number)

    def _start(self, pool, batch: list, projections):
        ok = [b for b in batch if b[1] is not None]
        bad = [b for b in batch if b[1] is None]
        return ok, bad, pool.submit(self.compute, ok, projections)

    def _finish(self, entry, projections, number: int) -> int:
        ok, bad, future = entry
        self.write(ok, bad, future.result(), projections, number)
        return number + 1


class _RayExtraction(_Extraction):
    """The extraction of a run on Ray: batches come back from the cluster and are written as shards here."""

    def __init__(self, run: _Run, engine, *, batch_size: int, max_pixels: int | None, include_outputs: bool):
        super().__init__(run, None, batch_size=batch_size, workers=0, streams=1, max_pixels=max_pixels,
                         include_outputs=include_outputs)
        self.engine = engine

    def run(self, items: list[_Item], projections: tuple | None) -> None:
        number = shard_number(next_shard(self.run_.log.shards))
        for b in self.engine.batches(items, projections):
            ok, bad, computed = _from_columns(b)
            self.write(ok, bad, computed, projections, number)
            number += 1


def _from_columns(b: dict) -> tuple[list, list, tuple]:
    """A batch from the Ray pipeline as the local engine's (ok, bad, computed) for :meth:`_Extraction.write`."""
    ok_rows, ok, bad = [], [], []
    for j, rel in enumerate(b["rel"]):
        item = _Item(str(rel), int(b["id"][j]), int(b["size"][j]), int(b["mtime_ns"][j]))
        reason = b["reason"][j]
        if reason:
            bad.append((item, None, str(reason), None))
        else:
            ok_rows.append(j)
            ok.append((item, None, None, {"checksum": str(b["checksum"][j]), "width": int(b["width"][j]),
                                          "height": int(b["height"][j])}))
    rows = np.array(ok_rows, np.int64)
    computed = tuple(np.ascontiguousarray(b[k][rows]) for k in ("l_style", "style", "descriptor", "moments",
                                                                 "off_axes"))
    return ok, bad, computed
