"""The CUDA paths, run wherever a CUDA GPU exists and skipped elsewhere: the CPU suite keeps the code device-agnostic,
these check that the GPU gives the CPU's answers."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from artspace.catalog import Catalog, index
from artspace.catalog.indexer import auto_batch_size
from artspace.features import Extractor

from conftest import TINY_SPEC

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


def test_batch_size_is_eight_on_a_cpu():
    assert auto_batch_size(torch.device("cpu"), 224) == 8


@cuda
def test_batch_size_follows_free_gpu_memory():
    n = auto_batch_size(torch.device("cuda"), 224)
    assert 8 <= n <= 256
    assert auto_batch_size(torch.device("cuda"), 224, "bfloat16") >= n


@cuda
def test_gpu_features_equal_cpu_features_in_float32(demo_source):
    paths = sorted(demo_source.rglob("*.png"))[:6]
    cpu, gpu = Extractor(TINY_SPEC, device="cpu"), Extractor(TINY_SPEC, device="cuda")
    a, b = cpu.encode(cpu.batch(paths)), gpu.encode(gpu.batch(paths))
    for key in ("style", "signature", "descriptor", "moments"):
        assert b[key].device.type == "cpu"  # results come back to the CPU
        assert torch.allclose(a[key], b[key], rtol=1e-3, atol=1e-4), key


@cuda
def test_gpu_catalog_answers_as_the_cpu_one(demo_source, tmp_path):
    for name, device in (("cpu", "cpu"), ("gpu", "cuda")):
        shutil.copytree(demo_source, tmp_path / name)
        index(tmp_path / name, spec=TINY_SPEC, quiet=True, device=device, precision="float32")
    a, b = Catalog.open(tmp_path / "cpu"), Catalog.open(tmp_path / "gpu")
    assert np.allclose(np.asarray(a.embeddings("style")[1]), np.asarray(b.embeddings("style")[1]), atol=1e-4)
    wid = int(a.works["id"].iloc[0])
    assert a.similar(wid, k=5)["id"].tolist() == b.similar(wid, k=5)["id"].tolist()


@cuda
def test_bfloat16_on_the_gpu_is_close(demo_source):
    paths = sorted(demo_source.rglob("*.png"))[:6]
    f32, b16 = Extractor(TINY_SPEC, device="cuda"), Extractor(TINY_SPEC, device="cuda", precision="bfloat16")
    a, b = f32.encode(f32.batch(paths)), b16.encode(b16.batch(paths))
    assert float((a["signature"] - b["signature"]).norm() / a["signature"].norm()) < 0.05


@cuda
def test_feedforward_on_the_gpu(tmp_path):
    from artspace.feedforward import TransformNet, adain_transfer, stylise
    from artspace.feedforward.models import save_model

    net = TransformNet()
    model = save_model(tmp_path / "m.pt", "style", net, {"architecture": {"norm": "instance"}})
    x = torch.rand(1, 3, 48, 64)
    from artspace.images import to_pil

    cpu = np.asarray(stylise(model, to_pil(x), device="cpu", precision="float32")[0].image, np.int16)
    gpu = np.asarray(stylise(model, to_pil(x), device="cuda", precision="float32")[0].image, np.int16)
    assert np.abs(cpu - gpu).max() <= 2
    r = adain_transfer(to_pil(x), to_pil(torch.rand(1, 3, 40, 40)), size=48, device="cuda")
    assert r.image.size == (48, 36)


@cuda
def test_training_on_the_gpu_draws_its_crops_ahead(tmp_path):
    from PIL import Image

    from artspace.feedforward import train_decoder, train_style

    for k in range(6):
        Image.fromarray(np.random.default_rng(k).integers(0, 255, (48, 56, 3), dtype=np.uint8)).save(
            tmp_path / f"p{k}.png")
    r = train_style([tmp_path / "p0.png"], tmp_path, tmp_path / "out" / "s.pt", steps=5, size=32, batch_size=2,
                    device="cuda", progress=False, checkpoint_every=2)
    assert r.steps == 5 and r.header["training"]["device"].startswith("cuda") and r.curve.is_file()
    assert all(np.isfinite(h["total"]) for h in r.history)
    d = train_decoder(tmp_path, tmp_path, tmp_path / "out" / "d.pt", steps=3, size=32, batch_size=2, device="cuda",
                      progress=False, max_minutes=10)
    assert d.steps == 3 and d.header["training"]["stopped_by_time"] is False
