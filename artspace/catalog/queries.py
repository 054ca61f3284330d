"""Reading a catalog: the works, their embeddings and indexes, and the queries a researcher runs.

A :class:`Catalog` reads one generation (see :mod:`.store`) from start to end: an ``index`` run publishing a new
generation meanwhile changes nothing it answers. Open it again (or call :meth:`Catalog.refresh`) to see the new one.

Queries about catalogued works need neither torch nor scikit-learn: the network is loaded only when an image from
outside the catalog is asked about (:attr:`Catalog.extractor`).
"""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import CorruptCatalog, InvalidOption, NoMatch, WorkNotFound
from ..filters import parse_filter
from ..spaces import SPACES, measure, space as _space
from ..spec import FeatureSpec
from . import generation as gen
from .chunks import open_array
from .metadata import SIMILAR_COLUMNS, make_room
from .sources import is_uri, mirror
from .store import find_catalog, locate_catalog, open_generation, repair_hint

__all__ = ["Catalog", "SPACES"]


class Catalog:
    """An indexed collection: its works table, embeddings and indexes, and the queries a researcher runs.

    Open one with :meth:`Catalog.open`; build one with :func:`artspace.index`. Distances are named by the spaces of
    :mod:`artspace.spaces` (``style``, ``l_style``, ``content``), the same in every method and command.

    Examples
    --------
    >>> cat = Catalog.open("data/demo")                       # doctest: +SKIP
    >>> cat.similar("dots/star_0.png", by="content", k=5)     # doctest: +SKIP
    """

    def __init__(self, directory: Path, generation: int, folder: Path, manifest: dict, lease):
        #: the catalog directory (``.artspace``)
        self.dir = directory
        self._lease = None
        self._extractor = None
        self._outside: dict = {}  # embeddings of outside images, by (path, size, mtime)
        self._set_generation(generation, folder, manifest, lease)

    def _set_generation(self, generation: int, folder: Path, manifest: dict, lease) -> None:
        old = self._lease
        #: the generation this object reads, and its folder
        self.generation, self.files, self.manifest, self._lease = generation, folder, manifest, lease
        if old is not None and old is not lease:
            old.release()
        try:
            self.spec = FeatureSpec.from_dict(manifest["spec"])
        except Exception as e:  # noqa: BLE001 - a damaged spec
            raise CorruptCatalog(f"catalog file {folder / 'manifest.json'} is damaged (spec: {e}); "
                                 f"{repair_hint(self.dir)}") from None
        root = manifest.get("root", "..")
        #: the collection's object store (``s3://…``), or None for a local folder
        self.source_uri = root if is_uri(root) else None
        self._source = None
        #: the collection folder; for a collection in an object store, the local folder its images are fetched to
        self.root = (self.dir / root).resolve() if self.source_uri is None else mirror(self.cache_dir, root)
        self._works = self._emb = self._pairs = self._embedder = self._paths = self._max_scale = None
        self._indexes = {}
        self._outside = {}  # the embeddings depend on the generation's projections
        self._off_axes = _UNREAD  # the works' parts off the style axes (off_axes.npy), read on first use
        self._stats = _UNREAD  # how the content similarities are spread (content_stats.npz), read on first use
        self._taught: dict = {}  # taught spaces found current in this generation (checked once: it never changes)

    @classmethod
    def open(cls, path=".") -> "Catalog":
        """Open the catalog at *path* (a catalog directory, or a collection folder holding ``.artspace``)."""
        cdir = find_catalog(path)
        return cls(cdir, *open_generation(cdir))

    @classmethod
    def locate(cls, catalog=None, *, near=()) -> "Catalog":
        """Open the catalog the command line would use: *catalog* if given, else the nearest ``.artspace`` in the
        working folder or above it, else above the files *near* (:func:`~artspace.catalog.store.locate_catalog`)."""
        cdir = locate_catalog(catalog, near=near)
        return cls(cdir, *open_generation(cdir))

    def refresh(self) -> bool:
        """Read the newest published generation from now on; ``True`` if it is another than before."""
        n, folder, manifest, lease = open_generation(self.dir)
        if n == self.generation:
            lease.release()
            return False
        self._set_generation(n, folder, manifest, lease)
        return True

    def close(self) -> None:
        """Let writers remove this object's generation once it is no longer current (also done when the object is
        garbage-collected)."""
        if self._lease is not None:
            self._lease.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"Catalog({str(self.dir)!r}, generation={self.generation}, works={self.manifest.get('works')})"

    def __len__(self):
        return len(self.works)

    def _load(self, name: str, loader):
        return gen.load(self.files, name, loader, self.dir)

    @property
    def cache_dir(self) -> Path:
        """Where recomputable caches (unit responses) are kept, shared by every generation."""
        return self.dir / "cache"

    # ---- stored data --------------------------------------------------------------------------------------------

    @property
    def works(self) -> pd.DataFrame:
        """The works table (not a copy: do not modify it in place; use :meth:`update_columns`)."""
        if self._works is None:
            works = _one_chunk(self._load("works.parquet", pd.read_parquet))
            metadata = (self.manifest.get("metadata_file") or {}).get("columns") or []
            self._works = _whole_numbers(works, [c for c in metadata if c in works.columns])
        return self._works

    @property
    def skipped(self) -> pd.DataFrame:
        """Files of the collection that are not works, with the reason."""
        return self._load("skipped.csv", lambda p: pd.read_csv(p, keep_default_na=False, dtype=str))

    def embeddings(self, by: str = "style") -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` of every work in one space of :mod:`artspace.spaces`.

        ``style``: compact style signatures (squared L2 ≈ the signature distance, mean squared Hellinger);
        ``l_style``: compact L_style embeddings (squared L2 ≈ :math:`L_{style}`); ``content``: unit content
        embeddings (1 − cos).
        A taught space ``taught:NAME`` (:meth:`teach`) is refused with the command that refits it once it is stale.
        """
        self._space(by)
        return self._embeddings()["ids"], np.asarray(self._embeddings()[by])  # chunks are read into one array

    def _space(self, by: str):
        """The :class:`~artspace.spaces.Space` *by*; a taught one must be this generation's and not stale."""
        sp = _space(by)
        if sp.taught:
            self.taught_space(by)
        return sp

    def taught_space(self, by: str) -> dict:
        """What the taught space *by* (``taught:NAME``) was taught from and how: its manifest entry (label column,
        method and settings, cross-validated figures...). :class:`~artspace.errors.InvalidOption` if this generation
        holds no such space, :class:`~artspace.errors.StaleSpace` (naming the command that refits it) if its labels,
        its works or the style embedding changed since it was taught."""
        from .taught import check_taught

        if by not in self._taught:
            self._taught[by] = check_taught(self.manifest, self.works, by, self.dir)
        return self._taught[by]

    @property
    def taught_spaces(self) -> dict[str, str | None]:
        """The taught spaces this generation holds: ``{"taught:NAME": None if current, else why it is stale}``."""
        from .taught import stale_reason

        if "*" not in self._taught:
            self._taught["*"] = {f"taught:{name}": stale_reason(self.manifest, self.works, name)
                                 for name in sorted(self.manifest.get("taught") or {})}
        return dict(self._taught["*"])

    def _taught_projection(self, by: str):
        from ..contrastive import load_projection
        from .taught import files_of

        return self._load(files_of(_space(by).name.split(":", 1)[1])["projection"], load_projection)

    def teach(self, label_column: str, **options):
        """Teach a style space from the labels in *label_column* and store it in the catalog as ``taught:NAME``;
        see :func:`artspace.analysis.teaching.teach` for the options and the result. Reads the new generation from
        then on."""
        from ..analysis.teaching import teach

        return teach(self, label_column, **options)

    def unteach(self, name: str) -> int:
        """Remove the taught space *name* (``NAME`` or ``taught:NAME``) by publishing a generation without it; reads
        that generation from then on. Returns its number. The other spaces, the works and their columns are kept."""
        from .taught import TAUGHT, remove_taught

        name = name[len(TAUGHT):] if name.startswith(TAUGHT) else name
        n = remove_taught(self.dir, name, notify=lambda m: print(m, file=sys.stderr))
        self.refresh()
        return n

    def attribute(self, label_column: str | None = None, **options):
        """The likeliest labels of every unlabelled work, with the labelled works nearest to it as evidence; see
        :func:`artspace.analysis.teaching.attribute`."""
        from ..analysis.teaching import attribute

        return attribute(self, label_column, **options)

    def _embeddings(self) -> "_Arrays":
        if self._emb is None:
            self._emb = _Arrays(self)
        return self._emb

    def _rows(self, wids) -> np.ndarray:
        return np.searchsorted(self._embeddings()["ids"], np.asarray(wids, np.int64))

    def _index(self, by: str):
        from ..search import VectorIndex

        if by not in self._indexes:
            sp = self._space(by)
            if sp.taught:
                from .taught import files_of

                name = files_of(by.split(":", 1)[1])["index"]
            else:
                name = f"{by}.faiss"
            index = self._load(name, lambda p: VectorIndex.load(p, sp.metric, mmap=True))
            if index.compressed:  # its shortlist is re-ranked on the stored vectors
                index.attach(self._embeddings()["ids"], self._embeddings()[by])
            self._indexes[by] = index
        return self._indexes[by]

    def _max_style_scale(self) -> float:
        if self._max_scale is None:
            self._max_scale = float(self._embeddings()["style_scale"].max())
        return self._max_scale

    def update_columns(self, columns: pd.DataFrame, *, source: str | None = None,
                       replace_metadata: bool = False) -> None:
        """Store columns in the works table (*columns* is indexed by work id): publishes a new generation.

        Waits for a running ``artspace index`` to finish, then adds the columns to the generation current at that
        moment (works added meanwhile get missing values), and reads that generation from then on. *source* says
        what made them (``"cluster --by style -k 7"``); :meth:`stale_columns` tells when the works changed since.
        A column of the metadata file is refused (:class:`~artspace.errors.InvalidOption`) unless
        *replace_metadata* says that the labels are being corrected on purpose.
        """
        gen.commit_columns(self.dir, columns, source=source or "update_columns",
                           notify=lambda msg: print(msg, file=sys.stderr), replace_metadata=replace_metadata)
        self.refresh()

    def stale_columns(self) -> dict[str, str]:
        """Columns that analyses stored before the works last changed: ``{column: what made it}``."""
        return {c: a.get("source", "") for c, a in self.manifest.get("analyses", {}).items()
                if not gen.column_current(a, self.manifest)}

    # ---- neighbourhood scales and the collection's pair distances ----------------------------------------------

    def neighbourhood_scale(self, query) -> float:
        r"""The neighbourhood scale :math:`\rho` of *query* in the style space: its mean signature distance to its 10
        nearest works of the catalog (itself left out), as stored for a catalogued work and computed for an outside
        image. ``similar(by="style")`` divides distances by :math:`\sqrt{\rho_q\rho_y}`."""
        vecs, wid = self.query_vectors(query)
        return self._query_scale(vecs["style"], wid, self._offsets(vecs, wid, "style"))

    def _query_scale(self, vec: np.ndarray, wid: int | None, offsets=None) -> float:
        """ρ of the query: a catalogued work's stored scale, else the mean signature distance to its nearest works
        (each with its offset added, :meth:`_offsets`)."""
        from ..search import CONTEXT_K, neighbourhood_scales, relative_search, scale_floor

        scales = self._embeddings()["style_scale"]
        if wid is not None:
            return float(scales[self._rows(wid)])
        if offsets is None:
            s = float(neighbourhood_scales(self._index("style"), np.array([-1]), vec[None], k=CONTEXT_K)[0])
        else:  # the nearest by the corrected distance
            index = self._index("style")
            _, raw, _ = relative_search(index, vec, min(CONTEXT_K, index.ntotal), offsets=offsets)
            s = float(raw.mean())
        return max(s, scale_floor(scales))

    def percentile(self, by: str, distances) -> np.ndarray:
        """The share (in %) of the collection's pairs of works that lie nearer than each of *distances* in space
        *by*, from the random sample of pairs stored with the generation: 0.8 means "closer than 99.2 % of
        pairs"."""
        sp = self._space(by)
        if self._pairs is None:
            self._pairs = self._load(gen.PAIRS, lambda p: dict(np.load(p)))
        if sp.taught and by not in self._pairs:
            from .taught import files_of

            f = files_of(by.split(":", 1)[1])["pairs"]
            self._pairs[by] = self._load(f, lambda p: np.load(p, allow_pickle=False))
        sample = self._pairs[by]
        return 100.0 * np.searchsorted(sample, np.asarray(distances, np.float64), side="left") / max(len(sample), 1)

    # ---- resolving queries ------------------------------------------------------------------------------------

    def lookup(self, query) -> int | None:
        """The id of the catalogued work *query* names: an id, a relative path, a file inside the collection, or a
        bare file name that one work has. A file name that several works have is an error listing them. A file
        that changed since it was indexed names no work (None): it is read afresh, like an image from outside."""
        q = str(query)
        p = Path(q).expanduser()
        if p.is_file():
            # the file as named first (a symlink inside the collection is a work of its own), then where it leads
            named = Path(os.path.abspath(p)).parent.resolve() / p.name
            for candidate in dict.fromkeys((named, p.resolve())):
                try:
                    rel = candidate.relative_to(self.root).as_posix()
                except ValueError:
                    continue
                row = self._row_of_path(rel)
                if row is not None:
                    if self._changed_since_indexed(p, row):  # read afresh, as an image from outside
                        return None
                    return int(self.works["id"].iat[row])
            if p.is_absolute() or "/" in q or p.parent != Path("."):
                return None
        if re.fullmatch(r"\d+", q):
            ids = self._embeddings()["ids"]
            at = int(np.searchsorted(ids, int(q)))
            if at < len(ids) and int(ids[at]) == int(q):
                return int(q)
        wid = self._by_path(q)
        if wid is not None:
            return wid
        if "/" not in q:
            return self._by_name(q)
        return None

    def _changed_since_indexed(self, path: Path, row: int) -> bool:
        """Whether the file of the work in *row* changed (size or modification time) since it was indexed: its
        stored features no longer describe it, so a query naming the file reads the file instead."""
        if self.source_uri is not None:  # a local mirror of an object store: its files carry other times
            return False
        st = path.stat()
        works = self.works
        return (int(works["size"].iat[row]) != st.st_size) or (int(works["mtime_ns"].iat[row]) != st.st_mtime_ns)

    def _row_of_path(self, rel: str) -> int | None:
        """The row of the works table at relative path *rel* (a hash lookup: the index is built once per
        generation)."""
        if self._paths is None:
            self._paths = pd.Index(self.works["path"].to_numpy())
        at = int(self._paths.get_indexer([rel])[0])
        return None if at < 0 else at

    def _by_path(self, rel: str) -> int | None:
        """The id of the work at relative path *rel*."""
        row = self._row_of_path(rel)
        return None if row is None else int(self.works["id"].iat[row])

    def _by_name(self, name: str) -> int | None:
        works = self.works
        named = works[works["path"].str.rsplit("/", n=1).str[-1] == name]
        if len(named) == 1:
            return int(named["id"].iloc[0])
        if len(named) > 1:
            shown = ", ".join(named["path"].head(5))
            raise WorkNotFound(f"{len(named)} works are called {name!r} ({shown}{', …' if len(named) > 5 else ''});"
                               f" give the relative path or the id")
        return None

    def image_path(self, query) -> Path:
        """The image file *query* names: a path to any image, a work's id, a relative path or a file name."""
        wid = self.lookup(query)
        if wid is not None:
            return self._work_file(self.works["path"].iat[int(self._rows(wid))])
        p = Path(str(query)).expanduser()
        if p.is_file():
            return p
        raise WorkNotFound(
            f"{query!r} is neither an image file nor a work of the catalog {self.dir} (give a path to an image, "
            f"a work id such as {int(self.works['id'].iloc[0])}, a relative path such as "
            f"{self.works['path'].iloc[0]!r}, or a file name)")

    def _work_file(self, rel: str) -> Path:
        """The image file of a works-table path, refused if it would lead outside the collection."""
        path = Path(rel)
        if path.is_absolute() or ".." in path.parts:
            raise CorruptCatalog(f"the works table of {self.files} lists {rel!r}, a path outside the collection "
                                 f"{self.root}; {repair_hint(self.dir)}")
        if self.source_uri is not None:  # fetched from the object store once, then read from the cache
            if self._source is None:
                from .sources import RemoteSource

                self._source = RemoteSource(self.source_uri)
            row = self._row_of_path(path.as_posix())  # fetched again when the object's size changed since indexing
            size = int(self.works["size"].iat[row]) if row is not None else None
            return self._source.fetch(path.as_posix(), self.root, size=size)
        return self.root / path

    def location(self, rel: str) -> str:
        """Where the work at relative path *rel* is: a file path, or its object-store URI."""
        return f"{self.source_uri.split('?')[0].rstrip('/')}/{rel}" if self.source_uri else str(self.root / rel)

    @property
    def precision(self) -> str:
        """The precision the catalog's works were extracted in (:mod:`artspace.precision`)."""
        return self.manifest.get("precision", "float32")

    @property
    def extractor(self):
        """The :class:`~artspace.features.Extractor` matching this catalog's spec and precision (loaded on first
        use): an image from outside is embedded as the works were."""
        if self._extractor is None:
            from ..features import Extractor

            self._extractor = Extractor(self.spec, device="auto", precision=self.precision)
        return self._extractor

    def vectors(self, images: Iterable, by: str = "style") -> np.ndarray:
        """Embeddings of arbitrary images (paths or PIL images) in one of this catalog's spaces (see
        :meth:`embeddings`)."""
        if self._space(by).taught:
            return self._taught_projection(by).transform(self._all_vectors(images)["style"])
        return self._all_vectors(images)[by]

    def _all_vectors(self, images: Iterable) -> dict[str, np.ndarray]:
        """Every space's embeddings of *images*, from one forward pass, with their parts off the style
        projections' axes (``off_axes``; see :meth:`_offsets`)."""
        return self._pipeline()(self.extractor.encode(self.extractor.batch(images)), off_axes=True)

    def _offsets(self, vecs: dict, wid: int | None, by: str):
        r"""What an image from outside the catalog adds to its squared distances in the style space *by*: a
        function of work ids, or None (a catalogued work, the content space, or a catalog from before artspace
        kept each work's part off the axes).

        A compact embedding keeps a work's coordinates :math:`e` on the principal axes fitted on the collection and
        leaves out the rest, whose squared norm :math:`r^2` (its sketch's squared distance to the axes) is stored
        for every work at index time (``off_axes.npy``). The squared distance of an image *q* to a work *y* is
        :math:`\lVert e_q-e_y\rVert^2 + r_q^2 + r_y^2 - 2 r_q r_y \cos\theta`, θ the angle between the two
        parts off the axes, which is not stored. Those parts are nearly orthogonal for two different images (a
        32,768-number sketch; measured with ``benchmarks/bench_outside.py``: the orthogonal estimate is within 1 %
        of the exact distance for 90 % of the pairs of images outside a 150-painting and a 300-image catalog) and
        the same for a copy of a work. artspace takes :math:`\cos\theta \approx \max(0, \cos(e_q, e_y))^{16}`,
        which is 1 for a copy and small for different images (at most 0.14 in the signature space for the outside
        images measured). Without the parts off the axes an outside image lay about a quarter nearer than it is in
        the signature space (nearer than every pair of the collection, for a photograph searched in a small
        catalog).
        """
        from .generation import OFF_AXES

        if wid is not None or by not in OFF_AXES or "off_axes" not in vecs:
            return None
        stored = self._stored_off_axes()
        if stored is None:
            return None
        j = OFF_AXES.index(by)
        rq = math.sqrt(max(float(np.asarray(vecs["off_axes"])[j]), 0.0))
        eq = np.asarray(vecs[by], np.float64)
        eq = eq / max(float(np.linalg.norm(eq)), 1e-300)

        def offsets(ids) -> np.ndarray:
            rows = self._rows(ids)
            rx = np.sqrt(np.maximum(np.asarray(stored[rows, j], np.float64), 0.0))
            ey = np.asarray(self._embeddings()[by][rows], np.float64)
            cos = ey @ eq / np.maximum(np.linalg.norm(ey, axis=1), 1e-300)
            added = rq ** 2 + rx ** 2 - 2.0 * rq * rx * np.clip(cos, 0.0, 1.0) ** COPY_POWER
            return np.nan_to_num(np.maximum(added, 0.0), nan=0.0)  # NaN: a work extracted before artspace kept it

        return offsets

    def outside_note(self) -> str | None:
        """What a scholar should know before reading an outside image's style distances in this catalog: None,
        or a note that some works were indexed before artspace kept their parts off the style axes (so that an
        outside image lies too near them, :meth:`_offsets`) and the command that computes them."""
        stored = self._stored_off_axes()
        missing = len(self.works) if stored is None else int(np.isnan(np.asarray(stored)).any(axis=1).sum())
        if not missing:
            return None
        root = self.root if self.source_uri is None else self.source_uri
        return (f"{missing} of the catalog's {len(self.works)} works were indexed before artspace kept their part "
                f"off the style axes: the style distances of an image from outside to them may be too small (about "
                f"a quarter in the signature space); `artspace index {root} --rebuild` computes them")

    def _stored_off_axes(self) -> np.ndarray | None:
        """``off_axes.npy`` of this generation (None for a generation written before artspace kept it)."""
        if self._off_axes is _UNREAD:
            self._off_axes = (self._load("off_axes.npy", lambda p: np.load(p, mmap_mode="r", allow_pickle=False))
                              if (self.files / "off_axes.npy").is_file() else None)
        return self._off_axes

    def _content_stats(self):
        """This generation's :class:`~artspace.content_model.ContentStats` (None for one published before artspace
        kept them: content search then ranks by the cosine, until the next ``artspace index`` publishes them)."""
        if self._stats is _UNREAD:
            from ..content_model import ContentStats

            stats = (self._load(gen.CONTENT_STATS, ContentStats.load)
                     if (self.files / gen.CONTENT_STATS).is_file() else None)
            dim = self.manifest.get("spaces", {}).get("content", {}).get("dim")
            n = len(self._embeddings()["ids"])
            if stats is not None and (len(stats.groups) != n or len(stats.work_mean) != n or len(stats.work_var) != n
                                      or stats.mean.shape[1:] != (dim,) or stats.cov.shape[1:] != (dim, dim)
                                      or len(stats.cov) != len(stats.mean)
                                      or int(stats.groups.max(initial=0)) >= len(stats.mean) - 1):
                from .store import index_command

                raise CorruptCatalog(f"catalog file {self.files / gen.CONTENT_STATS} does not match the catalog's "
                                     f"works and content space (it was changed after publication); "
                                     f"`{index_command(self.dir)} --rebuild` publishes the catalog afresh")
            self._stats = stats
        return self._stats

    def _pair_off_axes(self, out: dict, by: str) -> float:
        """The squared distance off the axes of *by* of the difference of two outside images (*out*: their
        encoding): what their compact embeddings leave out of their distance, exactly."""
        import torch

        x = self._pipeline().sketch(out)[by].double()
        p = self._pipeline().projections[by]
        # the difference placed at the projection's mean, so that off_axes measures the difference itself
        return float(p.off_axes((x[0] - x[1])[None] + torch.from_numpy(p.mean).double())[0])

    def embed(self, out: dict) -> dict[str, np.ndarray]:
        """Every space's embeddings of images whose :meth:`~artspace.features.Extractor.encode` output is *out*:
        the one embedding pipeline, shared with the indexer (:class:`artspace.catalog.generation.Embedder`)."""
        return self._pipeline()(out)

    def _pipeline(self):
        """The generation's :class:`~artspace.catalog.generation.Embedder` (loaded on first use)."""
        if self._embedder is None:
            self._embedder = gen.Embedder.load(self.files, self.spec, self.dir)
        return self._embedder

    def query_vector(self, query, by: str = "style") -> tuple[np.ndarray, int | None]:
        """The embedding of *query* in space *by* and its work id (``None`` for an image from outside the catalog)."""
        vecs, wid = self.query_vectors(query, by)
        return vecs[by], wid

    def query_vectors(self, query, by: str | None = None) -> tuple[dict[str, np.ndarray], int | None]:
        """The embeddings of *query* in every space of :data:`~artspace.spaces.SPACES`, and in the taught space *by*
        if one is named (one forward pass for an outside image, remembered for the next questions about the same
        unchanged file), and its work id."""
        if by is not None and self._space(by).taught:
            vecs, wid = self.query_vectors(query)
            x = self._embeddings()[by][self._rows(wid)] if wid is not None else \
                self._taught_projection(by).transform(vecs["style"][None])[0]
            return {**vecs, by: np.asarray(x)}, wid
        wid = self.lookup(query)
        if wid is not None:
            row = self._rows(wid)
            return {by: self._embeddings()[by][row] for by in SPACES}, wid
        path = self.image_path(query)
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if key not in self._outside:
            if len(self._outside) >= 16:
                self._outside.pop(next(iter(self._outside)))
            self._outside[key] = {k: v[0] for k, v in self._all_vectors([path]).items()}
        return self._outside[key], None

    # ---- queries ---------------------------------------------------------------------------------------------

    def similar(self, query, *, by: str = "style", k: int = 10, where: str | None = None,
                ignore_subject: float = 0.0, expand: int | None = None,
                standardise: bool | None = None) -> pd.DataFrame:
        """The *k* works nearest to *query* in space *by*, nearest first.

        Parameters
        ----------
        query : path, id, relative path or file name
            An image file (inside or outside the collection) or a catalogued work.
        by : {"style", "l_style", "content"} or "taught:NAME"
            The space (:mod:`artspace.spaces`): ``style`` ranks by the style signature (mean squared Hellinger
            distance between Gram matrices) relative to the two works' neighbourhoods, ``l_style`` by Gatys et al.'s
            :math:`L_{style}` itself, ``content`` by the style-free content embedding, ``taught:NAME`` by the
            squared distance in a space taught by labels (:meth:`teach`).
        k : int
        where : str, optional
            A filter on the works table (:mod:`artspace.filters`: comparisons, ``in`` lists, ``and``/``or``/``not``,
            ``isnull``), e.g. ``"style == 'Baroque' and year < 1700"``. It is parsed, never evaluated as code.
            :class:`~artspace.errors.NoMatch` if no work matches it.
        ignore_subject : float
            γ ≥ 0, for the style spaces (``style``, ``l_style``, ``taught:NAME``): works that depict what the query
            depicts are moved down. Among the :data:`SHORTLIST_FACTOR` × *k* nearest works (at least
            :data:`SHORTLIST_MIN`), each is scored :math:`z(-d) - \\gamma\\, z(\\cos_{content})`, *d* being its
            distance in *by* and :math:`\\cos_{content}` its content cosine to the query, each standardised over
            the shortlist (z: minus the mean, over the standard deviation); the *k* best scores are returned, with
            ``content_cosine`` and ``score`` columns. 0 (the default) ranks by *d* alone. docs/benchmarks.md
            measures γ = 0.5: on pastiches the same painting is found more often and the same subject less, at a
            small cost in same-medium precision on pacs-dev.
        expand : int, optional
            For ``content``: rank by the query expanded with its *expand* nearest works (:data:`EXPAND` when None;
            0: the query alone), :math:`q' = e_q + \\sum_i \\max(0, \\cos(e_q, e_i))\\, e_i` scaled to unit length,
            :math:`e_i` the content embeddings of the query's nearest works in the whole catalog, its own work
            left out (average query expansion, Chum et al. 2007, weighted as Radenović et al. 2018's α-QE with
            α = 1). Works sharing the query's subject in another hand lie nearer to what the query and its
            neighbours share than to the query alone; docs/benchmarks.md measures it on three sets. The result
            gets an ``expanded`` column, :math:`1-\\cos(q', e_y)`, the order of the rows; ``distance`` stays the
            pair's own :math:`1-\\cos(e_q, e_y)`, the figure ``artspace distance`` prints.
        standardise : bool, optional
            For ``content`` (default True): among the :data:`SHORTLIST_FACTOR` × *k* works nearest to the
            (expanded) query (at least :data:`SHORTLIST_MIN`), rank by the standardised similarity *s* of
            :class:`~artspace.content_model.ContentStats`: the cosine as a z-score against the query's similarities to
            the whole collection, to the works of the candidate's style group, and against the candidate's own
            similarities to the collection, averaged. A medium whose works are all alike (sketches) and works near
            everything (hubs) then crowd the list less; docs/benchmarks.md measures it on three sets. The result
            gets a ``score`` column (*s*, the order of the rows). False ranks by the cosine to the (expanded)
            query. A catalog published before artspace kept these statistics ranks by the cosine until the next
            ``artspace index``.

        Returns
        -------
        DataFrame with ``rank``, ``id``, ``path``, ``distance``, ``percentile``, then for ``by="style"``
        ``signature`` and ``l_style``, then ``width``, ``height`` and the metadata columns. ``distance`` is, for
        style, the relative signature distance :math:`d_{sig}/\\sqrt{\\rho_q\\rho_y}` (1: as far apart as the two
        works' 10 nearest works are on average), with the signature distance :math:`d_{sig}` (0 to 1) and
        :math:`L_{style}` beside it; for l_style :math:`L_{style}`; for content :math:`1-\\cos`; all estimated from
        the compact embeddings (``artspace distance`` prints the exact figures of a pair). ``percentile`` is the
        share of the collection's pairs that are nearer (0.8: closer than 99.2 % of pairs). For content the
        rows are ranked by ``score`` (see *standardise*), else by ``expanded`` (see *expand*).
        """
        sp = self._space(by)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidOption(f"k must be a whole number of at least 1, not {k!r}")
        gamma = _subject_weight(ignore_subject, sp)
        n_expand = _expansion(expand, sp)
        stats = self._standardising(standardise, sp)
        vecs, wid = self.query_vectors(query, by)
        allowed = self._allowed(where, wid)
        offsets = self._offsets(vecs, wid, by)
        if n_expand or stats is not None:
            q = self._expanded(vecs[by], wid, n_expand) if n_expand else np.asarray(vecs[by], np.float64)
            pool = max(SHORTLIST_MIN, SHORTLIST_FACTOR * k) if stats is not None else k
            _, _, found = self._search(by, q, wid, pool, allowed)
            at = self._rows(found)
            y = self._embeddings()[by][at]
            expanded = measure(by, q[None], y[None])[0]
            if stats is None:
                order = np.argsort(expanded, kind="stable")  # faiss ranks in float32, the column is float64
            else:
                score = stats.score(q, y, stats.groups[at], (stats.work_mean[at], stats.work_var[at]))
                order = np.argsort(-score, kind="stable")[:k]
            extra = {"expanded": expanded[order]} if n_expand else {}
            if stats is not None:
                extra["score"] = score[order]
            return self._result(by, vecs, wid, found[order], extra)
        if not gamma:
            _, _, found = self._search(by, vecs[by], wid, k, allowed, offsets)
            return self._result(by, vecs, wid, found)
        d, _, shortlist = self._search(by, vecs[by], wid, max(SHORTLIST_MIN, SHORTLIST_FACTOR * k), allowed, offsets)
        cos = 1.0 - self._measure("content", vecs, wid, shortlist)[0]
        score = _standardised(-np.asarray(d, float)) - gamma * _standardised(cos)
        order = np.argsort(-score, kind="stable")[:k]
        return self._result(by, vecs, wid, shortlist[order], {"content_cosine": cos[order], "score": score[order]})

    def _standardising(self, value, sp):
        """The :class:`~artspace.content_model.ContentStats` a content search in space *sp* standardises by
        (*value*: :meth:`similar`'s *standardise*), or None."""
        if value is not None and not isinstance(value, (bool, np.bool_)):
            raise InvalidOption(f"standardise (--standardise) must be True or False, not {value!r}")
        if sp.name != "content":
            if value:
                raise InvalidOption(f"standardise (--standardise) ranks a content search; with --by {sp.name} "
                                    f"use --by content, or leave it out")
            return None
        return self._content_stats() if value is None or value else None

    def _expanded(self, vec: np.ndarray, wid: int | None, n: int) -> np.ndarray:
        """The content query *vec* expanded with its *n* nearest works (:meth:`similar`'s *expand*), unit length."""
        _, i = self._index("content").search(np.asarray(vec)[None], n + (wid is not None))
        found = i[0][(i[0] >= 0) & (i[0] != (-1 if wid is None else wid))][:n]
        return expand_query(np.asarray(vec, np.float64), self._embeddings()["content"][self._rows(found)])

    def _allowed(self, where: str | None, wid: int | None = None) -> np.ndarray | None:
        """The ids *where* lets a search return (None: all); :class:`~artspace.errors.NoMatch` when none but the
        query *wid* itself matches."""
        if not where:
            return None
        mask = parse_filter(where).mask(self.works)
        ids = self.works["id"].to_numpy(np.int64)[mask]
        if not len(ids) or (wid is not None and ids.tolist() == [int(wid)]):
            only = " but the query itself" if len(ids) else ""
            raise NoMatch(f"no work of the catalog {self.dir}{only} matches --where {where!r} "
                          f"({len(self.works)} works searched)")
        return ids

    def _search(self, by: str, vec: np.ndarray, wid: int | None, k: int, allowed=None, offsets=None):
        """``(distance, raw distance, ids)`` of the *k* nearest works, as :meth:`similar` ranks them (an outside
        image by its distances with their :meth:`_offsets` added)."""
        from ..search import relative_search

        if _space(by).relative:
            scales = self._embeddings()["style_scale"]
            return relative_search(self._index(by), vec, k, query_scale=self._query_scale(vec, wid, offsets),
                                   scales=lambda f: scales[self._rows(f)], max_scale=self._max_style_scale(),
                                   allowed=allowed, exclude=wid, offsets=offsets)
        if offsets is not None:
            return relative_search(self._index(by), vec, k, allowed=allowed, offsets=offsets)
        d, i = self._index(by).search(vec[None], k + (wid is not None), allowed=allowed)
        keep = (i[0] >= 0) & (i[0] != (-1 if wid is None else wid))
        distance = np.maximum(d[0][keep], 0.0)[:k].astype(float)
        return distance, distance, i[0][keep][:k]

    def _measure(self, by: str, vecs: dict, wid: int | None, found) -> tuple[np.ndarray, np.ndarray]:
        """``(distance, raw distance)`` from a query's embeddings *vecs* to the works *found* in space *by*, in
        float64 from the stored embeddings, an outside image's :meth:`_offsets` added: the one computation behind
        every figure :meth:`similar`, :meth:`distance`, :meth:`distances` and the percentiles print (faiss only
        ranks)."""
        emb = self._embeddings()
        offsets = self._offsets(vecs, wid, by)
        raw = measure(by, np.asarray(vecs[by])[None], emb[by][self._rows(found)][None])[0]
        if offsets is not None:
            raw = raw + offsets(np.asarray(found))
        if not _space(by).relative:
            return raw, raw
        scale = self._query_scale(vecs[by], wid, offsets)
        return raw / np.sqrt(scale * emb["style_scale"][self._rows(found)]), raw

    def _result(self, by: str, vecs: dict, wid: int | None, found, extra: dict | None = None) -> pd.DataFrame:
        """The table :meth:`similar` returns for the works *found*, in that order: rank, id, path, distance,
        percentile, then the *extra* columns (or, for style, the signature distance and :math:`L_{style}`), then
        the works table's other columns."""
        distance, raw = self._measure(by, vecs, wid, found)
        at = self._rows(found)
        extra = dict(extra or {})
        if by == "style":
            x = self._embeddings()["l_style"][at]
            off = self._offsets(vecs, wid, "l_style")
            extra["signature"] = np.asarray(raw, float)
            # the figure `--by l_style` and `distance` print: measure's float64 sum, not a float32 one
            extra["l_style"] = (measure("l_style", np.asarray(vecs["l_style"])[None], x[None])[0]
                                + (off(np.asarray(found)) if off is not None else 0.0))
        works = self.works
        listed = self._listed_columns(works)
        rows = works.iloc[at]  # one gather of the works' rows; the table is built at once (a query is milliseconds)
        data = {"rank": np.arange(1, len(found) + 1)}
        for column, name in listed[:2]:  # id, path
            data[name] = rows[column].array
        data["distance"] = np.asarray(distance, float)
        data["percentile"] = self.percentile(by, distance)
        data.update(extra)
        for column, name in listed[2:]:
            data[name] = rows[column].array
        return pd.DataFrame(data)

    def _listed_columns(self, works: pd.DataFrame) -> list[tuple[str, str]]:
        """``(column, name)`` of the works table's columns that :meth:`similar` lists, in order, under the name it
        lists them by (a metadata column named 'rank' as 'meta_rank': :func:`~.metadata.make_room`); worked out
        once per works table."""
        memo = getattr(self, "_listed", None)
        if memo is None or memo[0] is not works:
            kept = [c for c in works.columns if c not in ("size", "mtime_ns", "checksum")]
            names = make_room(works.iloc[:0][kept], SIMILAR_COLUMNS).columns
            memo = self._listed = (works, list(zip(kept, names)))
        return memo[1]

    def neighbours(self, by: str = "style", k: int = 10, ids=None, *, expand: int | None = None,
                   standardise: bool | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every work's *k* nearest works in space *by*, exactly as :meth:`similar` ranks them (content queries
        expanded with *expand* nearest works, :data:`EXPAND` by default, and ranked by the standardised similarity
        unless *standardise* is False, as there).

        Returns ``(ids, neighbours, distances)``: the query works (default: all, in id order), an (n, k) array of
        neighbour ids (−1 where the collection has fewer) and the distances :meth:`similar` prints.
        """
        from ..search import batch_search

        sp = self._space(by)
        n_expand = _expansion(expand, sp)
        stats = self._standardising(standardise, sp)
        emb = self._embeddings()
        ids = emb["ids"] if ids is None else np.asarray(ids, np.int64)
        rows = self._rows(ids)
        if _space(by).relative:
            scales = emb["style_scale"]
            nbr, _ = batch_search(self._index(by), emb[by][rows], k, ids=ids, scales=scales[rows],
                                  scale_of=lambda f: scales[self._rows(f)], max_scale=float(scales.max()))
        elif n_expand or stats is not None:
            nbr = self._content_neighbours(by, ids, rows, k, n_expand, stats)
        else:
            nbr, _ = batch_search(self._index(by), emb[by][rows], k, ids=ids)
        return ids, nbr, self._measure_rows(by, rows, nbr)

    def _content_neighbours(self, by: str, ids: np.ndarray, rows: np.ndarray, k: int, n: int, stats,
                            candidates: int = 16_384) -> np.ndarray:
        """:meth:`neighbours` of catalogued works whose queries are expanded with their *n* nearest works and/or
        ranked by *stats* (:class:`~artspace.content_model.ContentStats`), in chunks of rows (a million works'
        expanded queries are never all in memory; at most *candidates* candidates at a time), ordered as
        :meth:`similar` orders them."""
        from ..search import batch_search

        x, index = self._embeddings()[by], self._index(by)
        pool = max(SHORTLIST_MIN, SHORTLIST_FACTOR * k) if stats is not None else k
        out = np.full((len(ids), k), -1, np.int64)
        chunk = max(1, candidates // pool)
        for s in range(0, len(ids), chunk):
            q = np.asarray(x[rows[s:s + chunk]], np.float64)
            if n:
                first, _ = batch_search(index, q, n, ids=ids[s:s + chunk])
                q = expand_query(q, np.where((first >= 0)[..., None], x[self._rows(np.maximum(first, 0))], 0.0))
            nbr, _ = batch_search(index, q.astype(np.float32), pool, ids=ids[s:s + chunk])
            found, at = nbr >= 0, self._rows(np.maximum(nbr, 0))
            y = np.asarray(x[at], np.float64)
            if stats is None:
                key = np.where(found, measure(by, q, y), np.inf)
            else:
                key = np.where(found, -stats.score(q, y, stats.groups[at], (stats.work_mean[at], stats.work_var[at])),
                               np.inf)
            order = np.argsort(key, axis=1, kind="stable")[:, :k]
            out[s:s + chunk, :order.shape[1]] = np.take_along_axis(nbr, order, 1)
        return out

    def _measure_rows(self, by: str, rows: np.ndarray, nbr: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """:meth:`_measure` for many catalogued queries (*rows*) and their neighbours (*nbr*, −1: none) at once."""
        emb = self._embeddings()
        x, out = emb[by], np.full(nbr.shape, np.nan)
        for s in range(0, len(rows), chunk):
            n = nbr[s:s + chunk]
            d = measure(by, x[rows[s:s + chunk]], x[self._rows(np.maximum(n, 0))])
            if _space(by).relative:
                scales = emb["style_scale"]
                d = d / np.sqrt(scales[rows[s:s + chunk]][:, None] * scales[self._rows(np.maximum(n, 0))])
            out[s:s + chunk] = np.where(n >= 0, d, np.nan)
        return out

    def distances(self, query, by: str = "style") -> tuple[np.ndarray, np.ndarray]:
        """``(ids, distances)`` from *query* to every work of the catalog in space *by*, as :meth:`similar` would
        print them (the query itself, if catalogued, at distance 0)."""
        self._space(by)
        vecs, wid = self.query_vectors(query, by)
        ids = self._embeddings()["ids"]
        return ids, self._measure(by, vecs, wid, ids)[0]

    def sheet(self, query, results: pd.DataFrame, *, by: str = "style", captions: Iterable[str] = ()):
        """A contact sheet of *query* and the works of a :meth:`similar` result: each caption gives the file name,
        the distance and its percentile, and the values of the *captions* columns (e.g. the label columns)."""
        from ..sheets import contact_sheet, thumbnail

        missing = [c for c in captions if c not in self.works.columns]
        if missing:
            raise InvalidOption(f"caption column {missing[0]!r} is not in the works table; choose from "
                                f"{', '.join(map(str, self.works.columns))}")
        path, wid = self.image_path(query), self.lookup(query)
        items = [(thumbnail(path, 320), f"query: {path.name}" + ("" if wid is None else f" (id {int(wid)})"))]
        for row in results.to_dict("records"):
            extra = " · ".join(str(row[c]) for c in captions if c in row and pd.notna(row[c]))
            text = (f"#{row['rank']} {Path(row['path']).name} (id {row['id']})\n{by} d = {row['distance']:.4g}"
                    f" ({row['percentile']:.2g} % of pairs nearer)" + (f"\n{extra}" if extra else ""))
            items.append((thumbnail(self._work_file(row["path"]), 320), text))
        return contact_sheet(items, columns=min(6, len(items)), title=f"nearest by {_space(by).label}")

    def distance(self, a, b, *, precision: str = "float32") -> dict:
        """Every distance between two images or works: what each space ranks by, and the exact figures.

        Returns ``{"style": {...}, "l_style": {...}, "content": {...}, "exact": {...}}``, and an entry per taught
        space of the catalog that is current (``"taught:NAME"``: its ``distance`` and ``percentile``). Each space's entry holds
        the ``distance`` :meth:`similar` prints for this pair in that space and its ``percentile`` among the
        collection's pairs; ``style`` adds the compact signature distance ``signature`` and the two neighbourhood
        scales ``scale_a``, ``scale_b`` it is divided by. ``exact`` holds the figures computed from the two
        images' full feature maps at the catalog's input size (:meth:`artspace.features.Extractor.distance`):
        ``style`` = :math:`L_{style}` and its terms ``style_layers``, ``signature`` and ``signature_layers``,
        ``content`` = :math:`\\tfrac12\\sum(F-P)^2` on the content layer. The exact figures are computed in
        *precision* (float32 by default, whatever the catalog was extracted in); an image from outside the catalog
        is placed in the spaces as the works were, in the catalog's :attr:`precision`.
        """
        from ..features import Extractor
        from ..precision import resolve_precision

        ex = self.extractor
        if resolve_precision(precision, ex.device) != ex.precision:
            ex = Extractor(self.spec, device=ex.device, precision=precision)
        paths = [self.image_path(a), self.image_path(b)]
        out = ex.encode(ex.batch(paths), content_maps=True)
        result = {}
        wids = self.lookup(a), self.lookup(b)
        # outside images are placed in the catalog's precision, as the works were
        placed = None if None not in wids else out if ex is self.extractor else \
            self.extractor.encode(self.extractor.batch(paths)) if wids == (None, None) else None
        if None not in wids:
            computed = [{}, {}]
        elif placed is not None:
            both = self._pipeline()(placed, off_axes=True)
            computed = [{k: v[j] for k, v in both.items()} for j in (0, 1)]
        else:
            computed = [self.query_vectors(q)[0] for q in (a, b)]
        for by in SPACES:
            va, vb = [self._embeddings()[by][self._rows(w)] if w is not None else computed[j][by]
                      for j, w in enumerate(wids)]
            # what the compact embeddings leave out: an outside image's offset to a work (_offsets), or for two
            # outside images their difference's part off the axes, exactly
            offsets = [self._offsets(computed[j], w, by) for j, w in enumerate(wids)]
            if wids == (None, None) and by != "content":
                off = self._pair_off_axes(placed, by)
            elif offsets[0] is not None:
                off = float(offsets[0](np.array([wids[1]]))[0])
            elif offsets[1] is not None:
                off = float(offsets[1](np.array([wids[0]]))[0])
            else:
                off = 0.0
            raw = float(measure(by, np.asarray(va)[None], np.asarray(vb)[None, None])[0, 0]) + off
            entry = {"distance": raw}
            if SPACES[by].relative:
                ra, rb = self._query_scale(va, wids[0], offsets[0]), self._query_scale(vb, wids[1], offsets[1])
                entry = {"distance": raw / math.sqrt(ra * rb), "signature": raw, "scale_a": ra, "scale_b": rb}
            entry["percentile"] = float(self.percentile(by, [entry["distance"]])[0])
            result[by] = entry
        for by, stale in self.taught_spaces.items():  # the taught spaces that are current
            if stale is None:
                va, vb = [self._embeddings()[by][self._rows(w)] if w is not None else
                          self._taught_projection(by).transform(np.asarray(computed[j]["style"])[None])[0]
                          for j, w in enumerate(wids)]
                raw = float(measure(by, np.asarray(va)[None], np.asarray(vb)[None, None])[0, 0])
                result[by] = {"distance": raw, "percentile": float(self.percentile(by, [raw])[0])}
        result["exact"] = ex.exact_distances(out)
        return result

    # ---- pastiches -------------------------------------------------------------------------------------------

    def moments(self, query) -> tuple[np.ndarray, np.ndarray] | None:
        """A catalogued work's relu4_1 channel means and standard deviations (512 each, float32) as stored at index
        time (``moments.npy``): AdaIN's style, without reading the image. None for an image outside the catalog,
        or a work extracted before artspace kept them."""
        wid = self.lookup(query)
        if wid is None or "moments.npy" not in self.manifest.get("files", {}):
            return None
        row = np.asarray(self._embeddings()["moments"][self._rows(wid)], np.float32).reshape(-1)
        if not np.isfinite(row).all():
            return None
        half = len(row) // 2
        return row[:half], row[half:]

    def transfer(self, content, style, output=None, *, method: str = "gatys", **options):
        """A pastiche of *content* in the style of *style* (each a work id, relative path, file name or image file;
        *style* may be a list of them), as ``artspace transfer`` makes it.

        ``method="gatys"`` (default, as on the command line): the optimisation of Gatys et al. 2016
        (:func:`artspace.transfer.synthesise`), whose *options* are :class:`~artspace.transfer.TransferOptions`'.
        ``method="adain"``: one pass of AdaIN (:func:`artspace.feedforward.adain_transfer`), in about a second,
        taking each catalogued style's stored relu4_1 moments (:meth:`moments`) instead of reading its image;
        *options* are that function's (``alpha``, ``style_blend``, ``size``, ``preserve_colors``, ``decoder`` ...).
        """
        styles = list(style) if isinstance(style, (list, tuple)) else [style]
        if method == "gatys":
            from ..transfer import synthesise

            return synthesise(content, styles, catalog=self.dir, output=output, **options)
        if method != "adain":
            raise InvalidOption(f"method must be 'gatys' or 'adain', not {method!r}")
        from ..feedforward import adain_transfer

        sources = []
        for s in styles:
            stored = self.moments(s)
            if stored is None:
                sources.append(self.image_path(s))
                continue
            wid = self.lookup(s)
            path = self.works["path"].iat[int(self._rows(wid))]
            sources.append((*stored, f"work {wid} ({path}): relu4_1 moments stored by the catalog {self.dir} at "
                                     f"{self.spec.size} px"))
        return adain_transfer(self.image_path(content), sources, output, protected_dirs=[self.dir], **options)


def _whole_numbers(table: pd.DataFrame, columns) -> pd.DataFrame:
    """*table* with each metadata column of whole numbers that has empty cells (read as floats: years, inventory
    numbers) as nullable integers, so that a year prints 1650, not 1650.0, and a numeric label reads "3", not "3.0"."""
    for c in columns:
        col = table[c]
        if col.dtype.kind == "f" and col.isna().any():
            v = col.dropna().to_numpy()
            if len(v) and np.all(np.isfinite(v)) and np.all(v == np.round(v)) and np.abs(v).max() < 2 ** 53:
                table[c] = col.astype("Int64")
    return table


def _one_chunk(table: pd.DataFrame) -> pd.DataFrame:
    """*table* with each Arrow-backed column in one contiguous chunk: parquet reads a million paths in several, and
    taking 10 rows of a chunked column then costs 6 ms instead of a few microseconds."""
    import pyarrow as pa

    for c in table.columns:
        a = table[c].array
        if hasattr(a, "__arrow_array__"):
            chunked = a.__arrow_array__()
            if isinstance(chunked, pa.ChunkedArray) and chunked.num_chunks > 1:
                table[c] = pd.array(chunked.combine_chunks(), dtype=a.dtype)
    return table


class _Arrays:
    """A generation's embedding arrays (``ids``, one per space, ``style_scale``), each memory-mapped on first use:
    a query reads the pages it needs, not the whole collection's vectors."""

    def __init__(self, cat: Catalog):
        self.cat, self.arrays = cat, {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.arrays and key.startswith("taught:"):
            from .taught import files_of

            self.arrays[key] = self.cat._load(files_of(key.split(":", 1)[1])["embedding"],
                                              lambda p: np.load(p, mmap_mode="r", allow_pickle=False))
        if key not in self.arrays:
            self.arrays[key] = open_array(self.cat.manifest, key, lambda name: self.cat._load(
                name, lambda p: np.load(p, mmap_mode="r", allow_pickle=False)))
        return self.arrays[key]


#: The power of the cosine of two compact embeddings taken for the cosine of their parts off the axes
#: (:meth:`Catalog._offsets`): 1 for a copy, small for different images (docs/benchmarks.md).
COPY_POWER = 16

#: Marks a generation's file not read yet (None: the generation has no such file).
_UNREAD = object()

#: :meth:`Catalog.similar` with ``ignore_subject`` re-ranks this many times *k* nearest works, at least SHORTLIST_MIN.
SHORTLIST_FACTOR, SHORTLIST_MIN = 6, 60


def _subject_weight(value, sp) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise InvalidOption(f"ignore_subject (--ignore-subject) must be a number of at least 0 (0.5 is a good "
                            f"start), not {value!r}")
    if value and sp.name == "content":
        raise InvalidOption("ignore_subject (--ignore-subject) re-ranks a style search by the content space; with "
                            "--by content it has nothing to ignore: use --by style, l_style or taught:NAME")
    return float(value)


#: :meth:`Catalog.similar` ranks a content query expanded with its EXPAND nearest works (``expand``): on the three
#: development sets of docs/benchmarks.md 1, 2 and 3 each found the subject more often than the query alone, and the
#: hand less often or about as often; 2 did best on pacs-dev.
EXPAND = 2


def expand_query(vec: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    r"""Average query expansion weighted by similarity (α-QE with α = 1; Chum et al. 2007, Radenović et al.
    2018): :math:`q' = (e_q + \sum_i \max(0, e_q \cdot e_i)\, e_i) / \lVert\cdot\rVert` for a unit query *vec* and
    unit *neighbours* (n, d), in float64; works of one query (1-d *vec*) or of many (*vec* (m, d), *neighbours*
    (m, n, d)).

    >>> expand_query(np.array([1.0, 0.0]), np.array([[0.0, 1.0]])).round(3).tolist()
    [1.0, 0.0]
    >>> expand_query(np.array([1.0, 0.0]), np.array([[0.6, 0.8]])).round(3).tolist()
    [0.943, 0.333]
    """
    q = np.asarray(vec, np.float64)
    y = np.asarray(neighbours, np.float64)
    w = np.maximum(np.einsum("...d,...nd->...n", q, y), 0.0)
    out = q + np.einsum("...n,...nd->...d", w, y)
    return out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)


def _expansion(value, sp) -> int:
    if value is None:
        return EXPAND if sp.name == "content" else 0
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InvalidOption(f"expand (--expand) must be a whole number of at least 0 (0: the query alone), not "
                            f"{value!r}")
    if value and sp.name != "content":
        raise InvalidOption(f"expand (--expand) widens a content query with its nearest works; with --by {sp.name} "
                            f"use --by content, or leave expand out")
    return int(value)


def _standardised(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)
