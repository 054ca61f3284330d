"""The one neighbour search: for a catalog exactly `similar`'s lists, for a (works, X) pair an exact search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from artspace.analysis import distance_scale, nearest, read_source
from artspace.errors import InvalidOption


def brute(X, by):
    X = X.astype(np.float64)
    D = ((X[:, None] - X[None]) ** 2).sum(-1) * distance_scale(by)
    np.fill_diagonal(D, np.inf)
    return D


@pytest.mark.parametrize("by", ["style", "l_style", "content"])
def test_catalog_neighbours_are_similar_s_lists(demo_catalog, by):
    src = read_source(demo_catalog, by=by)
    ids, dist = nearest(demo_catalog, by=by, k=4)
    for wid, row, d in zip(src.ids, ids, dist):
        hits = demo_catalog.similar(int(wid), by=by, k=4)
        assert row.tolist() == hits["id"].tolist()
        assert np.allclose(d, hits["distance"], rtol=1e-6)


@pytest.mark.parametrize("by", ["l_style", "content"])
def test_pair_search_is_exact(blobs, by):
    works, X = blobs(groups=5, per=40, dim=12, sep=2.0)
    D = brute(X, by)
    ids, dist = nearest((works, X), by=by, k=4)
    assert (ids == np.argsort(D, axis=1, kind="stable")[:, :4]).all()
    assert np.allclose(dist, np.take_along_axis(D, ids, 1), rtol=1e-9)


def test_duplicates_are_neighbours_but_never_the_work_itself():
    X = np.array([[0.0, 0], [0, 0], [0, 0], [5, 5]], np.float32)
    ids, dist = nearest((pd.DataFrame({"g": list("abcd")}), X), by="l_style", k=3)
    assert all(i not in row for i, row in enumerate(ids.tolist()))
    assert dist[0, :2].tolist() == [0.0, 0.0] and dist[0, 2] == 50.0


def test_k_is_checked_and_capped():
    works, X = pd.DataFrame({"g": list("abc")}), np.eye(3)
    assert nearest((works, X), by="content", k=10)[0].shape == (3, 2)
    with pytest.raises(InvalidOption, match="k must be a whole number of at least 1, not 0"):
        nearest((works, X), k=0)
