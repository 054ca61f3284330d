"""Maps: the layout (stored in the catalog), the picture, and the offline HTML page, whose panel lists `similar`'s
neighbours under the space's label and links each work to its image."""

from __future__ import annotations

import json
import re
import urllib.parse

import numpy as np
import pandas as pd
import pytest

from artspace.analysis import layout, map_collection, map_html, read_source, stored_layout
from artspace.catalog import Catalog
from artspace.spaces import SPACES


def embedded_data(path):
    text = path.read_text()
    m = re.search(r'<script type="application/json" id="artspace-data">(.*?)</script>', text, re.S)
    return json.loads(m.group(1)), text


def test_map_html_is_self_contained(blobs, tmp_path):
    works, X = blobs(groups=3, per=30)
    works["year"] = np.linspace(1500, 1900, len(works))
    works.loc[3, "year"] = np.nan
    coords = layout((works, X), method="pca")
    out = map_html((works, X), tmp_path / "map.html", coords=coords, color="g", neighbors_k=5)
    data, text = embedded_data(out)
    assert data["n"] == len(works) == len(data["x"]) and data["k"] == 5 and len(data["nbr"]) == 5 * len(works)
    assert data["columns"]["g"]["kind"] == "cat" and data["columns"]["year"]["kind"] == "num"
    # whole numbers: codes close together are categories, a few scattered measurements a scale
    from artspace.analysis.maps import _categorical

    assert _categorical(pd.Series([0, 1, 2, 1, 0])) and not _categorical(pd.Series([512, 375, 300, 512, 360]))
    assert data["columns"]["year"]["values"][3] is None
    assert data["links"] is None and data["thumbs"] is None  # no images behind a (works, X) pair
    assert re.search(r"""(src|href)=["']?(https?:)?//""", text) is None  # nothing to fetch
    assert "default-src 'none'" in text


def test_map_data_cannot_break_out_of_its_script_block(blobs, tmp_path):
    hostile = ["<!--<script>", "</script><script>alert(1)</script>", "a & b > c", "line\u2028sep\u2029end",
               "<!-- -->", "plain"]
    works, X = blobs(groups=2, per=3)
    works["title"] = hostile
    works["</script>"] = hostile[::-1]  # a column name is data too
    out = map_html((works, X), tmp_path / "map.html", coords=layout((works, X), method="pca"), color="title",
                   neighbors_k=2, title="<!--<script> & co")
    text = out.read_text(encoding="utf-8")
    start = text.index('<script type="application/json" id="artspace-data">') + len(
        '<script type="application/json" id="artspace-data">')
    block = text[start:text.index("</script>", start)]
    for bad in ("<!--", "<script", "</", "<", ">", "&", "\u2028", "\u2029"):
        assert bad not in block, bad
    data = json.loads(block)
    assert data["columns"]["title"]["levels"] == hostile and data["columns"]["</script>"]["levels"] == hostile[::-1]
    assert data["title"] == "<!--<script> & co" and "<title>&lt;!--&lt;script&gt; &amp; co</title>" in text
    assert text.count("<script") == 2 and text.rstrip().endswith("</html>")  # the page's own two scripts only


@pytest.mark.parametrize("by", ["style", "content"])
def test_the_panel_lists_similar_s_neighbours_under_the_space_s_label(analysis_catalog, tmp_path, by):
    out = map_html(analysis_catalog, tmp_path / "map.html", by=by, coords=layout(analysis_catalog, by=by,
                   method="pca", save=False), neighbors_k=3, thumbs="none")
    data, _ = embedded_data(out)
    assert data["nearest"] == f"nearest by {SPACES[by].label}"
    for row, wid in enumerate(data["ids"]):
        hits = analysis_catalog.similar(wid, by=by, k=3)
        assert [data["ids"][j] for j in data["nbr"][3 * row:3 * row + 3]] == hits["id"].tolist()
        assert np.allclose(data["nbrDist"][3 * row:3 * row + 3], hits["distance"], rtol=1e-3)
        # Catalog.neighbours ranks with faiss (float32), similar measures in float64: a pair lying exactly on a
        # pair of the stored sample (here all 153 pairs are) may count one sample pair (0.65 %) more or less
        assert np.allclose(data["nbrPct"][3 * row:3 * row + 3], hits["percentile"], rtol=1e-2, atol=0.66)


def test_each_work_links_to_its_image_relative_to_the_page(analysis_catalog, tmp_path):
    page = tmp_path / "deep" / "er" / "map.html"
    page.parent.mkdir(parents=True)
    map_html(analysis_catalog, page, by="content", coords=layout(analysis_catalog, by="content", method="pca",
             save=False), neighbors_k=1, thumbs="embed")
    data, _ = embedded_data(page)
    for link, path in zip(data["links"], data["paths"]):
        assert not link.startswith(("/", "file:")) and "\\" not in link
        target = (page.parent / urllib.parse.unquote(link)).resolve()
        assert target == (analysis_catalog.root / path).resolve() and target.is_file()
    assert all(t.startswith("data:image/jpeg;base64,") for t in data["thumbs"])


@pytest.mark.slow
def test_map_collection_on_the_demo(analysis_catalog, tmp_path):
    r = map_collection(analysis_catalog, tmp_path, by="style", color="texture", recompute=True)
    assert r.computed and {p.name for p in r.files} == {"map-style.csv", "map-style.png", "map-style.html"}
    reopened = Catalog.open(analysis_catalog.dir)
    stored = stored_layout(reopened, by="style")
    assert np.allclose(stored.set_index("id").loc[r.coords["id"], "x"], r.coords["x"])
    assert reopened.manifest["analyses"]["map_style_x"]["source"] == "map --by style --method umap"
    data, _ = embedded_data(tmp_path / "map-style.html")
    assert data["thumbs"][0].startswith("data:image/jpeg;base64,")
    assert "signature distance" in r.figure.axes[0].get_title()
    again = map_collection(analysis_catalog, tmp_path, by="style", picture=False)
    assert not again.computed  # the layout saved in the catalog is reused


def test_large_collection_layout_path_keeps_groups_apart(blobs):
    works, X = blobs(groups=3, per=200, dim=16, sep=12.0)
    xy = layout((works, X), large=100, n_epochs=50)  # faiss neighbour graph + PCA initialisation
    P = xy[["x", "y"]].to_numpy()
    groups = ("g0", "g1", "g2")
    centres = np.stack([P[works["g"] == g].mean(0) for g in groups])
    spread = max(np.linalg.norm(P[works["g"] == g] - centres[i], axis=1).mean() for i, g in enumerate(groups))
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > 2 * spread


@pytest.mark.parametrize("by", ["style", "l_style", "content"])
def test_layout_of_each_space_is_saved_in_the_catalog(analysis_catalog, by):
    xy = layout(analysis_catalog, by=by, method="pca")
    reopened = Catalog.open(analysis_catalog.dir)
    stored = stored_layout(reopened, by=by)
    assert np.allclose(stored["x"], xy["x"]) and len(xy) == len(analysis_catalog.works)
    # PCA of the space's own embedding: its first axis is the embedding's first principal component
    X = read_source(reopened, by=by).vectors(by).astype(np.float64)
    Xc = X - X.mean(0)
    pc = np.linalg.svd(Xc, full_matrices=False)[2][0]
    assert abs(np.corrcoef(Xc @ pc, stored["x"])[0, 1]) > 0.999


@pytest.mark.parametrize("blocker", ["page", "thumbnail", "folder"])
def test_a_map_that_cannot_write_one_file_writes_none(analysis_catalog, tmp_path, blocker):
    from artspace.errors import ArtspaceError

    out = tmp_path / "out"
    out.mkdir()
    wid = int(analysis_catalog.works["id"].iloc[0])
    if blocker == "page":
        mine = out / "map-content.html"
        mine.write_text("<html>my own page</html>")
    elif blocker == "thumbnail":
        (out / "map-content_thumbs").mkdir()
        mine = out / "map-content_thumbs" / f"{wid}.jpg"
        mine.write_bytes(b"my own picture")
    else:
        mine = out / "map-content_thumbs"
        mine.write_text("a file of mine")
    before = sorted(p.name for p in out.rglob("*"))
    layout_before = stored_layout(Catalog.open(analysis_catalog.dir), by="content")
    with pytest.raises(ArtspaceError, match="map-content"):
        map_collection(analysis_catalog, out, by="content", thumbs="beside", recompute=True)
    assert sorted(p.name for p in out.rglob("*")) == before  # no CSV, PNG or thumbnail beside the refusal
    assert mine.read_bytes() in (b"<html>my own page</html>", b"my own picture", b"a file of mine")
    after = stored_layout(Catalog.open(analysis_catalog.dir), by="content")
    assert (layout_before is None and after is None) or layout_before.equals(after)
