r"""Searching the catalog's embeddings: faiss indexes and neighbourhood scales. The style-free content embedding
they search is made in :mod:`artspace.content_model`.

Each space of :mod:`artspace.spaces` has one index: squared Euclidean distance for ``style`` (the signature) and
``l_style`` (an estimate of :math:`L_{style}`), inner product of unit vectors for ``content`` (reported as
:math:`1-\cos`). The style ranking divides each distance by the two works' neighbourhood scales
(:func:`relative_search`, :func:`batch_search`), which evens out the density of the space.

Which faiss index: up to :data:`EXACT_LIMIT` works an exact flat index (every distance computed); above it an
inverted file of 8-bit scalar-quantised codes (``IVF{2√n},SQ8``) that shortlists candidates, re-ranked by their
exact distance on the stored (memory-mapped) vectors: millions of works in milliseconds and one byte a dimension,
at a small cost in recall. How many lists a search probes is chosen when the index is trained
(:meth:`VectorIndex.calibrate`): the fewest that find :data:`TARGET_RECALL` of the exact 10 nearest other works
for a seeded sample of the collection's own works (the lower end of a 95 % interval, not the mean, must reach it). The settings, the probes and the recall measured are recorded in the
manifest. A later ``index`` run adds and removes works in place (:meth:`VectorIndex.build` with ``previous``).
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from typing import Callable

import faiss
import numpy as np

from .atomic import atomic_savez, atomic_write
from .content_model import ContentModel, ContentStats, ward_groups  # noqa: F401  (exported here before they moved)

__all__ = ["EXACT_LIMIT", "CONTEXT_K", "VectorIndex", "ContentModel", "ContentStats", "NeighbourLists",
           "neighbourhood_scales", "relative_search", "scale_floor", "ward_groups"]

#: The recall@10 against exact search that an approximate index is tuned to reach on a sample of its own works.
TARGET_RECALL = 0.97
#: Largest collection searched with an exact (flat) index. 200,000 works × 1,024 float32 numbers (style and content) fit in 0.8 GB.
EXACT_LIMIT = 200_000
#: An approximate search re-ranks at least this many candidates (and at least 4 per result) by their exact distance
#: to the query, computed on the stored vectors.
SHORTLIST = 64
#: An approximate index is trained again from scratch once the collection has grown or shrunk by this factor since
#: it was trained; between, works are added to and removed from it in place.
RETRAIN_FACTOR = 2.0


def _inner(index: faiss.Index) -> faiss.Index:
    return faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else faiss.downcast_index(index)


class VectorIndex:
    """A faiss index with the catalog's work ids as labels.

    Up to :data:`EXACT_LIMIT` works an exact flat index. Above it an inverted file of 8-bit scalar-quantised codes
    (``IVF{2√n},SQ8``: one byte a dimension instead of four), which only shortlists: the :data:`SHORTLIST`
    candidates it finds are re-ranked by their exact distance to the query, computed on the stored vectors
    (:meth:`attach`; memory-mapped in a query process), so every distance it returns is exact and only recall is
    approximate. (Product quantisation, 32–64 bytes a work, lost 40 % of the true neighbours of the 512-d content
    embeddings even when every list was probed, and OPQ a tenth: docs/benchmarks.md.) How many lists a search probes
    is calibrated when the index is trained (:meth:`calibrate`); the settings and the recall measured are recorded in
    the manifest (:meth:`describe`).

    Parameters
    ----------
    metric : {"l2", "ip"}
        Squared Euclidean distance, or inner product (for unit vectors, cosine similarity).
    """

    def __init__(self, index: faiss.Index, metric: str, calibration: dict | None = None):
        self.index = index
        self.metric = metric
        #: for an approximate index: its settings and the recall@10 measured (:meth:`calibrate`)
        self.calibration = calibration or {}
        #: ids (ascending) and vectors (rows in the same order) that a compressed index re-ranks on
        self.ids: np.ndarray | None = None
        self.vectors = None

    @property
    def kind(self) -> str:
        inner = _inner(self.index)
        return "exact" if isinstance(inner, (faiss.IndexFlatL2, faiss.IndexFlatIP)) else type(inner).__name__

    @property
    def compressed(self) -> bool:
        """Whether the index holds codes, not vectors, and so re-ranks its candidates on :attr:`vectors`."""
        return isinstance(_inner(self.index), (faiss.IndexIVFScalarQuantizer, faiss.IndexIVFPQ))

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def attach(self, ids: np.ndarray, vectors) -> "VectorIndex":
        """Give a compressed index the stored vectors to re-rank on: *ids* ascending, *vectors* their rows (an
        array, memory-mapped or not, indexable by an array of rows)."""
        self.ids, self.vectors = ids, vectors
        return self

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, *, metric: str = "l2",
              exact_limit: int | None = None, previous: "VectorIndex | None" = None,
              unchanged: np.ndarray | None = None) -> "VectorIndex":
        """The index of *vectors* labelled *ids* (ascending).

        With *previous*, an approximate index of an earlier state of the collection, and *unchanged* (a boolean per
        row: the work was in *previous* with this same vector), the works that left or changed are removed from it
        and the new and changed ones added, without training it again, unless the collection has grown or shrunk
        by :data:`RETRAIN_FACTOR` since it was trained. (*previous* must be read into memory, not memory-mapped.)
        *exact_limit* defaults to :data:`EXACT_LIMIT`.
        """
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        n, d = vectors.shape
        if n <= (EXACT_LIMIT if exact_limit is None else exact_limit):
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            index = faiss.IndexIDMap2(faiss.IndexFlatL2(d) if metric == "l2" else faiss.IndexFlatIP(d))
            if n:
                index.add_with_ids(vectors, ids)
            return cls(index, metric)
        if previous is not None and unchanged is not None and previous.updatable(n, d, metric):
            inner = _inner(previous.index)  # a view: previous.index owns the index and goes on in the result
            keep = ids[unchanged]
            held = _ivf_ids(inner)
            gone = held[~np.isin(held, keep)]
            if len(gone):
                inner.remove_ids(faiss.IDSelectorBatch(gone))
            add = ~unchanged
            if add.any():  # only these rows are read (vectors may be memory-mapped)
                inner.add_with_ids(np.ascontiguousarray(vectors[add], np.float32), ids[add])
            cal = dict(previous.calibration)
            cal["works_changed_since_trained"] = int(cal.get("works_changed_since_trained", 0)) + \
                int(len(gone) + add.sum())
            return cls(previous.index, metric, cal).attach(ids, vectors)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        nlist = max(1, int(2 * math.sqrt(n)))
        faiss_metric = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        quantizer = faiss.IndexFlatL2(d) if metric == "l2" else faiss.IndexFlatIP(d)
        inner = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, faiss_metric)
        inner.cp.niter = 10  # faiss's default, 25, more than doubles the training time
        rng = np.random.default_rng(0)
        sample = vectors[np.sort(rng.choice(n, size=min(n, 50 * nlist), replace=False))]
        inner.train(sample)
        inner.add_with_ids(vectors, ids)
        built = cls(inner, metric).attach(ids, vectors)
        built.calibrate(ids, vectors)
        built.calibration.update({"nlist": int(nlist), "code": "SQ8", "bytes_per_work": int(d),
                                  "shortlist": SHORTLIST, "trained_on": int(n), "works_changed_since_trained": 0})
        return built

    def updatable(self, n: int, d: int, metric: str) -> bool:
        """Whether works can be added to and removed from this index for a collection of *n* works of dimension *d*
        (an approximate index, trained on at least 1/:data:`RETRAIN_FACTOR` and at most :data:`RETRAIN_FACTOR`
        times *n* works)."""
        trained = int(self.calibration.get("trained_on", 0))
        return (self.compressed and self.index.d == d and self.metric == metric and trained > 0
                and trained / RETRAIN_FACTOR <= n <= trained * RETRAIN_FACTOR)

    def describe(self) -> dict:
        """What the manifest records of this index: its kind and, when approximate, its settings and calibration."""
        return {"index": self.kind, **({"index_calibration": self.calibration} if self.calibration else {})}

    def calibrate(self, ids: np.ndarray, vectors: np.ndarray, *, queries: int = 256, k: int = 10,
                  target: float = TARGET_RECALL, seed: int = 0) -> dict:
        """Probe the fewest inverted lists that find *target* of the exact *k* nearest other works (recall@k),
        measured for *queries* works drawn (seeded) from the collection itself; record and return what was measured.

        The query's own row is left out of both lists (it is always found and would flatter the recall), and the
        target must be met by the lower end of a one-sided 95 % interval of the mean over the queries, not by the
        mean alone: a calibration that only just reaches it on these works falls short on others."""
        inner = _inner(self.index)
        n = len(ids)
        k = min(k, n - 1)
        rng = np.random.default_rng(seed)
        rows = rng.choice(n, size=min(queries, n), replace=False)
        q = np.ascontiguousarray(vectors[rows], np.float32)
        metric = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        _, truth = faiss.knn(q, np.ascontiguousarray(vectors, np.float32), k + 1, metric=metric)
        truth = np.asarray(ids)[truth]
        own = np.asarray(ids)[rows]

        def others(row, me) -> set:  # the k nearest works of a ranked list, the query itself left out
            return set([int(i) for i in row if i != me and i >= 0][:k])

        expected = [others(t, me) for t, me in zip(truth, own)]
        nprobe = 1
        while True:
            inner.nprobe = nprobe
            _, found = self.search(q, k + 1)
            per = np.array([len(others(f, me) & e) / max(len(e), 1) for f, e, me in zip(found, expected, own)])
            recall = float(per.mean())
            lower = recall - 1.645 * float(per.std(ddof=1)) / np.sqrt(len(per)) if len(per) > 1 else recall
            if lower >= target or nprobe >= inner.nlist:
                break
            nprobe = min(2 * nprobe, inner.nlist)
        self.calibration = {**self.calibration, "nprobe": int(nprobe), "nlist": int(inner.nlist),
                            f"recall_at_{k}": round(recall, 4), "recall_lower_95": round(lower, 4),
                            "queries": int(len(q)), "target": target}
        return self.calibration

    def search(self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None):
        """Return (distances, ids) arrays of shape (B, k); missing neighbours have id -1.

        Distances are squared Euclidean (``l2``) or ``1 - inner product`` (``ip``). *allowed* restricts the search
        to those ids.
        """
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = int(min(k, self.ntotal))
        if k <= 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        inner = _inner(self.index)
        params = None
        if allowed is not None:
            sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            params = faiss.SearchParametersIVF(sel=sel, nprobe=inner.nprobe) if hasattr(inner, "nprobe") \
                else faiss.SearchParameters(sel=sel)
        if self.compressed:
            if self.vectors is None:
                raise RuntimeError("a compressed index re-ranks on the stored vectors: call attach() first")
            _, cand = self.index.search(q, min(max(SHORTLIST, 4 * k), self.ntotal), params=params)
            return self._rerank(q, cand, k)
        d, i = self.index.search(q, k, params=params)
        if self.metric == "ip":
            d = 1.0 - d
        return d, i

    def _rerank(self, q: np.ndarray, cand: np.ndarray, k: int, batch: int = 256):
        """The *k* of each row's candidate ids *cand* (−1: none) nearest to its query by exact distance."""
        dist = np.full((len(q), k), np.inf, np.float32)
        out = np.full((len(q), k), -1, np.int64)
        for s in range(0, len(q), batch):
            c = cand[s:s + batch]
            valid = c >= 0
            rows = np.searchsorted(self.ids, np.where(valid, c, self.ids[0]))
            x = np.asarray(self.vectors[rows.ravel()], np.float32).reshape(*c.shape, -1)
            qq = q[s:s + batch, None, :]
            d = ((x - qq) ** 2).sum(-1) if self.metric == "l2" else 1.0 - (x * qq).sum(-1)
            d = np.where(valid, d, np.inf).astype(np.float32)
            order = np.argsort(d, axis=1, kind="stable")[:, :k]
            dist[s:s + batch, :order.shape[1]] = np.take_along_axis(d, order, 1)
            out[s:s + batch, :order.shape[1]] = np.where(np.isfinite(np.take_along_axis(d, order, 1)),
                                                        np.take_along_axis(c, order, 1), -1)
        return dist, out

    def save(self, path: str | os.PathLike) -> None:
        atomic_write(path, lambda p: faiss.write_index(self.index, str(p)))

    @classmethod
    def load(cls, path: str | os.PathLike, metric: str, *, mmap: bool = False,
             calibration: dict | None = None) -> "VectorIndex":
        """Read an index; *mmap* maps its vectors from the file instead of reading them (for a published generation,
        whose files never change): a search then brings into memory only the inverted lists it probes.
        *calibration* is what :meth:`describe` recorded of it (the lists a search probes, ...)."""
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        return cls(faiss.read_index(str(path), flags), metric, calibration)


def _ivf_ids(inner) -> np.ndarray:
    """Every id an inverted-file index holds."""
    invlists = inner.invlists
    out = [faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
           for i in range(inner.nlist) if invlists.list_size(i)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


#: How many nearest works define a work's neighbourhood scale (the literature's usual choice: Jégou et al. 2010;
#: Schnitzer et al. 2012).
CONTEXT_K = 10
#: Neighbourhood scales are at least this fraction of the collection's median scale.
SCALE_FLOOR = 1e-3


def _nearest_others(index: VectorIndex, ids: np.ndarray, vectors: np.ndarray, kk: int,
                    batch: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Ids (-1 where the index found fewer) and distances (NaN there) of each vector's *kk* nearest works, its own id
    left out."""
    n = len(ids)
    nbr = np.full((n, kk), -1, np.int64)
    dist = np.full((n, kk), np.nan, np.float32)
    for s in range(0, n, batch):
        d, i = index.search(vectors[s:s + batch], kk + 1)
        keep = (i >= 0) & (i != ids[s:s + batch, None])
        count = np.cumsum(keep, axis=1)
        keep &= count <= kk  # the first kk neighbours other than the work itself
        rows, cols = np.nonzero(keep)
        slot = count[rows, cols] - 1
        nbr[s + rows, slot] = i[rows, cols]
        dist[s + rows, slot] = np.maximum(d[rows, cols], 0)
    return nbr, dist


def neighbourhood_scales(index: VectorIndex, ids: np.ndarray, vectors: np.ndarray, *, k: int = CONTEXT_K,
                         batch: int = 8192) -> np.ndarray:
    r"""Each work's neighbourhood scale :math:`\rho`: its mean distance (the index's) to its *k* nearest other works.

    *vectors* are the works' own embeddings, *ids* their labels in *index*; a work is never its own neighbour (an
    identical copy under another id is); an image from outside the index takes an id the index does not hold, such
    as -1. An index of *n* ≤ *k* works gives each its *n* − 1 others. Use :func:`scale_floor` to keep a work with
    many exact copies (scale 0) findable. :class:`NeighbourLists` computes the same for a whole catalog, run after
    run.
    """
    ids = np.asarray(ids, np.int64)
    if index.ntotal < 2:
        raise ValueError(f"neighbourhood scales need an index of at least 2 works, not {index.ntotal}")
    _, dist = _nearest_others(index, ids, vectors, min(k, index.ntotal - 1), batch)
    return np.nanmean(dist, axis=1).astype(np.float64)


def fingerprints(vectors: np.ndarray) -> np.ndarray:
    """A 64-bit checksum of each row's float32 bytes: tells which works' vectors changed between two runs."""
    vectors = np.ascontiguousarray(vectors, np.float32)
    weights = np.random.default_rng(20261123).integers(1, 2**62, size=vectors.shape[1], dtype=np.uint64) * 2 + 1
    out = np.empty(len(vectors), np.uint64)
    for s in range(0, len(vectors), 16_384):  # in blocks: no 8-byte copy of a million works' vectors
        bits = vectors[s:s + 16_384].view(np.uint32).astype(np.uint64)
        out[s:s + 16_384] = (bits * weights).sum(1)  # modulo 2**64
    return out


@dataclass
class NeighbourLists:
    """Each work's *k* nearest other works in one space, kept from one ``index`` run to the next.

    A work's neighbourhood scale is the mean of its row of :attr:`distances` (:attr:`scales`). Computing every list from scratch costs
    a search of the whole collection by every work: O(n²), about 2 minutes for 100,000 works on 2 cores. A run that
    adds or changes *m* works and keeps the rest instead searches only the new and changed works, and the works whose
    lists held a removed or changed work, against the whole collection; every other list merges in its nearest among
    the *m* new vectors: O(n·m). Which works kept their vectors is told by :func:`fingerprints`. The result equals
    the one from scratch (tested).
    """

    ids: np.ndarray  # (n,) int64, ascending
    fingerprints: np.ndarray  # (n,) uint64
    neighbours: np.ndarray  # (n, k) int64; -1 where an approximate index found fewer
    distances: np.ndarray  # (n, k) float32, nearest first; NaN where neighbours is -1

    @property
    def scales(self) -> np.ndarray:
        """Each work's neighbourhood scale, at least :func:`scale_floor` of them all."""
        scales = np.nanmean(self.distances, axis=1).astype(np.float64)
        return np.maximum(scales, scale_floor(scales))

    @classmethod
    def build(cls, index: VectorIndex, ids: np.ndarray, vectors: np.ndarray, *, k: int = CONTEXT_K,
              previous: "NeighbourLists | None" = None) -> tuple["NeighbourLists", int]:
        """The lists of the works *ids* (ascending, all in *index*) with *vectors*, reusing *previous* lists where
        they still hold. Returns the lists and how many works were searched against the whole collection."""
        ids = np.asarray(ids, np.int64)
        vectors = np.ascontiguousarray(vectors, np.float32)
        n = len(ids)
        if index.ntotal < 2:
            raise ValueError(f"neighbour lists need an index of at least 2 works, not {index.ntotal}")
        kk = min(k, index.ntotal - 1)
        fp = fingerprints(vectors)
        nbr = np.full((n, kk), -1, np.int64)
        dist = np.full((n, kk), np.nan, np.float32)
        search = np.ones(n, bool)
        if previous is not None and previous.neighbours.shape[1] == kk and len(previous.ids):
            at = np.minimum(np.searchsorted(previous.ids, ids), len(previous.ids) - 1)
            kept = (previous.ids[at] == ids) & (previous.fingerprints[at] == fp)
            fresh = ~kept  # new works, and works whose vector changed
            if fresh.sum() <= n // 4:
                old_nbr, old_dist = previous.neighbours[at[kept]], previous.distances[at[kept]]
                intact = np.isin(old_nbr, ids[kept]).all(1)  # no neighbour removed or changed
                rows = np.flatnonzero(kept)[intact]
                nbr[rows], dist[rows] = old_nbr[intact], old_dist[intact]
                search[rows] = False
                if fresh.any() and len(rows) and index.kind != "exact":
                    # an approximate index: the kept lists a new vector enters are found from its side
                    _merge_reverse(index, ids, vectors, fresh, rows, nbr, dist, kk)
                elif fresh.any() and len(rows):
                    # the new vectors may come nearer than a kept list's own
                    new_index = VectorIndex.build(ids[fresh], vectors[fresh], exact_limit=n + 1)
                    d, i = new_index.search(vectors[rows], min(kk, int(fresh.sum())))
                    all_d = np.concatenate([dist[rows], np.maximum(d, 0)], axis=1)
                    all_i = np.concatenate([nbr[rows], i], axis=1)
                    order = np.argsort(all_d, axis=1, kind="stable")[:, :kk]
                    nbr[rows] = np.take_along_axis(all_i, order, 1)
                    dist[rows] = np.take_along_axis(all_d, order, 1)
        rows = np.flatnonzero(search)
        if len(rows):
            nbr[rows], dist[rows] = _nearest_others(index, ids[rows], vectors[rows], kk)
        return cls(ids=ids, fingerprints=fp, neighbours=nbr, distances=dist), len(rows)

    def save(self, path: str | os.PathLike) -> None:
        atomic_savez(path, ids=self.ids, fingerprints=self.fingerprints, neighbours=self.neighbours,
                     distances=self.distances)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NeighbourLists | None":
        """The lists saved at *path*, or ``None`` where there are none (they are then computed from scratch)."""
        try:
            with np.load(path) as z:
                return cls(ids=z["ids"], fingerprints=z["fingerprints"], neighbours=z["neighbours"],
                           distances=z["distances"])
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # missing or damaged: from scratch
            return None


#: For an approximate index, a new work enters the kept neighbour lists of the works among its this-many nearest.
REVERSE_K = 100


def _merge_reverse(index: VectorIndex, ids, vectors, fresh, rows, nbr, dist, kk: int) -> None:
    """Merge the new works (*fresh*) into the lists of the kept works *rows* that they come nearer to, in place.

    Searching every kept work against the new ones costs O(n·m); instead each new work searches the index for its
    :data:`REVERSE_K` nearest works and enters the list of each of them whose k-th neighbour is farther. A kept
    list that a new work would enter without being among that work's 100 nearest is missed: rare, and of the same
    kind as the approximate index's own misses (the difference is measured in tests/test_search.py)."""
    fid = ids[fresh]
    d, i = index.search(vectors[fresh], min(REVERSE_K + 1, index.ntotal))
    src = np.broadcast_to(fid[:, None], i.shape)
    ok = (i >= 0) & (i != src)
    target, source, gap = i[ok], src[ok], np.maximum(d[ok], 0).astype(np.float32)
    at = np.minimum(np.searchsorted(ids, target), len(ids) - 1)
    kept = np.zeros(len(ids), bool)
    kept[rows] = True
    ok = (ids[at] == target) & kept[at]
    at, source, gap = at[ok], source[ok], gap[ok]
    if not len(at):
        return
    order = np.lexsort((gap, at))
    at, source, gap = at[order], source[order], gap[order]
    touched, first = np.unique(at, return_index=True)
    rank = np.arange(len(at)) - np.repeat(first, np.diff(np.r_[first, len(at)]))
    use = rank < kk
    slot = np.searchsorted(touched, at[use])
    new_d = np.full((len(touched), kk), np.inf, np.float32)
    new_i = np.full((len(touched), kk), -1, np.int64)
    new_d[slot, rank[use]], new_i[slot, rank[use]] = gap[use], source[use]
    old_d = np.where(np.isnan(dist[touched]), np.inf, dist[touched])
    all_d = np.concatenate([old_d, new_d], axis=1)
    all_i = np.concatenate([nbr[touched], new_i], axis=1)
    best = np.argsort(all_d, axis=1, kind="stable")[:, :kk]
    best_d = np.take_along_axis(all_d, best, 1)
    nbr[touched] = np.where(np.isfinite(best_d), np.take_along_axis(all_i, best, 1), -1)
    dist[touched] = np.where(np.isfinite(best_d), best_d, np.nan)


def scale_floor(scales: np.ndarray) -> float:
    """The least neighbourhood scale a collection with these *scales* uses: :data:`SCALE_FLOOR` times their median."""
    return max(float(np.median(scales)) * SCALE_FLOOR, np.finfo(np.float32).tiny)


def relative_search(index: VectorIndex, query: np.ndarray, k: int, *, query_scale: float = 1.0,
                    scales: Callable[[np.ndarray], np.ndarray] | None = None, max_scale: float = 1.0,
                    allowed: np.ndarray | None = None, exclude: int | None = None,
                    offsets: Callable[[np.ndarray], np.ndarray] | None = None):
    r"""The *k* works nearest to *query* by the distance relative to both neighbourhoods, :math:`d/\sqrt{\rho_q\rho_y}`.

    Dividing by the neighbourhood scales (the non-iterative contextual dissimilarity measure of Jégou et al.,
    PAMI 2010) evens out the density of the space. Ranked by the raw distance, a few works ("hubs") turn up in a
    large share of all result lists and others in none: on wikiart-dev one painting is among the 10 nearest of 56
    of the 210 paintings, and at most 23 after the division (docs/benchmarks.md). *scales* maps work ids to
    :math:`\rho`; *max_scale* is the largest :math:`\rho` of the collection. From an exact index the raw nearest
    works are fetched in growing pools until no work outside the pool could rank among the *k*: the result is the
    one an exhaustive ranking gives. An approximate index is asked once, for a pool of ``max(4(k+1), 64)`` raw
    neighbours, which are ranked by the relative distance (its recall against the exhaustive relative ranking is
    measured in docs/scaling.md).

    Returns ``(relative, raw, ids)`` arrays, nearest first; *exclude* (the query's own id) is left out. *offsets*
    maps work ids to non-negative amounts added to their raw distances (an outside image's part off the
    projection's axes, :meth:`artspace.Catalog._offsets`); without *scales* the ranking is by the raw distance
    (with its offsets), found exactly as well.
    """
    n = index.ntotal
    pool = min(n, max(4 * (k + 1), 64))
    q = np.ascontiguousarray(query, np.float32)[None]
    while True:
        d, i = index.search(q, pool, allowed=allowed)
        d, i = d[0], i[0]
        ok = (i >= 0) & (i != (-1 if exclude is None else exclude))
        raw, found = np.maximum(d[ok], 0.0).astype(np.float64), i[ok]
        if offsets is not None:
            raw = raw + offsets(found)
        rel = raw / np.sqrt(query_scale * scales(found)) if scales is not None else raw
        order = np.argsort(rel, kind="stable")[:k]
        complete = pool >= n or (i < 0).any() or index.kind != "exact"
        # Works beyond the pool are at least d[-1] away raw (offsets only add), so at least d[-1] / sqrt(rho_q max
        # rho) relative.
        if complete or (len(order) == k and rel[order[-1]] <= d[-1] / np.sqrt(query_scale * max_scale)):
            return rel[order], raw[order], found[order]
        pool = min(n, pool * 4)


def batch_search(index: VectorIndex, vectors: np.ndarray, k: int, *, ids: np.ndarray,
                 scales: np.ndarray | None = None, scale_of: Callable[[np.ndarray], np.ndarray] | None = None,
                 max_scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The *k* nearest works of many catalogued works at once (each one's own id left out), ranked as a single
    query ranks them: by the raw distance, or with *scales* (the queries' neighbourhood scales, *scale_of* mapping
    ids to theirs) by the relative distance of :func:`relative_search`.

    Returns ``(neighbours, distances)``, (n, k) arrays; −1 and NaN where the collection has fewer works. A relative
    query whose first pool of raw neighbours cannot prove its top *k* is answered by :func:`relative_search` itself,
    so every row equals the single query's answer.
    """
    ids = np.asarray(ids, np.int64)
    n = len(ids)
    nbr = np.full((n, k), -1, np.int64)
    dist = np.full((n, k), np.nan, np.float64)
    relative = scales is not None
    approximate = index.kind != "exact"
    pool = min(index.ntotal, max(4 * (k + 1), 64) if relative else k + 1)
    for s in range(0, n, 4096):
        d, i = index.search(vectors[s:s + 4096], pool)
        for r in range(len(d)):
            row = s + r
            ok = (i[r] >= 0) & (i[r] != ids[row])
            raw, found = np.maximum(d[r][ok], 0.0).astype(np.float64), i[r][ok]
            if relative:
                rel = raw / np.sqrt(scales[row] * scale_of(found))
                order = np.argsort(rel, kind="stable")[:k]
                proven = approximate or pool >= index.ntotal or (i[r] < 0).any() or (
                    len(order) == k and rel[order[-1]] <= d[r][-1] / np.sqrt(scales[row] * max_scale))
                if not proven:
                    rel_d, _, found_d = relative_search(index, vectors[row], k, query_scale=float(scales[row]),
                                                        scales=scale_of, max_scale=max_scale, exclude=int(ids[row]))
                    nbr[row, :len(found_d)], dist[row, :len(found_d)] = found_d, rel_d
                    continue
                found, raw = found[order], rel[order]
            m = min(k, len(found))
            nbr[row, :m], dist[row, :m] = found[:m], raw[:m]
    return nbr, dist
