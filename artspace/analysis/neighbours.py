"""The one neighbour search of the analyses: each work's nearest works, as ``artspace similar`` lists them.

For a catalog it is :meth:`Catalog.neighbours <artspace.catalog.Catalog.neighbours>`, so that the neighbours
``export`` writes and the HTML map lists are, work for work, those ``similar --by SPACE`` returns (for ``style``
ranked by the relative signature distance). For a ``(works, X)`` pair it is an exact search on the embeddings with
the space's distance (squared L2, or 1 − cos = ½‖a − b‖² for ``content``); there is no neighbourhood scale to divide
by, so ``style`` ranks by the raw signature distance there.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidOption
from .source import distance_scale, read_source

__all__ = ["nearest"]


def nearest(source, *, by: str = "style", k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Each work's *k* nearest other works in space *by*.

    Parameters
    ----------
    source : Catalog, (works, X) or Source
    by : {"style", "l_style", "content"}
    k : int
        Neighbours per work (at most the number of works − 1).

    Returns
    -------
    ids : ndarray (n, k) int64
        The neighbours' work ids, nearest first, one row per work in the order of ``read_source(source).works``.
    distances : ndarray (n, k) float64
        The distances ``similar`` prints (catalog), or the space's distance on the embeddings (pair).

    Examples
    --------
    >>> ids, d = nearest((__import__("pandas").DataFrame({"g": list("abc")}), [[0.0], [1.0], [3.0]]), by="l_style",
    ...                  k=1)
    >>> ids.ravel().tolist(), d.ravel().tolist()
    ([1, 0, 1], [1.0, 1.0, 4.0])
    """
    src = read_source(source, by=by)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidOption(f"k must be a whole number of at least 1, not {k!r}")
    n = len(src.works)
    k = min(int(k), n - 1)
    if k < 1:
        return np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float64)
    if src.catalog is not None:
        _, ids, dist = src.catalog.neighbours(by, k, ids=src.ids)
        return ids, dist
    rows, dist = exact_neighbours(src.vectors(by), k, scale=distance_scale(by))
    return src.ids[rows], dist


def exact_neighbours(X: np.ndarray, k: int, *, scale: float = 1.0, batch: int = 4096
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Row positions and distances (*scale* × squared L2, in float64) of each row's *k* nearest other rows of *X*,
    by exhaustive search (:func:`artspace.search.batch_search` on an exact index)."""
    from ..search import VectorIndex, batch_search

    X = np.ascontiguousarray(X, np.float32)
    n = len(X)
    positions = np.arange(n, dtype=np.int64)
    rows, _ = batch_search(VectorIndex.build(positions, X, exact_limit=n + 1), X, k, ids=positions)
    dist = np.empty((n, k), np.float64)
    for start in range(0, n, batch):
        diff = X[rows[start:start + batch]].astype(np.float64) - X[start:start + batch, None, :].astype(np.float64)
        dist[start:start + batch] = scale * np.einsum("ijk,ijk->ij", diff, diff)
    order = np.argsort(dist, axis=1, kind="stable")  # float32 ranking, float64 figures: re-sort by the figures
    return np.take_along_axis(rows, order, 1), np.take_along_axis(dist, order, 1)
