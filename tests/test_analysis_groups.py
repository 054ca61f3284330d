"""Group comparisons: closed-form mean distances, PERMANOVA (Anderson 2001), pairwise tests, Holm adjustment."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from artspace.analysis import compare, distance_scale, holm
from artspace.errors import ArtspaceError, InvalidOption


def brute_distances(X, by):
    X = X.astype(np.float64)
    return ((X[:, None] - X[None]) ** 2).sum(-1) * distance_scale(by)


@pytest.mark.parametrize("by", ["style", "l_style", "content"])
def test_compare_closed_form_equals_brute_force_mean_distances(blobs, by):
    works, X = blobs(groups=3, per=9, sep=1.0, seed=3)
    works.loc[::7, "g"] = None  # works without a group are left out
    r = compare((works, X), group_by="g", by=by, permutations=0)
    keep = works["g"].notna().to_numpy()
    D, g = brute_distances(X[keep], by), works["g"][keep].to_numpy()
    for a, b in itertools.product(sorted(set(g)), repeat=2):
        ia, ib = np.flatnonzero(g == a), np.flatnonzero(g == b)
        sub = D[np.ix_(ia, ib)]
        expected = sub[~np.eye(len(ia), dtype=bool)].mean() if a == b else sub.mean()
        assert r.matrix.loc[a, b] == pytest.approx(expected, rel=1e-5)
    assert any("left out" in n for n in r.notes)


def test_permanova_statistic_matches_the_distance_matrix_definition(blobs):
    works, X = blobs(groups=4, per=7, sep=0.8, seed=5)
    r = compare((works, X), group_by="g", permutations=0)
    D, g = brute_distances(X, "style"), works["g"].to_numpy()
    n, G = len(X), 4
    sst = np.triu(D, 1).sum() / n
    ssw = sum(np.triu(D[np.ix_(g == k, g == k)], 1).sum() / (g == k).sum() for k in set(g))
    f = ((sst - ssw) / (G - 1)) / (ssw / (n - G))
    assert r.test["statistic"] == pytest.approx(f, rel=1e-5)
    assert r.test["r2"] == pytest.approx((sst - ssw) / sst, rel=1e-5)


def test_permutation_test_separates_real_groups_from_random_labels(blobs):
    works, X = blobs(groups=3, per=15, sep=3.0, seed=1)
    real = compare((works, X), group_by="g", permutations=199, seed=0)
    assert real.test["p_value"] == pytest.approx(1 / 200)
    assert (real.pairs["p_adjusted"] < 0.05).all()
    shuffled = works.assign(g=np.random.default_rng(0).permutation(works["g"].to_numpy()))
    null = compare((shuffled, X), group_by="g", permutations=199, seed=0)
    assert null.test["p_value"] > 0.05
    # Under the null the p-values are spread out, not piled up at 1 or at the minimum.
    ps = [compare((works.assign(g=np.random.default_rng(s).permutation(works["g"].to_numpy())), X),
                  group_by="g", permutations=99, pairwise=False, seed=s).test["p_value"] for s in range(12)]
    assert 0.15 < np.mean(ps) < 0.85


def test_pairwise_tests_with_many_groups_and_subsampled_pairs(blobs):
    works, X = blobs(groups=22, per=4, sep=4.0)
    r = compare((works, X), group_by="g", permutations=49)
    assert len(r.pairs) == 0 and any("pairwise tests skipped" in n for n in r.notes)
    # the dendrogram joins groups by the distance between their means, pair tests or not
    assert r.separation.loc["g0", "g1"] > 0 and len(r.dendrogram().axes[0].get_xticklabels()) == 22
    works, X = blobs(groups=2, per=60, sep=3.0)
    r = compare((works, X), group_by="g", permutations=99, pair_max=25)
    assert any("at most 25" in n for n in r.notes)
    assert r.pairs["p_value"].iloc[0] == pytest.approx(0.01)
    assert r.groups["n"].tolist() == [60, 60]  # mean distances still use every work
    assert r.pairs["separation"].iloc[0] == pytest.approx(r.separation.loc["g0", "g1"])


def test_compare_refuses_what_is_not_a_grouping(blobs):
    works, X = blobs()
    with pytest.raises(ArtspaceError, match="no column 'artist'"):
        compare((works, X), group_by="artist")
    with pytest.raises(ArtspaceError, match="two or more"):
        compare((works.assign(g="one"), X), group_by="g")
    with pytest.raises(ArtspaceError, match="max_groups"):
        compare((works.assign(g=np.arange(len(works)) // 2), X), group_by="g", max_groups=10)
    for bad in (-1, 10 ** 8):
        with pytest.raises(InvalidOption, match=rf"must be a whole number from 0 to 1,000,000 .*not {bad}"):
            compare((works, X), group_by="g", permutations=bad)


def test_holm_adjustment():
    assert np.allclose(holm(np.array([0.01, 0.04, 0.03])), [0.03, 0.06, 0.06])
    assert np.isnan(holm(np.array([np.nan, 0.5]))[0])


def test_compare_on_the_demo_uses_the_signature_embeddings(analysis_catalog, tmp_path):
    r = compare(analysis_catalog, group_by="texture", by="style", permutations=99, out=tmp_path)
    ids, X = analysis_catalog.embeddings("style")
    tex = analysis_catalog.works.set_index("id").loc[ids, "texture"].to_numpy()
    D = brute_distances(X, "style")
    a, b = np.flatnonzero(tex == "dots"), np.flatnonzero(tex == "stripes")
    assert r.matrix.loc["dots", "stripes"] == pytest.approx(D[np.ix_(a, b)].mean(), rel=1e-4)
    assert r.test["p_value"] == pytest.approx(0.01) and "signature distance" in r.summary()
    assert {p.name for p in r.files} == {f"compare-style-{s}" for s in ("matrix.csv", "groups.csv", "pairs.csv",
                                                                        "heatmap.png", "dendrogram.png")}


def test_compare_says_when_too_few_permutations_leave_no_pair_testable(blobs):
    works, X = blobs(groups=6, per=8, sep=4.0, seed=2)  # 15 pairs: Holm's least p with 99 permutations is 0.15
    r = compare((works, X), group_by="g", permutations=99, seed=0)
    assert r.test["p_value"] == pytest.approx(0.01) and (r.pairs["p_adjusted"] >= 0.05).all()
    assert any("no pair of the 15 can reach p < 0.05" in n and "at least 300 permutations" in n for n in r.notes)
    enough = compare((works, X), group_by="g", permutations=300, seed=0)
    assert not any("can reach" in n for n in enough.notes) and (enough.pairs["p_adjusted"] < 0.05).all()
    untested = compare((works, X), group_by="g", permutations=0)
    assert "pairs of groups differ" not in untested.summary() and not any("can reach" in n for n in untested.notes)


def test_compare_and_layout_refuse_seeds_out_of_range(blobs):
    from artspace.analysis import layout
    from artspace.errors import InvalidOption

    works, X = blobs(groups=2, per=5)
    with pytest.raises(InvalidOption, match=r"seed \(--seed\) must be"):
        compare((works, X), group_by="g", seed=-1)
    with pytest.raises(InvalidOption, match=r"seed \(--seed\) must be"):
        layout((works, X), seed=99999999999)
    assert len(layout((works, X), method="pca", seed=None)) == 10  # None: UMAP's own, allowed
