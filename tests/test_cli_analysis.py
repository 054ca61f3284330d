"""One test per analysis command, invoked as a user would, the result checked through the API."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from artspace.catalog import Catalog
from artspace.cli import app

runner = CliRunner()

ANALYSIS_COMMANDS = ("cluster", "map", "plane", "compare", "units", "export")


@pytest.mark.parametrize("command", ANALYSIS_COMMANDS)
def test_every_analysis_command_is_documented_without_course_material(command):
    r = runner.invoke(app, [command, "--help"])
    assert r.exit_code == 0 and "Example:" in r.output and "--catalog" in r.output
    assert not re.search(r"seeds|lecture|slides", r.output, re.I)
    if command != "units":
        assert "l_style" in r.output  # every --by takes the three spaces


def test_cli_cluster_prints_the_table_and_stores_labels(analysis_catalog, tmp_path):
    c = str(analysis_catalog.dir)
    r = runner.invoke(app, ["cluster", "--by", "l_style", "-k", "3", "--label-column", "texture", "-o",
                            str(tmp_path), "--catalog", c])
    assert r.exit_code == 0, r.output
    assert "NMI" in r.output and "works per cluster (rows) and texture (columns)" in r.output
    assert all(t in r.output for t in ("stripes", "dots", "checker"))
    cat = Catalog.open(c)
    labels = pd.read_csv(tmp_path / "clusters-l_style.csv").set_index("id")["cluster"]
    assert cat.works.set_index("id").loc[labels.index, "cluster_l_style"].tolist() == labels.tolist()
    assert cat.manifest["analyses"]["cluster_l_style"]["source"] == "cluster --by l_style -k 3 --method kmeans"


def test_cli_map_writes_the_page_and_stores_the_layout(analysis_catalog, tmp_path):
    c = str(analysis_catalog.dir)
    r = runner.invoke(app, ["map", "--by", "content", "--method", "pca", "--recompute", "--neighbors", "3",
                            "--thumbs", "none", "-o", str(tmp_path), "--catalog", c])
    assert r.exit_code == 0, r.output
    cat = Catalog.open(c)
    assert cat.works[["map_content_x", "map_content_y"]].notna().all().all()
    text = (tmp_path / "map-content.html").read_text()
    data = json.loads(re.search(r'id="artspace-data">(.*?)</script>', text, re.S).group(1))
    assert data["nearest"] == "nearest by content (1 - cos)" and data["k"] == 3


def test_cli_plane_prints_the_quadrants_and_writes_the_csv(analysis_catalog, tmp_path):
    c = str(analysis_catalog.dir)
    query = Catalog.open(c).works["path"].iloc[3]
    r = runner.invoke(app, ["plane", query, "--by", "l_style", "-o", str(tmp_path), "--catalog", c])
    assert r.exit_code == 0, r.output
    assert "same style, other subject" in r.output and "style_percentile" in r.output
    df = pd.read_csv(tmp_path / "plane-l_style.csv").set_index("id")
    hits = analysis_catalog.similar(query, by="l_style", k=len(df)).set_index("id")
    assert np.allclose(df.loc[hits.index, "style_distance"], hits["distance"], rtol=1e-9)


def test_cli_compare_tests_the_groups(analysis_catalog, tmp_path):
    c = str(analysis_catalog.dir)
    r = runner.invoke(app, ["compare", "--group-by", "texture", "--permutations", "99", "-o", str(tmp_path),
                            "--catalog", c])
    assert r.exit_code == 0, r.output
    assert "p = 0.01" in r.output and "signature distance" in r.output
    matrix = pd.read_csv(tmp_path / "compare-style-matrix.csv").set_index("texture")
    assert matrix.loc["dots", "dots"] < matrix.loc["dots", "stripes"]
    assert (tmp_path / "compare-style-dendrogram.png").is_file()


def test_cli_units_shows_patches_and_characteristic_units(analysis_catalog, tmp_path):
    c = str(analysis_catalog.dir)
    r = runner.invoke(app, ["units", "--layer", "relu2_1", "--unit", "7", "-o", str(tmp_path), "--catalog", c])
    assert r.exit_code == 0, r.output
    patches = pd.read_csv(tmp_path / "units-relu2_1-7.csv")
    assert len(patches) == 9 and patches["activation"].is_monotonic_decreasing
    r = runner.invoke(app, ["units", "--layer", "relu2_1", "--group", "dots", "--column", "texture", "-o",
                            str(tmp_path), "--catalog", c])
    assert r.exit_code == 0 and "most characteristic" in r.output
    assert len(pd.read_csv(tmp_path / "units-relu2_1-texture-dots.csv")) == 10


def test_cli_export_lists_similar_s_neighbours(analysis_catalog, tmp_path):
    c = str(analysis_catalog.dir)
    r = runner.invoke(app, ["export", "-o", str(tmp_path / "works.csv"), "--neighbors", "3", "--catalog", c])
    assert r.exit_code == 0, r.output
    back = pd.read_csv(tmp_path / "works.csv")
    first = back.iloc[0]
    for by in ("style", "l_style", "content"):
        hits = analysis_catalog.similar(int(first["id"]), by=by, k=3)
        assert [int(v) for v in first[f"{by}_neighbors"].split(";")] == hits["id"].tolist()


def test_default_output_goes_beside_the_collection_when_run_inside_it(analysis_catalog, monkeypatch):
    root = analysis_catalog.root
    monkeypatch.chdir(root / "dots")
    r = runner.invoke(app, ["compare", "--group-by", "texture", "--permutations", "0"])
    assert r.exit_code == 0, r.output
    beside = root.parent / f"{root.name}-artspace" / "compare"
    assert (beside / "compare-style-matrix.csv").is_file()
    assert f"writing to {beside}" in r.output
    assert not list(root.rglob("compare-style-*"))  # nothing added to the collection


def test_two_catalogs_analysed_from_one_folder_keep_their_own_outputs(analysis_catalog, tmp_path, monkeypatch):
    other_root = tmp_path / "vermeer"
    shutil.copytree(analysis_catalog.root, other_root)
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(app, ["compare", "--group-by", "texture", "--permutations", "0",
                                "-c", str(analysis_catalog.root)])
    assert first.exit_code == 0, first.output
    mine = {p.name: p.read_bytes() for p in (tmp_path / "compare").iterdir()}
    second = runner.invoke(app, ["compare", "--group-by", "texture", "--permutations", "0", "-c", "vermeer"])
    assert second.exit_code == 0, second.output
    beside = tmp_path / "vermeer-artspace" / "compare"
    assert "holds the analyses of another catalog" in second.output and f"writing to {beside}" in second.output
    assert (beside / "compare-style-matrix.csv").is_file()
    assert {p.name: p.read_bytes() for p in (tmp_path / "compare").iterdir()} == mine
    refused = runner.invoke(app, ["compare", "--group-by", "texture", "--permutations", "0", "-c", "vermeer",
                                  "-o", "compare"])
    lines = [line for line in refused.output.splitlines() if line.startswith("Error:")]
    assert refused.exit_code == 1 and len(lines) == 1 and "choose another output folder (-o)" in lines[0]


def test_analysis_errors_are_one_line(analysis_catalog, tmp_path):
    c = str(analysis_catalog.dir)
    for args, message in ((["units", "--layer", "relu9_1", "--unit", "1"], "unknown layer"),
                          (["compare", "--group-by", "artist"], "no column 'artist'"),
                          (["cluster", "--method", "dbscan"], "method must be one of"),
                          (["cluster", "--by", "signature"], "by must be style, l_style or content"),
                          (["plane", "nowhere.png"], "neither an image file nor a work"),
                          (["plane", "0", "--by", "content"], "style axis"),
                          (["export", "-o", str(tmp_path / "w.xlsx")], "csv or .parquet")):
        r = runner.invoke(app, args + ["-o", str(tmp_path / "o")] * (args[0] not in ("export",)) + ["--catalog", c])
        lines = [line for line in r.output.splitlines() if line.startswith("Error:")]
        assert r.exit_code == 1 and len(lines) == 1 and message in lines[0], (args, r.output)
    r = runner.invoke(app, ["cluster", "--catalog", str(tmp_path / "none")])
    assert r.exit_code == 1 and "no artspace catalog" in r.output
