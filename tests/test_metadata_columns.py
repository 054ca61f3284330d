"""A scholar's metadata columns next to what artspace computes: never replaced, never a crash, and analyses that
fail to write their files leave the catalog as it was (a new user's walkthrough found each of these)."""

import csv
import io
import os
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from artspace.analysis import cluster, export, plane
from artspace.catalog import Catalog, index
from artspace.cli import app
from artspace.errors import OutputConflict
from artspace.spec import FeatureSpec

TINY_SPEC = FeatureSpec(size=64)  # the spec of the demo_catalog fixture


@pytest.fixture
def clash_catalog(demo_catalog, tmp_path) -> Catalog:
    """The demo catalog re-indexed with metadata columns named like computed ones (no image read again)."""
    root = tmp_path / "demo"
    shutil.copytree(demo_catalog.root, root)
    md = pd.read_csv(root / "metadata.csv")
    md["rank"] = "top"
    md["quadrant"] = "q"
    md["style_neighbors"] = "mine"
    md["width"] = 70.5  # centimetres, not the image's pixels
    md.to_csv(root / "clash.csv", index=False)
    index(root, metadata=root / "clash.csv", spec=TINY_SPEC, quiet=True, batch_size=4)
    return Catalog.open(root)


def test_results_keep_the_metadata_columns_beside_the_computed_ones(clash_catalog, tmp_path):
    cat = clash_catalog
    assert "meta_width" in cat.works and (cat.works["meta_width"] == 70.5).all()  # index-time: works' own 'width'
    for by in ("style", "content"):
        res = cat.similar("dots/star_0.png", by=by, k=3)
        assert res["rank"].tolist() == [1, 2, 3] and (res["meta_rank"] == "top").all()
    p = plane(cat, "dots/star_0.png", out=None)
    assert {"quadrant", "meta_quadrant"} <= set(p.works.columns) and (p.works["meta_quadrant"] == "q").all()
    table = export(cat, tmp_path / "e.csv", by="style", neighbors=2)
    assert (table["meta_style_neighbors"] == "mine").all() and table["style_neighbors"].str.contains(";").all()
    r = CliRunner().invoke(app, ["similar", "dots/star_0.png", "-c", str(cat.root), "-k", "2"])
    assert r.exit_code == 0 and "meta_rank" in r.output, r.output
    # the name a result shows is the name --where filters on, and plane --color colours by
    assert "meta_rank" in cat.works and len(cat.similar("dots/star_0.png", k=3, where="meta_rank == 'top'")) == 3


def test_the_index_says_when_a_column_is_kept_under_another_name(demo_copy, capsys):
    md = pd.read_csv(demo_copy / "metadata.csv")
    md["width"] = 50
    md.to_csv(demo_copy / "m.csv", index=False)
    report = index(demo_copy, metadata=demo_copy / "m.csv", spec=TINY_SPEC, quiet=True, batch_size=4)
    assert any("'width' kept as 'meta_width'" in n and "--where \"meta_width" in n for n in report.notes)


def test_a_cluster_or_teach_that_cannot_write_its_files_leaves_the_catalog_as_it_was(clash_catalog, tmp_path):
    from artspace.analysis import teach

    cat = clash_catalog
    out = tmp_path / "out"
    out.mkdir()
    (out / "clusters-style.csv").write_text("my,own\n1,2\n")  # a file the scholar made
    (out / "teach-texture-figures.csv").write_text("my,own\n1,2\n")
    before = cat.generation
    with pytest.raises(OutputConflict):
        cluster(cat, by="style", k=3, out=out)
    with pytest.raises(OutputConflict):
        teach(cat, "texture", methods=("lda",), out=out)
    cat.refresh()
    assert cat.generation == before and "cluster_style" not in cat.works and not cat.taught_spaces
    # and nothing of either run was written beside the refused files: every file is checked before any is written
    assert sorted(p.name for p in out.iterdir()) == ["clusters-style.csv", "teach-texture-figures.csv"]
    sheet = tmp_path / "sheets"
    sheet.mkdir()
    (sheet / "cluster-style-02.png").write_bytes(b"mine")  # a later sheet of the user's: refused before the first
    with pytest.raises(OutputConflict):
        cluster(cat, by="style", k=3, out=sheet)
    assert sorted(p.name for p in sheet.iterdir()) == ["cluster-style-02.png"]
    # the same cluster command twice into one folder, under a column name of one's own: the second replaces the first
    for _ in range(2):
        r = cluster(cat, by="style", k=3, out=tmp_path / "again", column="groups")
    assert r.column == "groups" and (tmp_path / "again" / "clusters-style.csv").is_file()


def test_touching_or_copying_files_leaves_taught_spaces_and_stored_columns_current(clash_catalog):
    from artspace.analysis import teach

    cat = clash_catalog
    teach(cat, "texture", methods=("lda",))
    cluster(cat, by="style", k=3)
    star = cat.root / "dots/star_0.png"
    st = star.stat()
    os.utime(star, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the same bytes, a later time
    index(cat.root, spec=TINY_SPEC, quiet=True, batch_size=4)
    cat = Catalog.open(cat.root)
    assert cat.stale_columns() == {}
    assert len(cat.similar("dots/star_0.png", by="taught:texture", k=2)) == 2  # not refused as stale


def test_whole_numbers_with_empty_cells_stay_whole(demo_catalog, tmp_path):
    root = tmp_path / "demo"
    shutil.copytree(demo_catalog.root, root)
    md = pd.read_csv(root / "metadata.csv")
    md["year"] = [1650 + i if i % 3 else None for i in range(len(md))]  # a few empty cells: read as floats
    md.to_csv(root / "years.csv", index=False)
    index(root, metadata=root / "years.csv", spec=TINY_SPEC, quiet=True, batch_size=4)
    cat = Catalog.open(root)
    assert str(cat.works["year"].dtype) == "Int64" and str(cat.works["texture"].dtype) != "Int64"
    r = CliRunner().invoke(app, ["similar", "dots/star_0.png", "-c", str(root), "-k", "3", "-f", "csv"])
    years = [row["year"] for row in csv.DictReader(io.StringIO(r.stdout))]
    assert r.exit_code == 0 and years and all(y == "" or y.isdigit() for y in years), years  # 1650, not 1650.0
    assert len(cat.similar("dots/star_0.png", k=50, where="year < 1700")) > 0


def test_a_csv_column_named_like_a_stored_analysis_is_kept_beside_it(demo_catalog, tmp_path):
    """cluster stored 'cluster_style' and 'mine'; a CSV with columns of those names must not replace them."""
    root = tmp_path / "demo"
    shutil.copytree(demo_catalog.root, root)
    cat = Catalog.open(root)
    cluster(cat, by="style", k=3)
    cluster(Catalog.open(root), by="style", k=2, column="mine")
    stored = Catalog.open(root).works.set_index("id")[["cluster_style", "mine"]]
    md = pd.read_csv(root / "metadata.csv")
    md["cluster_style"], md["mine"] = "from the csv", 7
    md.to_csv(root / "more.csv", index=False)
    rep = index(root, metadata=root / "more.csv", spec=TINY_SPEC, quiet=True)
    w = Catalog.open(root).works.set_index("id")
    pd.testing.assert_frame_equal(w[["cluster_style", "mine"]], stored)  # what cluster computed, kept
    assert (w["meta_cluster_style"] == "from the csv").all() and (w["meta_mine"] == 7).all()
    assert any("'cluster_style', 'mine' kept as 'meta_cluster_style', 'meta_mine'" in n for n in rep.notes)
    assert Catalog.open(root).manifest["metadata_file"]["columns"][-2:] == ["meta_cluster_style", "meta_mine"]
