"""Shared fixtures: a tiny demo collection and its catalog, built once per test session."""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artspace.catalog import Catalog, index
from artspace.demo import make_demo
from artspace.features import FeatureSpec

#: Small enough to index in seconds on two CPU cores, big enough for groups and neighbours.
DEMO_SHAPES = ("circle", "star", "cross")
DEMO_TEXTURES = ("stripes", "dots", "checker")
TINY_SPEC = FeatureSpec(size=64)


@pytest.fixture(scope="session")
def demo_source(tmp_path_factory) -> Path:
    """A pristine 3 shapes x 3 textures x 2 variants demo collection (64 px); copy it before changing it."""
    return make_demo(tmp_path_factory.mktemp("demo_src"), shapes=DEMO_SHAPES, textures=DEMO_TEXTURES, variants=2,
                     size=64)


@pytest.fixture(scope="session")
def demo_catalog(demo_source, tmp_path_factory) -> Catalog:
    """The demo collection indexed once (read-only for tests: copy it to modify)."""
    root = tmp_path_factory.mktemp("demo_cat") / "demo"
    shutil.copytree(demo_source, root)
    index(root, metadata=root / "metadata.csv", spec=TINY_SPEC, quiet=True, batch_size=4)
    return Catalog.open(root)


@pytest.fixture
def demo_copy(demo_source, tmp_path) -> Path:
    """A fresh writable copy of the demo collection, without a catalog."""
    root = tmp_path / "demo"
    shutil.copytree(demo_source, root)
    return root


# ---- analyses (tests/test_analysis_*.py, tests/test_cli_analysis.py, tests/test_map_browser.py) ----------------


@pytest.fixture(scope="session")
def analysis_catalog(demo_catalog, tmp_path_factory) -> Catalog:
    """A private copy of the indexed demo collection that analyses may write into (cluster and map columns)."""
    root = tmp_path_factory.mktemp("analysis_cat") / "demo"
    shutil.copytree(demo_catalog.root, root)
    return Catalog.open(root)


# ---- hostile files (tests/test_images.py, tests/test_catalog_store.py) --------------------------------------------


def _write_png(path, width: int, height: int):
    """A real black 1-bit PNG of any size, written by streaming compressed zero rows (never held in memory)."""
    row = bytes(1 + (width + 7) // 8)  # filter type 0, then the row's bits
    batch = max(1, (1 << 22) // len(row))
    z = zlib.compressobj(1)  # level 1: fastest, and zeros still shrink a thousandfold

    def chunk(f, kind: bytes, data: bytes):
        f.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        chunk(f, b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
        for start in range(0, height, batch):
            chunk(f, b"IDAT", z.compress(row * min(batch, height - start)))
        chunk(f, b"IDAT", z.flush())
        chunk(f, b"IEND", b"")
    return path


def _animated(path, colours=("red", "blue")):
    frames = [Image.new("RGB", (8, 8), c) for c in colours]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0,
                   **({"lossless": True} if path.suffix == ".webp" else {}))
    return path


@pytest.fixture
def write_png():
    """Writes a real black PNG of any size without holding it in memory: ``write_png(path, width, height)``."""
    return _write_png


@pytest.fixture
def animated():
    """Writes a two-frame animated image (GIF, PNG or WebP by suffix): ``animated(path, colours)``."""
    return _animated


def _make_hostile(folder: Path) -> Path:
    """One of each kind of hostile entry in *folder*, beside two good images and a link to one."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), "green").save(folder / "good.png")
    (folder / "link.png").symlink_to(folder / "good.png")
    (folder / "gone.png").symlink_to(folder / "nowhere.png")
    os.mkfifo(folder / "x.png")
    fd = os.open(os.fsencode(str(folder)) + b"/latin1_\xe9.png", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    _write_png(folder / "bomb.png", 30000, 30000)
    _animated(folder / "anim.gif")
    return folder


@pytest.fixture
def hostile(tmp_path):
    """A folder holding one of each kind of hostile entry (FIFO, dangling link, link loop, a name that is not UTF-8,
    a 30000 x 30000 PNG, an animated GIF), beside two good images and a link to one."""
    return _make_hostile(tmp_path)


@pytest.fixture
def make_hostile():
    """``make_hostile(folder)`` fills *folder* as the ``hostile`` fixture does."""
    return _make_hostile


# ---- synthetic sources for analyses -------------------------------------------------------------------------------


@pytest.fixture
def blobs():
    """A factory of synthetic ``(works, X)`` sources: *groups* Gaussian blobs of *per* works in *dim* dimensions,
    their centres *sep* apart on average; ``works["g"]`` names each work's blob."""

    def make(groups=3, per=20, dim=6, sep=6.0, seed=0):
        rng = np.random.default_rng(seed)
        X = np.concatenate([rng.normal(size=(per, dim)) + sep * rng.normal(size=dim) for _ in range(groups)])
        works = pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(groups)], per)})
        return works, X.astype(np.float32)

    return make


# ---- pastiches (tests/test_transfer_*.py) --------------------------------------------------------------------


@pytest.fixture(scope="session")
def transfer_images(tmp_path_factory) -> Path:
    """A landscape content (house and sun), a portrait striped style, a second, dotted style, and two bad files."""
    from PIL import Image, ImageDraw

    d = tmp_path_factory.mktemp("transfer_imgs")
    c = Image.new("RGB", (60, 40), (120, 170, 230))
    dr = ImageDraw.Draw(c)
    dr.rectangle([10, 18, 34, 38], fill=(170, 60, 40))
    dr.polygon([(8, 18), (22, 6), (36, 18)], fill=(90, 40, 30))
    dr.ellipse([44, 4, 56, 16], fill=(250, 220, 60))
    dr.rectangle([0, 36, 60, 40], fill=(40, 140, 50))
    c.save(d / "content.png")
    s = Image.new("RGB", (30, 50), (250, 240, 200))
    dr = ImageDraw.Draw(s)
    for k in range(0, 80, 8):
        dr.line([(k - 40, 0), (k, 50)], fill=(20, 30, 120), width=3)
    s.save(d / "style.png")
    s2 = Image.new("RGB", (40, 40), (30, 30, 30))
    dr = ImageDraw.Draw(s2)
    for y in range(2, 40, 9):
        for x in range(2, 40, 9):
            dr.ellipse([x, y, x + 5, y + 5], fill=(240, 80, 40))
    s2.save(d / "style2.jpg")
    (d / "empty.png").write_bytes(b"")
    (d / "notimage.jpg").write_text("hello")
    return d
