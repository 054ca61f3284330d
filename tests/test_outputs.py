"""No command writes over one of its inputs or into the catalog; CSV exports are safe to open in a spreadsheet."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from artspace.analysis import cluster, compare, export, map_collection, map_html, plane, units, write_csv
from artspace.catalog import CATALOG_DIRNAME
from artspace.errors import ArtspaceError, OutputConflict
from artspace.outputs import CATALOG_DIRNAME as GUARDED_DIRNAME
from artspace.outputs import FORMULA_PREFIXES, check_output, neutralise_formulas


@pytest.fixture
def files(tmp_path):
    (tmp_path / "in.png").write_bytes(b"painting")
    (tmp_path / "other").mkdir()
    return tmp_path


# ---- check_output --------------------------------------------------------------------------------------------------


def test_the_same_file_is_refused_however_it_is_spelled(files, monkeypatch):
    with pytest.raises(OutputConflict, match=r"in\.png would overwrite the input .*in\.png; choose another output"):
        check_output(files / "in.png", inputs=[files / "in.png"])
    monkeypatch.chdir(files / "other")
    with pytest.raises(OutputConflict):
        check_output("../in.png", inputs=[files / "in.png"])
    with pytest.raises(OutputConflict):  # neither exists yet: compared by resolved path
        check_output(files / "other" / ".." / "new.png", inputs=[str(files / "new.png")])


def test_a_symlink_to_an_input_is_the_input(files):
    os.symlink(files / "in.png", files / "link.png")
    with pytest.raises(OutputConflict, match="link.png would overwrite the input"):
        check_output(files / "link.png", inputs=[files / "in.png"])
    with pytest.raises(OutputConflict):  # the input given through the link, the output by its real name
        check_output(files / "in.png", inputs=[files / "link.png"])
    os.symlink(files, files / "other" / "up")  # a symlinked folder above the output
    with pytest.raises(OutputConflict):
        check_output(files / "other" / "up" / "in.png", inputs=[files / "in.png"])


def test_a_hard_link_to_an_input_is_the_input(files):
    os.link(files / "in.png", files / "other" / "hard.png")
    with pytest.raises(OutputConflict, match="hard.png would overwrite the input"):
        check_output(files / "other" / "hard.png", inputs=[files / "in.png"])


def test_nothing_may_be_written_inside_a_catalog_folder(files):
    cat = files / CATALOG_DIRNAME
    (cat / "sub").mkdir(parents=True)
    assert GUARDED_DIRNAME == CATALOG_DIRNAME
    for target in (cat, cat / "works.csv", cat / "sub" / "deeper" / "x.png"):
        with pytest.raises(OutputConflict, match="whose files artspace manages; choose another output"):
            check_output(target)  # a folder named .artspace is protected without being named
    custom = files / "my-catalog"
    custom.mkdir()
    with pytest.raises(OutputConflict, match="my-catalog"):
        check_output(custom / "x.png", protected_dirs=[custom])
    os.symlink(custom, files / "other" / "alias")
    with pytest.raises(OutputConflict):
        check_output(files / "other" / "alias" / "x.png", protected_dirs=[custom])


def test_new_files_elsewhere_are_fine(files):
    assert check_output(files / "out.png", inputs=[files / "in.png", None, object()],
                        protected_dirs=[files / CATALOG_DIRNAME, None]) == files / "out.png"
    assert check_output(str(files / "other" / "in.png"), inputs=[files / "in.png"]).name == "in.png"
    # a folder beside the catalog, or the collection folder holding it, is not inside it
    assert check_output(files / "clusters", protected_dirs=[files / CATALOG_DIRNAME]) == files / "clusters"
    assert check_output(files, protected_dirs=[files / CATALOG_DIRNAME]) == files
    assert issubclass(OutputConflict, ArtspaceError)


# ---- neutralise_formulas -------------------------------------------------------------------------------------------


def test_text_cells_that_would_run_as_formulas_are_escaped():
    cells = ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1"]
    assert [c[0] for c in cells] == list(FORMULA_PREFIXES)
    df = pd.DataFrame({"title": cells, "n": range(6)})
    out = neutralise_formulas(df)
    assert out["title"].tolist() == ["'" + c for c in cells]
    assert df["title"].tolist() == cells  # the input is not changed


def test_numbers_missing_values_and_plain_text_are_left_alone():
    df = pd.DataFrame({"x": [-3.5, 2.0, np.nan], "k": [-1, 0, 1], "year": ["-350", "+1.5e3", None],
                       "mixed": [-3.5, "Vue de Delft", np.nan], "ok": ["a=b", "Judith - II", "x@y"]})
    out = neutralise_formulas(df)
    assert out["x"].dtype == np.float64 and out["x"].iloc[:2].tolist() == [-3.5, 2.0] and np.isnan(out["x"].iloc[2])
    assert out["k"].dtype == df["k"].dtype and out["k"].tolist() == [-1, 0, 1]
    assert out["year"].tolist()[:2] == ["-350", "+1.5e3"] and pd.isna(out["year"].iloc[2])  # numbers as text
    assert out["mixed"].iloc[0] == -3.5 and out["mixed"].iloc[1] == "Vue de Delft" and pd.isna(out["mixed"].iloc[2])
    assert out["ok"].tolist() == df["ok"].tolist()


def test_categorical_cells_and_column_names_are_escaped_too():
    df = pd.DataFrame({"style": pd.Categorical(["=evil()", "Baroque", "=evil()"]), "=HYPERLINK(\"x\")": [1, 2, 3]})
    out = neutralise_formulas(df)
    assert out["style"].tolist() == ["'=evil()", "Baroque", "'=evil()"]
    assert list(out.columns) == ["style", "'=HYPERLINK(\"x\")"]


def test_csv_files_are_escaped_and_parquet_keeps_the_raw_values(tmp_path):
    rng = np.random.default_rng(0)
    works = pd.DataFrame({"title": ["=HYPERLINK(\"http://x\")", "@A1", "Nachtwacht", "-note"],
                          "year": [1642.0, -350.0, np.nan, 1650.0]})
    X = {"style": rng.normal(size=(4, 3)), "content": rng.normal(size=(4, 3))}
    export((works, X), tmp_path / "w.csv", neighbors=1)
    back = pd.read_csv(tmp_path / "w.csv")
    assert back["title"].tolist() == ["'=HYPERLINK(\"http://x\")", "'@A1", "Nachtwacht", "'-note"]
    assert back["year"].iloc[1] == -350.0 and back["year"].dtype == np.float64
    export((works, X), tmp_path / "w.parquet", neighbors=1)
    assert pd.read_parquet(tmp_path / "w.parquet")["title"].tolist() == works["title"].tolist()
    write_csv(pd.DataFrame({"g": ["+x"]}), tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines() == ["g", "'+x"]


def test_cli_csv_tables_are_escaped(capsys):
    from artspace.cli.common import print_table

    df = pd.DataFrame({"path": ["=a.png", "b.png"], "distance": [-0.5, 1.0]})
    print_table(df, "csv")
    assert capsys.readouterr().out.splitlines() == ["path,distance", "'=a.png,-0.5", "b.png,1.0"]
    print_table(df, "json")  # JSON is data, not a spreadsheet: raw values
    assert '"=a.png"' in capsys.readouterr().out


# ---- analyses and export refuse the catalog folder and the metadata they read ------------------------------------


def test_analyses_refuse_an_output_folder_inside_the_catalog(analysis_catalog):
    cat = analysis_catalog
    before = sorted(p.name for p in cat.dir.iterdir())
    query = cat.works["path"].iloc[0]
    calls = {
        "cluster": lambda out: cluster(cat, k=2, out=out),
        "map": lambda out: map_collection(cat, out, method="pca", picture=False),
        "map_html": lambda out: map_html(cat, out / "m.html"),
        "plane": lambda out: plane(cat, query, out=out),
        "compare": lambda out: compare(cat, group_by="texture", permutations=0, out=out),
        "units": lambda out: units(cat, layer="relu1_1", unit=0, out=out),
    }
    for name, call in calls.items():
        for out in (cat.dir, cat.dir / name):
            with pytest.raises(OutputConflict, match="whose files artspace manages"):
                call(out)
    assert sorted(p.name for p in cat.dir.iterdir()) == before


def test_export_refuses_the_catalog_folder_and_the_metadata_csv(analysis_catalog):
    cat = analysis_catalog
    metadata = cat.root / "metadata.csv"
    original = metadata.read_bytes()
    with pytest.raises(OutputConflict, match="metadata.csv would overwrite the input"):
        export(cat, metadata)
    assert metadata.read_bytes() == original
    with pytest.raises(OutputConflict, match="whose files artspace manages"):
        export(cat, cat.dir / "works.parquet")


# ---- an existing file is replaced only when artspace made it ------------------------------------------------------


def test_a_file_artspace_did_not_make_is_never_replaced(tmp_path, blobs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from artspace.analysis.files import save_figure
    from artspace.images import save_image

    # a CSV: replaced by the same table again, never over someone's notes or another table
    notes = tmp_path / "notes.csv"
    notes.write_text("my notes on the Rembrandts\n")
    with pytest.raises(OutputConflict, match=r"notes\.csv exists and is not an earlier output of this table"):
        write_csv(pd.DataFrame({"id": [1]}), notes)
    assert notes.read_text() == "my notes on the Rembrandts\n"
    table = tmp_path / "t.csv"
    write_csv(pd.DataFrame({"id": [1], "x": [0.5]}), table)
    write_csv(pd.DataFrame({"id": [2], "x": [0.25]}), table)
    assert pd.read_csv(table)["id"].tolist() == [2]
    with pytest.raises(OutputConflict, match="its header differs"):
        write_csv(pd.DataFrame({"id": [3]}), table)
    # an image: replaced when its header says artspace made it, never a painting of the user's
    painting = tmp_path / "painting.png"
    Image.new("RGB", (8, 8), "red").save(painting)
    before = painting.read_bytes()
    with pytest.raises(OutputConflict, match=r"painting\.png exists and was not made by artspace; choose another"):
        save_image(Image.new("RGB", (8, 8), "blue"), painting)
    assert painting.read_bytes() == before
    sheet = save_image(Image.new("RGB", (8, 8), "blue"), tmp_path / "sheet.jpg")
    save_image(Image.new("RGB", (8, 8), "green"), sheet)
    # a figure: marked in its PNG text, so a second run replaces it; someone's PNG is refused
    fig = plt.figure()
    save_figure(fig, tmp_path / "fig.png")
    save_figure(fig, tmp_path / "fig.png")
    with pytest.raises(OutputConflict):
        save_figure(fig, painting)
    plt.close(fig)
    # an export and a map: the same rule
    works, X = blobs(groups=2, per=6)
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "mine.parquet")
    with pytest.raises(OutputConflict, match="was not made by artspace"):
        export((works, X), tmp_path / "mine.parquet", neighbors=1)
    export((works, X), tmp_path / "e.parquet", neighbors=1)
    export((works, X), tmp_path / "e.parquet", neighbors=2)
    assert len(pd.read_parquet(tmp_path / "e.parquet")["style_neighbors"].iloc[0]) == 2
    (tmp_path / "page.html").write_text("<html>my own page</html>")
    with pytest.raises(OutputConflict, match="was not made by artspace"):
        map_html((works, X), tmp_path / "page.html", neighbors_k=1)
    assert (tmp_path / "page.html").read_text() == "<html>my own page</html>"
    map_html((works, X), tmp_path / "map.html", neighbors_k=1)
    map_html((works, X), tmp_path / "map.html", neighbors_k=1)


def test_an_analysis_never_replaces_a_column_of_the_metadata(demo_copy):
    from artspace.catalog import Catalog, index
    from artspace.errors import InvalidOption
    from artspace.spec import FeatureSpec

    index(demo_copy, metadata=demo_copy / "metadata.csv", spec=FeatureSpec(size=64), quiet=True, batch_size=4)
    cat = Catalog.open(demo_copy)
    before = cat.works["texture"].tolist()
    with pytest.raises(InvalidOption, match=r"column 'texture' comes from the metadata file .*metadata\.csv; store "
                                            r"the result under another name \(cluster --column NAME\), or rename"):
        cluster(cat, by="style", k=2, column="texture")
    assert Catalog.open(demo_copy).works["texture"].tolist() == before
    cluster(cat, by="style", k=2, column="texture_cluster")
    assert Catalog.open(demo_copy).works["texture"].tolist() == before


def test_npz_outputs_keep_the_name_given_and_leave_no_temporary_file(tmp_path):
    """numpy adds .npz to a file name without it; artspace's writers go through an open file, so that `-o axes`
    writes `axes` (no traceback, no stray `.axes.<pid>.tmp.npz`)."""
    from artspace.discriminant import LinearProjection

    p = LinearProjection(mean=np.zeros(3), components=np.eye(3, 2), info={"kind": "test"})
    for name in ("axes", "axes.txt", "axes.npz"):
        p.save(tmp_path / name)
        assert np.allclose(LinearProjection.load(tmp_path / name).components, np.eye(3, 2))
    assert sorted(f.name for f in tmp_path.iterdir()) == ["axes", "axes.npz", "axes.txt"]
