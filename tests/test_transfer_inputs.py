"""Inputs and outputs of a run: bad images raise named errors, and no file a run would write may be one of its inputs
or lie in the catalog — all refused before any work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from artspace.cli import app
from artspace.errors import OutputConflict, UnknownLayer, UnreadableImage
from artspace.transfer import sidecar_path, synthesise, transfer

FAST = dict(style_layers=["relu1_1", "relu2_1", "relu3_1"], content_layers=["relu2_2"], tolerance=0)
runner = CliRunner()


@pytest.fixture
def images(transfer_images):
    """The tiny pastiche inputs of conftest.py, under a short name."""
    return transfer_images


def test_bad_inputs_raise_named_errors(images, tmp_path):
    with pytest.raises(UnreadableImage, match="empty"):
        transfer(images / "empty.png", images / "style.png", size=32, iterations=1)
    with pytest.raises(UnreadableImage, match="notimage.jpg"):
        transfer(images / "content.png", images / "notimage.jpg", size=32, iterations=1)
    with pytest.raises(UnreadableImage, match="no such"):
        transfer(images / "missing.png", images / "style.png", size=32, iterations=1)
    with pytest.raises(UnknownLayer, match="relu9_1"):
        transfer(images / "content.png", images / "style.png", style_layers=["relu9_1"])
    with pytest.raises(ValueError, match="extension"):
        transfer(images / "content.png", images / "style.png", output=tmp_path / "out.xyz")
    with pytest.raises(ValueError, match="optimizer"):
        transfer(images / "content.png", images / "style.png", optimizer="sgd")
    with pytest.raises(ValueError, match="init"):
        transfer(images / "content.png", images / "style.png", init="zeros")
    with pytest.raises(ValueError, match="style_layer_weights"):
        transfer(images / "content.png", images / "style.png", style_layer_weights=[1, 2])


def test_cli_transfer_refuses_to_overwrite_its_input(images, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    shutil.copy(images / "content.png", a)
    shutil.copy(images / "style.png", b)
    original = a.read_bytes()
    res = runner.invoke(app, ["transfer", str(a), str(b), "-o", str(a), "--iterations", "1", "--size", "32", "-q"])
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f"{a} would overwrite the input {a}; choose another output (-o)" in errors[0]
    assert a.read_bytes() == original and not sidecar_path(a).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


def test_every_file_a_run_writes_is_checked_before_it_starts(images, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    shutil.copy(images / "content.png", a)
    shutil.copy(images / "style.png", b)
    (tmp_path / "link.png").symlink_to(b)
    for output, extra in ((b, {}),  # the (second) style image
                          (tmp_path / "link.png", {}),  # a symlink to it
                          (a, {"init": str(b)}),  # the content, with another init
                          (tmp_path / "i.png", {"init": str(tmp_path / "i.png")})):  # the init image
        if not Path(output).exists():
            shutil.copy(images / "content.png", output)
        with pytest.raises(OutputConflict, match="would overwrite the input"):
            synthesise(a, [images / "style2.jpg", b], size=32, iterations=1, output=output, **extra, **FAST)
    # an intermediate image of --save-every
    step = tmp_path / "out-s1-00002.png"
    shutil.copy(images / "content.png", step)
    with pytest.raises(OutputConflict, match="out-s1-00002.png would overwrite the input"):
        synthesise(step, b, size=32, iterations=4, save_every=2, output=tmp_path / "out.png", **FAST)
    # a later layer of a reconstruction series: refused before the first layer is written
    shutil.copy(images / "content.png", tmp_path / "rec-relu2_1.png")
    res = runner.invoke(app, ["reconstruct", str(tmp_path / "rec-relu2_1.png"), "--layers", "relu1_1,relu2_1",
                              "-o", str(tmp_path / "rec.png"), "--size", "32", "-n", "1", "-q"])
    assert res.exit_code == 1 and "rec-relu2_1.png would overwrite the input" in res.output, res.output
    assert not (tmp_path / "rec-relu1_1.png").exists() and not (tmp_path / "out.png").exists()


def test_transfer_never_writes_into_the_catalog(demo_catalog, images, tmp_path):
    wid = str(int(demo_catalog.works["id"].iloc[0]))
    with pytest.raises(OutputConflict, match="whose files artspace manages"):
        synthesise(wid, images / "style.png", catalog=demo_catalog.root, size=32, iterations=1,
                   output=demo_catalog.dir / "pastiche.png", **FAST)
    assert not (demo_catalog.dir / "pastiche.png").exists()



def test_an_image_too_thin_for_the_network_is_a_one_line_error(images, tmp_path):
    from PIL import Image

    from artspace import adain_transfer

    pano = tmp_path / "panorama.png"
    Image.new("RGB", (400, 20), "grey").save(pano)  # at a long side of 64 px: 64 x 3
    for run in (lambda: transfer(pano, images / "style.png", size=64, iterations=1),
                lambda: transfer(images / "content.png", pano, size=64, iterations=1),
                lambda: transfer(pano, images / "style.png", size=512, scales=4, iterations=1),
                lambda: adain_transfer(pano, images / "style.png", size=64)):
        with pytest.raises(UnreadableImage, match=r"panorama\.png: .* px at a long side of \d+ px is too small for "
                                                  r"the network, which needs at least 16 px on each side; give "
                                                  r"--size \d+ or more, or crop it"):
            run()
    r = runner.invoke(app, ["transfer", str(pano), str(images / "style.png"), "--method", "adain", "--size", "64",
                            "-o", str(tmp_path / "p.png")])
    assert r.exit_code == 1 and r.output.startswith("Error:") and "or crop it" in r.output
    assert not (tmp_path / "p.png").exists()


def test_a_json_or_image_of_the_users_beside_the_output_is_never_replaced(images, tmp_path):
    from artspace.transfer import reconstruct_layers

    notes = tmp_path / "b.png.json"
    notes.write_text("my notes")
    with pytest.raises(OutputConflict, match=r"b\.png\.json exists and is not an artspace sidecar"):
        transfer(images / "content.png", images / "style.png", output=tmp_path / "b.png", size=32, iterations=1,
                 **FAST)
    assert notes.read_text() == "my notes" and not (tmp_path / "b.png").exists()
    notes.write_text('{"method": "oil on canvas, my notes"}')  # JSON with a 'method' key is still the scholar's
    with pytest.raises(OutputConflict, match=r"b\.png\.json exists and is not an artspace sidecar"):
        transfer(images / "content.png", images / "style.png", output=tmp_path / "b.png", size=32, iterations=1,
                 **FAST)
    # a run replaces its own earlier pastiche and sidecar
    for _ in range(2):
        transfer(images / "content.png", images / "style.png", output=tmp_path / "c.png", size=32, iterations=1,
                 **FAST)
    # every file of a series of reconstructions is checked before the first is written
    shutil.copyfile(images / "style.png", tmp_path / "r-relu2_1.png")
    with pytest.raises(OutputConflict, match=r"r-relu2_1\.png exists and was not made by artspace"):
        reconstruct_layers(images / "content.png", only="style", layers=["relu1_1", "relu2_1"],
                           output=tmp_path / "r.png", size=32, iterations=1)
    assert not (tmp_path / "r-relu1_1.png").exists()
