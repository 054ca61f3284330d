"""Every command of the CLI, invoked as a user would, then checked through the Python API."""

from __future__ import annotations

import json

from PIL import Image
from typer.testing import CliRunner

from artspace.catalog import Catalog
from artspace.cli import app

runner = CliRunner()


def test_every_command_has_a_summary_and_an_example():
    import typer.main

    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        assert cmd.help and "Example" in cmd.help, f"`artspace {name}` lacks a summary with an example"


def test_help_prints_square_brackets_as_written():
    r = runner.invoke(app, ["index", "--help"])
    assert r.exit_code == 0 and "[default: 224]" in r.output and "artspace[ray]" in r.output


def test_demo_then_index_then_similar(tmp_path):
    root = tmp_path / "demo"
    r = runner.invoke(app, ["demo", str(root), "--variants", "1", "--size", "64"])
    assert r.exit_code == 0 and "wrote 36 images" in r.output
    r = runner.invoke(app, ["index", str(root), "--metadata", str(root / "metadata.csv"), "--size", "64", "-q"])
    assert r.exit_code == 0, r.output
    assert "36 works" in r.output and "36 added" in r.output
    assert len(Catalog.open(root).works) == 36

    r = runner.invoke(app, ["similar", "dots/star_0.png", "--by", "content", "-k", "4", "-c", str(root)])
    assert r.exit_code == 0 and "rank" in r.output and "distance" in r.output and len(r.stdout.splitlines()) == 5
    header = r.stdout.splitlines()[0].split()
    assert "expanded" in header and "score" in header  # content queries are expanded and standardised by default ...
    assert "ranked by the standardised similarity (score)" in r.stderr
    r = runner.invoke(app, ["similar", "dots/star_0.png", "--by", "content", "-k", "4", "-c", str(root),
                            "--expand", "0", "--no-standardise"])
    assert r.exit_code == 0 and "expanded" not in r.output and "score" not in r.output  # ... or not, when asked
    r = runner.invoke(app, ["similar", "dots/star_0.png", "--by", "l_style", "--standardise", "-c", str(root)])
    assert_one_error_line(r, "ranks a content search", "--by content")
    r = runner.invoke(app, ["similar", "dots/star_0.png", "--by", "style", "--expand", "2", "-c", str(root)])
    assert_one_error_line(r, "widens a content query", "--by content")

    r = runner.invoke(app, ["similar", "3", "--by", "style", "-k", "3", "-c", str(root), "--format", "json",
                            "--where", "texture == 'waves'", "--sheet", str(tmp_path / "sheet.jpg")])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [x["rank"] for x in rows] == [1, 2, 3] and {x["texture"] for x in rows} == {"waves"}
    # what the figures are, from which catalog generation: on standard error, beside the machine-readable rows
    cat = Catalog.open(root)
    assert "by style (relative signature distance): mean_l H^2_l" in r.stderr
    assert f"generation {cat.generation}, artspace " in r.stderr
    assert {"id", "path", "distance", "signature", "l_style"} <= set(rows[0])
    assert Image.open(tmp_path / "sheet.jpg").size[0] > 200

    r = runner.invoke(app, ["similar", "3", "-c", str(root), "--format", "csv", "-k", "2"])
    assert r.exit_code == 0 and r.stdout.splitlines()[0].startswith("rank,id,path,distance")

    r = runner.invoke(app, ["similar", "nothing-here", "-c", str(root)])
    assert r.exit_code == 1 and "Error:" in r.output and "neither an image file nor a work" in r.output

    r = runner.invoke(app, ["similar", "3", "-c", str(root), "--by", "colour"])
    assert r.exit_code == 1 and "style or content" in r.output

    # --where is parsed, never evaluated: the payload is refused in one line, and nothing ran
    payload = f"@pd.io.common.os.system('touch {tmp_path / 'PWNED'}') == 0"
    r = runner.invoke(app, ["similar", "3", "-c", str(root), "--where", payload])
    assert r.exit_code == 1 and r.output.startswith("Error: --where") and "Traceback" not in r.output
    assert not (tmp_path / "PWNED").exists()
    r = runner.invoke(app, ["similar", "3", "-c", str(root), "--where", "texture == 'gold'"])
    assert r.exit_code == 1 and "Error:" in r.output and "36 works" in r.output
    # the contact sheet may not overwrite the query's own image, nor any other image artspace did not make, and its
    # name is checked before the search
    r = runner.invoke(app, ["similar", "dots/star_0.png", "-c", str(root), "--sheet", str(root / "dots/star_0.png")])
    assert r.exit_code == 1 and "would overwrite" in r.output
    other = next(p for p in sorted(root.glob("*/*.png")) if p.name != "star_0.png")
    painting = other.read_bytes()
    r = runner.invoke(app, ["similar", "3", "-c", str(root), "--sheet", str(other)])
    assert r.exit_code == 1 and "exists and was not made by artspace" in r.output and "rank" not in r.output
    assert other.read_bytes() == painting
    for bad in ("sheet.csv", "sheet.pdf", "sheet"):
        r = runner.invoke(app, ["similar", "3", "-c", str(root), "--sheet", str(tmp_path / bad)])
        assert r.exit_code == 1 and r.output.startswith("Error: output") and "Traceback" not in r.output
        assert "use .png, .jpg, .tif or .webp" in r.output and "rank" not in r.output
    r = runner.invoke(app, ["similar", "3", "-c", str(root), "--caption", "nope"])
    assert r.exit_code == 1 and "--caption 'nope' is not a column" in r.output and "texture" in r.output

    # the same settings again: nothing to do (a stored spec spells out the default weights; they are the same)
    r = runner.invoke(app, ["index", str(root), "--size", "64", "-q"])
    assert r.exit_code == 0 and "36 unchanged" in r.output, r.output


def test_index_exit_code_says_files_were_skipped(demo_copy):
    (demo_copy / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    r = runner.invoke(app, ["index", str(demo_copy), "--size", "64", "-q"])
    assert r.exit_code == 3 and "skipped broken.jpg:" in r.output and "1 skipped" in r.output


def test_index_errors_are_one_line(tmp_path):
    r = runner.invoke(app, ["index", str(tmp_path / "missing")])
    assert r.exit_code == 1 and r.output.startswith("Error:") and "not a folder" in r.output
    r = runner.invoke(app, ["similar", "x.jpg", "-c", str(tmp_path)])
    assert r.exit_code == 1 and "no artspace catalog" in r.output


def test_distance_table_and_json(demo_catalog):
    cat = demo_catalog
    r = runner.invoke(app, ["distance", "0", "5", "-c", str(cat.dir), "--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert set(d) == {"style", "l_style", "content", "exact"}
    assert set(d["style"]) == {"distance", "percentile", "signature", "scale_a", "scale_b"}
    e = d["exact"]
    assert len(e["style_layers"]) == 5 and list(e["signature_layers"]) == ["relu4_1", "relu5_1"]
    assert abs(sum(e["style_layers"].values()) - e["style"]) <= 1e-6 * e["style"]
    assert 0 < e["signature"] < 1 and abs(sum(e["signature_layers"].values()) / 2 - e["signature"]) <= 1e-9
    # what a citation needs: the side the maps were computed at, the network precision, the weights
    assert (e["size"], e["precision"], e["weights"]) == (cat.spec.size, "float32", "original")
    api = cat.distance(0, 5)
    assert abs(api["exact"]["content"] - e["content"]) <= 1e-6 * api["exact"]["content"]
    # the figure and percentile of each space are those `similar` prints for the pair
    for by in ("style", "l_style", "content"):
        row = cat.similar(0, by=by, k=17).set_index("id").loc[5]
        assert d[by]["distance"] == row["distance"] and d[by]["percentile"] == row["percentile"]
    r = runner.invoke(app, ["distance", str(cat.root / "dots/star_0.png"), str(cat.root / "dots/star_1.png"),
                            "-c", str(cat.dir)])
    assert r.exit_code == 0 and "L_style" in r.output and "relu4_1" in r.output and "relu4_2" in r.output
    assert "style (relative signature distance)" in r.output and "of the collection's pairs" in r.output
    assert "H^2" in r.output and "% of L_style" in r.output
    assert f"at {cat.spec.size}x{cat.spec.size} in float32 (weights: original)" in r.output
    r = runner.invoke(app, ["distance", "0", "5", "-c", str(cat.dir), "--precision", "bfloat16"])
    assert r.exit_code == 0 and "in bfloat16 (weights" in r.output


def test_distance_without_catalog_uses_default_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, colour in (("a.png", "red"), ("b.png", "blue")):
        Image.new("RGB", (40, 30), colour).save(tmp_path / name)
    r = runner.invoke(app, ["distance", "a.png", "b.png", "--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)["exact"]
    assert d["style"] > 0 and d["content"] > 0


def test_one_rule_finds_the_catalog_from_any_folder_of_the_collection(demo_catalog, tmp_path, monkeypatch):
    root = demo_catalog.root
    monkeypatch.chdir(root / "dots")  # a subfolder of the collection: the catalog above it is found
    r = runner.invoke(app, ["similar", "star_0.png", "-k", "2", "--format", "csv"])
    assert r.exit_code == 0, r.output
    monkeypatch.chdir(tmp_path)  # elsewhere: the catalog above the query's file is found
    r = runner.invoke(app, ["similar", str(root / "dots/star_0.png"), "-k", "2", "--format", "csv"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["similar", "star_0.png", "-c", str(root)])  # a bare name several works have
    assert r.exit_code == 1 and "works are called 'star_0.png'" in r.output
    r = runner.invoke(app, ["similar", "nothing.png"])
    assert r.exit_code == 1 and "no artspace catalog found in" in r.output


# ---- invalid options are one Error: line, never a traceback -------------------------------------------------------


def assert_one_error_line(r, *needles):
    """Exit code 1 or 2, exactly one ``Error:`` line naming the problem, no traceback (CliRunner keeps an escaped
    exception in ``r.exception`` instead of printing it, so that is checked too)."""
    assert r.exit_code in (1, 2), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, r.output
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_out_of_range_options_are_one_error_line(analysis_catalog, tmp_path):
    c = str(analysis_catalog.dir)
    n = len(analysis_catalog.works)
    r = runner.invoke(app, ["cluster", "-k", "0", "-o", str(tmp_path / "cl"), "--catalog", c])
    assert_one_error_line(r, "k must be between 1 and the number of works", f"({n})", "not 0")
    r = runner.invoke(app, ["compare", "--group-by", "texture", "--permutations", "-1", "-o", str(tmp_path / "cmp"),
                            "--catalog", c])
    assert_one_error_line(r, "permutations (--permutations) must be a whole number from 0 to 1,000,000", "not -1")
    r = runner.invoke(app, ["index", str(tmp_path), "--size", "16"])
    assert_one_error_line(r, "size must be between 32 and 4096", "not 16")
    r = runner.invoke(app, ["index", str(tmp_path), "-m", "a.csv", "-m", "b.csv"])
    assert_one_error_line(r, "--metadata was given 2 times", "one CSV at a time")
    r = runner.invoke(app, ["units", "--layer", "relu1_1", "--unit", "64", "-o", str(tmp_path / "u"), "--catalog", c])
    assert_one_error_line(r, "units 0..63", "64")
    r = runner.invoke(app, ["export", "-o", str(tmp_path / "w.csv"), "--neighbors", "-1", "--catalog", c])
    assert_one_error_line(r, "neighbors must be 0", "-1")
    assert not list(tmp_path.iterdir())  # nothing written


def test_transfer_options_out_of_range_are_one_error_line(tmp_path):
    for name in ("a.png", "b.png"):
        Image.new("RGB", (24, 24), (90, 40, 200)).save(tmp_path / name)
    base = ["transfer", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "out.png"),
            "--size", "32", "--iterations", "1", "-q"]
    for extra, needles in ((["--tolerance", "2"], ("tolerance must be in [0, 1)", "2.0")),
                           (["--tile", "8"], ("tile must be at least 32 px", "8")),
                           (["--style-blend", "1,x"], ("style_blend must be numbers", "1,x")),
                           (["--device", "tpu"], ("unknown device 'tpu'", "cpu")),
                           (["--init", "zeros"], ("init must be one of", "'zeros'"))):
        assert_one_error_line(runner.invoke(app, base + extra), *needles)
    r = runner.invoke(app, ["transfer", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o",
                            str(tmp_path / "out.xyz")])
    assert_one_error_line(r, "unknown image extension '.xyz'")
    r = runner.invoke(app, ["reconstruct", str(tmp_path / "a.png"), "--only", "both", "-o", str(tmp_path / "r.png")])
    assert_one_error_line(r, "only must be 'content' or 'style'", "'both'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


def test_analysis_output_inside_the_catalog_is_refused(analysis_catalog, tmp_path):
    c = str(analysis_catalog.dir)
    inside = str(analysis_catalog.dir / "clusters")
    for args in (["cluster", "-k", "2"], ["map", "--method", "pca"], ["compare", "--group-by", "texture"],
                 ["units", "--layer", "relu1_1", "--group", "dots", "--column", "texture"]):
        r = runner.invoke(app, args + ["-o", inside, "--catalog", c])
        assert_one_error_line(r, "clusters lies inside", "choose another output (-o)")
    r = runner.invoke(app, ["export", "-o", str(analysis_catalog.dir / "works.csv"), "--catalog", c])
    assert_one_error_line(r, "works.csv lies inside")
    assert not (analysis_catalog.dir / "clusters").exists() and not (analysis_catalog.dir / "works.csv").exists()
