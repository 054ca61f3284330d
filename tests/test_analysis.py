"""Analyses: clusters, the style/content plane, group comparisons, maps, units, export — library and CLI."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from artspace.analysis import (
    DISTANCE_SCALE,
    _holm,
    agreement,
    cluster,
    compare,
    export,
    neighbors,
    plane,
    works_and_vectors,
)
from artspace.catalog import Catalog
from artspace.cli import app
from artspace.errors import ArtspaceError, UnknownLayer, WorkNotFound
from artspace.mapping import layout, map_collection, map_html, stored_layout
from artspace.units import characteristic_units, receptive_field, unit_responses, units

runner = CliRunner()


def blobs(groups=3, per=20, dim=6, sep=6.0, seed=0):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(size=(per, dim)) + sep * rng.normal(size=dim) for _ in range(groups)])
    works = pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(groups)], per)})
    return works, X.astype(np.float32)


def brute_distances(X, by):
    X = X.astype(np.float64)
    return ((X[:, None] - X[None]) ** 2).sum(-1) * DISTANCE_SCALE[by]


# ---- sources -------------------------------------------------------------------------------------------------


def test_works_and_vectors_aligns_catalog_rows_with_embeddings(demo_catalog):
    works, X = works_and_vectors(demo_catalog, by="content")
    ids, Xc = demo_catalog.embeddings("content")
    assert works["id"].tolist() == ids.tolist()
    assert np.array_equal(X, Xc)
    assert np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-4)  # content: unit vectors, so ½‖a−b‖² = 1 − cos


def test_pair_sources_are_checked():
    with pytest.raises(ValueError, match="3 works but 2"):
        works_and_vectors((pd.DataFrame({"a": [1, 2, 3]}), np.zeros((2, 4))))
    with pytest.raises(ValueError, match="'content'"):
        works_and_vectors((pd.DataFrame({"a": [1, 2]}), {"style": np.zeros((2, 4))}), by="content")
    with pytest.raises(TypeError):
        works_and_vectors([1, 2])


# ---- compare ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["style", "content"])
def test_compare_closed_form_equals_brute_force_mean_distances(by):
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


def test_permanova_statistic_matches_the_distance_matrix_definition():
    works, X = blobs(groups=4, per=7, sep=0.8, seed=5)
    r = compare((works, X), group_by="g", permutations=0)
    D, g = brute_distances(X, "style"), works["g"].to_numpy()
    n, G = len(X), 4
    sst = np.triu(D, 1).sum() / n
    ssw = sum(np.triu(D[np.ix_(g == k, g == k)], 1).sum() / (g == k).sum() for k in set(g))
    f = ((sst - ssw) / (G - 1)) / (ssw / (n - G))
    assert r.test["statistic"] == pytest.approx(f, rel=1e-5)
    assert r.test["r2"] == pytest.approx((sst - ssw) / sst, rel=1e-5)


def test_permutation_test_separates_real_groups_from_random_labels():
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


def test_pairwise_tests_with_many_groups_and_subsampled_pairs():
    works, X = blobs(groups=22, per=4, sep=4.0)
    r = compare((works, X), group_by="g", permutations=49)
    assert len(r.pairs) == 0 and any("pairwise tests skipped" in n for n in r.notes)
    works, X = blobs(groups=2, per=60, sep=3.0)
    r = compare((works, X), group_by="g", permutations=99, pair_max=25)
    assert any("at most 25" in n for n in r.notes)
    assert r.pairs["p_value"].iloc[0] == pytest.approx(0.01)
    assert r.groups["n"].tolist() == [60, 60]  # mean distances still use every work


def test_compare_refuses_what_is_not_a_grouping():
    works, X = blobs()
    with pytest.raises(ArtspaceError, match="no column 'artist'"):
        compare((works, X), group_by="artist")
    with pytest.raises(ArtspaceError, match="two or more"):
        compare((works.assign(g="one"), X), group_by="g")
    with pytest.raises(ArtspaceError, match="max_groups"):
        compare((works.assign(g=np.arange(len(works)) // 2), X), group_by="g", max_groups=10)


def test_holm_adjustment():
    assert np.allclose(_holm(np.array([0.01, 0.04, 0.03])), [0.03, 0.06, 0.06])
    assert np.isnan(_holm(np.array([np.nan, 0.5]))[0])


# ---- cluster ---------------------------------------------------------------------------------------------------


def test_cluster_chooses_k_and_recovers_separated_groups():
    works, X = blobs(groups=4, per=15, sep=8.0)
    r = cluster((works, X), label_column="g")
    assert r.k == 4 and "silhouette" in r.how and r.scores["k"].min() == 2
    assert r.purity == 1.0 and r.nmi == pytest.approx(1.0)
    assert r.sizes.tolist() == [15, 15, 15, 15]


@pytest.mark.parametrize("method", ["agglomerative", "hdbscan"])
def test_other_cluster_methods(method):
    works, X = blobs(groups=3, per=20, sep=10.0, seed=2)
    r = cluster((works, X), method=method, label_column="g", max_fit=40)  # fit on a sample, assign the rest
    assert r.k == 3 and r.nmi > 0.9
    assert "40 of 60" in r.how


def test_cluster_arguments_are_checked():
    works, X = blobs()
    with pytest.raises(ValueError, match="hdbscan finds"):
        cluster((works, X), method="hdbscan", k=3)
    with pytest.raises(ValueError, match="method must be one of"):
        cluster((works, X), method="dbscan")
    with pytest.raises(ArtspaceError, match="no column 'nope'"):
        cluster((works, X), label_column="nope")


def test_agreement_scores():
    r = agreement([0, 0, 1, 1, 1, 2], ["a", "a", "b", "b", "a", None])
    assert r["purity"] == pytest.approx(4 / 5)
    assert 0 < r["nmi"] < 1
    assert r["contingency"].to_numpy().sum() == 5


def test_cluster_on_the_demo_writes_column_csv_and_sheets(analysis_catalog, tmp_path):
    r = cluster(analysis_catalog, by="style", k=3, label_column="texture", out=tmp_path)
    assert r.nmi > 0.5  # the demo's textures are its styles by construction
    reopened = Catalog.open(analysis_catalog.dir)
    assert reopened.works.set_index("id").loc[r.labels["id"], "cluster_style"].tolist() == r.labels["cluster"].tolist()
    csv = pd.read_csv(tmp_path / "clusters-style.csv")
    assert len(csv) == len(analysis_catalog.works) and {"cluster", "distance", "texture"} <= set(csv.columns)
    sheets = sorted(tmp_path.glob("cluster-style-*.png"))
    assert len(sheets) == 3


# ---- neighbours and export ---------------------------------------------------------------------------------------


def test_neighbors_exact_and_approximate_paths_agree_with_brute_force():
    works, X = blobs(groups=5, per=40, dim=12, sep=2.0)
    D = brute_distances(X, "content")
    np.fill_diagonal(D, np.inf)
    expected = np.argsort(D, axis=1)[:, :4]
    rows, dist = neighbors((works, X), by="content", k=4)
    assert (rows == expected).mean() > 0.99
    assert np.allclose(dist, np.take_along_axis(D, rows, 1), rtol=1e-4)
    rows2, _ = neighbors((works, X), by="content", k=4, exact_limit=10)
    assert (rows2 == expected).mean() > 0.95


def test_neighbors_match_catalog_search(demo_catalog):
    works, _ = works_and_vectors(demo_catalog, by="style")
    rows, dist = neighbors(demo_catalog, by="style", k=3)
    first = works["path"].iloc[0]
    hits = demo_catalog.similar(first, by="l_style", k=3)
    assert works["id"].to_numpy()[rows[0]].tolist() == hits["id"].tolist()
    assert np.allclose(dist[0], hits["distance"], rtol=1e-3)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_has_labels_coordinates_and_neighbours(analysis_catalog, tmp_path, suffix):
    cluster(analysis_catalog, by="content", k=3)
    layout(analysis_catalog, by="content", method="pca")
    table = export(analysis_catalog, tmp_path / f"works{suffix}", neighbors=3)
    back = pd.read_csv(tmp_path / "works.csv") if suffix == ".csv" else pd.read_parquet(tmp_path / "works.parquet")
    assert len(back) == len(analysis_catalog.works)
    assert {"cluster_content", "map_content_x", "map_content_y", "style_neighbors", "content_neighbors",
            "file"} <= set(back.columns)
    first = back["style_neighbors"].iloc[0]
    ids = [int(v) for v in first.split(";")] if suffix == ".csv" else list(first)
    hits = analysis_catalog.similar(int(back["id"].iloc[0]), by="l_style", k=3)
    assert ids == hits["id"].tolist()
    assert len(table) == len(back)
    with pytest.raises(ArtspaceError, match="csv or .parquet"):
        export(analysis_catalog, tmp_path / "works.xlsx")


# ---- plane -------------------------------------------------------------------------------------------------------


def test_plane_places_every_work_and_names_the_quadrants(analysis_catalog, tmp_path):
    works = analysis_catalog.works
    query = works["path"].iloc[0]
    r = plane(analysis_catalog, query, out=tmp_path, color="texture")
    assert len(r.works) == len(works) - 1 and r.query_id == int(works["id"].iloc[0])
    qs, _ = analysis_catalog.query_vector(query, "style")
    other = r.works.iloc[0]
    vs, _ = analysis_catalog.query_vector(int(other["id"]), "style")
    assert other["style_distance"] == pytest.approx(float(((qs - vs) ** 2).sum()), rel=1e-4)
    same_style = r.works[r.works["quadrant"] == "same style, other subject"]
    assert (same_style["style_distance"] <= r.thresholds["style"]).all()
    assert (same_style["content_distance"] > r.thresholds["content"]).all()
    top = r.top["same subject, other style"]
    assert top["content_distance"].is_monotonic_increasing
    assert (tmp_path / "plane.png").stat().st_size > 10_000
    assert len(pd.read_csv(tmp_path / "plane.csv")) == len(r.works)
    with pytest.raises(WorkNotFound):
        plane(analysis_catalog, "no/such/work.png")


def test_plane_on_embeddings_only():
    works, X = blobs(groups=2, per=10)
    rng = np.random.default_rng(0)
    C = rng.normal(size=X.shape)
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    r = plane((works, {"style": X, "content": C}), 0)
    assert len(r.works) == 19 and set(r.top) >= {"same style, other subject", "same subject, other style"}


# ---- maps --------------------------------------------------------------------------------------------------------


def embedded_data(path):
    text = path.read_text()
    m = re.search(r'<script type="application/json" id="artspace-data">(.*?)</script>', text, re.S)
    return json.loads(m.group(1)), text


def test_map_html_is_self_contained(tmp_path):
    works, X = blobs(groups=3, per=30)
    works["year"] = np.linspace(1500, 1900, len(works))
    works.loc[3, "year"] = np.nan
    coords = layout((works, X), method="pca")
    out = map_html((works, X), tmp_path / "map.html", coords=coords, color="g", neighbors_k=5)
    data, text = embedded_data(out)
    assert data["n"] == len(works) == len(data["x"]) and data["k"] == 5 and len(data["nbr"]) == 5 * len(works)
    assert data["columns"]["g"]["kind"] == "cat" and data["columns"]["year"]["kind"] == "num"
    assert data["columns"]["year"]["values"][3] is None
    assert re.search(r"""(src|href)=["']?(https?:)?//""", text) is None  # nothing to fetch
    assert "default-src 'none'" in text


def test_map_data_cannot_break_out_of_its_script_block(tmp_path):
    hostile = ["<!--<script>", "</script><script>alert(1)</script>", "a & b > c", "line\u2028sep\u2029end",
               "<!-- -->", "plain"]
    works, X = blobs(groups=2, per=3)
    works["title"] = hostile
    works["</script>"] = hostile[::-1]  # a column name is data too
    out = map_html((works, X), tmp_path / "map.html", coords=layout((works, X), method="pca"), color="title",
                   neighbors_k=2, title="<!--<script> & co")
    text = out.read_text(encoding="utf-8")
    start = text.index('<script type="application/json" id="artspace-data">') + len(
        '<script type="application/json" id="artspace-data">')
    block = text[start:text.index("</script>", start)]
    for bad in ("<!--", "<script", "</", "<", ">", "&", "\u2028", "\u2029"):
        assert bad not in block, bad
    data = json.loads(block)
    assert data["columns"]["title"]["levels"] == hostile and data["columns"]["</script>"]["levels"] == hostile[::-1]
    assert data["title"] == "<!--<script> & co" and "<title>&lt;!--&lt;script&gt; &amp; co</title>" in text
    assert text.count("<script") == 2 and text.rstrip().endswith("</html>")  # the page's own two scripts only


@pytest.mark.slow
def test_map_collection_on_the_demo(analysis_catalog, tmp_path):
    r = map_collection(analysis_catalog, tmp_path, by="style", color="texture", recompute=True)
    assert r.computed and {p.name for p in r.files} == {"map-style.csv", "map-style.png", "map-style.html"}
    stored = stored_layout(Catalog.open(analysis_catalog.dir), by="style")
    assert np.allclose(stored.set_index("id").loc[r.coords["id"], "x"], r.coords["x"])
    data, _ = embedded_data(tmp_path / "map-style.html")
    assert data["thumbs"][0].startswith("data:image/jpeg;base64,")
    again = map_collection(analysis_catalog, tmp_path, by="style", picture=False)
    assert not again.computed  # the layout saved in the catalog is reused


def test_large_collection_layout_path_keeps_groups_apart():
    works, X = blobs(groups=3, per=200, dim=16, sep=12.0)
    xy = layout((works, X), large=100, n_epochs=50)  # faiss neighbour graph + PCA initialisation
    P = xy[["x", "y"]].to_numpy()
    centres = np.stack([P[works["g"] == g].mean(0) for g in ("g0", "g1", "g2")])
    spread = max(np.linalg.norm(P[works["g"] == g] - centres[i], axis=1).mean() for i, g in enumerate(("g0", "g1", "g2")))
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > 2 * spread


def test_layout_is_saved_in_the_catalog(analysis_catalog):
    xy = layout(analysis_catalog, by="style", method="pca")
    stored = stored_layout(Catalog.open(analysis_catalog.dir), by="style")
    assert np.allclose(stored["x"], xy["x"]) and len(xy) == len(analysis_catalog.works)


# ---- units -------------------------------------------------------------------------------------------------------


def test_receptive_fields_of_vgg19():
    assert receptive_field("relu1_1") == (3, 1, 0.0)
    assert receptive_field("pool1") == (6, 2, 0.5)  # 3, 5 after two convolutions, +1 by pooling
    assert receptive_field("relu3_1") == (24, 4, 1.5)
    with pytest.raises(UnknownLayer):
        receptive_field("relu9_9")


def test_units_top_patches_are_the_strongest_responses(analysis_catalog, tmp_path):
    r = units(analysis_catalog, layer="relu2_1", unit=5, top=9, column="texture", out=tmp_path)
    assert len(r.patches) == 9 and r.patches["activation"].is_monotonic_decreasing
    best = r.patches.iloc[0]
    ex = analysis_catalog.extractor
    with torch.inference_mode():
        f = ex.net(ex.load(analysis_catalog.root / best["path"])[None], ["relu2_1"])["relu2_1"][0, 5]
    assert float(f.max()) == pytest.approx(best["activation"], rel=1e-4)
    # every other work responds less
    rest = unit_responses(analysis_catalog, layer="relu2_1")
    assert float(rest["max"][:, 5].max()) == pytest.approx(best["activation"], rel=1e-4)
    assert (analysis_catalog.cache_dir / "units-relu2_1.npz").is_file()
    assert r.sheet.size[0] > 300 and (tmp_path / "units-relu2_1-5.png").is_file()
    assert best["x1"] - best["x"] <= receptive_field("relu2_1")[0] + 2
    with pytest.raises(ArtspaceError, match="units 0..127"):
        units(analysis_catalog, layer="relu2_1", unit=128)


def test_characteristic_units_rank_by_effect(analysis_catalog):
    df = characteristic_units(analysis_catalog, layer="relu2_1", column="texture", group="stripes", top=5)
    assert len(df) == 5 and df["effect"].is_monotonic_decreasing and (df["n_group"] == 6).all()
    with pytest.raises(ArtspaceError, match="no work has texture"):
        characteristic_units(analysis_catalog, layer="relu2_1", column="texture", group="velvet")


# ---- CLI ---------------------------------------------------------------------------------------------------------


ANALYSIS_COMMANDS = ("cluster", "map", "plane", "compare", "units", "export")


@pytest.mark.parametrize("command", ANALYSIS_COMMANDS)
def test_every_analysis_command_is_documented(command):
    r = runner.invoke(app, [command, "--help"])
    assert r.exit_code == 0 and "Example:" in r.output and "--catalog" in r.output


def test_cli_cluster_compare_plane_export(analysis_catalog, tmp_path):
    c = str(analysis_catalog.dir)
    r = runner.invoke(app, ["cluster", "--by", "style", "--label-column", "texture", "-o", str(tmp_path / "cl"),
                            "--catalog", c])
    assert r.exit_code == 0, r.output
    assert "chosen automatically" in r.output and "NMI" in r.output
    assert "cluster_style" in Catalog.open(c).works.columns

    r = runner.invoke(app, ["compare", "--group-by", "texture", "--permutations", "99", "-o", str(tmp_path / "cmp"),
                            "--catalog", c])
    assert r.exit_code == 0, r.output
    assert "p = 0.01" in r.output and (tmp_path / "cmp" / "compare-style-dendrogram.png").is_file()

    query = Catalog.open(c).works["path"].iloc[3]
    r = runner.invoke(app, ["plane", query, "-o", str(tmp_path / "pl"), "--catalog", c])
    assert r.exit_code == 0, r.output
    assert "same style, other subject" in r.output and (tmp_path / "pl" / "plane.csv").is_file()

    r = runner.invoke(app, ["export", "-o", str(tmp_path / "works.parquet"), "--catalog", c])
    assert r.exit_code == 0, r.output
    assert "cluster_style" in pd.read_parquet(tmp_path / "works.parquet").columns


def test_cli_units_and_errors(analysis_catalog, tmp_path):
    c = str(analysis_catalog.dir)
    r = runner.invoke(app, ["units", "--layer", "relu2_1", "--group", "dots", "--column", "texture", "-o",
                            str(tmp_path), "--catalog", c])
    assert r.exit_code == 0, r.output
    assert "most characteristic" in r.output
    r = runner.invoke(app, ["units", "--layer", "relu2_1", "--unit", "7", "-o", str(tmp_path), "--catalog", c])
    assert r.exit_code == 0 and (tmp_path / "units-relu2_1-7.png").is_file()
    for args, message in ((["units", "--layer", "relu9_1", "--unit", "1"], "unknown layer"),
                          (["compare", "--group-by", "artist"], "no column 'artist'"),
                          (["cluster", "--method", "dbscan"], "--method must be one of"),
                          (["plane", "nowhere.png"], "neither an image file nor a work"),
                          (["export", "-o", str(tmp_path / "w.xlsx")], "csv or .parquet")):
        r = runner.invoke(app, args + ["--catalog", c])
        assert r.exit_code == 1 and "Error:" in r.output and message in r.output, (args, r.output)
    r = runner.invoke(app, ["cluster", "--catalog", str(tmp_path / "none")])
    assert r.exit_code == 1 and "no artspace catalog" in r.output
