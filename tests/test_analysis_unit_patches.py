"""Top-activating patches of single units (after Erhan et al. 2009; Zeiler & Fergus 2014) and a group's
characteristic units; responses cached in the catalog's cache folder, computed with a progress bar."""

from __future__ import annotations

import pytest
import torch

from artspace.analysis import characteristic_units, receptive_field, unit_responses, units
from artspace.errors import ArtspaceError, InvalidOption, UnknownLayer


def test_receptive_fields_of_vgg19():
    assert receptive_field("relu1_1") == (3, 1, 0.0)
    assert receptive_field("pool1") == (6, 2, 0.5)  # 3, 5 after two convolutions, +1 by pooling
    assert receptive_field("relu3_1") == (24, 4, 1.5)
    with pytest.raises(UnknownLayer):
        receptive_field("relu9_9")


def test_units_top_patches_are_the_strongest_responses(analysis_catalog, tmp_path):
    r = units(analysis_catalog, layer="relu2_1", unit=5, top=9, column="texture", out=tmp_path)
    assert len(r.patches) == 9 and r.patches["activation"].is_monotonic_decreasing
    best = r.patches.iloc[0]
    ex = analysis_catalog.extractor
    with torch.inference_mode():
        f = ex.net(ex.load(analysis_catalog.root / best["path"])[None], ["relu2_1"])["relu2_1"][0, 5]
    assert float(f.max()) == pytest.approx(best["activation"], rel=1e-4)
    # every other work responds less
    rest = unit_responses(analysis_catalog, layer="relu2_1")
    assert float(rest["max"][:, 5].max()) == pytest.approx(best["activation"], rel=1e-4)
    assert (analysis_catalog.cache_dir / "units-relu2_1.npz").is_file()
    assert r.sheet.size[0] > 300 and (tmp_path / "units-relu2_1-5.png").is_file()
    assert best["x1"] - best["x"] <= receptive_field("relu2_1")[0] + 2
    # the same box in the file's own pixels (the network squeezed the image to the catalog's square input)
    w = analysis_catalog.works.set_index("id").loc[best["id"]]
    s = analysis_catalog.spec.size
    assert best["left"] == round(best["x"] * w["width"] / s) and best["bottom"] == round(best["y1"] * w["height"] / s)
    with pytest.raises(InvalidOption, match="units 0..127"):
        units(analysis_catalog, layer="relu2_1", unit=128)


def test_responses_are_computed_once_with_a_progress_bar(analysis_catalog, capsys):
    cache = analysis_catalog.cache_dir / "units-relu1_2.npz"
    assert not cache.exists()  # no other test uses relu1_2
    first = unit_responses(analysis_catalog, layer="relu1_2", progress=True)
    err = capsys.readouterr().err
    assert "units of relu1_2" in err and f"{len(analysis_catalog.works)}/{len(analysis_catalog.works)}" in err
    assert cache.is_file()
    again = unit_responses(analysis_catalog, layer="relu1_2", progress=True)
    assert capsys.readouterr().err == ""  # read from the cache: nothing to compute, no bar
    assert (again["max"] == first["max"]).all() and (again["ids"] == first["ids"]).all()


def test_characteristic_units_rank_by_effect(analysis_catalog):
    df = characteristic_units(analysis_catalog, layer="relu2_1", column="texture", group="stripes", top=5)
    assert len(df) == 5 and df["effect"].is_monotonic_decreasing and (df["n_group"] == 6).all()
    with pytest.raises(ArtspaceError, match="no work has texture"):
        characteristic_units(analysis_catalog, layer="relu2_1", column="texture", group="velvet")
