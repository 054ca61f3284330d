r"""faiss indexes over the catalog's embeddings, and the style-free content embedding.

Style index: squared Euclidean distance between compact style embeddings — an estimate of :math:`L_{style}`.
Content index: inner product between unit content embeddings; the reported distance is :math:`1-\cos`.

Which faiss index: up to :data:`EXACT_LIMIT` works an exact flat index (every distance computed); above it an
inverted-file index (``IVF{4√n},Flat``, 16 lists probed), which searches millions of works in milliseconds at a
small cost in recall; the choice is recorded in the manifest.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import faiss
import numpy as np

from .atomic import atomic_write

__all__ = ["EXACT_LIMIT", "VectorIndex", "ContentModel"]

#: Largest collection searched with an exact (flat) index. 200,000 works × 1,024 float32 numbers (style and content) fit in 0.8 GB.
EXACT_LIMIT = 200_000


class VectorIndex:
    """A faiss index with the catalog's work ids as labels.

    Parameters
    ----------
    metric : {"l2", "ip"}
        Squared Euclidean distance, or inner product (for unit vectors, cosine similarity).
    """

    def __init__(self, index: faiss.Index, metric: str):
        self.index = index
        self.metric = metric

    @property
    def kind(self) -> str:
        inner = faiss.downcast_index(self.index.index) if isinstance(self.index, faiss.IndexIDMap) else self.index
        return "exact" if isinstance(inner, (faiss.IndexFlatL2, faiss.IndexFlatIP)) else type(inner).__name__

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, *, metric: str = "l2",
              exact_limit: int = EXACT_LIMIT) -> "VectorIndex":
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        n, d = vectors.shape
        faiss_metric = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        if n <= exact_limit:
            inner = faiss.IndexFlatL2(d) if metric == "l2" else faiss.IndexFlatIP(d)
        else:
            nlist = int(4 * math.sqrt(n))
            quantizer = faiss.IndexFlatL2(d) if metric == "l2" else faiss.IndexFlatIP(d)
            inner = faiss.IndexIVFFlat(quantizer, d, nlist, faiss_metric)
            rng = np.random.default_rng(0)
            sample = vectors[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
            inner.train(sample)
            inner.nprobe = 16
        index = faiss.IndexIDMap2(inner)
        if n:
            index.add_with_ids(vectors, ids)
        return cls(index, metric)

    def search(self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None):
        """Return (distances, ids) arrays of shape (B, k); missing neighbours have id -1.

        Distances are squared Euclidean (``l2``) or ``1 - inner product`` (``ip``). *allowed* restricts the search
        to those ids.
        """
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = int(min(k, self.ntotal))
        if k <= 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        params = None
        if allowed is not None:
            sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            inner = faiss.downcast_index(self.index.index)
            params = faiss.SearchParametersIVF(sel=sel, nprobe=inner.nprobe) if hasattr(inner, "nprobe") \
                else faiss.SearchParameters(sel=sel)
        d, i = self.index.search(q, k, params=params)
        if self.metric == "ip":
            d = 1.0 - d
        return d, i

    def save(self, path: str | os.PathLike) -> None:
        atomic_write(path, lambda p: faiss.write_index(self.index, str(p)))

    @classmethod
    def load(cls, path: str | os.PathLike, metric: str) -> "VectorIndex":
        return cls(faiss.read_index(str(path)), metric)


def choose_groups(style: np.ndarray, *, max_groups: int = 32, sample: int = 4000, seed: int = 0) -> int:
    """Number of style groups with the best silhouette score (k-means, k = 2 … max_groups, at least 4 works each)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = len(style)
    hi = min(max_groups, n // 4)
    if hi < 2:
        return 1
    rng = np.random.default_rng(seed)
    x = style[rng.choice(n, size=min(n, sample), replace=False)].astype(np.float64)
    best, best_k = -2.0, 2
    for k in range(2, hi + 1):
        labels = KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(x)
        score = silhouette_score(x, labels)
        if score > best:
            best, best_k = score, k
    return best_k


@dataclass
class ContentModel:
    r"""Removes from content descriptors what each style group shares.

    A painter's hand or a medium adds the same texture to every subject, and ImageNet features pooled over space
    respond to texture first (Geirhos et al., 2019): a sketch of a dog lies nearer to a sketch of a house than to a
    photograph of a dog. The works are grouped by style (k-means on style embeddings; the number of groups, 2 to
    32, is the one with the best silhouette on up to 4,000 works) and each descriptor has its group's mean
    descriptor subtracted; what remains is
    how this work differs from others in the same hand — its subject. An image from outside the collection is
    assigned to the nearest style group and treated the same way. The embedding is scaled to unit length.
    """

    centroids: np.ndarray  # (g, style_dim)
    means: np.ndarray  # (g, descriptor_dim)

    @classmethod
    def fit(cls, style: np.ndarray, descriptors: np.ndarray, *, groups: int | None = None,
            sample: int = 50_000, seed: int = 0) -> "ContentModel":
        """Fit style groups (k-means on at most *sample* works, then every work assigned) and their mean descriptors."""
        from sklearn.cluster import KMeans  # imported here: scikit-learn takes a second to import

        n = len(style)
        g = groups if groups is not None else choose_groups(style, seed=seed)
        g = max(1, min(g, n))
        if g == 1:
            return cls(centroids=style.mean(0, keepdims=True).astype(np.float32),
                       means=descriptors.mean(0, keepdims=True).astype(np.float32))
        rng = np.random.default_rng(seed)
        fit_rows = rng.choice(n, size=min(n, sample), replace=False) if n > sample else np.arange(n)
        km = KMeans(n_clusters=g, n_init=4, random_state=seed).fit(style[fit_rows].astype(np.float64))
        model = cls(centroids=km.cluster_centers_.astype(np.float32), means=np.zeros((g, descriptors.shape[1]),
                                                                                    np.float32))
        labels = model.groups(style)
        for c in range(g):
            members = labels == c
            model.means[c] = descriptors[members].mean(0) if members.any() else 0.0
        return model

    def groups(self, style: np.ndarray) -> np.ndarray:
        d = ((style[:, None, :] - self.centroids[None]) ** 2).sum(-1) if len(style) * len(self.centroids) < 4e6 \
            else np.stack([((style - c) ** 2).sum(1) for c in self.centroids], 1)
        return d.argmin(1)

    def transform(self, style: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
        e = descriptors - self.means[self.groups(style)]
        return (e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write(path, lambda p: np.savez(p, centroids=self.centroids, means=self.means))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ContentModel":
        with np.load(path) as z:
            return cls(centroids=z["centroids"], means=z["means"])
