"""The feed-forward networks: shapes, normalisation, training, model files, stylising, AdaIN and the catalog's
stored moments — on images the tests draw themselves."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from artspace.cli import app
from artspace.errors import InvalidModel, InvalidOption, OutputConflict, UnreadableImage
from artspace.feedforward import (AdaINDecoder, TransformNet, adain, adain_transfer, checkpoint_path, load_model,
                                  save_model, stylise, train_decoder, train_style)
from artspace.feedforward import training as training_module
from artspace.images import file_sha256
from artspace.losses import channel_stats

runner = CliRunner()
TINY = dict(size=32, batch_size=2, progress=False, precision="float32", device="cpu")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Twelve small 'photographs': shapes on gradients, of a few sizes."""
    d = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for k in range(12):
        w, h = int(rng.integers(40, 70)), int(rng.integers(40, 70))
        grad = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * rng.uniform(0.3, 1, 3)
        im = Image.fromarray(np.broadcast_to(grad, (h, w, 3)).astype(np.uint8))
        dr = ImageDraw.Draw(im)
        x, y = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        dr.ellipse([x, y, x + w // 3, y + h // 3], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        im.save(d / f"photo{k:02d}.png")
    return d


@pytest.fixture(scope="module")
def paintings(tmp_path_factory):
    """Six 'paintings': stripes and dots in strong colours."""
    d = tmp_path_factory.mktemp("paintings")
    for k in range(6):
        im = Image.new("RGB", (48, 48), (240 - 30 * k, 200, 40 * k))
        dr = ImageDraw.Draw(im)
        for j in range(0, 96, 6 + k):
            dr.line([(j - 48, 0), (j, 48)], fill=(20, 30 * k, 120), width=2)
        im.save(d / f"painting{k}.png")
    return d


@pytest.fixture(scope="module")
def style_model(photos, paintings, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "tiny.pt"
    return train_style([paintings / "painting0.png"], photos, out, steps=3, seed=1, **TINY)


@pytest.fixture(scope="module")
def decoder_model(photos, paintings, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "decoder.pt"
    return train_decoder(photos, paintings, out, steps=2, seed=1, half=True, **TINY)


# ---- networks -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["instance", "batch"])
@pytest.mark.parametrize("hw", [(32, 32), (37, 50), (33, 17), (65, 64)])
def test_transform_net_keeps_any_size(norm, hw):
    net = TransformNet(norm=norm).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, *hw)).shape == (2, 3, *hw)


def test_width_and_skip_variants():
    """The capacity benchmark's variants: *width* scales the channels; *skip* starts as the identity and learns a
    residual on top of the photograph."""
    wide, plain = TransformNet(width=2.0), TransformNet()
    assert wide.down[0][1].out_channels == 64 and plain.down[0][1].out_channels == 32
    net = TransformNet(skip=True)
    x = torch.rand(1, 3, 37, 50)
    with torch.no_grad():
        assert torch.equal(net(x), x)
    net(x).sum().backward()
    assert net.out[1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("hw", [(32, 32), (37, 50), (61, 45)])
def test_decoder_returns_the_encoder_input_size(hw):
    from artspace.backbone import VGG19

    x = torch.rand(1, 3, *hw)
    f = VGG19(last_layer="relu4_1")(x, ["relu4_1"])["relu4_1"]
    with torch.no_grad():
        assert AdaINDecoder()(f, size=hw).shape == (1, 3, *hw)


def test_instance_norm_treats_each_image_alone():
    torch.manual_seed(0)
    a, b = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24)
    inst = TransformNet("instance").train()
    with torch.no_grad():
        alone, together = inst(a), inst(torch.cat([a, b]))[:1]
    assert torch.allclose(alone, together, atol=1e-5)
    batch = TransformNet("batch").train()  # batch statistics mix the images: the thesis's comparison
    with torch.no_grad():
        assert not torch.allclose(batch(a), batch(torch.cat([a, b]))[:1], atol=1e-3)


def test_adain_gives_the_style_statistics():
    torch.manual_seed(0)
    content, style = torch.rand(2, 8, 5, 7) * 3, torch.rand(2, 8, 6, 4) + 2
    mean, std = channel_stats(style)
    out_mean, out_std = channel_stats(adain(content, mean, std))
    assert torch.allclose(out_mean, mean, atol=1e-4) and torch.allclose(out_std, std, atol=1e-3)


def test_bad_norm_is_refused():
    with pytest.raises(InvalidOption, match="norm must be one of"):
        TransformNet("layer")


# ---- training -----------------------------------------------------------------------------------------------------


def test_training_lowers_the_loss(photos, paintings, tmp_path):
    result = train_style([paintings / "painting1.png"], photos, tmp_path / "m.pt", steps=30, seed=0,
                         checkpoint_every=0, **TINY)
    assert set(result.header["training"]["final_losses"]) == {"content", "style", "tv", "total"}
    totals = [h["total"] for h in result.history]
    assert len(totals) == 30 and np.mean(totals[-5:]) < 0.5 * np.mean(totals[:5])
    # a 30-step run's final losses are the mean of its last 6 steps, not of every step since the first
    assert result.losses_steps == 6 and result.header["training"]["final_losses_steps"] == 6
    assert result.losses["total"] == pytest.approx(np.mean(totals[-6:]))


def test_model_header_records_how_it_was_made(style_model, paintings):
    h = style_model.header
    assert h["kind"] == "style" and h["format"] == 1 and h["artspace_version"]
    assert h["architecture"]["norm"] == "instance"
    assert h["losses"] == {"content": "l2", "style": "l2"}
    assert h["layers"]["content"] == ["relu4_2"] and len(h["layers"]["style"]) == 5
    from artspace.feedforward.training import file_digest

    assert h["styles"] == [{"name": "painting0.png", "sha256": file_digest(paintings / "painting0.png")}]
    assert h["training"]["steps"] == 3 and h["training"]["content_images"] == 12
    assert not checkpoint_path(style_model.path).exists()


def test_unreadable_training_images_are_named_at_the_start_and_not_counted(photos, paintings, tmp_path):
    content = tmp_path / "content"
    shutil.copytree(photos, content)
    (content / "aaa_fake.png").write_text("not an image")  # first in walk order: the validation image is another
    (content / "empty.jpg").write_bytes(b"")
    said = []
    r = train_style([paintings / "painting0.png"], content, tmp_path / "m.pt", steps=1, seed=0, checkpoint_every=0,
                    log=said.append, **TINY)
    assert r.header["training"]["content_images"] == 12
    assert sum("skipped" in m for m in said) == 2 and any("aaa_fake.png" in m for m in said)


def test_flat_and_tiny_training_images_never_make_the_loss_nan(photos, paintings, tmp_path):
    """Through the instance norms of a flat crop the gradient overflowed ("the training loss became nan"): an image
    of one colour, or one under 16 px a side, is skipped and named; a flat crop of another image is drawn again."""
    content = tmp_path / "content"
    content.mkdir()
    for i in range(3):
        Image.new("RGB", (48, 48), (30 * i, 120, 200)).save(content / f"flat{i}.png")
    Image.new("RGB", (1, 1), "red").save(content / "dot.png")
    half = np.zeros((48, 48, 3), np.uint8)  # one textured half, one flat: some crops of it are flat
    half[:, :24] = np.random.default_rng(0).integers(0, 256, (48, 24, 3))
    Image.fromarray(half).save(content / "half.png")
    said = []
    r = train_style([paintings / "painting0.png"], content, tmp_path / "m.pt", steps=6, seed=0, checkpoint_every=0,
                    log=said.append, **TINY)
    # seed 0 draws every flat image in 6 steps: only half.png counts as trained on
    assert all(np.isfinite(h["total"]) for h in r.history) and r.header["training"]["content_images"] == 1
    assert any("dot.png" in m and "too small to train on" in m for m in said)
    assert any("all one colour" in m for m in said)
    (content / "half.png").unlink()
    with pytest.raises(UnreadableImage, match="none of the content images can be trained on"):
        train_style([paintings / "painting0.png"], content, tmp_path / "n.pt", steps=2, seed=0, **TINY)


def test_a_style_image_too_small_for_the_network_is_refused_in_one_line(photos, tmp_path):
    Image.new("RGB", (1, 1), "red").save(tmp_path / "dot.png")
    Image.fromarray(np.zeros((20, 2000, 3), np.uint8)).save(tmp_path / "pano.png")
    with pytest.raises(UnreadableImage, match="the image itself is that small"):
        train_style([tmp_path / "dot.png"], photos, tmp_path / "m.pt", steps=1, **TINY)
    with pytest.raises(UnreadableImage, match="give --style-size 1600 or more"):
        train_style([tmp_path / "pano.png"], photos, tmp_path / "m.pt", steps=1, style_size=64, **TINY)
    assert not list(tmp_path.glob("m*"))


def test_save_load_round_trip(style_model, tmp_path):
    m = load_model(style_model.path, kind="style")
    x = torch.rand(1, 3, 40, 33)
    copy = save_model(tmp_path / "copy.pt", "style", m.net, {k: v for k, v in m.header.items()
                                                             if k not in ("format", "kind", "artspace_version")})
    again = load_model(copy)
    with torch.no_grad():
        assert torch.equal(m.net(x), again.net(x))
    assert again.header["training"] == m.header["training"]


def test_half_precision_file_is_smaller_and_close(decoder_model, tmp_path):
    m = load_model(decoder_model.path, kind="adain-decoder")
    full = save_model(tmp_path / "full.pt", "adain-decoder", m.net, {})
    assert decoder_model.path.stat().st_size < 0.6 * full.stat().st_size
    assert m.header["training"]["weights_stored_as"] == "float16"


def test_foreign_and_damaged_models_are_refused(style_model, tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save(TransformNet().state_dict(), plain)
    with pytest.raises(InvalidModel, match="not an artspace model"):
        load_model(plain)
    blob = torch.load(style_model.path, weights_only=True)
    header = json.loads(blob["artspace_model"])
    header["format"] = 99
    other = tmp_path / "other.pt"
    torch.save({**blob, "artspace_model": json.dumps(header)}, other)
    with pytest.raises(InvalidModel, match="model format 99"):
        load_model(other)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(style_model.path.read_bytes()[:5000])
    with pytest.raises(InvalidModel, match="not a readable model file"):
        load_model(cut)
    with pytest.raises(InvalidModel, match="holds a network of kind 'style', not 'adain-decoder'"):
        load_model(style_model.path, kind="adain-decoder")
    with pytest.raises(InvalidModel, match="no such model file"):
        load_model(tmp_path / "missing.pt")


def test_pickled_code_in_a_model_file_is_not_run(tmp_path):
    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    evil = tmp_path / "evil.pt"
    torch.save({"artspace_model": "{}", "state_dict": {"x": Payload()}}, evil)
    with pytest.raises(InvalidModel):
        load_model(evil)
    assert not (tmp_path / "pwned").exists()


def test_existing_model_is_never_overwritten(style_model, photos, paintings):
    before = style_model.path.read_bytes()
    with pytest.raises(OutputConflict, match="never overwrites"):
        train_style([paintings / "painting0.png"], photos, style_model.path, steps=1, **TINY)
    assert style_model.path.read_bytes() == before


@contextlib.contextmanager
def _interrupted_at_batch(number: int, monkeypatch):
    """Inside the block, drawing the *number*-th training batch raises KeyboardInterrupt, as Ctrl-C would."""
    calls, real = {"n": 0}, training_module.ImageSampler.batch

    def interrupting(self, n, g):
        calls["n"] += 1
        if calls["n"] == number:
            raise KeyboardInterrupt
        return real(self, n, g)

    monkeypatch.setattr(training_module.ImageSampler, "batch", interrupting)
    try:
        yield
    finally:
        monkeypatch.setattr(training_module.ImageSampler, "batch", real)


@contextlib.contextmanager
def _in_third_step(act, monkeypatch):
    """Inside the block, *act()* runs in the third training step, as its losses reach the optimiser (a signal sent
    then is delivered in the middle of the step)."""
    calls, real = {"n": 0}, training_module._Loop.descend

    def descend(self, terms):
        calls["n"] += 1
        if calls["n"] == 3:
            act()
        return real(self, terms)

    monkeypatch.setattr(training_module._Loop, "descend", descend)
    try:
        yield
    finally:
        monkeypatch.setattr(training_module._Loop, "descend", real)


@pytest.mark.parametrize("prefetch", [0, 3])
def test_interrupted_training_resumes_bit_for_bit(photos, paintings, tmp_path, monkeypatch, prefetch):
    """Stopped at its third batch and resumed, a training gives the uninterrupted network exactly; also when the
    batches are drawn ahead on a thread (what a GPU run does): a checkpoint stores the state of the crops used, not
    of those drawn ahead."""
    style = [paintings / "painting2.png"]
    whole = train_style(style, photos, tmp_path / "whole.pt", steps=4, seed=3, checkpoint_every=1, prefetch=0,
                        **TINY)
    out = tmp_path / "resumed.pt"
    with pytest.raises(KeyboardInterrupt), _interrupted_at_batch(3, monkeypatch):
        train_style(style, photos, out, steps=4, seed=3, checkpoint_every=1, prefetch=prefetch, **TINY)
    assert checkpoint_path(out).exists() and not out.exists()
    assert torch.load(checkpoint_path(out), weights_only=True)["step"] == 2
    with pytest.raises(InvalidOption, match=r"other settings \(seed: 3 then, 4 now\)"):
        train_style(style, photos, out, steps=4, seed=4, checkpoint_every=1, **TINY)
    resumed = train_style(style, photos, out, steps=4, seed=3, checkpoint_every=1, prefetch=prefetch, **TINY)
    assert resumed.header["training"]["resumed_from_step"] == 2
    assert whole.header["training"]["resumed_from_step"] is None
    assert resumed.header["torch_version"] == torch.__version__
    a, b = load_model(whole.path).net.state_dict(), load_model(resumed.path).net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["total"] for h in whole.history] == [h["total"] for h in resumed.history]


def test_the_loss_curve_is_written_beside_the_model_and_survives_a_resume(photos, paintings, tmp_path, monkeypatch):
    monkeypatch.setattr(training_module, "CURVE_BLOCK", 4)
    r = train_style([paintings / "painting1.png"], photos, tmp_path / "c.pt", steps=10, seed=0, **TINY)
    assert r.curve == tmp_path / "c-losses.csv"
    curve = pd.read_csv(r.curve)
    assert curve["step"].tolist() == [4, 8, 10] and curve["steps"].tolist() == [4, 4, 2]
    assert list(curve.columns) == ["step", "steps", "content", "style", "tv", "total"]
    np.testing.assert_allclose(curve["total"].iloc[0], np.mean([h["total"] for h in r.history[:4]]), rtol=1e-5)
    # stopped at step 6 (inside the second block) and resumed: the same curve
    with pytest.raises(KeyboardInterrupt), _interrupted_at_batch(7, monkeypatch):
        train_style([paintings / "painting1.png"], photos, tmp_path / "r.pt", steps=10, seed=0, checkpoint_every=3,
                    **TINY)
    resumed = train_style([paintings / "painting1.png"], photos, tmp_path / "r.pt", steps=10, seed=0,
                          checkpoint_every=3, **TINY)
    assert resumed.curve.read_text() == r.curve.read_text()


def test_a_time_budget_stops_training_and_writes_the_model(photos, paintings, tmp_path):
    # a budget of a millionth of a minute is spent by the first step: the model is written after it
    r = train_style([paintings / "painting3.png"], photos, tmp_path / "t.pt", steps=50, validate_every=10,
                    max_minutes=1e-6, **TINY)
    t = r.header["training"]
    assert r.steps == t["steps"] == 1 and t["steps_asked"] == 50 and t["stopped_by_time"] is True
    assert t["max_minutes"] == 1e-6 and load_model(r.path).header["training"]["steps"] == 1
    assert [p.name for p in r.validation] == ["step_000001.png"]  # the network as written
    assert not checkpoint_path(r.path).exists()
    d = train_decoder(photos, paintings, tmp_path / "d.pt", steps=50, max_minutes=1e-6, **TINY)
    assert d.steps == 1 and d.header["training"]["stopped_by_time"] is True
    unlimited = train_style([paintings / "painting3.png"], photos, tmp_path / "u.pt", steps=2, **TINY)
    assert "max_minutes" not in unlimited.header["training"]
    for bad in (0, -1.0, float("nan"), "ten", True):
        with pytest.raises(InvalidOption, match="max_minutes must be a positive number"):
            train_style([paintings / "painting3.png"], photos, tmp_path / "b.pt", steps=2, max_minutes=bad, **TINY)


def test_a_cosine_schedule_decays_the_rate_to_zero_over_the_steps_or_the_budget(photos, paintings, tmp_path):
    style = [paintings / "painting3.png"]
    const = train_style(style, photos, tmp_path / "c.pt", steps=3, seed=1, **TINY)
    cos = train_style(style, photos, tmp_path / "k.pt", steps=3, seed=1, lr_schedule="cosine", **TINY)
    # the first step runs at the full rate in both; after it the rates differ
    assert const.history[0]["total"] == cos.history[0]["total"]
    assert const.history[2]["total"] != cos.history[2]["total"]
    assert cos.header["training"]["lr_schedule"] == "cosine" and const.header["training"]["lr_schedule"] == "constant"
    d = train_decoder(photos, paintings, tmp_path / "d.pt", steps=2, lr_schedule="cosine", **TINY)
    assert d.header["training"]["lr_schedule"] == "cosine"

    def rates(loop, points):
        out = []
        for step, elapsed in points:
            loop.step, loop.elapsed = step, elapsed
            loop._set_lr()
            out.append(loop.opt.param_groups[0]["lr"])
        return out

    def loop(**extra):
        return training_module._Loop(kind="style", output=tmp_path / "x.pt", net=torch.nn.Linear(2, 2), settings={},
                                     steps=4, lr=1e-3, seed=0, checkpoint_every=0, validate_every=0,
                                     device=torch.device("cpu"), precision="float32", progress=False, log=None,
                                     **extra)

    by_steps = rates(loop(lr_schedule="cosine"), [(k, 0.0) for k in range(5)])
    assert by_steps == pytest.approx([1e-3, 1e-3 * (1 + np.cos(np.pi / 4)) / 2, 5e-4,
                                      1e-3 * (1 + np.cos(3 * np.pi / 4)) / 2, 0.0])
    # under a time budget, the time spent moves the rate when it is further along than the steps
    assert rates(loop(lr_schedule="cosine", max_minutes=1.0), [(1, 30.0), (3, 30.0)]) == pytest.approx(
        [5e-4, 1e-3 * (1 + np.cos(3 * np.pi / 4)) / 2])
    assert rates(loop(), [(0, 0.0), (3, 0.0)]) == [1e-3, 1e-3]
    with pytest.raises(InvalidOption, match="lr_schedule must be one of constant, cosine"):
        train_style(style, photos, tmp_path / "b.pt", steps=2, lr_schedule="linear", **TINY)


def test_a_decoder_trains_on_the_same_crops_with_batches_drawn_ahead(photos, paintings, tmp_path):
    d1 = train_decoder(photos, paintings, tmp_path / "d1.pt", steps=3, seed=2, prefetch=0, **TINY)
    d2 = train_decoder(photos, paintings, tmp_path / "d2.pt", steps=3, seed=2, prefetch=2, **TINY)
    d3 = train_decoder(photos, paintings, tmp_path / "d3.pt", steps=3, seed=2, prefetch=4, workers=3, **TINY)
    assert [h["total"] for h in d1.history] == [h["total"] for h in d2.history] == [h["total"] for h in d3.history]


def test_batches_drawn_on_several_threads_are_the_plain_loops_and_resume_bit_for_bit(photos, paintings, tmp_path,
                                                                                    monkeypatch):
    """Batches drawn ahead on three threads, an interrupted run (stopped in its third step) resumed so too: the
    network and losses of a plain loop, exactly. Each batch has its own generator, seeded in turn from --seed."""
    style = [paintings / "painting2.png"]
    whole = train_style(style, photos, tmp_path / "whole.pt", steps=5, seed=3, checkpoint_every=1, workers=0,
                        **TINY)
    out = tmp_path / "threads.pt"

    def interrupt():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), _in_third_step(interrupt, monkeypatch):
        train_style(style, photos, out, steps=5, seed=3, checkpoint_every=1, workers=3, prefetch=6, **TINY)
    assert torch.load(checkpoint_path(out), weights_only=True)["step"] == 2
    resumed = train_style(style, photos, out, steps=5, seed=3, checkpoint_every=1, workers=3, **TINY)
    a, b = load_model(whole.path).net.state_dict(), load_model(resumed.path).net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["total"] for h in whole.history] == [h["total"] for h in resumed.history]
    with pytest.raises(InvalidOption, match="must not be negative"):
        train_style(style, photos, tmp_path / "n.pt", steps=1, workers=-1, **TINY)


def test_validation_pastiches_are_written(photos, paintings, tmp_path):
    r = train_style([paintings / "painting3.png"], photos, tmp_path / "v.pt", steps=4, validate_every=2, **TINY)
    assert [p.name for p in r.validation] == ["step_000002.png", "step_000004.png"]
    assert all(p.parent.name == "v-validation" for p in r.validation)


def test_several_styles_blend(photos, paintings, tmp_path):
    r = train_style([paintings / "painting0.png", paintings / "painting4.png"], photos, tmp_path / "b.pt",
                    steps=1, style_blend="0.8,0.2", **TINY)
    assert r.header["blend"] == [0.8, 0.2] and len(r.header["styles"]) == 2
    with pytest.raises(InvalidOption, match="one non-negative weight per style"):
        train_style([paintings / "painting0.png"], photos, tmp_path / "c.pt", steps=1, style_blend="1,2", **TINY)


def test_bad_training_options_are_one_line_errors(photos, paintings, tmp_path):
    style = [paintings / "painting0.png"]
    with pytest.raises(InvalidOption, match="steps must be"):
        train_style(style, photos, tmp_path / "a.pt", steps=0, **TINY)
    for seed in (-1, 10 ** 20):  # torch would fail with an overflow deep inside
        with pytest.raises(InvalidOption, match=r"seed \(--seed\) must be a whole number from 0"):
            train_style(style, photos, tmp_path / "a.pt", steps=1, seed=seed, **TINY)
    with pytest.raises(InvalidOption, match=r"\.pt"):
        train_style(style, photos, tmp_path / "a.png", steps=1, **TINY)
    with pytest.raises(InvalidOption, match="holds no images"):
        train_style(style, tmp_path, tmp_path / "a.pt", steps=1, **TINY)
    with pytest.raises(InvalidOption, match="loss must be"):
        train_style(style, photos, tmp_path / "a.pt", steps=1, content_loss="l3", **TINY)


# ---- stylising and AdaIN -------------------------------------------------------------------------------------------


def test_stylise_a_folder_in_batches_keeps_sizes_and_paths(style_model, photos, tmp_path):
    out = tmp_path / "out"
    results = stylise(style_model.path, photos, out, batch_size=3, device="cpu")
    assert len(results) == 12
    for r in results:
        src = photos / r.output.name
        assert r.output.parent == out and Image.open(r.output).size == Image.open(src).size
        side = json.loads(r.output.with_name(r.output.name + ".json").read_text())
        assert side["method"] == "feed-forward" and side["source"] == str(src)
        assert side["model_header"]["styles"] == style_model.header["styles"]
        # what a citation needs: the versions, and the files read with their checksums
        assert side["artspace_version"] and side["torch_version"] == torch.__version__
        assert side["source_file"] == {"path": str(src.resolve()), "sha256": file_sha256(src)}
        assert side["model_file"]["sha256"] == file_sha256(style_model.path)


def test_stylise_tiles_large_images(style_model, photos, tmp_path):
    from artspace.feedforward.inference import _tiled

    im = Image.open(photos / "photo00.png").resize((150, 100))
    tiled = stylise(style_model.path, im, tile=64, device="cpu")[0].image
    assert tiled.size == (150, 100)
    # the tiles and their raised-cosine blend put every pixel back where it was: a network that changes nothing
    # gives the image itself
    x = torch.rand(1, 3, 100, 150)
    assert torch.allclose(_tiled(torch.nn.Identity(), x, 64, torch.device("cpu"), "float32"), x, atol=1e-6)


def test_stylise_preserve_colors_keeps_the_chrominance(style_model, photos):
    from artspace.transfer.colour import rgb_to_yiq
    from artspace.images import to_tensor

    im = Image.open(photos / "photo01.png").convert("RGB")
    out = stylise(style_model.path, im, preserve_colors=True, device="cpu")[0].image
    a, b = rgb_to_yiq(to_tensor(im)), rgb_to_yiq(to_tensor(out))
    # the same chrominance, up to 8-bit rounding and where the luminance left the RGB cube
    assert float((a[1:] - b[1:]).abs().median()) < 0.01


def test_stylise_never_overwrites_its_input(style_model, photos):
    with pytest.raises(OutputConflict):
        stylise(style_model.path, photos / "photo00.png", photos / "photo00.png", device="cpu")


def test_adain_transfer_with_alpha_and_blend(decoder_model, photos, paintings, tmp_path):
    out = tmp_path / "a.png"
    r = adain_transfer(photos / "photo00.png", [paintings / "painting0.png", paintings / "painting5.png"], out,
                       decoder=decoder_model.path, style_blend=[0.5, 0.5], alpha=0.5, size=48, device="cpu")
    assert Image.open(out).size == r.image.size and max(r.image.size) == 48
    side = json.loads(out.with_name("a.png.json").read_text())
    assert side["method"] == "adain" and side["alpha"] == 0.5 and len(side["styles"]) == 2
    files = [photos / "photo00.png", paintings / "painting0.png", paintings / "painting5.png", decoder_model.path]
    assert side["input_files"] == [{"path": str(Path(f).resolve()), "sha256": file_sha256(f)} for f in files]
    assert side["artspace_version"] and side["torch_version"] == torch.__version__
    with pytest.raises(InvalidOption, match="alpha"):
        adain_transfer(photos / "photo00.png", paintings / "painting0.png", decoder=decoder_model.path, alpha=2)


def test_adain_from_moments_equals_adain_from_the_image(decoder_model, photos, paintings):
    from artspace.backbone import VGG19
    from artspace.images import open_image, resize_long_side, to_tensor

    style = paintings / "painting2.png"
    x = to_tensor(resize_long_side(open_image(style), 48))[None]
    mean, std = channel_stats(VGG19(last_layer="relu4_1")(x, ["relu4_1"])["relu4_1"])
    kw = dict(decoder=decoder_model.path, size=48, device="cpu", precision="float32")
    a = adain_transfer(photos / "photo03.png", style, **kw).image
    b = adain_transfer(photos / "photo03.png", (mean[0].numpy(), std[0].numpy()), **kw).image
    assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max() <= 1  # float rounding of two paths


def test_catalog_stores_moments_and_transfers_from_them(demo_catalog, decoder_model, tmp_path):
    from artspace.features import Extractor

    cat = demo_catalog
    wid = int(cat.works["id"].iloc[0])
    mean, std = cat.moments(wid)
    assert mean.shape == std.shape == (512,)
    ex = Extractor(cat.spec, device="cpu", precision=cat.precision)  # as the catalog's works were extracted
    direct = ex.encode(ex.batch([cat.image_path(wid)]))["moments"][0].numpy()
    assert np.allclose(np.concatenate([mean, std]), direct, rtol=2e-3, atol=1e-2)
    assert cat.moments(str(tmp_path / "elsewhere.png")) is None
    out = tmp_path / "pastiche.png"
    r = cat.transfer(int(cat.works["id"].iloc[1]), wid, out, method="adain", decoder=decoder_model.path, size=40,
                     device="cpu")
    path = cat.works["path"].iloc[0]
    assert r.settings["styles"] == [f"work {wid} ({path}): relu4_1 moments stored by the catalog {cat.dir} at "
                                    f"{cat.spec.size} px"] and out.exists()
    # no style was read from an image, so no style_size is claimed; the blend recorded is the one used (sum 1)
    assert r.settings["style_size"] is None and r.settings["style_blend"] == [1.0]
    two = cat.transfer(int(cat.works["id"].iloc[1]), [wid, wid], method="adain", decoder=decoder_model.path, size=40,
                       device="cpu", style_blend=[2, 2])
    assert two.settings["style_blend"] == [0.5, 0.5]


# ---- the command line ---------------------------------------------------------------------------------------------


def test_cli_train_style_then_stylise(photos, paintings, tmp_path):
    model = tmp_path / "cli.pt"
    res = runner.invoke(app, ["train-style", str(paintings / "painting0.png"), "--content", str(photos), "-o",
                              str(model), "--steps", "2", "--size", "32", "--batch-size", "2", "--norm", "batch",
                              "--content-loss", "l1", "--tv-weight", "0", "--precision", "float32", "--quiet"])
    assert res.exit_code == 0, res.output
    assert f"wrote {model}: 2 steps" in res.output
    budget = tmp_path / "budget.pt"
    res = runner.invoke(app, ["train-style", str(paintings / "painting0.png"), "--content", str(photos), "-o",
                              str(budget), "--steps", "40", "--size", "32", "--batch-size", "2", "--max-minutes",
                              "0.000001", "--precision", "float32", "--quiet"])
    assert res.exit_code == 0 and f"wrote {budget}: 1 step in" in res.output, res.output
    assert load_model(model).header["architecture"]["norm"] == "batch"
    out = tmp_path / "styled"
    res = runner.invoke(app, ["stylise", str(model), str(photos), "-o", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "wrote 12 pastiche(s)" in res.output and len(list(out.glob("*.png"))) == 12 == len(list(out.glob("*.json")))
    res = runner.invoke(app, ["stylise", str(photos / "photo00.png"), str(photos), "-o", str(out), "--quiet"])
    assert res.exit_code == 1 and res.output.count("Error:") == 1 and "not a readable model file" in res.output
    # into a folder inside the input, twice: the second run stylises the photographs again, not the pastiches
    inside = tmp_path / "inside"
    shutil.copytree(photos, inside)
    for _ in range(2):
        res = runner.invoke(app, ["stylise", str(model), str(inside), "-o", str(inside / "out"), "--quiet"])
        assert res.exit_code == 0 and "wrote 12 pastiche(s)" in res.output, res.output
    assert len(list((inside / "out").rglob("*.png"))) == 12
    # a folder with files that cannot be read: each named, counted in the summary, and exit code 3 (as index)
    mixed = tmp_path / "mixed"
    shutil.copytree(photos, mixed)
    (mixed / "fake.png").write_text("not an image")
    (mixed / "empty.jpg").write_bytes(b"")
    res = runner.invoke(app, ["stylise", str(model), str(mixed), "-o", str(tmp_path / "mixed-out"), "--quiet"])
    assert res.exit_code == 3, res.output
    assert "wrote 12 pastiche(s)" in res.output and "2 file(s) skipped, unreadable" in res.output
    side = json.loads((tmp_path / "mixed-out" / "photo00.png.json").read_text())
    assert (side["size"], side["tile"], side["tiled"]) == (None, 2048, False)  # how it was made, tiles included


def test_cli_train_decoder_and_transfer_adain(photos, paintings, tmp_path):
    dec = tmp_path / "dec.pt"
    res = runner.invoke(app, ["train-decoder", "--content", str(photos), "--styles", str(paintings), "-o", str(dec),
                              "--steps", "1", "--size", "32", "--batch-size", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "p.png"
    res = runner.invoke(app, ["transfer", str(photos / "photo00.png"), str(paintings / "painting0.png"), "-o",
                              str(out), "--method", "adain", "--decoder", str(dec), "--alpha", "0.8", "--size", "40",
                              "--preserve-colors"])
    assert res.exit_code == 0, res.output
    assert "AdaIN, alpha 0.8" in res.output and Image.open(out).size[0] == 40
    res = runner.invoke(app, ["transfer", str(photos / "photo00.png"), str(paintings / "painting0.png"), "-o",
                              str(out), "--method", "adain", "--decoder", str(dec), "-n", "5"])
    assert res.exit_code == 1 and "applies to --method gatys only" in res.output
    res = runner.invoke(app, ["transfer", str(photos / "photo00.png"), str(paintings / "painting0.png"), "-o",
                              str(out), "--alpha", "0.5"])
    assert res.exit_code == 1 and "applies to --method adain only" in res.output


def test_stylise_replaces_its_own_outputs_but_never_a_users_file(style_model, photos, tmp_path):
    out = tmp_path / "p.png"
    stylise(style_model.path, photos / "photo00.png", out, device="cpu")
    stylise(style_model.path, photos / "photo01.png", out, device="cpu")  # its own output: replaced
    mine = tmp_path / "mine.png"
    Image.new("RGB", (8, 8), "red").save(mine)
    before = mine.read_bytes()
    with pytest.raises(OutputConflict, match="not made by artspace"):
        stylise(style_model.path, photos / "photo00.png", mine, device="cpu")
    with pytest.raises(OutputConflict, match="not made by artspace"):
        adain_transfer(photos / "photo00.png", photos / "photo01.png", mine, size=32, device="cpu")
    assert mine.read_bytes() == before
    with pytest.raises(InvalidOption, match="unknown image extension"):
        stylise(style_model.path, photos / "photo00.png", tmp_path / "p.xyz", device="cpu")


def test_two_images_of_the_same_name_are_refused_not_overwritten(style_model, photos, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "photo00.png").write_bytes((photos / "photo01.png").read_bytes())
    with pytest.raises(InvalidOption, match="would both be written"):
        stylise(style_model.path, [photos / "photo00.png", other / "photo00.png"], tmp_path / "out", device="cpu")


def test_a_signal_in_the_middle_of_a_step_stops_after_it_and_resumes_bit_for_bit(photos, paintings, tmp_path,
                                                                               monkeypatch):
    """Ctrl-C (or SIGTERM) arriving while a step computes its losses: the step is finished, the checkpoint records
    it, and the resumed run gives the uninterrupted network exactly."""
    import os
    import signal

    style = [paintings / "painting2.png"]
    whole = train_style(style, photos, tmp_path / "whole.pt", steps=4, seed=3, checkpoint_every=100, prefetch=0,
                        **TINY)
    out = tmp_path / "resumed.pt"
    with pytest.raises(KeyboardInterrupt), _in_third_step(lambda: os.kill(os.getpid(), signal.SIGINT), monkeypatch):
        train_style(style, photos, out, steps=4, seed=3, checkpoint_every=100, prefetch=0, **TINY)
    assert torch.load(checkpoint_path(out), weights_only=True)["step"] == 3
    resumed = train_style(style, photos, out, steps=4, seed=3, checkpoint_every=100, prefetch=0, **TINY)
    a, b = load_model(whole.path).net.state_dict(), load_model(resumed.path).net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
