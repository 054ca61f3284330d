"""``artspace transfer`` and ``artspace reconstruct`` as a user runs them."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from artspace.cli import app
from artspace.transfer import sidecar_path

runner = CliRunner()


@pytest.fixture
def images(transfer_images):
    """The tiny pastiche inputs of conftest.py, under a short name."""
    return transfer_images


def test_cli_transfer_writes_image_and_sidecar(images, tmp_path):
    out = tmp_path / "cli.png"
    res = runner.invoke(app, ["transfer", str(images / "content.png"), str(images / "style.png"),
                              str(images / "style2.jpg"), "--style-blend", "0.7,0.3", "-o", str(out), "--size", "40",
                              "-n", "3", "--seed", "5", "--style-layers", "relu1_1,relu2_1",
                              "--content-layers", "relu2_2", "--tv-weight", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert f"wrote {out}" in res.output
    side = json.loads(sidecar_path(out).read_text())
    assert side["settings"]["style_blend"] == pytest.approx([0.7, 0.3])
    assert side["settings"]["style_layers"] == ["relu1_1", "relu2_1"] and side["settings"]["seed"] == 5
    assert Image.open(out).size == (40, 27)


def test_cli_transfer_pyramid_tiles_and_colour_options(images, tmp_path):
    out = tmp_path / "opts.jpg"
    res = runner.invoke(app, ["transfer", str(images / "content.png"), str(images / "style.png"), "-o", str(out),
                              "--size", "64", "--scales", "2", "-n", "2,1", "--tile", "40", "--tile-overlap", "10",
                              "--preserve-colors", "--match-histogram", "--optimizer", "adam", "--lr", "0.03",
                              "--loss", "l1", "--init", "noise", "--style-scale", "1.5", "--save-every", "1",
                              "--style-layers", "relu1_1", "--content-layers", "relu1_2"])
    assert res.exit_code == 0, res.output
    s = json.loads(sidecar_path(out).read_text())["settings"]
    assert (s["scales"], s["tile"], s["tile_overlap"], s["optimizer"], s["loss"], s["init"]) == \
        (2, 40, 10, "adam", "l1", "noise")
    assert s["iterations"] == [2, 1] and s["preserve_colors"] and s["match_histogram"]
    assert (tmp_path / "opts-s1-00001.png").exists() if False else (tmp_path / "opts-s1-00001.jpg").exists()


def test_cli_errors_are_one_line_with_exit_1(images, tmp_path):
    res = runner.invoke(app, ["transfer", str(images / "content.png"), str(images / "style.png"), "-o",
                              str(tmp_path / "x.png"), "--style-layers", "relu9_9"])
    assert res.exit_code == 1 and "Error: unknown layer 'relu9_9'" in res.output
    res = runner.invoke(app, ["transfer", str(images / "empty.png"), str(images / "style.png"), "-o",
                              str(tmp_path / "x.png")])
    assert res.exit_code == 1 and "empty.png" in res.output and "Error:" in res.output
    res = runner.invoke(app, ["transfer", str(images / "content.png"), str(images / "style.png"), "-o",
                              str(tmp_path / "x.png"), "--optimizer", "sgd"])
    assert res.exit_code == 1 and "optimizer" in res.output
    res = runner.invoke(app, ["transfer", str(images / "content.png"), str(images / "style.png"), "-o",
                              str(tmp_path / "x.png"), "--size", "100000"])
    assert res.exit_code == 1 and "--tile" in res.output
    assert not (tmp_path / "x.png").exists()


def test_cli_reconstruct_one_file_per_layer(images, tmp_path):
    out = tmp_path / "rec.png"
    res = runner.invoke(app, ["reconstruct", str(images / "content.png"), "--only", "content", "--layers",
                              "relu1_1", "--layers", "relu2_1", "-o", str(out), "--size", "32", "-n", "2", "-q"])
    assert res.exit_code == 0, res.output
    for name in ("relu1_1", "relu2_1"):
        side = json.loads((tmp_path / f"rec-{name}.png.json").read_text())
        assert side["settings"]["content_layers"] == [name] and side["settings"]["init"] == "noise"


def test_cli_help_has_an_example():
    for cmd in ("transfer", "reconstruct"):
        res = runner.invoke(app, [cmd, "--help"])
        assert res.exit_code == 0 and "Example: artspace " + cmd in res.output

