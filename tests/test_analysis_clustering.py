"""Clusters: k chosen by silhouette, three methods, agreement with a label column, labels stored as nullable
integers with the command that made them, stale after the works change."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artspace.analysis import agreement, cluster, stored_layout
from artspace.analysis.maps import layout
from artspace.catalog import Catalog, index
from artspace.errors import ArtspaceError, InvalidOption


def test_cluster_chooses_k_and_recovers_separated_groups(blobs):
    works, X = blobs(groups=4, per=15, sep=8.0)
    r = cluster((works, X), label_column="g")
    assert r.k == 4 and "silhouette" in r.how and r.scores["k"].min() == 2
    assert r.purity == 1.0 and r.nmi == pytest.approx(1.0)
    assert r.sizes.tolist() == [15, 15, 15, 15]
    assert r.table.shape == (4, 4) and r.table.to_numpy().sum() == 60 and (r.table.max(axis=1) == 15).all()


def test_cluster_says_when_the_works_form_no_clear_clusters(blobs):
    works, X = blobs(groups=4, per=15, sep=8.0)
    assert "no clear clusters" not in cluster((works, X)).how
    works, X = blobs(groups=1, per=60, dim=20, sep=0.0)  # one Gaussian cloud: no structure at any k
    r = cluster((works, X), k_range=(2, 4))
    assert "no clear clusters in this space (Kaufman & Rousseeuw 1990)" in r.how and r.scores["silhouette"].max() < 0.25


@pytest.mark.parametrize("method", ["agglomerative", "hdbscan"])
def test_other_cluster_methods(blobs, method):
    works, X = blobs(groups=3, per=20, sep=10.0, seed=2)
    r = cluster((works, X), method=method, label_column="g", max_fit=40)  # fit on a sample, assign the rest
    assert r.k == 3 and r.nmi > 0.9
    assert "40 of 60" in r.how


def test_cluster_arguments_are_checked(blobs):
    works, X = blobs()
    with pytest.raises(InvalidOption, match="hdbscan finds"):
        cluster((works, X), method="hdbscan", k=3)
    with pytest.raises(InvalidOption, match="method must be one of"):
        cluster((works, X), method="dbscan")
    with pytest.raises(ArtspaceError, match="no column 'nope'"):
        cluster((works, X), label_column="nope")
    with pytest.raises(InvalidOption, match="by must be style, l_style or content"):
        cluster((works, X), by="signature")
    with pytest.raises(InvalidOption, match=r"k must be between 1 and the number of works \(60\), not 0"):
        cluster((works, X), k=0)
    # numbers NumPy, scikit-learn or UMAP would refuse with a traceback are refused here, in one line, first
    for seed in (-1, 2 ** 32, 1.5):
        with pytest.raises(InvalidOption, match=r"seed \(--seed\) must be a whole number from 0 to 4294967295"):
            cluster((works, X), k=2, seed=seed)
    with pytest.raises(InvalidOption, match=r"min_cluster_size=61 is more than the 60 works"):
        cluster((works, X), method="hdbscan", min_cluster_size=61)
    with pytest.raises(InvalidOption, match=r"column \(--column\) must be a name"):
        cluster((works, X), k=2, column=" ")


def test_agreement_scores():
    r = agreement([0, 0, 1, 1, 1, 2], ["a", "a", "b", "b", "a", None])
    assert r["purity"] == pytest.approx(4 / 5)
    assert 0 < r["nmi"] < 1
    assert r["table"].to_numpy().sum() == 5 and r["table"].loc[1, "a"] == 1
    # hdbscan's noise (-1) is no cluster: the figures are over the clustered works, the table keeps the noise row
    r = agreement([0, 0, 1, 1, -1, -1, -1], ["a", "a", "b", "b", "a", "b", "c"])
    assert r["purity"] == 1.0 and r["ari"] == pytest.approx(1.0) and r["noise"] == 3
    assert r["table"].loc[-1].sum() == 3


@pytest.mark.parametrize("method,size,needle", [("hdbscan", 1, "at least 2"), ("hdbscan", 0, "at least 2"),
                                                ("kmeans", 5, "hdbscan's")])
def test_min_cluster_size_is_checked(analysis_catalog, method, size, needle):
    with pytest.raises(InvalidOption, match=needle):
        cluster(analysis_catalog, by="style", method=method, min_cluster_size=size, save=False)


@pytest.mark.parametrize("by", ["style", "l_style", "content"])
def test_cluster_clusters_the_space_s_stored_embedding(analysis_catalog, by):
    r = cluster(analysis_catalog, by=by, k=3, save=False)
    ids, X = analysis_catalog.embeddings(by)
    labels = r.labels.set_index("id").loc[ids, "cluster"].to_numpy()
    # each work's distance is its squared distance to its cluster's mean embedding (½ of it for content)
    scale = 0.5 if by == "content" else 1.0
    for c in range(3):
        m = labels == c
        expected = scale * ((X[m].astype(np.float64) - X[m].astype(np.float64).mean(0)) ** 2).sum(1)
        assert np.allclose(r.labels.set_index("id").loc[ids[m], "distance"], expected, rtol=1e-6)


def test_cluster_on_the_demo_writes_column_csv_and_sheets(analysis_catalog, tmp_path):
    r = cluster(analysis_catalog, by="style", k=3, label_column="texture", out=tmp_path)
    assert r.nmi > 0.5  # the demo's textures are its styles by construction
    reopened = Catalog.open(analysis_catalog.dir)
    stored = reopened.works.set_index("id")["cluster_style"]
    assert str(stored.dtype) == "Int64" and stored.loc[r.labels["id"]].tolist() == r.labels["cluster"].tolist()
    assert reopened.manifest["analyses"]["cluster_style"]["source"] == "cluster --by style -k 3 --method kmeans"
    assert r.source == "cluster --by style -k 3 --method kmeans"
    assert r.table.index.name == "cluster" and set(r.table.columns) == {"stripes", "dots", "checker"}
    csv = pd.read_csv(tmp_path / "clusters-style.csv")
    assert len(csv) == len(analysis_catalog.works) and {"cluster", "distance", "texture"} <= set(csv.columns)
    assert len(sorted(tmp_path.glob("cluster-style-*.png"))) == 3


@pytest.mark.slow
def test_stored_labels_stay_integers_and_turn_stale_when_works_are_added(demo_catalog, tmp_path):
    root = tmp_path / "demo"
    shutil.copytree(demo_catalog.root, root)
    cat = Catalog.open(root)
    cluster(cat, by="content", k=2)
    layout(cat, by="content", method="pca")
    assert cat.stale_columns() == {} and stored_layout(cat, by="content") is not None
    Image.new("RGB", (64, 64), (20, 120, 200)).save(root / "dots" / "new.png")
    index(root, quiet=True, batch_size=4)
    cat = Catalog.open(root)
    works = cat.works.set_index("path")
    assert str(works["cluster_content"].dtype) == "Int64" and pd.isna(works.at["dots/new.png", "cluster_content"])
    assert works["cluster_content"].drop("dots/new.png").notna().all()
    assert set(cat.stale_columns()) == {"cluster_content", "map_content_x", "map_content_y"}
    assert cat.stale_columns()["cluster_content"] == "cluster --by content -k 2 --method kmeans"
    assert stored_layout(cat, by="content") is None  # a stale layout is computed again, not reused
