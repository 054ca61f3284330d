"""Reading a catalog: the works, their embeddings and indexes, and the queries a researcher runs.

A :class:`Catalog` reads one generation (see :mod:`.store`) from start to end: an ``index`` run publishing a new
generation meanwhile changes nothing it answers. Open it again (or call :meth:`Catalog.refresh`) to see the new one.
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
from PIL import Image

from ..errors import CorruptCatalog, InvalidOption, NoMatch, WorkNotFound
from ..features import Extractor, FeatureSpec
from ..filters import parse_filter
from ..index import CONTEXT_K, ContentModel, VectorIndex, neighbourhood_scales, relative_search, scale_floor
from ..projection import SKETCH_DIM, CountSketch, StyleProjection
from . import generation as gen
from .generation import SIG_PROJECTION
from .store import find_catalog, open_generation, repair_hint

__all__ = ["Catalog", "SPACES", "SEARCH_SPACES"]

class Catalog:
    """An indexed collection: its works table, embeddings and indexes, and the queries a researcher runs.

    Open one with :meth:`Catalog.open`; build one with :func:`artspace.index`.

    Examples
    --------
    >>> cat = Catalog.open("data/demo")                       # doctest: +SKIP
    >>> cat.similar("dots/star_0.png", by="content", k=5)     # doctest: +SKIP
    """

    def __init__(self, directory: Path, generation: int, folder: Path, manifest: dict, lease):
        #: the catalog directory (``.artspace``)
        self.dir = directory
        self._set_generation(generation, folder, manifest, lease)
        self._extractor = None

    def _set_generation(self, generation: int, folder: Path, manifest: dict, lease) -> None:
        old = getattr(self, "_lease", None)
        #: the generation this object reads, and its folder
        self.generation, self.files, self.manifest, self._lease = generation, folder, manifest, lease
        if old is not None and old is not lease:
            old.release()
        self.spec = FeatureSpec.from_dict(manifest["spec"])
        self.root = (self.dir / manifest.get("root", "..")).resolve()
        self._works = None
        self._emb = None
        self._indexes = {}
        self._projections = None
        self._content_model = None
        self._sketches = None

    @classmethod
    def open(cls, path: str | os.PathLike = ".") -> "Catalog":
        """Open the catalog at *path* (a catalog directory, or a collection folder holding ``.artspace``)."""
        cdir = find_catalog(path)
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
        """Let writers remove this object's generation once it is no longer current (also done on garbage
        collection)."""
        if self._lease is not None:
            self._lease.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"Catalog({str(self.dir)!r}, generation={self.generation}, works={self.manifest.get('works')})"

    def _load(self, name: str, loader):
        return gen.load(self.files, name, loader, self.dir)

    @property
    def cache_dir(self) -> Path:
        """Where recomputable caches (unit responses) are kept, shared by every generation."""
        return self.dir / "cache"

    def __len__(self):
        return len(self.works)

    # ---- stored data --------------------------------------------------------------------------------------------

    @property
    def works(self) -> pd.DataFrame:
        """The works table (a copy is not made: do not modify it in place; use :meth:`update_columns`)."""
        if self._works is None:
            self._works = self._load("works.parquet", pd.read_parquet)
        return self._works

    @property
    def skipped(self) -> pd.DataFrame:
        """Files that could not be read, with the reason."""
        return self._load("skipped.csv", lambda p: pd.read_csv(p, keep_default_na=False, dtype=str))

    def embeddings(self, by: str = "style") -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` of every work in one of the stored spaces.

        ``style``: compact L_style embeddings (squared L2 ≈ :math:`L_{style}`); ``signature``: compact style
        signatures (squared L2 ≈ mean squared Hellinger distance); ``content``: unit content embeddings
        (1 − cos).
        """
        _check_space(by)
        if self._emb is None:
            def read(p):
                with np.load(p) as z:
                    return {k: z[k] for k in ("ids", *SPACES, "signature_scale")}

            self._emb = self._load("embeddings.npz", read)
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
            metric = "ip" if space == "content" else "l2"
            self._indexes[space] = self._load(f"{space}.faiss", lambda p: VectorIndex.load(p, metric))
        return self._indexes[space]

    def update_columns(self, columns: pd.DataFrame) -> None:
        """Store columns in the works table (*columns* is indexed by work id): publishes a new generation.

        Waits for a running ``artspace index`` to finish, then adds the columns to the generation current at that
        moment (works added meanwhile get missing values), and reads that generation from then on.
        """
        gen.commit_columns(self.dir, columns, reason=f"columns {', '.join(map(str, columns.columns))} stored",
                           notify=lambda msg: print(msg, file=sys.stderr))
        self.refresh()

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
            return self._work_file(self.works.loc[self.works["id"] == wid, "path"].iloc[0])
        p = Path(str(query)).expanduser()
        if p.is_file():
            return p
        raise WorkNotFound(
            f"{query!r} is neither an image file nor a work of the catalog {self.dir} (give a path to an image, "
            f"a work id such as {int(self.works['id'].iloc[0])}, or a relative path such as "
            f"{self.works['path'].iloc[0]!r})")

    def _work_file(self, rel: str) -> Path:
        """The image file of a works-table path, refused if it would lead outside the collection."""
        path = Path(rel)
        if path.is_absolute() or ".." in path.parts:
            raise CorruptCatalog(f"the works table of {self.files} lists {rel!r}, a path outside the collection "
                                     f"{self.root}; {repair_hint(self.dir)}")
        return self.root / path

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
            self._projections = (self._load("projection.npz", StyleProjection.load),
                                 self._load(SIG_PROJECTION, StyleProjection.load))
            self._content_model = self._load("content_model.npz", ContentModel.load)
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
            A filter on the works table (:mod:`artspace.filters`: comparisons, ``in`` lists, ``and``/``or``/``not``,
            ``isnull``), e.g. ``"style == 'Baroque' and year < 1700"``. It is parsed, never evaluated as code.
            :class:`~artspace.errors.NoMatch` if no work matches it.

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
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidOption(f"k must be a whole number of at least 1, not {k!r}")
        space = SEARCH_SPACES[by]
        vecs, wid = self.query_vectors(query)
        vec = vecs[space]
        allowed = None
        if where:
            mask = parse_filter(where).mask(self.works)
            if not mask.any():
                raise NoMatch(f"no work of the catalog {self.dir} matches --where {where!r} "
                              f"({len(self.works)} works searched)")
            allowed = self.works["id"].to_numpy(np.int64)[mask]
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
        from ..sheets import contact_sheet, thumbnail

        items = [(thumbnail(self.image_path(query), 320), f"query\n{Path(str(query)).name}")]
        label = "relative style d" if by == "style" else f"{by} d"
        for row in results.itertuples(index=False):
            items.append((thumbnail(self._work_file(row.path), 320),
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
        raise InvalidOption(f"by must be one of {', '.join(SEARCH_SPACES)}, not {by!r}")


def _check_space(space: str) -> None:
    if space not in SPACES:
        raise InvalidOption(f"space must be one of {', '.join(SPACES)}, not {space!r}")

