"""The style/content plane (after Gatys et al. 2016): both axes are the distances `similar` prints, plotted as ranks
so that every point is readable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from artspace.analysis import plane
from artspace.errors import InvalidOption, WorkNotFound


@pytest.mark.parametrize("by", ["style", "l_style"])
def test_axes_are_the_distances_similar_prints(analysis_catalog, by):
    works = analysis_catalog.works
    query = works["path"].iloc[0]
    r = plane(analysis_catalog, query, by=by, thumbs=0)
    assert r.by == by and len(r.works) == len(works) - 1 and r.query_id == int(works["id"].iloc[0])
    got = r.works.set_index("id")
    for space, axis in ((by, "style"), ("content", "content")):
        hits = analysis_catalog.similar(query, by=space, k=len(works) - 1).set_index("id")
        assert np.allclose(got.loc[hits.index, f"{axis}_distance"], hits["distance"], rtol=1e-9)
        assert np.allclose(got.loc[hits.index, f"{axis}_percentile"], hits["percentile"])


def test_plane_places_every_work_and_names_the_quadrants(analysis_catalog, tmp_path):
    query = analysis_catalog.works["path"].iloc[0]
    r = plane(analysis_catalog, query, out=tmp_path, color="texture")
    same_style = r.works[r.works["quadrant"] == "same style, other subject"]
    assert len(same_style) and (same_style["style_distance"] <= r.thresholds["style"]).all()
    assert (same_style["content_distance"] > r.thresholds["content"]).all()
    top = r.top["same subject, other style"]
    assert top["content_distance"].is_monotonic_increasing
    # ranks: the share of the other works nearer, so the nearest is near 0 and the farthest near 100
    for axis in ("style", "content"):
        order = r.works.sort_values(f"{axis}_distance")[f"{axis}_rank"]
        assert order.is_monotonic_increasing and 0 < order.iloc[0] < 5 and 95 < order.iloc[-1] < 100
    ax = r.figure.axes[0]
    assert ax.get_xlim() == (-3, 103) and ax.get_ylim() == (-3, 103)  # ranks, not distances up to 1e11
    assert "rank" in ax.get_ylabel() and "relative signature distance" in ax.get_ylabel()
    assert "Gatys et al. 2016" in ax.get_title()
    assert (tmp_path / "plane-style.png").stat().st_size > 10_000
    csv = pd.read_csv(tmp_path / "plane-style.csv")
    assert len(csv) == len(r.works) and {"style_percentile", "content_rank", "quadrant"} <= set(csv.columns)
    # the summary warns when 'same subject' reaches cosines at or below 0, and only then
    assert ("is at or below 0" in r.summary()) == (r.thresholds["content"] >= 1.0)
    r.thresholds["content"] = 1.01
    assert "here it means only nearer than the other half, not a shared subject" in r.summary()


def test_plane_refuses_what_it_cannot_place(analysis_catalog):
    with pytest.raises(WorkNotFound):
        plane(analysis_catalog, "no/such/work.png")
    with pytest.raises(InvalidOption, match="style axis"):
        plane(analysis_catalog, 0, by="content")
    with pytest.raises(InvalidOption, match="split must be a share strictly between 0 and 1, not 1.5"):
        plane(analysis_catalog, 0, split=1.5)


def test_plane_on_embeddings_only(blobs):
    works, X = blobs(groups=2, per=10)
    rng = np.random.default_rng(0)
    C = rng.normal(size=X.shape)
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    r = plane((works, {"l_style": X, "content": C}), 0, by="l_style")
    assert len(r.works) == 19 and set(r.top) >= {"same style, other subject", "same subject, other style"}
    d = r.works.set_index("id")["content_distance"]
    assert d.loc[5] == pytest.approx(1 - float(C[0] @ C[5]), rel=1e-5)
    with pytest.raises(WorkNotFound, match="not the id of a work"):
        plane((works, {"l_style": X, "content": C}), 99, by="l_style")
