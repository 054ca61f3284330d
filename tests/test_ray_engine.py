"""``index --engine ray`` on a local Ray instance: the same catalog as the local engine, the same skip and resume
rules. Skipped where Ray is not installed (``pip install 'artspace[ray]'``)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from artspace.catalog import Catalog, index
from artspace.errors import InvalidOption

from conftest import TINY_SPEC

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def _build(source, folder, hostile=None, **kw):
    shutil.copytree(source, folder)
    if hostile is not None:
        hostile(folder / "hostile")
    report = index(folder, spec=TINY_SPEC, quiet=True, precision="float32", batch_size=4, **kw)
    return report, Catalog.open(folder)


def test_ray_engine_makes_the_local_catalog(local_ray, demo_source, make_hostile, tmp_path):
    local_report, local = _build(demo_source, tmp_path / "local", make_hostile)
    ray_report, remote = _build(demo_source, tmp_path / "ray", make_hostile, engine="ray")
    assert any("Ray engine" in n for n in ray_report.notes)
    cols = ["id", "path", "size", "checksum", "width", "height"]
    pd.testing.assert_frame_equal(local.works[cols], remote.works[cols])
    def reasons(report, folder):  # the same files skipped for the same reasons (which name their own folder)
        return sorted((p, r.replace(str(folder), "ROOT")) for p, r in report.skipped)

    assert reasons(local_report, tmp_path / "local") == reasons(ray_report, tmp_path / "ray")
    for by in ("style", "l_style", "content"):
        a, b = np.asarray(local.embeddings(by)[1]), np.asarray(remote.embeddings(by)[1])
        assert np.allclose(a, b, rtol=1e-4, atol=1e-5), by
    wid = int(local.works["id"].iloc[3])
    for by in ("style", "content"):
        assert local.similar(wid, by=by, k=5)["id"].tolist() == remote.similar(wid, by=by, k=5)["id"].tolist()
    assert np.allclose(local.moments(wid)[0], remote.moments(wid)[0], rtol=1e-3)
    # each work's parts off the style axes, kept by both engines alike
    off_local, off_ray = np.asarray(local._stored_off_axes()), np.asarray(remote._stored_off_axes())
    assert np.isfinite(off_ray).all() and np.allclose(off_local, off_ray, rtol=1e-3, atol=1e-6)


def test_ray_engine_adds_only_what_changed(local_ray, demo_source, tmp_path):
    _, cat = _build(demo_source, tmp_path / "c", engine="ray")
    first = sorted(cat.works["path"])[0]
    (tmp_path / "c" / "copy.png").write_bytes((tmp_path / "c" / first).read_bytes())
    report = index(tmp_path / "c", quiet=True, engine="ray")
    assert report.extracted == 1 and report.added == 1 and report.unchanged == len(cat.works)


def test_address_needs_the_ray_engine(demo_source, tmp_path):
    with pytest.raises(InvalidOption, match="--engine ray"):
        index(demo_source, catalog=tmp_path / "cat", address="auto")


def test_without_ray_the_error_says_how_to_install_it(demo_source, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    with pytest.raises(InvalidOption, match=r"pip install 'artspace\[ray\]'"):
        index(demo_source, catalog=tmp_path / "cat", engine="ray")
    assert not (tmp_path / "cat").exists()


def test_ray_engine_reads_a_collection_from_a_uri(local_ray, demo_source, tmp_path):
    """An object-store collection (``file://`` here; ``s3://`` and ``gs://`` take the same path through pyarrow):
    the Ray tasks read the objects' bytes, the driver keeps the catalog on its local disk."""
    shutil.copytree(demo_source, tmp_path / "images")
    report = index((tmp_path / "images").as_uri(), catalog=tmp_path / "cat", spec=TINY_SPEC, quiet=True,
                   precision="float32", batch_size=4, engine="ray")
    local = index(tmp_path / "images", catalog=tmp_path / "local", spec=TINY_SPEC, quiet=True,
                  precision="float32", batch_size=4)
    assert report.works == local.works == 18
    a, b = Catalog.open(tmp_path / "cat"), Catalog.open(tmp_path / "local")
    assert a.works["checksum"].tolist() == b.works["checksum"].tolist()
    assert np.allclose(a.embeddings("style")[1], b.embeddings("style")[1], rtol=1e-4, atol=1e-5)
