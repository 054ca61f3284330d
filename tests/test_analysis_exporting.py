"""Export: the works table with stored analysis columns and, per space, exactly `similar`'s neighbours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from artspace.analysis import cluster, export, layout
from artspace.catalog import Catalog
from artspace.errors import ArtspaceError, InvalidOption, OutputConflict
from artspace.spaces import SPACES


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_neighbours_are_similar_s_for_every_work_and_space(analysis_catalog, tmp_path, suffix):
    cat = analysis_catalog
    k = 4
    export(cat, tmp_path / f"works{suffix}", neighbors=k)
    back = pd.read_csv(tmp_path / "works.csv") if suffix == ".csv" else pd.read_parquet(tmp_path / "works.parquet")
    assert len(back) == len(cat.works)
    for by in ("style", "l_style", "content"):
        for wid, ids, dist in back[["id", f"{by}_neighbors", f"{by}_neighbor_distances"]].itertuples(index=False):
            if suffix == ".csv":
                ids, dist = [int(v) for v in ids.split(";")], [float(v) for v in dist.split(";")]
            hits = cat.similar(int(wid), by=by, k=k)
            assert list(ids) == hits["id"].tolist(), (by, wid)
            assert np.allclose(dist, hits["distance"], rtol=1e-5 if suffix == ".csv" else 1e-6), (by, wid)


def test_export_has_labels_coordinates_and_files(analysis_catalog, tmp_path):
    cluster(analysis_catalog, by="content", k=3)
    layout(analysis_catalog, by="content", method="pca")
    table = export(analysis_catalog, tmp_path / "works.parquet", neighbors=2, by=["l_style"])
    back = pd.read_parquet(tmp_path / "works.parquet")
    assert {"cluster_content", "map_content_x", "map_content_y", "l_style_neighbors", "file"} <= set(back.columns)
    assert "style_neighbors" not in back.columns and len(table) == len(back)
    assert str(back["cluster_content"].dtype) == "Int64"
    assert back["file"].map(lambda f: Path(f).is_file()).all()
    assert table.attrs["stale_columns"] == {}
    # the file says what its figures are and which generation of which catalog they come from
    import json

    import pyarrow.parquet as pq

    about = json.loads(pq.read_schema(tmp_path / "works.parquet").metadata[b"artspace_provenance"])
    cat = Catalog.open(analysis_catalog.dir)
    assert about["generation"] == cat.generation and about["catalog"] == str(Path(cat.dir).resolve())
    assert about["spec"]["size"] == cat.spec.size and about["neighbors"] == 2
    assert about["spaces"] == {"l_style": {"label": SPACES["l_style"].label, "formula": SPACES["l_style"].formula}}


def test_export_refuses_bad_paths_and_options(analysis_catalog, tmp_path):
    with pytest.raises(ArtspaceError, match="csv or .parquet"):
        export(analysis_catalog, tmp_path / "works.xlsx")
    with pytest.raises(InvalidOption, match="neighbors must be 0"):
        export(analysis_catalog, tmp_path / "works.csv", neighbors=-1)
    with pytest.raises(InvalidOption, match="by must be style, l_style or content"):
        export(analysis_catalog, tmp_path / "works.csv", by=["signature"])
    with pytest.raises(OutputConflict, match="lies inside"):
        export(analysis_catalog, analysis_catalog.dir / "works.csv")
    assert not list(tmp_path.iterdir())


def test_export_of_embeddings_only(blobs, tmp_path):
    works, X = blobs(groups=2, per=5)
    table = export((works, {"content": X / np.linalg.norm(X, axis=1, keepdims=True)}), tmp_path / "w.csv",
                   neighbors=2, by="content")
    assert "file" not in table.columns and table["content_neighbors"].str.count(";").eq(1).all()
