"""Shared fixtures: a tiny demo collection and its catalog, built once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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


# ---- analyses (tests/test_analysis.py, tests/test_map_browser.py, tests/test_notebook.py) ----------------------


@pytest.fixture(scope="session")
def analysis_catalog(demo_catalog, tmp_path_factory) -> Catalog:
    """A private copy of the indexed demo collection that analyses may write into (cluster and map columns)."""
    root = tmp_path_factory.mktemp("analysis_cat") / "demo"
    shutil.copytree(demo_catalog.root, root)
    return Catalog.open(root)


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
