"""synthesise, transfer and reconstruct end to end on tiny images (32-96 px, a handful of evaluations each)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from artspace.errors import InvalidOption
from artspace.images import file_sha256, to_pil, to_tensor
from artspace.transfer import TransferResult, reconstruct, reconstruct_layers, sidecar_path, synthesise

FAST = dict(style_layers=["relu1_1", "relu2_1", "relu3_1"], content_layers=["relu2_2"], tolerance=0)


@pytest.fixture
def images(transfer_images):
    """The tiny pastiche inputs of conftest.py, under a short name."""
    return transfer_images


def test_api_writes_image_and_sidecar_with_everything(images, tmp_path):
    out = tmp_path / "out" / "pastiche.png"
    r = synthesise(images / "content.png", images / "style.png", size=48, iterations=6, seed=3, output=out,
                   **FAST)
    assert isinstance(r, TransferResult)
    assert r.image.size == (48, 32)  # long side = size, content's aspect ratio kept
    assert Image.open(out).size == (48, 32)
    side = json.loads(sidecar_path(out).read_text())
    s = side["settings"]
    assert s["seed"] == 3 and s["size"] == 48 and s["style_layers"] == FAST["style_layers"]
    assert "Caffe/Oxford" in s["weight_source"] and s["device"] == "cpu"
    assert [f["path"] for f in s["input_files"]] == [str((images / n).resolve()) for n in ("content.png", "style.png")]
    assert s["input_files"][0]["sha256"] == file_sha256(images / "content.png")
    assert side["image"]["sha256"] == file_sha256(out)  # which file the record describes
    assert side["command"] is None  # called from Python: the settings are the record
    assert s["style_sizes"] == [[29, 48]]  # the portrait style keeps its own aspect ratio
    assert set(side["losses"]["style"]) == set(FAST["style_layers"])
    assert set(side["losses"]["content"]) == {"relu2_2"}
    assert side["evaluations"] == 6 and side["stopped"] == "iterations"
    assert side["timing"]["elapsed_s"] > 0 and side["timing"]["evaluations_per_s"] > 0
    # the recorded total is the documented combination of the per-layer terms
    L = side["losses"]
    total = s["content_weight"] * sum(L["content"].values()) + s["style_weight"] * sum(L["style"].values())
    assert total == pytest.approx(L["total"], rel=1e-5)
    assert not list(out.parent.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_best_iterate_is_returned_and_loss_decreases(images):
    seen = []
    r = synthesise(images / "content.png", images / "style.png", size=40, iterations=12, seed=0,
                   callback=lambda info: seen.append((info["losses"]["total"], info["image"].clone())), **FAST)
    assert r.losses["total"] == min(r.history) == min(t for t, _ in seen)
    assert min(r.history) < r.history[0] and len(seen) == 12
    best = min(seen, key=lambda s: s[0])[1]
    assert r.image.tobytes() == to_pil(best).tobytes()  # the best iterate, not the last


def test_same_seed_is_bit_identical_and_other_seed_differs(images):
    kw = dict(size=32, iterations=4, init="noise", **FAST)
    a = synthesise(images / "content.png", images / "style.png", seed=7, **kw)
    b = synthesise(images / "content.png", images / "style.png", seed=7, **kw)
    c = synthesise(images / "content.png", images / "style.png", seed=8, **kw)
    assert a.image.tobytes() == b.image.tobytes() and a.history == b.history
    assert a.image.tobytes() != c.image.tobytes()


def test_random_seed_is_recorded_so_a_run_can_be_repeated(images):
    kw = dict(size=32, iterations=2, init="noise", **FAST)
    a = synthesise(images / "content.png", images / "style.png", **kw)
    b = synthesise(images / "content.png", images / "style.png", seed=a.settings["seed"], **kw)
    assert a.image.tobytes() == b.image.tobytes()


@pytest.mark.parametrize("init", ["content", "noise", "style", "path"])
def test_inits(images, init):
    arg = images / "style2.jpg" if init == "path" else init
    r = synthesise(images / "content.png", images / "style.png", size=32, iterations=1, init=arg, seed=1,
                   content_layers=["relu2_2"], style_layers=["relu1_1"], tolerance=0)
    x0 = to_tensor(r.image)  # after one evaluation L-BFGS has not moved: the image is the init
    if init == "content":
        ref = Image.open(images / "content.png").resize((32, 21), Image.LANCZOS)
        assert np.abs(np.asarray(r.image, float) - np.asarray(ref, float)).mean() < 2
    elif init == "noise":
        assert 0.4 < float(x0.mean()) < 0.6 and float(x0.std()) > 0.25
    elif init == "style":
        assert float(x0[2].mean()) > float(x0[0].mean())  # the blue-striped style, squeezed to the content's shape
    else:
        assert float(x0[0].mean()) > float(x0[2].mean())  # the orange-dotted image given as a file


def test_adam_l1_tv_and_layer_weights(images):
    r = synthesise(images / "content.png", images / "style.png", size=32, iterations=5, optimizer="adam", lr=0.05,
                   loss="l1", tv_weight=10.0, content_layers=["relu1_2", "relu2_2"], content_layer_weights="1,0.5",
                   style_layers=["relu1_1", "relu2_1"], style_layer_weights=[2.0, 1.0], seed=0, tolerance=0)
    s = r.settings
    assert s["optimizer"] == "adam" and s["loss"] == "l1" and s["lr"] == 0.05
    assert s["content_layer_weights"] == [1.0, 0.5] and s["style_layer_weights"] == [2.0, 1.0]
    L = r.losses
    total = sum(L["content"].values()) + s["style_weight"] * sum(L["style"].values()) + 10.0 * L["tv"]
    assert total == pytest.approx(L["total"], rel=1e-5)
    assert r.evaluations == 5 and r.history[-1] < r.history[0]


def test_style_blend_targets_the_blended_grams(images):
    r = synthesise(images / "content.png", [images / "style.png", images / "style2.jpg"], style_blend="0.7,0.3",
                   size=32, iterations=2, seed=0, **FAST)
    assert r.settings["style_blend"] == pytest.approx([0.7, 0.3]) and len(r.settings["styles"]) == 2
    # blend 1,0 is exactly the first style alone
    a = synthesise(images / "content.png", [images / "style.png", images / "style2.jpg"], style_blend=[1, 0],
                   size=32, iterations=2, seed=0, **FAST)
    b = synthesise(images / "content.png", images / "style.png", size=32, iterations=2, seed=0, **FAST)
    assert a.history == pytest.approx(b.history, rel=1e-5)
    with pytest.raises(ValueError, match="style_blend"):
        synthesise(images / "content.png", images / "style.png", style_blend="0.5,0.5", size=32, iterations=1)


def test_a_layer_listed_twice_is_refused(images):
    with pytest.raises(InvalidOption, match="relu1_1 listed twice in layers"):
        reconstruct_layers(images / "content.png", layers=["relu1_1", "relu1_1"], size=32, iterations=1)


def test_style_scale_sets_style_size(images):
    r = synthesise(images / "content.png", images / "style.png", size=40, style_scale=0.5, iterations=1, seed=0,
                   **FAST)
    assert r.settings["style_sizes"] == [[12, 20]]


def test_scales_run_a_pyramid_each_level_from_the_previous(images):
    seen = []
    r = synthesise(images / "content.png", images / "style.png", size=64, scales=2, iterations=[4, 3], seed=0,
                   callback=lambda info: seen.append(info["level"]), **FAST)
    assert [lv["size"] for lv in r.levels] == [[32, 21], [64, 43]]
    assert [lv["evaluations"] for lv in r.levels] == [4, 3] and r.evaluations == 7
    assert [len(lv["history"]) for lv in r.levels] == [4, 3] and r.levels[1]["history"] == r.history
    assert seen == [1] * 4 + [2] * 3
    assert r.image.size == (64, 43)
    with pytest.raises(ValueError, match="scales"):
        synthesise(images / "content.png", images / "style.png", size=32, scales=3, iterations=1)


def test_interrupt_writes_the_best_image_so_far(images, tmp_path):
    def stop(info):
        if info["evaluation"] == 3:
            raise KeyboardInterrupt

    out = tmp_path / "int.png"
    r = synthesise(images / "content.png", images / "style.png", size=64, scales=2, iterations=5, seed=0,
                   output=out, callback=stop, **FAST)
    assert r.stopped == "interrupted" and r.evaluations == 3
    assert Image.open(out).size == (64, 43)  # brought to the output size although level 2 never ran
    side = json.loads(sidecar_path(out).read_text())
    assert side["stopped"] == "interrupted"
    # the interrupted level is recorded, with its evaluations and its loss at each of them
    assert [(lv["level"], lv["evaluations"], lv["stopped"]) for lv in side["levels"]] == [(1, 3, "interrupted")]
    assert len(side["levels"][0]["history"]) == 3 and side["levels"][0]["history"] == side["history"]


def test_an_interrupted_rerun_keeps_the_finished_pastiche_and_writes_beside_it(images, tmp_path):
    out = tmp_path / "a.png"
    done = synthesise(images / "content.png", images / "style.png", size=32, iterations=4, seed=0, output=out,
                      **FAST)
    finished = out.read_bytes(), sidecar_path(out).read_text()

    def stop(info):
        if info["evaluation"] == 2:
            raise KeyboardInterrupt

    r = synthesise(images / "content.png", images / "style.png", size=32, iterations=50, seed=1, output=out,
                   callback=stop, **FAST)
    assert (out.read_bytes(), sidecar_path(out).read_text()) == finished and done.stopped != "interrupted"
    kept = tmp_path / "a-interrupted.png"
    assert r.output == kept and kept.is_file() and json.loads(sidecar_path(kept).read_text())["stopped"] == \
        "interrupted"
    again = synthesise(images / "content.png", images / "style.png", size=32, iterations=3, seed=2, output=out,
                       **FAST)
    assert again.output == out and out.read_bytes() != finished[0]  # a finished rerun replaces it, as asked


def test_reconstruct_content_and_style_from_noise(images, tmp_path):
    c = reconstruct(images / "content.png", only="content", layers=["relu1_1"], size=32, iterations=8, seed=0,
                    tolerance=0)
    assert c.settings["init"] == "noise" and c.settings["style_layers"] == []
    assert c.history[-1] < 0.5 * c.history[0]
    series = reconstruct_layers(images / "style.png", only="style", layers=["relu1_1", "relu2_1"], size=32,
                                iterations=3, seed=0, output=tmp_path / "rec.png")
    assert [r.settings["style_layers"] for _, r in series] == [["relu1_1"], ["relu1_1", "relu2_1"]]
    assert (tmp_path / "rec-relu1_1.png").exists() and (tmp_path / "rec-relu2_1.png.json").exists()
    with pytest.raises(ValueError, match="only"):
        reconstruct(images / "style.png", only="both")


def test_catalog_works_are_named_by_id_or_path(demo_catalog, images):
    works = demo_catalog.works
    wid, rel = int(works["id"].iloc[0]), works["path"].iloc[1]
    r = synthesise(str(wid), [rel, images / "style.png"], catalog=demo_catalog.root, size=32, iterations=1,
                   seed=0, **FAST)
    assert str(demo_catalog.image_path(str(wid))) in r.settings["content"]
    assert str(demo_catalog.image_path(rel)) in r.settings["styles"][0]

