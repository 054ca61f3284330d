"""Shared fixtures: a tiny demo collection and its catalog, built once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
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


# ---- analyses (tests/test_analysis_*.py, tests/test_cli_analysis.py, tests/test_map_browser.py) ----------------


@pytest.fixture(scope="session")
def analysis_catalog(demo_catalog, tmp_path_factory) -> Catalog:
    """A private copy of the indexed demo collection that analyses may write into (cluster and map columns)."""
    root = tmp_path_factory.mktemp("analysis_cat") / "demo"
    shutil.copytree(demo_catalog.root, root)
    return Catalog.open(root)


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
