"""The precision policy: what ``auto`` picks, bfloat16 features against float32 ones, and a catalog's one precision."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from artspace.catalog import Catalog, index
from artspace.errors import IncompatibleCatalog, InvalidOption
from artspace.features import Extractor
from artspace.precision import autocast, cpu_has_native_bf16, resolve_precision

from conftest import TINY_SPEC


def test_auto_follows_the_hardware():
    assert resolve_precision("auto", "cpu") == ("bfloat16" if cpu_has_native_bf16() else "float32")
    assert resolve_precision(None, "cpu") == resolve_precision("auto", "cpu")
    for p in ("float32", "bfloat16", "float16"):
        assert resolve_precision(p, "cpu") == p
    with pytest.raises(InvalidOption, match="precision must be one of"):
        resolve_precision("fp8", "cpu")


def test_autocast_float32_changes_nothing():
    a = torch.rand(4, 4)
    with autocast("cpu", "float32"):
        assert (a @ a).dtype == torch.float32
    with autocast("cpu", "bfloat16"):
        assert (a @ a).dtype == torch.bfloat16


def test_bfloat16_features_are_float32_and_close(demo_source):
    paths = sorted(demo_source.rglob("*.png"))[:4]
    f32 = Extractor(TINY_SPEC, device="cpu", precision="float32")
    b16 = Extractor(TINY_SPEC, device="cpu", precision="bfloat16")
    a, b = f32.encode(f32.batch(paths)), b16.encode(b16.batch(paths))
    for key in ("style", "signature", "descriptor", "moments"):
        assert b[key].dtype == torch.float32
        rel = float((a[key] - b[key]).norm() / a[key].norm())
        assert rel < 0.05, (key, rel)


@pytest.mark.slow
def test_a_catalog_keeps_one_precision(demo_source, tmp_path):
    root = tmp_path / "demo"
    shutil.copytree(demo_source, root)
    index(root, spec=TINY_SPEC, quiet=True, precision="bfloat16")
    cat = Catalog.open(root)
    assert cat.precision == "bfloat16" and cat.extractor.precision == "bfloat16"
    state = json.loads((root / ".artspace" / "log" / "log.json").read_text())
    assert state["precision"] == "bfloat16"
    first = sorted(root.rglob("*.png"))[0]
    (root / "extra.png").write_bytes(first.read_bytes())
    report = index(root, quiet=True)  # auto: the catalog's own precision
    assert report.published and Catalog.open(root).precision == "bfloat16"
    with pytest.raises(IncompatibleCatalog, match="built in bfloat16.*--rebuild"):
        index(root, quiet=True, precision="float32")
    # exact figures default to float32 whatever the catalog's precision
    works = cat.works["path"].tolist()
    d32 = cat.distance(works[0], works[1])["exact"]
    ref = Extractor(TINY_SPEC, device="cpu", precision="float32").distance(cat.image_path(works[0]),
                                                                           cat.image_path(works[1]))
    assert d32["style"] == pytest.approx(ref["style"], rel=1e-6)
    d16 = cat.distance(works[0], works[1], precision="bfloat16")["exact"]
    assert d16["style"] == pytest.approx(ref["style"], rel=0.1)
    index(root, quiet=True, precision="float32", rebuild=True)
    assert Catalog.open(root).precision == "float32"


def test_a_catalog_from_before_precisions_were_recorded_is_float32(demo_catalog, tmp_path):
    root = tmp_path / "demo"
    shutil.copytree(demo_catalog.root, root)
    cdir = root / ".artspace"
    state = json.loads((cdir / "log" / "log.json").read_text())
    state.pop("precision", None)
    (cdir / "log" / "log.json").write_text(json.dumps(state))
    for manifest in (cdir / "generations").glob("*/manifest.json"):
        m = json.loads(manifest.read_text())
        m.pop("precision", None)
        manifest.write_text(json.dumps(m))
    # such a catalog's CURRENT recorded no manifest digest either
    pointer = json.loads((cdir / "CURRENT").read_text())
    (cdir / "CURRENT").write_text(json.dumps({"generation": pointer["generation"]}))
    assert Catalog.open(root).precision == "float32"
    with pytest.raises(IncompatibleCatalog, match="built in float32"):
        index(root, quiet=True, precision="bfloat16")
    report = index(root, quiet=True)
    assert not report.published and Catalog.open(root).precision == "float32"
