"""Searching embeddings: relative ranking, neighbourhood scales, neighbour lists, batch search, content model."""

from __future__ import annotations

import numpy as np
import pytest

from artspace.content_model import ContentModel
from artspace.search import (NeighbourLists, VectorIndex, batch_search, neighbourhood_scales, relative_search,
                             scale_floor)


def _clustered(n: int, seed: int = 0) -> np.ndarray:
    """Points in clusters of very different spreads: neighbourhood scales vary, as between PACS domains."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, 16)) * 3
    spread = np.geomspace(0.05, 2.0, 8)
    c = rng.integers(0, 8, n)
    return (centres[c] + rng.standard_normal((n, 16)) * spread[c, None]).astype(np.float32)


def test_relative_search_equals_an_exhaustive_ranking():
    x = _clustered(1500)
    ids = np.arange(1500, dtype=np.int64) * 3 + 7  # labels that are not positions
    idx = VectorIndex.build(ids, x, metric="l2")
    d2 = ((x[:, None, :].astype(np.float64) - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    rho = np.sort(d2, axis=1)[:, :10].mean(1)
    assert np.allclose(neighbourhood_scales(idx, ids, x), rho, rtol=1e-4)
    allowed = ids[::2]
    for q in range(0, 1500, 37):
        rel = d2[q] / np.sqrt(rho[q] * rho)
        got_rel, got_raw, got = relative_search(idx, x[q], 10, query_scale=rho[q],
                                                scales=lambda f: rho[(f - 7) // 3], max_scale=rho.max(),
                                                exclude=ids[q])
        want = np.argsort(rel, kind="stable")[:10]
        assert list(got) == list(ids[want]) and np.allclose(got_rel, rel[want], rtol=1e-4)
        assert np.allclose(got_raw, d2[q, want], rtol=1e-4, atol=1e-6)
        # restricted to some works
        got_rel, _, got = relative_search(idx, x[q], 5, query_scale=rho[q], scales=lambda f: rho[(f - 7) // 3],
                                          max_scale=rho.max(), allowed=allowed, exclude=ids[q])
        masked = np.where(np.isin(ids, allowed), rel, np.inf)
        assert list(got) == list(ids[np.argsort(masked, kind="stable")[:5]])


def test_relative_search_reaches_beyond_the_first_pool_of_raw_neighbours():
    """A work in a sparse region, 130th by raw distance, is the nearest relative to the neighbourhoods."""
    rng = np.random.default_rng(1)
    directions = np.eye(16)[:13]
    dense = np.concatenate([d + 0.01 * rng.standard_normal((10, 16)) for d in directions])  # 130 points at ~1
    sparse = np.zeros((1, 16))
    sparse[0, 13] = 2.0  # at 2 from the query, 2.2 or more from everything else
    query = np.zeros((1, 16))
    x = np.concatenate([query, dense, sparse]).astype(np.float32)
    ids = np.arange(len(x), dtype=np.int64)
    idx = VectorIndex.build(ids, x)
    rho = neighbourhood_scales(idx, ids, x)
    rel, raw, got = relative_search(idx, x[0], 3, query_scale=rho[0], scales=lambda f: rho[f],
                                    max_scale=rho.max(), exclude=0)
    assert got[0] == len(x) - 1 and raw[0] == pytest.approx(4.0)
    assert (((x[1:] - x[0]) ** 2).sum(1) < 4.0).sum() == 130  # all the dense points are nearer by raw distance
    d2 = ((x[:, None].astype(np.float64) - x[None]) ** 2).sum(-1)
    assert list(got) == list(np.argsort(np.where(ids == 0, np.inf, d2[0] / np.sqrt(rho[0] * rho)))[:3])


def test_neighbourhood_scales_of_tiny_collections_and_copies():
    x = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]], np.float32)
    idx = VectorIndex.build(np.array([1, 2, 3]), x)
    # two others each; the copies (ids 1 and 3) are at distance 0 from each other
    assert np.allclose(neighbourhood_scales(idx, np.array([1, 2, 3]), x), [12.5, 25.0, 12.5])
    assert np.allclose(neighbourhood_scales(idx, np.array([-1]), x[:1], k=1), [0.0])  # an outside copy
    assert scale_floor(np.array([0.0, 2.0, 4.0])) == pytest.approx(2e-3)
    with pytest.raises(ValueError, match="at least 2 works"):
        neighbourhood_scales(VectorIndex.build(np.array([1]), x[:1]), np.array([1]), x[:1])


def test_neighbour_lists_updated_in_place_equal_lists_from_scratch():
    x = _clustered(800, seed=3)
    ids = np.arange(800, dtype=np.int64)
    first, searched = NeighbourLists.build(VectorIndex.build(ids, x), ids, x)
    assert searched == 800 and first.neighbours.shape == (800, 10)
    d2 = ((x[:, None, :].astype(np.float64) - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    assert np.allclose(first.scales, np.sort(d2, axis=1)[:, :10].mean(1), rtol=1e-4)
    # A second run: 20 works removed, 15 changed, 25 added (ids grow, as index gives them)
    rng = np.random.default_rng(4)
    gone = rng.choice(800, 20, replace=False)
    keep = np.setdiff1d(ids, gone)
    x2 = x[keep].copy()
    changed = rng.choice(len(keep), 15, replace=False)
    x2[changed] += rng.standard_normal((15, 16)).astype(np.float32)
    ids2 = np.concatenate([keep, np.arange(800, 825)])
    x2 = np.concatenate([x2, _clustered(25, seed=5)])
    index2 = VectorIndex.build(ids2, x2)
    updated, searched = NeighbourLists.build(index2, ids2, x2, previous=first)
    scratch, _ = NeighbourLists.build(index2, ids2, x2)
    assert np.array_equal(updated.neighbours, scratch.neighbours)
    assert np.allclose(updated.distances, scratch.distances, rtol=1e-5, atol=1e-6)
    # only the new and changed works and those whose lists lost a neighbour were searched in the whole collection
    lost = np.concatenate([gone, keep[changed]])
    untouched = np.setdiff1d(keep, keep[changed])
    damaged = np.isin(first.neighbours[untouched], lost).any(1).sum()
    assert searched == 15 + 25 + damaged < 800
    # nothing changed: nothing searched
    again, searched = NeighbourLists.build(index2, ids2, x2, previous=updated)
    assert searched == 0 and np.array_equal(again.neighbours, scratch.neighbours)


def test_batch_search_rows_equal_single_queries():
    x = _clustered(600, seed=7)
    ids = np.arange(600, dtype=np.int64) + 100
    idx = VectorIndex.build(ids, x)
    rho = neighbourhood_scales(idx, ids, x)
    nbr, dist = batch_search(idx, x, 8, ids=ids, scales=rho, scale_of=lambda f: rho[f - 100], max_scale=rho.max())
    for q in range(0, 600, 23):
        rel, _, found = relative_search(idx, x[q], 8, query_scale=rho[q], scales=lambda f: rho[f - 100],
                                        max_scale=rho.max(), exclude=ids[q])
        assert list(nbr[q]) == list(found) and np.allclose(dist[q], rel)
    raw_nbr, raw = batch_search(idx, x, 8, ids=ids)
    d, i = idx.search(x[:1], 9)
    assert list(raw_nbr[0]) == [j for j in i[0] if j != ids[0]][:8]


def test_content_model_keeps_its_groups_while_the_collection_changes_little():
    rng = np.random.default_rng(0)
    style = np.concatenate([rng.normal(size=(50, 4)) + c for c in (0, 10, 20)]).astype(np.float32)
    desc = rng.normal(size=(150, 6)).astype(np.float32)
    model = ContentModel.fit(style, desc, groups=3)
    assert model.fitted_on == 150
    kept, refitted = ContentModel.update(model, style[:145], desc[:145])  # 3 % fewer works
    assert not refitted and np.array_equal(kept.centroids, model.centroids)
    assert np.array_equal(kept.means, model.means)  # the other works' content embeddings do not move
    _, refitted = ContentModel.update(model, style[:100], desc[:100])  # a third fewer: fitted again
    assert refitted


def test_an_approximate_index_is_tuned_to_its_recall_and_says_so():
    from artspace.search import TARGET_RECALL, VectorIndex

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 32))
    x = (centres[rng.integers(0, 20, 3000)] + 0.3 * rng.normal(size=(3000, 32))).astype(np.float32)
    ids = np.arange(3000, dtype=np.int64) * 3
    ix = VectorIndex.build(ids, x, exact_limit=1000)
    cal = ix.describe()["index_calibration"]
    assert ix.kind != "exact" and cal["recall_at_10"] >= TARGET_RECALL and 1 <= cal["nprobe"] <= cal["nlist"]
    # the recall it reports is the recall it gives, on other queries too
    import faiss

    q = x[rng.choice(3000, 200, replace=False)]
    _, truth = faiss.knn(q, x, 10)
    _, found = ix.search(q, 10)
    assert np.mean([len(set(a) & set(ids[b])) / 10 for a, b in zip(found, truth)]) >= TARGET_RECALL - 0.03
    assert VectorIndex.build(ids, x).describe() == {"index": "exact"}


def test_neighbour_lists_of_an_approximate_index_take_new_works_from_their_side():
    """Above the exact limit a new work enters the kept lists of the works among its 100 nearest, instead of every
    kept work searching the new ones: the lists match the exact merge almost everywhere."""
    from artspace.search import NeighbourLists, VectorIndex

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 24)) * 3
    x = (centres[rng.integers(0, 30, 6000)] + rng.normal(size=(6000, 24))).astype(np.float32)
    ids = np.arange(6000, dtype=np.int64)
    old = slice(0, 5800)
    exact_before = VectorIndex.build(ids[old], x[old])
    previous, _ = NeighbourLists.build(exact_before, ids[old], x[old])
    approximate = VectorIndex.build(ids, x, exact_limit=1000)
    assert approximate.kind != "exact"
    merged, searched = NeighbourLists.build(approximate, ids, x, previous=previous)
    assert searched == 200  # only the new works search the collection
    exact, _ = NeighbourLists.build(VectorIndex.build(ids, x), ids, x, previous=previous)
    same = np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(merged.neighbours, exact.neighbours)])
    assert same >= 0.97
    assert np.mean(np.isclose(merged.scales, exact.scales, rtol=1e-4)) >= 0.97


def test_choose_groups_takes_the_k_with_the_best_silhouette():
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    from artspace.content_model import choose_groups

    rng = np.random.default_rng(3)
    centres = rng.normal(scale=4.0, size=(5, 16))
    x = (centres[rng.integers(0, 5, 300)] + rng.normal(size=(300, 16))).astype(np.float32)
    picked = choose_groups(x, max_groups=12, seed=0)
    # the same sample and k-means as choose_groups, each silhouette computed from the points afresh
    xs = x[np.random.default_rng(0).choice(300, size=300, replace=False)].astype(np.float64)
    scores = {k: silhouette_score(xs, KMeans(n_clusters=k, n_init=2, random_state=0).fit_predict(xs))
              for k in range(2, 13)}
    assert picked == max(scores, key=scores.get) == 5
    assert choose_groups(x[:7]) == 1  # fewer than 8 works: no two groups of 4
