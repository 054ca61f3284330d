r"""Searching the catalog's embeddings: faiss indexes, neighbourhood scales, and the style-free content embedding.

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

import hashlib
import json
import math
import os
import zipfile
from dataclasses import dataclass
from typing import Callable

import faiss
import numpy as np

from .atomic import atomic_savez, atomic_write
from .discriminant import LinearProjection, principal_axes

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


def choose_groups(style: np.ndarray, *, max_groups: int = 32, sample: int = 4000, seed: int = 0) -> int:
    """Number of style groups with the best silhouette score (k-means, k = 2 … max_groups, at least 4 works each).

    The works' Euclidean distances are computed once for every k's silhouette (128 MB at the 4,000 works sampled):
    the scores of computing them afresh each time (to rounding), and the sweep 1.4-2.7 times faster."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import pairwise_distances, silhouette_score

    n = len(style)
    hi = min(max_groups, n // 4)
    if hi < 2:
        return 1
    rng = np.random.default_rng(seed)
    x = style[rng.choice(n, size=min(n, sample), replace=False)].astype(np.float64)
    distances = pairwise_distances(x)
    best, best_k = -2.0, 2
    for k in range(2, hi + 1):
        labels = KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(x)
        score = silhouette_score(distances, labels, metric="precomputed")
        if score > best:
            best, best_k = score, k
    return best_k


def nearest_centroids(style: np.ndarray, centroids: np.ndarray, batch: int = 65_536) -> np.ndarray:
    """Each row's nearest centroid (squared distance as |c|² − 2 s·c, one matrix product per block of rows, in
    float64: a million works are never copied whole)."""
    c = np.asarray(centroids, np.float64)
    norms = (c ** 2).sum(1)
    return np.concatenate([(norms - 2.0 * np.asarray(style[s:s + batch], np.float64) @ c.T).argmin(1)
                           for s in range(0, len(style), batch)]) if len(style) else np.zeros(0, np.int64)


def nearest_rows(x: np.ndarray, ref: np.ndarray, batch: int = 8192) -> np.ndarray:
    """Each row of *x*'s nearest row of *ref* (squared Euclidean distance, float32, one matrix product per block of
    rows of at most *batch* × len(*ref*) numbers): a work's nearest sampled work."""
    r = np.asarray(ref, np.float32)
    norms = (r ** 2).sum(1)
    return np.concatenate([(norms - 2.0 * np.asarray(x[s:s + batch], np.float32) @ r.T).argmin(1)
                           for s in range(0, len(x), batch)]) if len(x) else np.zeros(0, np.int64)


def ward_groups(sample: np.ndarray, g: int, nearest: np.ndarray, minimum: int) -> np.ndarray:
    """Style groups of the rows *sample*: Ward's agglomerative clustering into *g* groups, then, while a group holds
    fewer than *minimum* works of the collection (each work counted in the group of its nearest sampled row,
    *nearest*), the smallest group's rows join the group of their nearest row outside it. Labels 0 … g′ − 1.

    Ward's linkage merges the two groups whose union adds least to the within-group sum of squares, from single works
    up; unlike k-means it does not prefer groups of equal extent, so a tight medium (drawings, all alike) and a wide
    one (paintings of every school) each stay whole. On pacs-dev's l_style embeddings with k = 3 its groups are
    cartoons, drawings, and photographs with paintings (NMI 0.77 with the medium, against 0.58 for k-means, which
    split the cartoons); docs/benchmarks.md."""
    from sklearn.cluster import AgglomerativeClustering  # imported here: scikit-learn takes a second to import

    labels = AgglomerativeClustering(n_clusters=g, linkage="ward").fit_predict(np.asarray(sample, np.float64))
    while True:
        present = np.unique(labels)
        counts = np.bincount(labels[nearest], minlength=int(labels.max()) + 1)[present]
        if len(present) == 1 or counts.min() >= minimum:
            break
        inside = labels == present[counts.argmin()]
        outside = np.flatnonzero(~inside)
        labels[inside] = labels[outside[nearest_rows(sample[inside], sample[outside])]]
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)


def split_by_medium(groups: np.ndarray, photographic: np.ndarray, minimum: int, share: float) -> np.ndarray:
    """The table (g, 2) that splits style groups by medium: row j gives group j's other works (column 0) and its
    photographs (column 1) new labels 0 … g′ − 1, two labels where each part holds at least *minimum* works and
    *share* of the group, one label (the group kept whole) otherwise. *groups*: each work's group (0 … g − 1),
    *photographic*: whether each work is a photograph."""
    g = int(groups.max(initial=0)) + 1
    photos = np.bincount(groups[photographic], minlength=g)
    sizes = np.bincount(groups, minlength=g)
    table, label = np.zeros((g, 2), np.int64), 0
    for j in range(g):
        smaller = min(photos[j], sizes[j] - photos[j])
        apart = smaller >= minimum and smaller >= share * sizes[j]
        table[j] = (label, label + 1) if apart else (label, label)
        label += 2 if apart else 1
    return table


def group_means(x: np.ndarray, labels: np.ndarray, g: int, *, transform: Callable | None = None,
                batch: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """The mean row of *x* (each block of rows passed through *transform* first, if given) in each of the *g* groups
    *labels*, summed in float64 in blocks of rows: ``(means (g, d) float32, counts (g,))``."""
    sums, counts = None, np.bincount(labels, minlength=g)
    for s in range(0, len(labels), batch):
        rows = x[s:s + batch] if transform is None else transform(x[s:s + batch])
        rows = np.asarray(rows, np.float64)
        if sums is None:
            sums = np.zeros((g, rows.shape[1]))
        np.add.at(sums, labels[s:s + batch], rows)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32), counts


@dataclass
class ContentModel:
    r"""Content embeddings that follow what is depicted rather than the hand: the collection's style-group means
    removed from the descriptors, and a projection learnt from pastiches blended in.

    A painter's hand or a medium adds the same texture to every subject, and ImageNet features pooled over space
    respond to texture first (Geirhos et al., 2019): a sketch of a dog lies nearer to a sketch of a house than to a
    photograph of a dog. Two remedies, combined:

    * **Style groups** (fitted on the collection). The works are grouped by style (Ward's agglomerative clustering
      of up to :attr:`GROUP_SAMPLE` works' style embeddings, :func:`ward_groups`; the number of groups, 2 to 32, is
      the one whose k-means has the best silhouette, :func:`choose_groups`) and each descriptor has its group's mean
      subtracted; what remains is how this work differs from others in the same hand — its subject. Every work,
      and an image from outside the collection, is in the group of its nearest sampled work. Where a photograph
      model applies (:mod:`artspace.medium`, shipped with artspace), each group is then split into the works it
      calls photographs and the others, where both parts hold at least :attr:`SPLIT_SHARE` of the group and
      :attr:`MIN_GROUP` works: photographs and realistic paintings lie close in every style embedding.
    * **A projection learnt from pastiches** (:mod:`artspace.content`, shipped with artspace): Fisher's
      discriminant of photographs and their AdaIN pastiches, the directions along which a change of hand moves a
      descriptor least compared with a change of photograph. Its coordinates, less their style-group means, form a
      second part of the embedding.

    With :math:`a` the descriptor (reduced by the collection's PCA to :attr:`REDUCE_TO` dimensions when longer than :attr:`REDUCE_ABOVE`) and
    :math:`b = W^\top(x-\mu)` the learnt projection, each less its group's mean and scaled to unit length, the
    embedding is :math:`[\sqrt{1/(1+w)}\,a, \sqrt{w/(1+w)}\,b]` with :math:`w` = :attr:`LEARNT_WEIGHT`, so that
    :math:`1-\cos = 1 - (\cos_a + w\cos_b)/(1+w)`. Without a learnt projection (catalogs whose descriptor the
    shipped projection does not fit) it is :math:`a` alone.
    """

    centroids: np.ndarray  # (g, style_dim)
    means: np.ndarray  # (g, a dims + b dims): each group's mean before the parts are normalised
    #: how many works the style groups were fitted on (0: unknown)
    fitted_on: int = 0
    #: the collection's PCA of descriptors longer than REDUCE_TO (None: the descriptor itself)
    reduce: LinearProjection | None = None
    #: the projection learnt from pastiches (None: not used)
    learnt: LinearProjection | None = None
    #: the sampled works' style embeddings (s, style_dim) whose groups every work takes (its nearest), and those
    #: groups (s,); None in a model of one group, and in models saved before the groups were Ward's, whose works
    #: are in the group of their nearest centroid
    sample: np.ndarray | None = None
    sample_groups: np.ndarray | None = None
    #: the photograph model (:mod:`artspace.medium`) the style groups were checked with (None: not checked), and
    #: the split as a table (groups before the split, 2): row j, column 1 for a photograph, gives the group (None:
    #: no group was split)
    medium: LinearProjection | None = None
    split: np.ndarray | None = None

    #: :meth:`update` keeps the groups while the collection has changed by at most this fraction since the fit
    REFIT_AFTER = 0.1
    #: descriptors longer than REDUCE_ABOVE are reduced to REDUCE_TO numbers by the collection's PCA (with the
    #: learnt projection's 128 directions the embedding has 512 numbers, as relu5_4 alone had: a million works'
    #: content index stays the size it was)
    REDUCE_ABOVE, REDUCE_TO = 512, 384
    #: :math:`w`, the learnt part's weight in the cosine
    LEARNT_WEIGHT = 0.5
    #: the style groups are fitted on at most this many works (Ward's clustering keeps their s²/2 distances: 64 MB)
    GROUP_SAMPLE = 4000
    #: a style group needs at least this many works: the works of a smaller cluster join the nearest larger
    #: group (a work alone in its group, less its own mean, had nothing left), and a collection of fewer works is
    #: not centred at all (two works less their mean point in opposite directions, whatever they depict)
    MIN_GROUP = 4
    #: a style group is split into photographs and other works only where each part holds at least this share of
    #: it: the shipped photograph model calls 1.4 % of the paintings it was fitted on photographs (5-fold) but 11 %
    #: of wikiart-dev's paintings (docs/benchmarks.md), so a smaller part of a group of paintings may be its mistakes
    SPLIT_SHARE = 0.2

    @classmethod
    def fit(cls, style: np.ndarray, descriptors: np.ndarray, *, groups: int | None = None,
            sample: int = 50_000, seed: int = 0, learnt: LinearProjection | None = None,
            medium: LinearProjection | None = None, photographic: np.ndarray | None = None) -> "ContentModel":
        """Fit style groups (:func:`ward_groups` on at most :attr:`GROUP_SAMPLE` works, then every work in the group
        of its nearest sampled work, then each group split by *photographic*, see the class), the PCA of long
        descriptors (on at most *sample* works), and each group's mean; *learnt* is the pastiche projection to blend
        in, *medium* the photograph model whose calls (*photographic*, one bool a work) split the groups."""
        n, given = len(style), style
        style, descriptors = np.asarray(style), np.asarray(descriptors)
        rng = np.random.default_rng(seed)
        fit_rows = np.sort(rng.choice(n, size=min(n, sample), replace=False)) if n > sample else np.arange(n)
        reduce = (principal_axes(descriptors[fit_rows], cls.REDUCE_TO) if descriptors.shape[1] > cls.REDUCE_ABOVE
                  else None)
        learnt = _applicable(learnt, descriptors.shape[1])
        g = groups if groups is not None else choose_groups(style, sample=cls.GROUP_SAMPLE, seed=seed)
        g = max(1, min(g, n))
        centroids, sampled, labels, nearest = style.mean(0, keepdims=True).astype(np.float32), None, None, None
        if g > 1:
            rows = (np.sort(rng.choice(n, size=cls.GROUP_SAMPLE, replace=False)) if n > cls.GROUP_SAMPLE
                    else np.arange(n))
            sampled = np.asarray(style[rows], np.float32)
            nearest = nearest_rows(style, sampled)
            labels = ward_groups(sampled, g, nearest, cls.MIN_GROUP)
        else:
            labels, nearest = np.zeros(min(n, 1), np.int64), np.zeros(n, np.int64)
            sampled = style[:1].astype(np.float32)
        split, calls = None, None
        if medium is not None:
            calls = np.asarray(photographic, bool)  # computed once here (artspace.medium.PhotographCalls)
            split = split_by_medium(labels[nearest], calls, cls.MIN_GROUP, cls.SPLIT_SHARE)
            if split.max() == labels.max(initial=0):
                split = None  # no group has enough photographs and enough other works
        work_groups = labels[nearest] if split is None else split[labels[nearest], calls.astype(np.int64)]
        several = work_groups.max(initial=0) > 0
        if several:
            centroids = group_means(style, work_groups, int(work_groups.max()) + 1)[0]
        model = cls(centroids=centroids, means=np.zeros((len(centroids), 0), np.float32), fitted_on=n,
                    reduce=reduce, learnt=learnt, sample=sampled if several else None,
                    sample_groups=labels if several else None, medium=medium, split=split)
        photo = photographic if split is not None else None
        if several:
            model._last_groups = (style, photo, work_groups)  # the groups just counted: not looked up again
        model = model.with_means(style, descriptors, photo)
        # remembered for the array as given too (a memory map is another object once np.asarray has viewed it): the
        # publication asks for these groups again, and at a million works each look-up costs about a minute
        model._last_groups = (given, photo, model._last_groups[2])
        return model

    def parts(self, descriptors: np.ndarray) -> np.ndarray:
        """The descriptors in the model's space before the group means: ``[a, b]`` (float32)."""
        d = np.asarray(descriptors, np.float32)
        a = self.reduce.transform(d) if self.reduce is not None else d
        return np.hstack([a, self.learnt.transform(d)]) if self.learnt is not None else a

    def with_means(self, style: np.ndarray, descriptors: np.ndarray, photographic: np.ndarray | None = None,
                   batch: int = 65_536) -> "ContentModel":
        """The same style groups and projections, with each group's mean taken over the works given."""
        labels = self.groups(style, photographic)
        means, counts = group_means(descriptors, labels, len(self.centroids), transform=self.parts, batch=batch)
        means[counts < self.MIN_GROUP] = 0.0  # too few works to say what their hand shares
        model = ContentModel(centroids=self.centroids, means=means, fitted_on=self.fitted_on, reduce=self.reduce,
                             learnt=self.learnt, sample=self.sample, sample_groups=self.sample_groups,
                             medium=self.medium, split=self.split)
        model._last_groups = (style, photographic, labels)  # the same centroids: the same groups
        return model

    @classmethod
    def update(cls, previous: "ContentModel | None", style: np.ndarray, descriptors: np.ndarray, *,
               learnt: LinearProjection | None = None, medium: LinearProjection | None = None,
               photographic: np.ndarray | None = None) -> tuple["ContentModel", bool]:
        """The model for a collection that changed since *previous* was fitted: *previous* itself, style groups,
        projections and means unchanged, while the collection grew or shrank by at most :attr:`REFIT_AFTER` since
        the fit and the learnt projection and the photograph model are the same (so that adding 2 works to 500 costs
        no clustering and changes no other work's content embedding), a new fit otherwise. A previous model fitted
        with *medium* whose groups needed no split is kept too. Returns the model and whether it was refitted."""
        n = len(style)
        learnt = _applicable(learnt, descriptors.shape[1])
        if (previous is not None and previous.fitted_on and previous.centroids.shape[1] == style.shape[1]
                and previous.input_dim == descriptors.shape[1] and _same(previous.learnt, learnt)
                and previous.medium_fingerprint == _fingerprint(medium)
                and abs(n - previous.fitted_on) <= cls.REFIT_AFTER * previous.fitted_on
                and not previous.nearest_centroid_groups
                and not previous.centres_small_groups(style, photographic if previous.split is not None else None)):
            return previous, False
        return cls.fit(style, descriptors, learnt=learnt, medium=medium, photographic=photographic), True

    @property
    def nearest_centroid_groups(self) -> bool:
        """Whether this is a model of several style groups fitted before the groups were Ward's, whose works are in
        the group of their nearest k-means centroid rather than their nearest sampled work's Ward group:
        :meth:`update` fits it again."""
        return self.sample is None and len(self.centroids) > 1

    def centres_small_groups(self, style: np.ndarray, photographic: np.ndarray | None = None) -> bool:
        """Whether the model subtracts the mean of a style group that holds fewer than :attr:`MIN_GROUP` of the works
        *style* (a model fitted before that rule, or one whose groups shrank): such a model is fitted again."""
        counts = np.bincount(self.groups(style, photographic), minlength=len(self.centroids))
        return bool(((counts < self.MIN_GROUP) & np.any(self.means != 0, axis=1)).any())

    @property
    def input_dim(self) -> int:
        """The length of the descriptors the model takes."""
        if self.reduce is not None:
            return int(self.reduce.mean.shape[0])
        return int(self.means.shape[1] - (self.learnt.dim if self.learnt is not None else 0))

    @property
    def dim(self) -> int:
        """The length of the content embedding."""
        return int(self.means.shape[1])

    @property
    def medium_fingerprint(self) -> str | None:
        """What identifies the photograph model the groups were checked with (None: none)."""
        return _fingerprint(self.medium)

    def is_photograph(self, moments) -> np.ndarray | None:
        """Whether the photograph model calls each row of *moments* (relu4_1's channel means and deviations, n ×
        1024) a photograph; None for a model whose groups are not split."""
        if self.split is None:
            return None
        from .medium import is_photograph

        return is_photograph(self.medium, moments)

    def assign(self, style: np.ndarray, photographic: np.ndarray | None = None) -> np.ndarray:
        """The style group of each row of *style*: that of its nearest sampled work (:func:`nearest_rows`), or in a
        model without a sample its nearest centroid (:func:`nearest_centroids`); in a model whose groups are split
        by medium, the photographs' or the other works' part of it (*photographic*, one bool a row, is then
        needed: :meth:`is_photograph`)."""
        if self.sample is None:
            return nearest_centroids(style, self.centroids)
        labels = self.sample_groups[nearest_rows(style, self.sample)]
        if self.split is None:
            return labels
        if photographic is None or len(photographic) != len(labels):
            raise ValueError("this content model splits its style groups by medium: give each work's photograph "
                             "call (ContentModel.is_photograph of its relu4_1 moments)")
        return self.split[labels, np.asarray(photographic, bool).astype(np.int64)]  # all rows' calls, once

    def groups(self, style: np.ndarray, photographic: np.ndarray | None = None) -> np.ndarray:
        """Each work's style group (:meth:`assign`). The answer for the last arrays asked about is remembered: a
        publication asks about the same million works up to three times (is a group too small, each group's mean,
        the content statistics), seconds each."""
        last = getattr(self, "_last_groups", None)
        if (last is not None and last[0] is style and (self.split is None or last[1] is photographic)
                and len(last[2]) == len(style)):
            return last[2]
        labels = self.assign(style, photographic)
        self._last_groups = (style, photographic, labels)
        return labels

    def transform(self, style: np.ndarray, descriptors: np.ndarray, photographic: np.ndarray | None = None,
                  batch: int = 65_536) -> np.ndarray:
        """Unit content embeddings (in blocks of rows, so that a million works need no copies of the whole
        array): each part less its style group's mean, scaled to unit length, and weighted (see the class)."""
        groups = self.groups(style, photographic)
        out = np.empty((len(descriptors), self.dim), np.float32)
        split = self.dim - (self.learnt.dim if self.learnt is not None else 0)
        w = self.LEARNT_WEIGHT
        scale = (np.sqrt(1.0 / (1.0 + w)), np.sqrt(w / (1.0 + w))) if self.learnt is not None else (1.0, 0.0)
        for s in range(0, len(descriptors), batch):
            e = self.parts(descriptors[s:s + batch]) - self.means[groups[s:s + batch]]
            for part, k in ((slice(0, split), scale[0]), (slice(split, None), scale[1])):
                if e[:, part].shape[1]:
                    p = e[:, part]
                    e[:, part] = k * p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
            out[s:s + batch] = e
        return out

    def arrays(self) -> dict:
        """Every array the embeddings depend on, by name (what :meth:`save` writes and digests hash)."""
        out = {"centroids": self.centroids, "means": self.means, "fitted_on": np.int64(self.fitted_on)}
        if self.sample is not None:
            out["sample"], out["sample_groups"] = self.sample, np.asarray(self.sample_groups, np.int64)
        if self.split is not None:
            out["split"] = np.asarray(self.split, np.int64)
        for name, p in (("reduce", self.reduce), ("learnt", self.learnt), ("medium", self.medium)):
            if p is not None:
                out[f"{name}_mean"] = np.asarray(p.mean, np.float32)
                out[f"{name}_components"] = np.asarray(p.components, np.float32)
        return out

    def save(self, path: str | os.PathLike) -> None:
        info = json.dumps(self.learnt.info if self.learnt is not None else {}, sort_keys=True)
        medium = json.dumps(self.medium.info if self.medium is not None else {}, sort_keys=True)
        atomic_savez(path, **self.arrays(), learnt_info=np.array(info), medium_info=np.array(medium))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ContentModel":
        with np.load(path, allow_pickle=False) as z:
            parts = {}
            for name in ("reduce", "learnt", "medium"):  # reduce has no info
                if f"{name}_mean" in z.files:
                    info = json.loads(str(z[f"{name}_info"])) if f"{name}_info" in z.files else {}
                    parts[name] = LinearProjection(mean=z[f"{name}_mean"].astype(np.float64),
                                                   components=z[f"{name}_components"].astype(np.float64), info=info)
            sampled = {"sample": z["sample"], "sample_groups": z["sample_groups"]} if "sample" in z.files else {}
            if "split" in z.files:
                sampled["split"] = z["split"]
            return cls(centroids=z["centroids"], means=z["means"],
                       fitted_on=int(z["fitted_on"]) if "fitted_on" in z.files else 0, **parts, **sampled)


def _fingerprint(medium: LinearProjection | None) -> str | None:
    """A digest of a photograph model's numbers (None for none): the same model, saved and read back, agrees."""
    if medium is None:
        return None
    h = hashlib.sha256(np.asarray(medium.mean, np.float32).tobytes())
    h.update(np.asarray(medium.components, np.float32).tobytes())
    return h.hexdigest()


def _applicable(learnt: LinearProjection | None, dim: int) -> LinearProjection | None:
    """*learnt* if it takes descriptors of length *dim*; None if it was fitted on another descriptor."""
    return learnt if learnt is not None and learnt.mean.shape[0] == dim else None


def _same(a: LinearProjection | None, b: LinearProjection | None) -> bool:
    """Whether two optional projections are the same map."""
    if a is None or b is None:
        return a is None and b is None
    return a.components.shape == b.components.shape and np.allclose(a.mean, b.mean, atol=1e-6) and np.allclose(
        a.components, b.components, atol=1e-6)


@dataclass
class ContentStats:
    r"""How the collection's content similarities are spread, so that a content ranking can say how unusually near
    a work is rather than how near (:meth:`Catalog.similar <artspace.catalog.Catalog.similar>`, ``standardise``).

    A cosine of 0.6 means different things from a sketch to the other sketches, which are all alike, and from a
    photograph to the paintings: the medium left in the content embedding shows as a raised level of similarity
    between works of one style group, and a work alike to many others (a hub) is near every query. For a unit query
    :math:`q` and a work :math:`y` in style group :math:`g`, with :math:`c = q\cdot y`, the standardised similarity
    averages three z-scores of :math:`c`,

    .. math::

        s = \tfrac13\Big(\frac{c - q\cdot m}{\sqrt{q^\top\Sigma q}} + \frac{c - q\cdot m_g}{\sqrt{q^\top\Sigma_g q}}
        + \frac{c - y\cdot m}{\sqrt{y^\top\Sigma y}}\Big),

    :math:`m, \Sigma` the mean and covariance of the collection's content embeddings and :math:`m_g, \Sigma_g`
    those of group :math:`g`: :math:`c` against the query's similarities to every work, to the works of
    :math:`y`'s group, and against :math:`y`'s similarities to every work. The first ranks as :math:`c` itself; the
    second compares works within one hand (per-domain score normalisation); the third discounts hubs (mutual
    proximity, Schnitzer et al. 2012; the CSLS of Conneau et al. 2018). The means and variances are exact for the
    works they were computed on (a cosine is linear in each vector), so only :math:`g+1` mean vectors and
    covariance matrices are stored, from up to :attr:`SAMPLE` works, with each work's own mean and variance
    (:math:`y\cdot m`, :math:`y^\top\Sigma y`), as the style space stores each work's neighbourhood scale. They
    are kept, like the content model's groups, while the collection changes by at most :attr:`REFIT_AFTER`.
    """

    mean: np.ndarray  # (g + 1, d): the collection's mean embedding, then each style group's
    cov: np.ndarray  # (g + 1, d, d) the same covariances (population, float32)
    counts: np.ndarray  # (g + 1,): the works each row was computed on
    groups: np.ndarray  # (n,) each work's style group, in the row order of the catalog's ids
    work_mean: np.ndarray  # (n,) y·m, each work's mean cosine to the collection (float32)
    work_var: np.ndarray  # (n,) yᵀΣy, the variance of its cosines (float32): its z-score needs no product by Σ
    fitted_on: int = 0  # the works of the collection when the means and covariances were computed

    #: the statistics are computed on at most this many works (seeded sample)
    SAMPLE = 50_000
    #: a group of fewer works uses the whole collection's statistics
    MIN_WORKS = 2
    #: :meth:`update` keeps the means and covariances while the collection has changed by at most this fraction
    #: since they were computed (as :class:`ContentModel` keeps its groups): a publication after adding 1,000 works
    #: to a million then computes only the new works' groups and terms
    REFIT_AFTER = 0.1

    @classmethod
    def fit(cls, content, groups: np.ndarray, n_groups: int, *, sample: int | None = None, seed: int = 0,
            batch: int = 16_384) -> "ContentStats":
        """The statistics of the unit embeddings *content* (n, d; any array read by rows) and their style *groups*
        (0 … *n_groups* − 1), from a seeded sample of at most *sample* (:attr:`SAMPLE`) works."""
        n, d = len(content), content.shape[1]
        groups = np.asarray(groups, np.int16)
        size = cls.SAMPLE if sample is None else int(sample)
        rows = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False)) if n > size else np.arange(n)
        sums = np.zeros((n_groups + 1, d))
        outer = np.zeros((n_groups + 1, d, d))
        counts = np.zeros(n_groups + 1, np.int64)
        for s in range(0, len(rows), batch):
            r = rows[s:s + batch]
            x, gr = np.asarray(content[r], np.float64), groups[r]
            for j, sel in [(0, slice(None))] + [(int(v) + 1, gr == v) for v in np.unique(gr)]:
                xs = x[sel]
                sums[j] += xs.sum(0)
                outer[j] += xs.T @ xs
                counts[j] += len(xs)
        safe = np.maximum(counts, 1)[:, None]
        mean = sums / safe
        cov = outer / safe[..., None] - mean[:, :, None] * mean[:, None, :]
        small = counts < cls.MIN_WORKS
        mean[small], cov[small] = mean[0], cov[0]  # too few works to say how a group is spread
        stats = cls(mean=mean.astype(np.float32), cov=cov.astype(np.float32), counts=counts, groups=groups,
                    work_mean=np.zeros(0, np.float32), work_var=np.zeros(0, np.float32), fitted_on=n)
        stats.work_mean, stats.work_var = stats._all_work_terms(content)
        return stats

    @classmethod
    def update(cls, previous: "ContentStats | None", content, carried: np.ndarray | None, groups_of,
               n_groups: int) -> tuple["ContentStats", bool]:
        """The statistics of a collection that changed since *previous*: *previous*'s means and covariances, while
        the collection has changed by at most :attr:`REFIT_AFTER` since they were computed and has as many groups,
        with the carried rows' groups and terms (*carried*: for each row of *content*, its row in *previous*, or
        −1 for a work whose embedding is new) and *groups_of(rows)* for the others; else :meth:`fit` with
        *groups_of(None)*, every work's group. Returns the statistics and whether they were computed afresh."""
        n = len(content)
        if (previous is None or carried is None or len(previous.mean) != n_groups + 1
                or previous.mean.shape[1] != content.shape[1]
                or abs(n - previous.fitted_on) > cls.REFIT_AFTER * max(previous.fitted_on, 1)):
            return cls.fit(content, groups_of(None), n_groups), True
        new = np.flatnonzero(carried < 0)
        old = carried >= 0
        groups = np.empty(n, np.int16)
        work_mean, work_var = np.empty(n, np.float32), np.empty(n, np.float32)
        groups[old], work_mean[old], work_var[old] = (previous.groups[carried[old]],
                                                     previous.work_mean[carried[old]],
                                                     previous.work_var[carried[old]])
        stats = cls(mean=previous.mean, cov=previous.cov, counts=previous.counts, groups=groups,
                    work_mean=work_mean, work_var=work_var, fitted_on=previous.fitted_on)
        if len(new):
            groups[new] = groups_of(new)
            m, v = stats.work_terms(np.asarray(content[new], np.float32))
            work_mean[new], work_var[new] = m, v
        return stats, False

    def _all_work_terms(self, content, batch: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
        terms = [self.work_terms(np.asarray(content[s:s + batch], np.float32)) for s in range(0, len(content), batch)]
        if not terms:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        return (np.concatenate([t[0] for t in terms]).astype(np.float32),
                np.concatenate([t[1] for t in terms]).astype(np.float32))

    def query_terms(self, q: np.ndarray, rows=None) -> tuple[np.ndarray, np.ndarray]:
        """``(q·m_j, qᵀΣ_j q)`` of unit queries *q* (…, d) for every row *j* of the statistics (the collection,
        then each group): two (…, g + 1) arrays; with *rows*, the variances of those rows only (NaN elsewhere: a
        query's shortlist seldom spans every group, and each variance reads a d × d matrix)."""
        q = np.asarray(q, np.float64)
        flat = q.reshape(-1, q.shape[-1])
        var = np.full((len(flat), len(self.cov)), np.nan)
        q32 = flat.astype(np.float32)  # the covariances are stored in float32: read as they are, not copied
        for j in range(len(self.cov)) if rows is None else rows:
            var[:, j] = ((q32 @ self.cov[j]).astype(np.float64) * flat).sum(-1)
        return q @ self.mean.T.astype(np.float64), var.reshape(*q.shape[:-1], -1)

    def work_terms(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(y·m, yᵀΣy)`` of unit embeddings *y* (…, d) against the whole collection."""
        y = np.asarray(y, np.float64)
        flat = y.reshape(-1, y.shape[-1])
        var = ((flat.astype(np.float32) @ self.cov[0]).astype(np.float64) * flat).sum(-1)
        return y @ self.mean[0].astype(np.float64), var.reshape(y.shape[:-1])

    def score(self, q: np.ndarray, y: np.ndarray, groups: np.ndarray, work_terms=None) -> np.ndarray:
        """The standardised similarity :math:`s` of the unit query *q* (d,) to the works *y* (m, d) of style
        *groups* (m,); or of queries *q* (b, d) to their works *y* (b, m, d), *groups* (b, m). *work_terms*: the
        works' :meth:`work_terms`, if already known."""
        q, y = np.asarray(q, np.float64), np.asarray(y, np.float64)
        c = (y @ q[..., None])[..., 0]
        g = np.asarray(groups, np.int64) + 1
        q_mean, q_var = self.query_terms(q, rows=np.union1d([0], g))
        y_mean, y_var = self.work_terms(y) if work_terms is None else work_terms
        z_all = _z(c, q_mean[..., :1], q_var[..., :1])
        z_group = _z(c, np.take_along_axis(q_mean, g, -1), np.take_along_axis(q_var, g, -1))
        return (z_all + z_group + _z(c, y_mean, y_var)) / 3.0

    def arrays(self) -> dict:
        return {"mean": self.mean, "cov": self.cov, "counts": self.counts, "groups": self.groups,
                "work_mean": self.work_mean, "work_var": self.work_var, "fitted_on": np.int64(self.fitted_on)}

    def save(self, path: str | os.PathLike) -> None:
        atomic_savez(path, **self.arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ContentStats":
        with np.load(path, allow_pickle=False) as z:
            return cls(mean=z["mean"], cov=z["cov"], counts=z["counts"], groups=z["groups"],
                       work_mean=z["work_mean"], work_var=z["work_var"], fitted_on=int(z["fitted_on"]))


def _z(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``(x − mean) / sqrt(var)``, 0 where the spread of the cosines is nil (below 10⁻⁶: every work alike, up to the
    rounding of the stored covariances)."""
    sd = np.sqrt(np.maximum(var, 0.0))
    return np.where(sd > 1e-6, (x - mean) / np.where(sd > 1e-6, sd, 1.0), 0.0)
