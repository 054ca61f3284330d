"""What one catalog generation holds, and how the writer builds the next one.

A generation's folder holds, each written once::

    manifest.json       format, generation number, feature spec, projections, index kinds, versions, file sizes,
                        the metadata CSV (path, checksum, columns) and the columns analyses added (with what made
                        them and which works they saw)
    works.parquet       one row per work: id, path, size, mtime_ns, checksum, width, height, + metadata columns
    skipped.csv         files of the folder that are not works: path, reason
    ids.npy             the works' ids, ascending (the row order of every array below)
    style.npy, l_style.npy, content.npy    one compact embedding per space of artspace.spaces: style (n × 128 style
                        signatures), l_style (n × 384, squared L2 ≈ L_style), content (n × 512, unit length);
                        plain .npy files, memory-mapped by queries; above 65,536 works in chunks of rows
                        (style-0001.npy ...: artspace.catalog.chunks), so a run rewrites only the chunks that changed
    style_scale.npy     each work's neighbourhood scale in the style space
    off_axes.npy        n × 2 float32: each work's squared distance from its style sketch to the projection's axes
                        (l_style, then the signature): what its compact embedding leaves out, so that an image
                        from outside is not placed nearer than it is (Catalog._offsets; NaN rows: works extracted
                        before artspace kept it)
    moments.npy         n × 1024 float16: each work's relu4_1 channel means then standard deviations, a style
                        source for AdaIN (Huang & Belongie 2017) without reading the image (NaN rows: works
                        extracted before artspace kept them)
    style_projection.npz, l_style_projection.npz    the fitted projections (see artspace.projection)
    content_model.npz   style-group means removed from content descriptors (see artspace.content_model)
    content_stats.npz   the mean and covariance of the content embeddings over the collection and over each style
                        group, and each work's group and mean and variance of cosines to the collection: how
                        content search standardises a similarity (artspace.content_model.ContentStats; carried
                        over, like the content model, while the collection changes by less than a tenth)
    style.faiss, l_style.faiss, content.faiss        faiss indexes of the three spaces
    style_neighbours.npz   each work's 10 nearest works by style signature (updated in place by the next run)
    pairs.npz           per space, the sorted distances of a random sample of pairs of works: what percentiles are
                        read from
    taught-NAME.*       a space taught by labels (``artspace teach``; see artspace.catalog.taught), carried over
                        by every later generation and judged stale when its labels or works changed
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import __version__
from ..atomic import atomic_write
from ..errors import ArtspaceError, CorruptCatalog, InvalidMetadata, InvalidOption
from ..medium import PhotographCalls
from ..spec import FeatureSpec
from .chunks import ChunkedArray, basis_digests, kept_works, open_array, unchanged_rows, write_chunks
from .metadata import WORK_COLUMNS, join_metadata, read_metadata
from .shards import MOMENTS_DIM, SHARD_COLUMNS, Log, compact, read_npz
from .store import (FORMAT_VERSION, GenerationBuilder, WriterLock, collect_garbage, damaged_files, index_command,
                    open_generation, read_json, read_pointer_entry, repair_hint, _generations)
from .taught import carry_taught

NEIGHBOURS = "style_neighbours.npz"
CONTENT_STATS = "content_stats.npz"
#: the manifest's ``content_groups`` where the style groups were checked for photographs (:mod:`artspace.medium`)
MEDIUM_GROUPS = "ward+photographs"
PROJECTIONS = {"style": "style_projection.npz", "l_style": "l_style_projection.npz"}
PAIRS = "pairs.npz"
#: The extraction log is compacted into one shard once it has more shards than this, or more than MAX_DEAD dead
#: records (files since removed or extracted again) per live one: rewriting a million works' log on every run
#: would cost more than the run.
MAX_SHARDS = 16
MAX_DEAD = 0.25
#: Pairs of works sampled for the percentiles (resolution 0.005 %).
PAIR_SAMPLE = 20_000
#: Files of a single-folder catalog (formats 2 and 3) that a conversion replaces by a generation.
LEGACY_FILES = ("works.parquet", "skipped.csv", "embeddings.npz", "content_model.npz", "style.faiss",
                "signature.faiss", "content.faiss", "signature_neighbours.npz", "manifest.json")


def load(folder: Path, name: str, loader: Callable[[Path], object], cdir: Path):
    """``loader(folder / name)``, or :class:`CorruptCatalog` naming the file and the command that repairs it."""
    path = folder / name
    try:
        return loader(path)
    except FileNotFoundError:
        raise CorruptCatalog(f"catalog file {path} is missing; {repair_hint(cdir)}") from None
    except ArtspaceError:
        raise
    except Exception as e:  # noqa: BLE001 - parquet, zip, faiss and numpy each raise their own kinds
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise CorruptCatalog(f"catalog file {path} is damaged ({reason}); {repair_hint(cdir)}") from None


def content_digest(works: pd.DataFrame) -> str:
    """:func:`digest` of the works' ``(path, checksum, id)``: changes when a work is added, removed, renamed or its
    bytes change, not when its file is only touched or copied."""
    return digest_columns(works["path"], works["checksum"], works["id"].astype(int))


def same_works(entry: dict, manifest: dict) -> bool:
    """Whether what *entry* (a stored analysis column, a taught space) was computed on is the works of the generation
    whose *manifest* is given: by :func:`content_digest` where both record it, else by the works digest."""
    if entry.get("content_digest") and manifest.get("content_digest"):
        return entry["content_digest"] == manifest["content_digest"]
    return entry.get("works_digest") == manifest.get("works_digest")


def space_basis(manifest: dict, source: str | None) -> str | None:
    """What the embedding of the space an analysis named in its *source* (``cluster --by taught:style ...``) was
    computed from: the basis digest of that space's rows, or for a taught space when it was taught. None when the
    source names no space or the manifest does not say."""
    import re

    m = re.search(r"--by (\S+)", source or "")
    if m is None:
        return None
    by = m.group(1)
    if by.startswith("taught:"):
        entry = (manifest.get("taught") or {}).get(by[len("taught:"):]) or {}
        return entry.get("created")
    basis = (manifest.get("chunks") or {}).get("basis") or {}
    return basis.get(by)


def column_current(entry: dict, manifest: dict) -> bool:
    """Whether a stored analysis column (its manifest *entry*) still describes the generation of *manifest*: the
    same works, and the same embedding of its space where the entry recorded it."""
    if not same_works(entry, manifest):
        return False
    return entry.get("basis") is None or entry["basis"] == space_basis(manifest, entry.get("source"))


def digest(rows) -> str:
    """A checksum of a set of rows (tuples), in any order: of the works a generation holds (``(path, size,
    mtime_ns, id)``) and of the files it skipped (``(path, reason)``), to tell whether the extraction log holds
    anything the published generation lacks (say, after a run killed before publishing). The bytes hashed are each
    row's fields as text, joined by NUL, one row a line, rows sorted."""
    rows = list(rows)
    if not all(a[0] < b[0] for a, b in zip(rows, rows[1:])):  # a million rows in order need no sort (0.1 s)
        rows.sort()
    h = hashlib.sha256()
    for s in range(0, len(rows), 65_536):  # one update per block of rows: the same bytes, fewer calls
        h.update("".join("\0".join(map(str, row)) + "\n" for row in rows[s:s + 65_536]).encode(
            "utf-8", "backslashreplace"))
    return h.hexdigest()


def digest_columns(*columns) -> str:
    """:func:`digest` of the rows ``zip(*columns)``, for columns of a table: read once as lists (iterating a
    pandas text column yields a million Python strings one call at a time) and, when the first column is already
    strictly in order, joined column by column without building a tuple a row. The same bytes, 2-3 times faster
    at a million works."""
    typed = [c.tolist() if hasattr(c, "tolist") else list(c) for c in columns]
    first = typed[0] if typed else []
    if not all(a < b for a, b in zip(first, first[1:])):
        return digest(zip(*typed))
    text = [col if all(type(v) is str for v in col) else list(map(str, col)) for col in typed]
    h = hashlib.sha256()
    for s in range(0, len(first), 65_536):
        lines = map("\0".join, zip(*(col[s:s + 65_536] for col in text)))
        h.update(("\n".join(lines) + "\n").encode("utf-8", "backslashreplace"))
    return h.hexdigest()


def write_log_state(log: Log, spec: FeatureSpec, next_id: int, precision: str) -> None:
    state = {"spec": spec.to_dict(), "next_id": int(next_id), "precision": precision}
    atomic_write(log.state, lambda p: p.write_text(json.dumps(state, indent=2, sort_keys=True)))


class Previous:
    """The published generation as the writer finds it: its manifest, its works, whether it is intact."""

    def __init__(self, cdir: Path, number: int = 0, folder: Path | None = None, manifest: dict | None = None,
                 legacy: dict | None = None, healthy: bool = False):
        self.cdir, self.number, self.folder = cdir, number, folder
        self.manifest = manifest or {}
        self.legacy = legacy
        self.healthy = healthy
        self._works = None

    @classmethod
    def find(cls, cdir: Path, notes: list) -> "Previous":
        """The published generation (or the newest intact one when ``CURRENT`` is damaged), a single-folder catalog
        of an older format, or nothing."""
        gens = _generations(cdir)
        try:
            n, digest = read_pointer_entry(cdir)
        except CorruptCatalog:
            n, digest = None, None
        if n is None and (cdir / "CURRENT").exists():
            notes.append(f"{cdir / 'CURRENT'} was damaged; the catalog is published again")
        candidates = [n] if n in gens else sorted(gens, reverse=True)
        for number in candidates:
            try:
                manifest = read_json(gens[number] / "manifest.json", cdir)
            except CorruptCatalog as e:
                notes.append(f"{e.args[0].split(';')[0]}; a new generation is built from the extraction log")
                continue
            bad = damaged_files(gens[number], manifest, digest if number == n else None)
            if bad:
                notes.append(f"generation {number} is damaged ({', '.join(f'{f}: {w}' for f, w in bad)}); a new "
                             f"generation is built from the extraction log")
            healthy = not bad and n == number and manifest.get("format_version") == FORMAT_VERSION
            return cls(cdir, number, gens[number], manifest, healthy=healthy)
        legacy = cdir / "manifest.json"
        if legacy.is_file():
            try:
                old = read_json(legacy, cdir)
            except CorruptCatalog:
                old = {}
                notes.append(f"{legacy} was damaged; the catalog is rebuilt from its extraction log")
            return cls(cdir, 0, cdir, old, legacy=old)
        return cls(cdir)

    @property
    def works(self) -> pd.DataFrame | None:
        """The previous works table, or ``None`` where there is none or it cannot be read."""
        if self._works is None and self.folder is not None:
            try:
                self._works = pd.read_parquet(self.folder / "works.parquet")
            except Exception:  # noqa: BLE001 - a damaged table is rebuilt; ids then start afresh
                self._works = None
        return self._works

    @property
    def ids_by_path(self) -> dict:
        w = self.works
        return {} if w is None else dict(zip(w["path"].astype(str).tolist(), w["id"].astype(int).tolist()))

    @property
    def next_id(self) -> int:
        n = int(self.manifest.get("next_id", 0) or 0)
        w = self.works if n == 0 else None
        return max(n, int(w["id"].max()) + 1 if w is not None and len(w) else 0)

    def remembered_metadata(self, root: Path):
        rel = self.manifest.get("metadata")
        if not rel:
            return None
        path = root / rel if isinstance(root, Path) else Path(rel)  # an object store's CSV: recorded absolute
        if not path.is_file():
            raise InvalidMetadata(f"the metadata file {path} that this catalog was indexed with is gone; restore "
                                  f"it, pass --metadata with the file to use now, or --no-metadata to index "
                                  f"without one")
        return read_metadata(path, root if isinstance(root, Path) else path.parent)

    def analysis_columns(self, metadata) -> list[str]:
        if "analyses" in self.manifest:
            cols = list(self.manifest["analyses"])
        else:  # a single-folder catalog did not record them: every column that is neither ours nor the CSV's
            w = self.works
            cols = [] if w is None else [c for c in w.columns if c not in WORK_COLUMNS]
            if metadata is not None:
                cols = [c for c in cols if c not in metadata.columns]
        return cols

    def differs(self, metadata, works: str, skipped: str, root: Path) -> bool:
        """Whether a generation made now would differ from this one (the :func:`digest` of its works and of its
        skipped files; the metadata file by its checksum and its path relative to the collection, so that a
        collection moved with its CSV is still unchanged)."""
        m = self.manifest
        was = ((m.get("metadata_file") or {}).get("checksum"), m.get("metadata"))
        now = (None, None) if metadata is None else (metadata.checksum, _relative(metadata.path, root))
        return (not self.healthy or was != now or m.get("works_digest") != works
                or m.get("skipped_digest") != skipped)


def _resolved(path) -> str:
    return str(Path(path).expanduser().resolve())


def _relative(path, root: Path) -> str:
    """*path* relative to the collection *root* (``..`` where it lies outside), as the manifest records it; absolute
    for a collection in an object store."""
    if not isinstance(root, Path):
        return _resolved(path)
    return os.path.relpath(_resolved(path), root.resolve())


def adopt_legacy_log(cdir: Path, log: Log, prev: Previous) -> None:
    """Move a single-folder catalog's shards and projections into the extraction log (no image is read)."""
    log.dir.mkdir(parents=True, exist_ok=True)
    if (cdir / "shards").is_dir() and not log.shards.exists():
        os.rename(cdir / "shards", log.shards)
    for name, target in (("projection.npz", log.projection), ("signature_projection.npz", log.signature_projection)):
        if (cdir / name).is_file() and not target.exists():
            os.rename(cdir / name, target)
    spec = prev.legacy.get("spec")
    if spec and not log.state.exists():
        write_log_state(log, FeatureSpec.from_dict(spec), int(prev.legacy.get("next_id", 0) or 0), "float32")


def remove_legacy_files(cdir: Path) -> None:
    """After a generation is published, the files of a single-folder catalog go (the manifest last)."""
    if not (cdir / "CURRENT").exists():
        return
    for name in LEGACY_FILES:
        (cdir / name).unlink(missing_ok=True)
    shutil.rmtree(cdir / "shards", ignore_errors=True)


# ---- the one embedding pipeline ---------------------------------------------------------------------------------


class Embedder:
    """Turns :meth:`~artspace.features.Extractor.encode` output into every space's compact embedding: CountSketch,
    then the fitted projection (:mod:`artspace.projection`), then for content the style-group correction
    (:class:`artspace.content_model.ContentModel`). The indexer and queries use this one object, so an image gets
    the same embedding whether it is indexed or asked about."""

    def __init__(self, spec: FeatureSpec, projections: dict, content_model=None):
        from ..projection import SKETCH_DIM, CountSketch

        self.spec = spec
        self.projections = projections
        self.content_model = content_model
        dims = {"style": sum(spec.signature_dims), "l_style": sum(spec.style_dims)}
        # the seed a projection was fitted with is the seed of the sketch that fed it
        self.sketches = {by: CountSketch(dims[by], SKETCH_DIM,
                                         **({"seed": projections[by].seed} if projections else {}))
                         for by in dims}

    @classmethod
    def load(cls, folder: Path, spec: FeatureSpec, cdir: Path) -> "Embedder":
        """The pipeline stored in a generation's folder."""
        from ..content_model import ContentModel
        from ..projection import StyleProjection

        projections = {by: load(folder, name, StyleProjection.load, cdir) for by, name in PROJECTIONS.items()}
        return cls(spec, projections, load(folder, "content_model.npz", ContentModel.load, cdir))

    def with_projections(self, projections: dict) -> "Embedder":
        """The same sketches feeding *projections* (the sketches cost 570,000 random draws), unless the projections
        were fitted on sketches of another seed."""
        if any(projections[by].seed != sk.seed for by, sk in self.sketches.items()):
            return Embedder(self.spec, projections, self.content_model)
        fitted = Embedder.__new__(Embedder)
        fitted.spec = self.spec
        fitted.sketches, fitted.projections, fitted.content_model = self.sketches, projections, self.content_model
        return fitted

    def sketch(self, out: dict) -> dict:
        """The sketched style vectors (the fit phase's input): ``{"style": signature sketch, "l_style": ...}``."""
        return {"style": self.sketches["style"](out["signature"]), "l_style": self.sketches["l_style"](out["style"])}

    def compact(self, out: dict, sketches: dict | None = None) -> dict:
        """The projected style embeddings ``{"style", "l_style"}`` (float32 arrays), from *out*'s
        :meth:`sketch` unless it is given."""
        sketches = self.sketch(out) if sketches is None else sketches
        return {by: self.projections[by].embed(x) for by, x in sketches.items()}

    def off_axes(self, out: dict, sketches: dict | None = None) -> np.ndarray:
        """(B, 2) float32: each image's squared distance from its sketch to the projection's axes in
        :data:`OFF_AXES` order, the part of its style the compact embedding leaves out."""
        sketches = self.sketch(out) if sketches is None else sketches
        return np.stack([self.projections[by].off_axes(sketches[by]) for by in OFF_AXES], 1)

    def compact_and_off_axes(self, out: dict) -> tuple[dict, np.ndarray]:
        """:meth:`compact` and :meth:`off_axes` from one sketch of *out* (a sketch is about 1.4 ms a work on a
        2-core CPU)."""
        sketches = self.sketch(out)
        return self.compact(out, sketches), self.off_axes(out, sketches)

    def __call__(self, out: dict, *, off_axes: bool = False):
        """Every space's embedding, content included; with *off_axes*, also each image's parts off the style
        projections' axes (:meth:`off_axes`) under the key ``"off_axes"``, from the same sketch."""
        e, off = self.compact_and_off_axes(out) if off_axes else (self.compact(out), None)
        model = self.content_model
        e["content"] = model.transform(e["l_style"], out["descriptor"].numpy(),
                                       model.is_photograph(out["moments"].numpy()))
        if off_axes:
            e["off_axes"] = off
        return e


#: The spaces whose compact embeddings leave a part off their axes, in the column order of ``off_axes.npy``.
OFF_AXES = ("l_style", "style")

# ---- building a generation from the log ---------------------------------------------------------------------------


def _check_unique_ids(run, works: pd.DataFrame) -> None:
    """Refuse a log that records two present files under one id (*works* is in id order): artspace numbers each
    file once, so something else wrote the log, and a generation made from it would pair one work's row with
    another's analyses, neighbours and metadata."""
    ids = works["id"].to_numpy(np.int64)
    same = np.flatnonzero(ids[1:] == ids[:-1])
    if len(same):
        pair = works["path"].iloc[[same[0], same[0] + 1]].tolist()
        raise CorruptCatalog(
            f"the extraction log {run.log.dir} records {len(same)} file(s) under an id another file has too (id "
            f"{ids[same[0]]}: {pair[0]} and {pair[1]}); artspace numbers each file once, so the log was written by "
            f"something else: `{index_command(run.cdir)} --rebuild` reads every image again")


def _read_shards(by_shard: dict):
    """The works table and the (l_style, style, descriptor, moments, off_axes) arrays of the live records, in id
    order (off_axes NaN for works extracted before artspace kept it)."""
    works, l_style, style, desc, moments, off = [], [], [], [], [], []
    for shard, entries in by_shard.items():
        z = read_npz(shard)
        idx = np.array([j for _, j in entries])
        every = len(idx) == len(z["id"]) and np.array_equal(idx, np.arange(len(idx)))

        def rows(a):  # a whole shard is taken as it is, not copied by a fancy index
            return a if every else a[idx]

        works.append(pd.DataFrame({k: rows(z[k]) for k in WORK_COLUMNS}))
        l_style.append(rows(z["style"]))  # the shards' "style" is the compact L_style embedding
        style.append(rows(z["signature"]))
        desc.append(rows(z["descriptor"]))
        moments.append(rows(z["moments"]) if "moments" in z
                       else np.full((len(idx), MOMENTS_DIM), np.nan, np.float16))
        off.append(rows(z["off_axes"]) if "off_axes" in z else np.full((len(idx), len(OFF_AXES)), np.nan, np.float32))
    if not works:
        return None, None, None, None, None, None
    works = pd.concat(works, ignore_index=True)
    wid = works["id"].to_numpy()
    if len(wid) > 1 and (np.diff(wid) > 0).all():  # already in id order (shards appended in id order)
        def ordered(parts):  # the shards' memory-mapped rows one after another, not copied
            return parts[0] if len(parts) == 1 else ChunkedArray(parts)
    else:
        order = np.argsort(wid, kind="stable")
        works = works.iloc[order].reset_index(drop=True)

        def ordered(parts):
            return np.concatenate(parts)[order]
    works["path"] = works["path"].astype(str)
    works["checksum"] = works["checksum"].astype(str)
    return works, ordered(l_style), ordered(style), ordered(desc), ordered(moments), ordered(off)


def _count(report, prev: Previous, works: pd.DataFrame) -> None:
    """Added / updated / removed / unchanged: the new works compared with the previous generation's."""
    old = prev.works
    if old is None:
        report.added, report.updated, report.removed, report.unchanged = len(works), 0, 0, 0
        return
    both = works[["path", "checksum"]].astype(str).merge(old[["path", "checksum"]].astype(str), on="path",
                                                          how="outer", suffixes=("", "_old"), indicator=True)
    report.added = int((both["_merge"] == "left_only").sum())
    report.removed = int((both["_merge"] == "right_only").sum())
    report.updated = int(((both["_merge"] == "both") & (both["checksum"] != both["checksum_old"])).sum())
    report.unchanged = len(works) - report.added - report.updated


def _with_columns(run, works: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The works table with the metadata CSV joined and the columns analyses stored carried over by id (integer
    labels stay integers: works without one get a missing value, not a float NaN)."""
    md, prev = run.metadata, run.previous
    analyses = dict(prev.manifest.get("analyses") or {})
    if md is not None:
        moved = md.keep_apart(analyses)
        if moved:
            run.report.notes.append(
                f"{md.path.name}: column{'s' if len(moved) > 1 else ''} {', '.join(map(repr, moved))} kept as "
                f"{', '.join(map(repr, moved.values()))}: the catalog's own {_verb_names(moved)} what an analysis "
                f"stored (kept); filter on yours with --where \"{next(iter(moved.values()))} ...\"")
        works, join = join_metadata(works, md, excluded=run.left_out)
        run.report.notes.extend(md.notes + join.notes())
    for c in prev.analysis_columns(md):
        analyses.setdefault(c, {"source": "an earlier artspace version", "works_digest": None})
    for c, a in analyses.items():  # stale once, stale until computed again: the values of works that left are gone
        if a.get("works_digest") is not None and not column_current(a, prev.manifest):
            analyses[c] = {**a, "works_digest": None, "content_digest": None}
    old = prev.works
    keep = [c for c in analyses if c not in works.columns and c not in WORK_COLUMNS and old is not None
            and c in old.columns]
    if keep:
        carried = old.set_index("id")[keep]
        carried = carried.astype({c: "Int64" for c in keep if pd.api.types.is_integer_dtype(carried[c].dtype)})
        works = works.join(carried, on="id")
    return works, {c: analyses[c] for c in keep}


def _verb_names(names) -> str:
    return "columns hold" if len(names) > 1 else "column holds"


def publish(run) -> int:
    """Consolidate the log into a new generation and publish it; returns its number."""
    present = run.present
    by_shard, skipped = run.state.live(present)
    run.status(f"reading the extraction log ({len(present)} files)")
    works, l_style, style, desc, moments, off_axes = _read_shards(by_shard)
    if works is None or len(works) < 2:
        raise ArtspaceError(run.too_few(0 if works is None else len(works)))
    _check_unique_ids(run, works)
    skipped_all = run.skipped()
    off_axes = np.asarray(off_axes, np.float32)  # once (n x 2): the shards' rows, read into one array
    unkept = int(np.isnan(off_axes).any(axis=1).sum())
    if unkept:
        run.report.notes.append(f"{unkept} works were extracted before artspace kept their part off the style axes: "
                                f"images from outside may be placed too near them; `artspace index --rebuild` "
                                f"computes them")
    works, analyses = _with_columns(run, works)
    report = run.report
    _count(report, run.previous, works)
    compacting = len(run.state.shards) > MAX_SHARDS or run.state.rows > len(works) * (1 + MAX_DEAD)
    log_works = works[list(SHARD_COLUMNS)].copy() if compacting else None  # as the log records them

    builder = GenerationBuilder(run.cdir, base=run.previous.folder)
    try:
        manifest = _write_files(builder, run, works, {"style": style, "l_style": l_style}, desc, moments,
                                skipped_all, off_axes)
        manifest["analyses"] = analyses
        manifest["taught"] = carry_taught(builder, run.previous.folder, run.previous.manifest)
        n = builder.publish(manifest)
    except BaseException:
        builder.discard()
        raise
    # Only now: the arrays above are memory-mapped from the shards that compacting replaces, and rows gathered by
    # file name, so a log compacted before the generation was written lost the files still to be read. A run
    # stopped here leaves the log as it was, and the next run compacts it.
    if compacting:
        run.status("compacting the extraction log")
        compact(run.state, log_works, l_style, style, desc, moments, skipped, off_axes)
    report.generation = n
    report.works = len(works)
    report.skipped = skipped_all
    n_fit = run.projections["l_style"].n_fit
    if len(works) > 4 * n_fit and n_fit < 2048:
        report.notes.append(f"the style projections were fitted on {n_fit} works and the catalog now has "
                            f"{len(works)}: `--rebuild` refits them on the larger collection")
    return n


def pair_sample(ids: np.ndarray, embeddings: dict, scales: np.ndarray, *, size: int = PAIR_SAMPLE,
                seed: int = 0, spaces=None) -> dict:
    """Per space (*spaces*: names; default every space of :data:`~artspace.spaces.SPACES`), the sorted distances
    of up to *size* random pairs of distinct works (all pairs of a small collection), measured as
    :meth:`~artspace.catalog.Catalog.similar` measures them."""
    from ..spaces import SPACES, measure, space

    n = len(ids)
    if n * (n - 1) // 2 <= size:
        a, b = np.triu_indices(n, 1)
    else:
        rng = np.random.default_rng(seed)
        a, b = rng.integers(0, n, size), rng.integers(0, n - 1, size)
        b = b + (b >= a)  # a uniformly chosen other work
    out = {}
    for by, sp in (SPACES.items() if spaces is None else ((b, space(b)) for b in spaces)):
        x = embeddings[by]
        d = np.concatenate([measure(by, x[a[s:s + 4096]], x[b[s:s + 4096]][:, None])[:, 0]
                            for s in range(0, len(a), 4096)]) if len(a) else np.zeros(0)
        if sp.relative:
            d = d / np.sqrt(scales[a] * scales[b])
        out[by] = np.sort(d)
    return out


def _previous_content_model(run):
    """The previous generation's content model, if it can be read and the run keeps the log's projections."""
    from ..content_model import ContentModel

    if run.previous.folder is None or not run.previous.healthy or run.rebuilt:
        return None
    try:
        return ContentModel.load(run.previous.folder / "content_model.npz")
    except Exception:  # noqa: BLE001 - damaged or missing: fitted again
        return None


def content_model_outdated(previous: Previous, spec: FeatureSpec) -> str | None:
    """Why the published generation's content model must be fitted again, as the note the index run gives, or None.
    Three kinds of catalog published before a rule of :class:`~artspace.content_model.ContentModel`: one whose style
    groups are k-means clusters (:attr:`~artspace.content_model.ContentModel.nearest_centroid_groups`; Ward's groups
    follow the media better, docs/benchmarks.md), one that subtracts the mean of a style group too small to have one
    (:meth:`~artspace.content_model.ContentModel.centres_small_groups`: a work alone in its group had an empty content
    embedding), and one published before style groups were split by medium where artspace's photograph model fits its
    features (*spec*; :mod:`artspace.medium`). The next index run then publishes again, without reading an image."""
    from ..content_model import ContentModel
    from ..medium import model_for

    if previous.folder is None or not previous.healthy:
        return None
    min_group = previous.manifest.get("content_min_group") == ContentModel.MIN_GROUP
    groups = previous.manifest.get("content_groups")
    unsplit = groups != MEDIUM_GROUPS and model_for(spec) is not None  # published before the photograph split
    if min_group and groups in ("ward", MEDIUM_GROUPS) and not unsplit:
        return None  # published under every rule: nothing to read (an unchanged collection's run stays instant)
    try:
        model = ContentModel.load(previous.folder / "content_model.npz")
        if not min_group:
            style = open_array(previous.manifest, "l_style", lambda f: np.load(previous.folder / f, mmap_mode="r"))
            if model.centres_small_groups(style):  # read in blocks of rows
                return (f"a style group of the content model held fewer than {ContentModel.MIN_GROUP} works (a work "
                        "alone in its group had no content embedding); the catalog is published again, no image "
                        "read")
        if model.nearest_centroid_groups:
            return ("the content model's style groups were k-means clusters; they are fitted again with Ward's "
                    "clustering, which follows the media better (docs/index.md); the catalog is published again, "
                    "no image read")
        if unsplit:
            return ("the content model's style groups were not split into photographs and other works; they are "
                    "fitted again with artspace's photograph model (docs/index.md); the catalog is published again, "
                    "no image read")
    except Exception:  # noqa: BLE001 - a damaged generation is the health check's business
        return None
    return None


def _previous_content_stats(run):
    """The previous generation's content statistics, if it has them and they can be read (for as many works as it
    holds); they are carried over only while its content model is kept."""
    from ..content_model import ContentStats

    prev = run.previous
    if prev.folder is None or not prev.healthy or run.rebuilt or "content_stats" not in prev.manifest:
        return None
    try:
        stats = ContentStats.load(prev.folder / CONTENT_STATS)
    except Exception:  # noqa: BLE001 - damaged or from an earlier layout: computed afresh
        return None
    return stats if prev.works is not None and len(stats.groups) == len(prev.works) else None


def _remember_groups(model, stats, style, photographic, carried: np.ndarray | None) -> None:
    """Tell the previous content *model* every work's style group (its memo of :meth:`ContentModel.groups`), read
    from the previous *stats* for the works whose style embedding is unchanged (*carried*: each work's previous
    row, or −1) and computed for the others only. Deciding whether the model is kept asks for every work's group,
    and computing them reads every style embedding of the collection again and finds each one's nearest sampled work:
    about a minute at a million works."""
    if carried is None or len(carried) != len(style):
        return
    old = carried >= 0
    labels = np.empty(len(style), np.int64)
    labels[old] = stats.groups[carried[old]]
    new = np.flatnonzero(~old)
    if len(new):
        labels[new] = model.assign(style[new], None if model.split is None else photographic[new])
    if len(labels) and labels.max(initial=0) >= len(model.centroids):
        return  # statistics of another model: the groups are computed afresh
    model._last_groups = (style, photographic if model.split is not None else None, labels)


def _carried_rows(run, ids: np.ndarray, unchanged) -> np.ndarray | None:
    """For each work (*ids*), its row in the previous generation where its content embedding is unchanged
    (*unchanged*: :func:`~artspace.catalog.chunks.unchanged_rows`, which read the previous works table), −1
    elsewhere; None when nothing can carry."""
    before = run.previous.works
    if unchanged is None or before is None or not len(before):
        return None
    before = before["id"].to_numpy(np.int64)  # in id order: the rows of every per-work array
    at = np.minimum(np.searchsorted(before, ids), len(before) - 1)
    return np.where(np.asarray(unchanged, bool) & (before[at] == ids), at, -1)


def content_stats_missing(previous: Previous) -> bool:
    """Whether the published generation was written before content search standardised its similarities (it has no
    :data:`CONTENT_STATS`). The next index run then publishes again, without reading an image."""
    return previous.folder is not None and previous.healthy and "content_stats" not in previous.manifest


def _learnt_projection(run, previous_model):
    """The content projection to blend in: the one this run asks for, else the one the catalog has, else the one
    shipped with artspace where it fits the catalog's descriptor (:func:`artspace.content.projection_for`)."""
    from ..content import projection_for

    if run.content_projection is not None:
        return run.content_projection
    if previous_model is not None and previous_model.learnt is not None:
        return previous_model.learnt
    return projection_for(run.spec)


def _medium_model(run, previous_model):
    """The photograph model that splits the style groups (:mod:`artspace.medium`): the one this run asks for, else
    the one the catalog's groups were split by, else the one shipped with artspace where it fits the catalog's
    features; None where none fits."""
    from ..medium import model_for

    if run.medium_model is not None:
        return run.medium_model
    if previous_model is not None and previous_model.medium is not None:
        return previous_model.medium
    return model_for(run.spec)


def _write_files(builder: GenerationBuilder, run, works, emb: dict, desc, moments, skipped_all, off_axes) -> dict:
    import faiss
    import torch

    from ..content_model import ContentModel, ContentStats
    from ..search import CONTEXT_K, NeighbourLists, VectorIndex
    from ..projection import SKETCH_DIM
    from ..spaces import SPACES, formula

    ids = works["id"].to_numpy(np.int64)
    run.status(f"content model and search indexes of {len(ids)} works")
    previous_model = _previous_content_model(run)
    previous_stats = _previous_content_stats(run)
    kept = kept_works(run.previous, works)  # compared once; each array then checks its own basis
    medium = _medium_model(run, previous_model)
    # each work's photograph call, computed for the works that need one: all of them only when the groups are fitted
    photographic = PhotographCalls(medium, moments) if medium is not None else None
    basis = None
    if previous_model is not None and previous_stats is not None:
        basis = basis_digests(run.spec.to_dict(), run.precision, run.log.projection_files(), previous_model)
        _remember_groups(previous_model, previous_stats, emb["l_style"], photographic,
                         _carried_rows(run, ids, unchanged_rows(run.previous, kept, basis, "l_style")))
    content_model, refitted = ContentModel.update(previous_model, emb["l_style"], desc,
                                                  learnt=_learnt_projection(run, previous_model), medium=medium,
                                                  photographic=photographic)
    photographic = photographic if content_model.split is not None else None
    if refitted and run.previous.folder is not None:
        g = len(content_model.centroids)
        run.report.notes.append(f"the content model's {g} style group{'s were' if g > 1 else ' was'} fitted "
                                f"again on {len(ids)} works")
    if basis is None or content_model is not previous_model:  # the projections' 64 MB are hashed once if kept
        basis = basis_digests(run.spec.to_dict(), run.precision, run.log.projection_files(), content_model)
    unchanged_content = unchanged_rows(run.previous, kept, basis, "content")
    emb["content"] = _content(run, unchanged_content, emb["l_style"], desc, photographic, content_model)
    indexes = {}
    for by, sp in SPACES.items():
        previous_index = _previous_index(run, by, len(ids))
        unchanged = unchanged_rows(run.previous, kept, basis, by) if previous_index is not None else None
        indexes[by] = VectorIndex.build(ids, emb[by], metric=sp.metric, previous=previous_index,
                                        unchanged=unchanged)
    run.status("how the content similarities are spread")
    content_stats, _ = ContentStats.update(
        None if refitted else previous_stats, emb["content"], _carried_rows(run, ids, unchanged_content),
        lambda rows: content_model.groups(emb["l_style"] if rows is None else emb["l_style"][rows],
                                          photographic if rows is None or photographic is None
                                          else photographic[rows]),
        len(content_model.centroids))
    previous = NeighbourLists.load(run.previous.folder / NEIGHBOURS) if run.previous.folder else None
    run.status("neighbourhood scales of the style space" + (" (updated in place)" if previous else ""))
    neighbours, run.report.neighbours_searched = NeighbourLists.build(indexes["style"], ids, emb["style"],
                                                                      previous=previous)
    scales = neighbours.scales
    run.status("writing the new generation")
    works.to_parquet(builder.path("works.parquet"), index=False)
    pd.DataFrame({"path": [s[0] for s in skipped_all], "reason": [s[1] for s in skipped_all]}).to_csv(
        builder.path("skipped.csv"), index=False)
    for name, array in {"ids": ids, "style_scale": scales, "off_axes": off_axes}.items():
        np.save(builder.path(f"{name}.npy"), np.ascontiguousarray(array), allow_pickle=False)
    chunks = write_chunks(builder, run.previous, works, {**emb, "moments": moments}, basis)
    np.savez(builder.path(PAIRS), **pair_sample(ids, emb, scales))
    neighbours.save(builder.path(NEIGHBOURS))
    content_model.save(builder.path("content_model.npz"))
    content_stats.save(builder.path(CONTENT_STATS))
    for by, ix in indexes.items():
        ix.save(builder.path(f"{by}.faiss"))
    for by, src in run.log.projection_files().items():
        builder.link(src, PROJECTIONS[by])  # 64 MB that never change in place: shared, not copied
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    md = run.metadata
    projection = run.projections
    return {
        "artspace_version": __version__, "torch_version": torch.__version__, "faiss_version": faiss.__version__,
        "python_version": platform.python_version(),
        "created": run.previous.manifest.get("created", now), "updated": now, "parent": run.previous.number,
        "root": os.path.relpath(run.root.resolve(), builder.folder.parent.parent.resolve())
        if isinstance(run.root, Path) else run.root.public,
        "metadata": _relative(md.path, run.root) if md is not None else None,
        "metadata_file": {"path": _resolved(md.path), "checksum": md.checksum, "columns": list(md.columns)}
        if md else None,
        "skipped_digest": digest(skipped_all),
        "works_digest": run.works_digest if not run.todo and run.works_digest else
        digest_columns(works["path"], works["size"].astype(int), works["mtime_ns"].astype(int),
                       works["id"].astype(int)),
        # the works by what they hold, not when their files were written: what analyses and taught spaces depend
        # on (a touched or copied file with the same bytes changes nothing of theirs)
        "content_digest": content_digest(works),
        # the least style group its content model keeps (ContentModel.MIN_GROUP) and how its style groups were made
        # (ContentModel.fit): a catalog published before either rule is checked, once, by content_model_outdated
        "content_min_group": ContentModel.MIN_GROUP,
        "content_groups": MEDIUM_GROUPS if content_model.medium is not None else "ward",
        # what content search standardises its similarities by (ContentStats): a catalog published before it is
        # published again by the next index run, without reading an image
        "content_stats": {"file": CONTENT_STATS, "works": int(content_stats.counts[0]),
                          "sample_limit": ContentStats.SAMPLE, "fitted_on": content_stats.fitted_on},
        "spec": run.spec.to_dict(), "precision": run.precision, "model": "vgg19", "works": int(len(works)), "skipped": len(skipped_all),
        "next_id": int(max(run.next_id, int(ids.max()) + 1)),
        "spaces": {by: {"dim": int(emb[by].shape[1]), "metric": sp.metric, "relative": sp.relative,
                        "distance": formula(by, run.spec), **indexes[by].describe(),
                        **({"sketch_dim": SKETCH_DIM, "sketch_seed": projection[by].seed,
                            "fitted_on": projection[by].n_fit, "variance_kept": projection[by].explained}
                           if by in projection else _content_description(content_model)),
                        **({"neighbours": CONTEXT_K} if sp.relative else {})}
                   for by, sp in SPACES.items()},
        "pairs_sampled": int(min(len(ids) * (len(ids) - 1) // 2, PAIR_SAMPLE)),
        "chunks": chunks,
    }


def _content_description(model) -> dict:
    """What the manifest says of the content space: its style groups, the PCA and the learnt projection."""
    learnt = model.learnt
    return {"groups": int(len(model.centroids)), "descriptor_dim": model.input_dim,
            "reduced_to": model.reduce.dim if model.reduce is not None else None,
            "learnt_projection": None if learnt is None else
            {"dim": learnt.dim, "weight": model.LEARNT_WEIGHT,
             **{k: learnt.info.get(k) for k in ("method", "shrinkage", "groups", "works", "catalog")}}}


def _content(run, unchanged, l_style, desc, photographic, content_model):
    """Every work's content embedding. When the run only added works (with larger ids) and kept the content model
    (*unchanged*: the rows equal to the published generation's), the earlier works' rows are the published
    generation's, memory-mapped, and only the new rows are computed: a million works' 2 GB are then neither read
    nor written."""
    prev = run.previous
    if unchanged is not None:
        m = int(unchanged.sum())
        if 0 < m == len(prev.works) and unchanged[:m].all():
            try:
                old = open_array(prev.manifest, "content",
                                 lambda name: np.load(prev.folder / name, mmap_mode="r", allow_pickle=False))
            except (OSError, ValueError):
                old = None
            if old is not None and len(old) == m:
                tail = content_model.transform(l_style[m:], desc[m:],
                                               None if photographic is None else photographic[m:])
                return ChunkedArray([*(old.parts if isinstance(old, ChunkedArray) else [old]), tail])
    return content_model.transform(l_style, desc, photographic)


def _previous_index(run, by: str, n: int):
    """The published generation's approximate index of space *by*, read into memory to add and remove works in
    place; None where the collection is searched exactly, the run rebuilds, or that index cannot be used."""
    from ..search import EXACT_LIMIT, VectorIndex
    from ..spaces import SPACES

    prev = run.previous
    if n <= EXACT_LIMIT or prev.folder is None or not prev.healthy or run.rebuilt:
        return None
    space = (prev.manifest.get("spaces") or {}).get(by) or {}
    if space.get("index") not in ("IndexIVFScalarQuantizer", "IndexIVFPQ"):
        return None
    try:
        return VectorIndex.load(prev.folder / f"{by}.faiss", SPACES[by].metric,
                                calibration=space.get("index_calibration"))
    except Exception:  # noqa: BLE001 - unreadable: trained afresh
        return None


# ---- storing analysis results -----------------------------------------------------------------------------------


def amend(cdir: Path, prepare: Callable, *, reason: str, notify: Callable[[str], None] | None = None) -> int:
    """Publish a generation made from the current one: what ``commit_columns`` and ``teach`` store.

    Waits for a running writer and reads whatever generation is current then. *prepare(n, folder, manifest)* reads
    what it needs and returns ``(replaced, write)``: the names of the files it writes anew (every other file of the
    generation is kept, by hard link) and *write(builder)*, which writes them with ``builder.path(name)`` and returns
    the manifest's changed entries. Nothing is published if either raises. Returns the new generation's number.
    """
    with WriterLock(cdir, wait=True, notify=notify):
        n, folder, manifest, lease = open_generation(cdir)
        try:
            replaced, write = prepare(n, folder, manifest)
            builder = GenerationBuilder(cdir, base=folder)
            try:
                builder.keep(name for name in manifest.get("files", {}) if name not in replaced)
                changes = write(builder)
                new = builder.publish({**manifest, **changes, "parent": n, "reason": reason,
                                       "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
            except BaseException:
                builder.discard()
                raise
        finally:
            lease.release()
        collect_garbage(cdir)
    return new


def commit_columns(cdir: Path, columns: pd.DataFrame, *, source: str,
                   notify: Callable[[str], None] | None = None, replace_metadata: bool = False) -> int:
    """Publish a generation whose works table adds or replaces *columns* (indexed by work id) of the current one;
    a column of the metadata file is replaced only with *replace_metadata* (a scholar correcting labels), never by
    an analysis (:class:`~artspace.errors.InvalidOption`).

    Waits for a running ``index`` to finish and applies the columns to whatever generation is current then, so that
    no work that it added is lost (works the columns do not cover get missing values). The manifest records what
    made each column (*source*) and which works it saw, so that a later change of the works marks it stale.
    Returns the new generation's number.
    """
    reserved = set(WORK_COLUMNS) & set(columns.columns)
    if reserved:
        raise InvalidOption(f"columns {sorted(reserved)} are artspace's own and cannot be replaced")

    def prepare(n, folder, manifest):
        metadata_cols = set((manifest.get("metadata_file") or {}).get("columns", []))
        clash = [c for c in columns.columns if c in metadata_cols and not replace_metadata]
        if clash:  # a scholar's own labels are never replaced by an analysis's
            raise InvalidOption(f"column {clash[0]!r} comes from the metadata file "
                                f"{(manifest.get('metadata_file') or {}).get('path') or manifest.get('metadata')}; "
                                f"store the result under another name (cluster --column NAME), or rename that "
                                f"column in the metadata file and run artspace index")
        works = load(folder, "works.parquet", pd.read_parquet, cdir)
        for c in columns.columns:
            works[c] = works["id"].map(columns[c])
        analyses = dict(manifest.get("analyses") or {})
        for c in columns.columns:
            if c not in metadata_cols:
                analyses[c] = {"source": source, "generation": n, "works_digest": manifest.get("works_digest"),
                               "content_digest": manifest.get("content_digest"),
                               "basis": space_basis(manifest, source)}

        def write(builder):
            works.to_parquet(builder.path("works.parquet"), index=False)
            return {"analyses": analyses}

        return {"works.parquet"}, write

    return amend(cdir, prepare, reason=source, notify=notify)
