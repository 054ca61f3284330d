"""The catalog: incremental and resumable indexing, the lock, bad files, and queries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from artspace.catalog import FORMAT_VERSION, Catalog, index
from artspace.catalog.store import WriterLock
from artspace.errors import CatalogLocked, CatalogNotFound, IncompatibleCatalog, InvalidOption, NoMatch, WorkNotFound
from artspace.features import FeatureSpec

TINY_SPEC = FeatureSpec(size=64)  # the spec of the demo_catalog fixture


def test_catalog_layout_and_works_table(demo_catalog):
    cat = demo_catalog
    assert cat.files.parent == cat.dir / "generations" and (cat.dir / "CURRENT").is_file()
    for name in ("manifest.json", "works.parquet", "skipped.csv", "ids.npy", "style.npy", "l_style.npy",
                 "content.npy", "style_scale.npy",
                 "style_projection.npz", "l_style_projection.npz", "style.faiss", "l_style.faiss", "content.faiss",
                 "content_model.npz", "style_neighbours.npz", "pairs.npz"):
        assert (cat.files / name).is_file(), name
    w = cat.works
    assert len(w) == 18 and list(w.columns[:7]) == ["id", "path", "size", "mtime_ns", "checksum", "width", "height"]
    assert set(w["shape"]) == {"circle", "star", "cross"} and (w["width"] == 64).all()
    row = w.iloc[0]
    import hashlib
    assert row["checksum"] == hashlib.sha256((cat.root / row["path"]).read_bytes()).hexdigest()
    m = cat.manifest
    assert m["format_version"] == FORMAT_VERSION == 4 and m["spec"]["weights"] == "original"
    assert m["generation"] == cat.generation and m["files"]["works.parquet"] > 0
    assert m["spaces"]["style"]["index"] == "exact" and m["spaces"]["style"]["neighbours"] == 10
    assert m["spaces"]["l_style"]["index"] == "exact" and m["spec"]["signature_layers"] == ["relu4_1", "relu5_1"]
    assert m["pairs_sampled"] == 18 * 17 // 2
    ids, style = cat.embeddings("l_style")
    sig_ids, sig = cat.embeddings("style")
    assert style.dtype == sig.dtype == np.float32 and list(ids) == list(sig_ids) == sorted(w["id"])
    # the default compact embeddings together stay within the 2 KB a work (384 + 128 float32 at scale;
    # this 18-work catalog keeps fewer axes)
    assert (style.shape[1] + sig.shape[1]) * 4 <= 2048
    assert not [p for p in cat.dir.rglob("*") if ".tmp" in p.name or p.name.startswith(".building")]


def test_similar_style_and_content(demo_catalog):
    cat = demo_catalog
    q = "dots/star_0.png"
    by_style = cat.similar(q, by="style", k=5)
    assert list(by_style.columns[:4]) == ["rank", "id", "path", "distance"]
    assert q not in set(by_style["path"]) and by_style["distance"].is_monotonic_increasing
    assert (by_style["texture"].iloc[:1] == "dots").all()  # its own variant in the same hand comes first
    by_content = cat.similar(cat.root / q, by="content", k=3)
    assert len(by_content) == 3 and (by_content["distance"] >= 0).all()
    # An outside image gets features on the fly; its nearest work by style is itself copied in.
    only_stripes = cat.similar(q, by="style", k=20, where="texture == 'stripes'")
    assert set(only_stripes["texture"]) == {"stripes"} and len(only_stripes) == 6
    with pytest.raises(WorkNotFound, match="neither an image file nor a work"):
        cat.similar("no-such-thing.jpg")


def test_style_search_can_ignore_the_subject(demo_catalog):
    cat = demo_catalog
    same_shape, same_texture = {0.0: 0, 1.0: 0}, {0.0: 0, 1.0: 0}
    for q in cat.works["path"]:
        row = cat.works.set_index("path").loc[q]
        for gamma in (0.0, 1.0):
            found = cat.similar(q, by="style", k=4, ignore_subject=gamma)
            same_shape[gamma] += int((found["shape"] == row["shape"]).sum())
            same_texture[gamma] += int((found["texture"] == row["texture"]).sum())
    assert same_shape[1.0] < same_shape[0.0]  # fewer works that depict the same shape ...
    assert same_texture[1.0] >= 0.8 * same_texture[0.0]  # ... and still the same hand
    # the score is the documented formula over the shortlist (here the whole collection but the query)
    q = "dots/star_0.png"
    got = cat.similar(q, by="l_style", k=5, ignore_subject=0.5)
    every = cat.similar(q, by="l_style", k=len(cat.works))
    cos = np.array([1 - cat.distance(q, int(i))["content"]["distance"] for i in every["id"]])
    z = lambda x: (x - x.mean()) / x.std()  # noqa: E731
    score = z(-every["distance"].to_numpy()) - 0.5 * z(cos)
    assert got["id"].tolist() == every["id"].to_numpy()[np.argsort(-score, kind="stable")[:5]].tolist()
    np.testing.assert_allclose(got["score"], np.sort(score)[::-1][:5], rtol=1e-6)
    assert got["score"].is_monotonic_decreasing and list(got.columns[5:7]) == ["content_cosine", "score"]
    with pytest.raises(InvalidOption, match="nothing to ignore"):
        cat.similar(q, by="content", ignore_subject=0.5)
    for bad in (-1, float("nan"), True, "half"):
        with pytest.raises(InvalidOption, match=r"ignore_subject \(--ignore-subject\) must be a number"):
            cat.similar(q, ignore_subject=bad)


def test_content_search_expands_the_query_with_its_nearest_works(demo_catalog, tmp_path):
    cat = demo_catalog
    emb = {int(i): cat.query_vector(int(i), "content")[0].astype(np.float64) for i in cat.works["id"]}
    for q in (3, "dots/star_0.png"):
        wid = cat.lookup(q)
        e = emb[wid]
        others = sorted((i for i in emb if i != wid), key=lambda i: -(emb[i] @ e))
        # the documented formula: the query plus its 2 nearest works, each weighted by max(0, cos), unit length
        x = e + sum(max(0.0, emb[i] @ e) * emb[i] for i in others[:2])
        x /= np.linalg.norm(x)
        want = sorted(others, key=lambda i: 1 - emb[i] @ x)[:5]
        got = cat.similar(q, by="content", k=5, standardise=False)
        assert got["id"].tolist() == want and got["expanded"].is_monotonic_increasing
        np.testing.assert_allclose(got["expanded"], [1 - emb[i] @ x for i in want], atol=1e-6)
        # 'distance' stays the pair's own, the figure `artspace distance` prints
        np.testing.assert_allclose(got["distance"], [max(0.0, 1 - emb[i] @ e) for i in want], atol=1e-6)
        plain = cat.similar(q, by="content", k=5, expand=0, standardise=False)
        assert "expanded" not in plain and "score" not in plain and plain["id"].tolist() == others[:5]
    # an image from outside the catalog has no work of its own to leave out: a copy of a work expands with that
    # work alone (the query again), so it ranks as the work with the query alone
    outside = tmp_path / "outside.png"
    outside.write_bytes((cat.root / "dots/star_0.png").read_bytes())
    copy = cat.similar(outside, by="content", k=5, expand=1)
    assert copy["path"].iloc[0] == "dots/star_0.png"
    assert copy["id"].tolist()[1:] == cat.similar("dots/star_0.png", by="content", k=4, expand=0)["id"].tolist()
    for bad in (-1, 1.5, True, "two"):
        with pytest.raises(InvalidOption, match=r"expand \(--expand\) must be a whole number"):
            cat.similar(3, by="content", expand=bad)
    with pytest.raises(InvalidOption, match="widens a content query"):
        cat.similar(3, by="style", expand=2)
    assert "expanded" not in cat.similar(3, by="style", k=2, expand=0)


def test_content_search_ranks_by_the_standardised_similarity(demo_catalog):
    """The documented score: the cosine to the expanded query as a z-score against the query's similarities to
    every work, to the works of the candidate's style group, and against the candidate's own similarities to every
    work, averaged; computed here from every work's embedding, not from the stored covariances."""
    from artspace.catalog.generation import CONTENT_STATS
    from artspace.content_model import ContentModel

    cat = demo_catalog
    ids, X = cat.embeddings("content")
    X = X.astype(np.float64)
    groups = ContentModel.load(cat.files / "content_model.npz").groups(cat.embeddings("l_style")[1])
    assert (cat.files / CONTENT_STATS).is_file() and cat.manifest["content_stats"]["works"] == len(ids)
    z = lambda c, ref: (c - ref.mean(-1)) / ref.std(-1)  # noqa: E731
    every = X @ X.T  # every work's similarities to the collection, itself included (as the covariances count it)
    for q in (3, 11):
        row = int(np.searchsorted(ids, q))
        e = X[row]
        near = np.argsort(-(X @ e))
        near = near[near != row][:2]
        x = e + sum(max(0.0, X[i] @ e) * X[i] for i in near)
        x /= np.linalg.norm(x)
        c = X @ x
        score = (z(c, c) + np.array([z(c[i], c[groups == groups[i]]) for i in range(len(c))])
                 + z(c, every)) / 3
        score[row] = -np.inf
        got = cat.similar(q, by="content", k=6)
        assert got["id"].tolist() == ids[np.argsort(-score, kind="stable")[:6]].tolist()
        np.testing.assert_allclose(got["score"], np.sort(score)[::-1][:6], atol=1e-5)
        assert list(got.columns[5:7]) == ["expanded", "score"] and got["score"].is_monotonic_decreasing
        # every work's neighbours as similar ranks them
        _, nbr, dist = cat.neighbours("content", 6, ids=[q])
        assert nbr[0].tolist() == got["id"].tolist()
        np.testing.assert_allclose(dist[0], got["distance"], atol=1e-6)
    assert "score" not in cat.similar(3, by="content", k=3, standardise=False)
    for bad in ("yes", 1, 0.5):
        with pytest.raises(InvalidOption, match=r"standardise \(--standardise\) must be True or False"):
            cat.similar(3, by="content", standardise=bad)
    with pytest.raises(InvalidOption, match="ranks a content search"):
        cat.similar(3, by="style", standardise=True)
    assert "score" not in cat.similar(3, by="style", k=2, standardise=False)


def test_where_filters_are_parsed_never_run(demo_catalog, tmp_path, monkeypatch):
    cat = demo_catalog
    monkeypatch.chdir(tmp_path)
    res = cat.similar(0, by="content", k=20, where="texture in ['dots', 'checker'] and not shape == 'star'")
    assert set(res["texture"]) <= {"dots", "checker"} and "star" not in set(res["shape"]) and len(res) >= 3
    for payload in ("@pd.io.common.os.system('touch PWNED') == 0", "__import__('os').system('touch PWNED')",
                    "texture.__class__ == 1"):
        with pytest.raises(ValueError, match="--where"):
            cat.similar(0, where=payload)
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(NoMatch, match="texture == 'nothing'.*18 works"):
        cat.similar(0, where="texture == 'nothing'")
    only = cat.works["path"].iat[0]  # a filter only the query passes leaves nothing to list: said, not an empty table
    with pytest.raises(NoMatch, match="but the query itself matches --where"):
        cat.similar(only, where=f"path == '{only}'")


def test_outside_image_query_matches_stored_embedding(demo_catalog, tmp_path):
    cat = demo_catalog
    outside = tmp_path / "copy.png"
    outside.write_bytes((cat.root / "checker/cross_1.png").read_bytes())
    for by in ("style", "l_style", "content"):
        res = cat.similar(outside, by=by, k=1)
        nearest_other = cat.similar("checker/cross_1.png", by=by, k=1)["distance"].iloc[0]
        assert res["path"].iloc[0] == "checker/cross_1.png" and res["distance"].iloc[0] < 1e-3 * nearest_other


def test_an_image_unlike_the_collection_is_not_placed_nearer_than_it_is(demo_catalog, tmp_path):
    """18 works give the projection 17 axes, which hold all of the works' variance but not an image unlike them:
    the part of its sketch off the axes is added back, so its compact distances estimate the exact ones too."""
    from PIL import Image

    cat = demo_catalog
    rng = np.random.default_rng(0)
    photo, other = tmp_path / "noise.png", tmp_path / "gradient.png"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(photo)
    Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[:, None, None], (1, 64, 3))).save(other)
    for a, b in ((photo, "stripes/circle_0.png"), ("dots/star_1.png", photo), (photo, other)):
        d = cat.distance(a, b)
        assert d["style"]["signature"] == pytest.approx(d["exact"]["signature"], rel=0.05)
        assert d["l_style"]["distance"] == pytest.approx(d["exact"]["style"], rel=0.05)
    found = cat.similar(photo, by="style", k=3)
    assert found["signature"].tolist() == pytest.approx(
        [cat.distance(photo, int(i))["exact"]["signature"] for i in found["id"]], rel=0.05)
    assert cat.neighbourhood_scale(photo) >= found["signature"].min()


def test_outside_images_keep_the_part_of_their_style_off_the_axes(demo_copy, tmp_path):
    """With 4 axes for 18 works every work lies off them (r_y > 0): an outside copy of a work still lies at 0 from
    it, and other images at their exact distances (the parts off the axes nearly orthogonal)."""
    from PIL import Image

    index(demo_copy, spec=FeatureSpec(size=64), quiet=True, batch_size=4, embed_dim=4, signature_dim=4)
    cat = Catalog.open(demo_copy)
    stored = np.asarray(np.load(cat.files / "off_axes.npy"))
    assert stored.shape == (len(cat.works), 2) and (stored > 0).all()
    copy = tmp_path / "copy.png"
    copy.write_bytes((demo_copy / "dots/star_0.png").read_bytes())
    found = cat.similar(copy, by="style", k=2)
    assert found["path"].iloc[0] == "dots/star_0.png" and found["signature"].iloc[0] < 1e-6 * found["signature"].iloc[1]
    rng = np.random.default_rng(1)
    noise = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(noise)
    from artspace.spaces import measure

    vecs = cat.query_vectors(noise)[0]
    for work in ("stripes/circle_0.png", "checker/cross_1.png"):
        d, row = cat.distance(noise, work), cat._rows(cat.lookup(work))
        for by, exact in (("style", d["exact"]["signature"]), ("l_style", d["exact"]["style"])):
            estimate = d[by]["signature"] if by == "style" else d[by]["distance"]
            on_axes = measure(by, vecs[by][None], cat._embeddings()[by][row][None, None])[0, 0]
            # far nearer the exact distance than the axes alone (4 axes leave most of this image off them)
            assert abs(estimate - exact) < 0.25 * abs(on_axes - exact) and estimate == pytest.approx(exact, rel=0.1)
    # works extracted before artspace kept their parts off the axes (NaN rows) get no offset: as before
    np.save(cat.files / "off_axes.npy", np.full_like(stored, np.nan))
    old = Catalog.open(demo_copy)
    offsets = old._offsets(old.query_vectors(noise)[0], None, "style")
    assert (offsets(old.works["id"].to_numpy()) == 0).all()


def test_a_work_whose_file_changed_since_indexing_is_read_afresh(demo_copy):
    index(demo_copy, spec=FeatureSpec(size=64), quiet=True, batch_size=4)
    cat = Catalog.open(demo_copy)
    target = demo_copy / "dots/star_0.png"
    wid = cat.lookup(target)
    assert wid is not None and cat.lookup("dots/star_0.png") == wid
    target.write_bytes((demo_copy / "stripes/circle_0.png").read_bytes())  # replaced, not yet indexed again
    assert cat.lookup(target) is None and cat.moments(target) is None
    d = cat.distance(target, demo_copy / "stripes/circle_0.png")
    assert d["exact"]["signature"] == pytest.approx(0.0, abs=1e-6) and d["style"]["signature"] < 1e-6
    assert cat.lookup(wid) == wid  # the id still names the catalogued work


def test_a_symlink_inside_the_collection_is_a_work_of_its_own(demo_copy):
    (demo_copy / "alias.png").symlink_to("dots/star_0.png")
    index(demo_copy, spec=FeatureSpec(size=64), quiet=True, batch_size=4)
    cat = Catalog.open(demo_copy)
    alias = int(cat.works.loc[cat.works["path"] == "alias.png", "id"].iloc[0])
    assert cat.lookup(demo_copy / "alias.png") == alias != cat.lookup(demo_copy / "dots/star_0.png")
    assert cat.similar(demo_copy / "alias.png", k=1)["path"].iloc[0] == "dots/star_0.png"


def test_similar_distances_estimate_the_exact_ones(demo_catalog):
    cat = demo_catalog
    q = "stripes/circle_0.png"
    by_style = cat.similar(q, by="style", k=4)
    by_l_style = cat.similar(q, by="l_style", k=4)
    assert list(by_style.columns[:7]) == ["rank", "id", "path", "distance", "percentile", "signature", "l_style"]
    assert "l_style" not in by_l_style.columns and by_l_style["distance"].is_monotonic_increasing
    for row in by_style.itertuples():
        d = cat.distance(q, row.id)
        exact = d["exact"]
        # the compact embeddings keep every axis of this small catalog: only the sketch's ~1 % error remains
        assert row.signature == pytest.approx(exact["signature"], rel=0.05)
        assert row.l_style == pytest.approx(exact["style"], rel=0.05)
        # `distance` prints, for each space, the very figure `similar` printed
        assert d["style"]["distance"] == pytest.approx(row.distance, rel=1e-6)
        assert d["style"]["percentile"] == pytest.approx(row.percentile, abs=1e-9)
        assert row.l_style == d["l_style"]["distance"]  # the same float64 figure, to every digit
    for row in by_l_style.itertuples():
        d = cat.distance(q, row.id)
        assert row.distance == pytest.approx(d["exact"]["style"], rel=0.05)
        assert row.distance == pytest.approx(d["l_style"]["distance"], rel=1e-5)
    with pytest.raises(ValueError, match="by must be style, l_style or content"):
        cat.similar(q, by="signature")


def test_style_search_ranks_by_the_signature_relative_to_both_neighbourhoods(demo_catalog, tmp_path):
    cat = demo_catalog
    ids, sig = cat.embeddings("style")
    d2 = ((sig[:, None, :].astype(np.float64) - sig[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    rho = np.sort(d2, axis=1)[:, :10].mean(1)  # each work's mean signature distance to its 10 nearest others
    for q in (0, 7, 13):
        qi = int(np.searchsorted(ids, q))
        assert cat.neighbourhood_scale(q) == pytest.approx(rho[qi], rel=1e-4)
        res = cat.similar(q, by="style", k=6)
        rel = d2[qi] / np.sqrt(rho[qi] * rho)
        want = ids[np.argsort(rel, kind="stable")[:6]]
        assert list(res["id"]) == list(want) and res["distance"].is_monotonic_increasing
        pos = np.searchsorted(ids, res["id"].to_numpy())
        assert np.allclose(res["distance"], rel[pos], rtol=1e-4) and np.allclose(res["signature"], d2[qi, pos],
                                                                                 rtol=1e-4)
        # `distance` reproduces the figure `similar` printed, with what it is made of
        r = cat.distance(q, int(res["id"].iloc[0]))["style"]
        assert r["distance"] == pytest.approx(res["distance"].iloc[0], rel=1e-4)
        assert r["scale_a"] == pytest.approx(rho[qi], rel=1e-4) and r["signature"] == pytest.approx(
            res["signature"].iloc[0], rel=1e-4)
    # An outside image's scale is measured against the whole catalog (a copy of a work has that work at distance 0)
    outside = tmp_path / "copy.png"
    outside.write_bytes((cat.root / cat.works["path"].iloc[0]).read_bytes())
    row = np.sort(np.where(np.isinf(d2[0]), 0.0, d2[0]))[:10]
    assert cat.neighbourhood_scale(outside) == pytest.approx(row.mean(), rel=1e-3, abs=1e-7)


def test_content_search_finds_the_shape_more_often_than_the_texture(demo_catalog):
    """On the shapes x textures grid the content neighbours share the shape more often than the texture."""
    cat = demo_catalog
    same_shape = same_texture = 0
    for row in cat.works.itertuples():
        res = cat.similar(row.id, by="content", k=2)
        same_shape += int((res["shape"] == row.shape).sum())
        same_texture += int((res["texture"] == row.texture).sum())
    assert same_shape > same_texture


def test_incremental_add_change_delete_keeps_ids(demo_copy):
    root = demo_copy
    first = index(root, spec=TINY_SPEC, quiet=True)
    assert (first.added, first.unchanged) == (18, 0)
    cat = Catalog.open(root)
    ids_before = dict(zip(cat.works["path"], cat.works["id"]))
    again = index(root, quiet=True)
    assert (again.added, again.updated, again.removed, again.extracted) == (0, 0, 0, 0)
    (root / "dots/star_0.png").unlink()
    (root / "new").mkdir()
    (root / "new/extra.png").write_bytes((root / "checker/circle_0.png").read_bytes())
    changed = root / "stripes/cross_1.png"
    changed.write_bytes((root / "dots/cross_1.png").read_bytes())
    shards = len(list((root / ".artspace/log/shards").glob("*.npz")))
    rep = index(root, quiet=True)
    assert (rep.added, rep.updated, rep.removed, rep.extracted) == (1, 1, 1, 2)
    cat = Catalog.open(root)
    ids_after = dict(zip(cat.works["path"], cat.works["id"]))
    assert "dots/star_0.png" not in ids_after and ids_after["stripes/cross_1.png"] == ids_before["stripes/cross_1.png"]
    assert ids_after["new/extra.png"] == max(ids_before.values()) + 1
    # 2 dead records (the removed and the changed file's old one) in 20: the log only gains the new shard
    assert len(list((cat.dir / "log/shards").glob("*.npz"))) == shards + 1
    gone = sorted((root / "dots").glob("*.png"))[:4]
    for p in gone:
        p.unlink()
    rep = index(root, quiet=True)
    assert rep.removed == 4 and len(list((cat.dir / "log/shards").glob("*.npz"))) == 1  # 6 dead in 20: compacted
    left = dict(zip(Catalog.open(root).works["path"], Catalog.open(root).works["id"]))
    assert left == {p: i for p, i in ids_after.items() if p not in {g.relative_to(root).as_posix() for g in gone}}


def test_bad_files_are_skipped_recorded_and_not_retried(demo_copy):
    root = demo_copy
    (root / "empty.jpg").write_bytes(b"")
    (root / "fake.png").write_text("not an image at all")
    (root / "notes.txt").write_text("ignored: not an image extension")
    seen = []
    rep = index(root, spec=TINY_SPEC, quiet=True, on_skip=lambda p, r: seen.append(p))
    assert sorted(seen) == ["empty.jpg", "fake.png"] and rep.works == 18
    skipped = Catalog.open(root).skipped
    assert set(skipped["path"]) == {"empty.jpg", "fake.png"} and skipped["reason"].str.len().min() > 5
    rep2 = index(root, quiet=True)
    assert rep2.extracted == 0 and len(rep2.skipped) == 2  # still reported, not re-read


def test_second_index_run_is_refused_while_one_holds_the_lock(demo_copy):
    index(demo_copy, spec=TINY_SPEC, quiet=True)
    cdir = demo_copy / ".artspace"
    with WriterLock(cdir):
        with pytest.raises(CatalogLocked, match="being written by pid"):
            index(demo_copy, quiet=True)
    index(demo_copy, quiet=True)  # released


def test_incompatible_catalogs_are_refused(demo_copy):
    index(demo_copy, spec=TINY_SPEC, quiet=True)
    from artspace.features import FeatureSpec

    with pytest.raises(IncompatibleCatalog, match="--rebuild"):
        index(demo_copy, spec=FeatureSpec(size=96), quiet=True)
    mpath = Catalog.open(demo_copy).files / "manifest.json"
    m = json.loads(mpath.read_text())
    m["format_version"] = 999
    mpath.write_text(json.dumps(m))
    with pytest.raises(IncompatibleCatalog, match="format version 999"):
        Catalog.open(demo_copy)
    with pytest.raises(CatalogNotFound, match="artspace index"):
        Catalog.open(demo_copy / "dots")


def _make_single_folder_catalog(cdir, version: int) -> None:
    """Turn a catalog into the single-folder layout of formats 2 and 3 (what earlier artspace versions wrote)."""
    import shutil

    folder = Catalog.open(cdir.parent).files
    for f in folder.iterdir():
        if f.name not in ("l_style_projection.npz", "style_projection.npz"):
            shutil.copy2(f, cdir / f.name)
    (cdir / "log/shards").rename(cdir / "shards")
    for name in ("projection.npz", "signature_projection.npz"):
        (cdir / "log" / name).rename(cdir / name)
    m = json.loads((folder / "manifest.json").read_text())
    for key in ("generation", "files", "parent", "metadata_file", "skipped_digest", "works_digest", "analyses",
                "spaces", "pairs_sampled"):
        m.pop(key, None)
    m["format_version"] = version
    # the single-folder layout: embeddings under the names of the time, neighbour lists from format 3 on
    arrays = {"ids": np.load(cdir / "ids.npy"), "style": np.load(cdir / "l_style.npy"),
              "signature": np.load(cdir / "style.npy"), "content": np.load(cdir / "content.npy"),
              **({"signature_scale": np.load(cdir / "style_scale.npy")} if version == 3 else {})}
    np.savez(cdir / "embeddings.npz", **arrays)
    for name in ("ids", "style", "l_style", "content", "style_scale", "moments", "off_axes"):  # the last two came later
        (cdir / f"{name}.npy").unlink()
    (cdir / "content_stats.npz").unlink()  # came later too
    (cdir / "style.faiss").rename(cdir / "signature.faiss")
    (cdir / "l_style.faiss").rename(cdir / "style.faiss")
    if version == 3:
        (cdir / "style_neighbours.npz").rename(cdir / "signature_neighbours.npz")
    for name in ("style_neighbours.npz", "pairs.npz"):
        (cdir / name).unlink(missing_ok=True)
    (cdir / "manifest.json").write_text(json.dumps(m))
    for name in ("CURRENT", "generations", "log"):
        shutil.rmtree(cdir / name) if (cdir / name).is_dir() else (cdir / name).unlink()


@pytest.mark.parametrize("version", [2, 3])
def test_single_folder_catalogs_are_converted_without_reading_images(demo_copy, version):
    index(demo_copy, spec=TINY_SPEC, quiet=True)
    cdir = demo_copy / ".artspace"
    cat = Catalog.open(demo_copy)
    before = cat.similar(3, by="style", k=5)
    cat.update_columns(pd.DataFrame({"cluster_style": cat.works["id"] % 2}).set_index(cat.works["id"]))
    cat.close()
    _make_single_folder_catalog(cdir, version)
    with pytest.raises(IncompatibleCatalog, match=f"format version {version}.*run `artspace index .*no image is "
                                                  f"read again"):
        Catalog.open(demo_copy)
    rep = index(demo_copy, quiet=True)
    assert (rep.extracted, rep.added, rep.unchanged) == (0, 0, 18)
    cat = Catalog.open(demo_copy)
    assert cat.manifest["format_version"] == FORMAT_VERSION
    pd.testing.assert_frame_equal(cat.similar(3, by="style", k=5).drop(columns="cluster_style"), before)
    assert (cat.works["cluster_style"] == cat.works["id"] % 2).all()  # what an analysis stored is kept
    assert sorted(p.name for p in cdir.iterdir()) == ["CURRENT", "generations", "lock", "log"]


def test_metadata_joined_by_file_name_and_remembered(demo_copy, tmp_path):
    md = pd.read_csv(demo_copy / "metadata.csv")
    md["file"] = md["path"].str.split("/").str[-1] + ""
    md = md[~md["file"].duplicated(keep=False)]  # bare names shared by two folders cannot be matched
    md[["file", "shape"]].rename(columns={"shape": "subject"}).to_csv(tmp_path / "by_name.csv", index=False)
    index(demo_copy, spec=TINY_SPEC, metadata=tmp_path / "by_name.csv", quiet=True)
    # Every file name here occurs in three texture folders, so none is unique: nothing is guessed.
    assert Catalog.open(demo_copy).works["subject"].isna().all()
    md2 = pd.read_csv(demo_copy / "metadata.csv")
    md2.to_csv(tmp_path / "full.csv", index=False)
    index(demo_copy, metadata=tmp_path / "full.csv", quiet=True)
    (demo_copy / "dots/star_0.png").unlink()
    index(demo_copy, quiet=True)  # metadata remembered from the manifest
    assert Catalog.open(demo_copy).works["shape"].notna().all()


@pytest.mark.slow
def test_killed_index_process_resumes_without_recomputing(demo_copy):
    """A real `artspace index` process killed with SIGKILL mid-run; the next run finishes the job."""
    cdir = demo_copy / ".artspace"
    cmd = [sys.executable, "-m", "artspace.cli", "index", str(demo_copy), "--size", "64", "--batch-size", "2",
           "--quiet", "--workers", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((cdir / "log/shards").glob("part-*.npz"))) < 3:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((cdir / "log/shards").glob("part-*.npz")))
    assert done >= 3 and not (cdir / "CURRENT").exists()
    with pytest.raises(CatalogNotFound, match="no finished index yet.*artspace index"):
        Catalog.open(demo_copy)
    rep = index(demo_copy, quiet=True)
    assert (rep.works, rep.added) == (18, 18) and rep.extracted <= 18 - 2 * 3  # the shards were reused
    assert not [p for p in cdir.rglob("*") if ".tmp" in p.name]
    again = Catalog.open(demo_copy)
    assert sorted(again.works["id"]) == list(range(18))


def test_reindexing_keeps_columns_analyses_added(demo_copy):
    index(demo_copy, spec=TINY_SPEC, quiet=True)
    cat = Catalog.open(demo_copy)
    labels = pd.DataFrame({"cluster_style": cat.works["id"] % 3}).set_index(cat.works["id"])
    cat.update_columns(labels)
    (demo_copy / "dots/star_0.png").unlink()
    index(demo_copy, quiet=True)
    w = Catalog.open(demo_copy).works
    assert len(w) == 17 and (w["cluster_style"] == w["id"] % 3).all()


def test_rebuild_remembers_metadata(demo_copy):
    index(demo_copy, spec=TINY_SPEC, metadata=demo_copy / "metadata.csv", quiet=True)
    rep = index(demo_copy, spec=TINY_SPEC, rebuild=True, quiet=True)
    assert (rep.extracted, rep.unchanged) == (18, 18) and Catalog.open(demo_copy).works["shape"].notna().all()


def test_streams_compute_the_same_catalog_as_one_thread(demo_source, tmp_path):
    # batches run on two threads at once; shards are still written in order, so ids and vectors do not change
    one = index(demo_source, catalog=tmp_path / "one", spec=TINY_SPEC, quiet=True, batch_size=4, streams=1)
    two = index(demo_source, catalog=tmp_path / "two", spec=TINY_SPEC, quiet=True, batch_size=4, streams=3)
    assert one.extracted == two.extracted > 8
    a, b = Catalog.open(tmp_path / "one"), Catalog.open(tmp_path / "two")
    assert list(a.works["path"]) == list(b.works["path"]) and list(a.works["id"]) == list(b.works["id"])
    for by in ("style", "l_style", "content"):
        ia, va = a.embeddings(by)
        ib, vb = b.embeddings(by)
        assert np.array_equal(ia, ib)
        np.testing.assert_allclose(va, vb, rtol=1e-4, atol=1e-5 * float(np.abs(va).max()))


def test_the_batch_size_does_not_change_the_catalog(demo_source, tmp_path, monkeypatch):
    # a GPU writes one shard per batch of hundreds: the fit sample is read back in name order, each shard once
    import artspace.catalog.indexer as indexer

    loads, real = [], indexer.np.load

    def counting(path, *a, **k):
        loads.append(str(path))
        return real(path, *a, **k)

    small = index(demo_source, catalog=tmp_path / "small", spec=TINY_SPEC, quiet=True, batch_size=3)
    monkeypatch.setattr(indexer.np, "load", counting)
    whole = index(demo_source, catalog=tmp_path / "whole", spec=TINY_SPEC, quiet=True, batch_size=64)
    monkeypatch.undo()
    assert small.extracted == whole.extracted == 18
    shard_reads = [p for p in loads if "/shards/part-" in p]
    # a few reads of the fit shard and its projected copy; reading the sample a work at a time made 18 more
    assert 1 <= len(shard_reads) <= 6, shard_reads
    a, b = Catalog.open(tmp_path / "small"), Catalog.open(tmp_path / "whole")
    for by in ("style", "l_style", "content"):
        ia, va = a.embeddings(by)
        ib, vb = b.embeddings(by)
        assert np.array_equal(ia, ib)
        np.testing.assert_allclose(va, vb, rtol=1e-3, atol=1e-4 * float(np.abs(va).max()))


def test_streams_must_be_positive(demo_source, tmp_path):
    with pytest.raises(ValueError, match="streams"):
        index(demo_source, catalog=tmp_path / "c", spec=TINY_SPEC, quiet=True, streams=0)
    with pytest.raises(ValueError, match=r"batch_size \(--batch-size\) must be a whole number of at least 1"):
        index(demo_source, catalog=tmp_path / "c", spec=TINY_SPEC, quiet=True, batch_size=0)
    assert not (tmp_path / "c").exists()  # a refused first run leaves no empty catalog folder behind


def test_a_first_run_that_fails_removes_the_catalog_folder_it_made(tmp_path):
    root = tmp_path / "one"
    root.mkdir()
    (root / "only.png").write_text("not an image")
    with pytest.raises(Exception, match=r"holds 0 readable image"):
        index(root, spec=TINY_SPEC, quiet=True)
    assert [p.name for p in root.iterdir()] == ["only.png"]  # nothing extracted, nothing to resume: no .artspace


def test_index_reruns_update_the_neighbourhood_scales(demo_copy):
    first = index(demo_copy, spec=TINY_SPEC, quiet=True)
    assert first.neighbours_searched == 18
    assert index(demo_copy, quiet=True).neighbours_searched == 0
    (demo_copy / "extra.png").write_bytes((demo_copy / "dots/star_0.png").read_bytes())
    rep = index(demo_copy, quiet=True)
    assert rep.added == 1 and rep.neighbours_searched < 19
    cat = Catalog.open(demo_copy)
    ids, sig = cat.embeddings("style")
    d2 = ((sig[:, None, :].astype(np.float64) - sig[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    scales = [cat.neighbourhood_scale(int(i)) for i in ids]
    assert np.allclose(scales, np.sort(d2, axis=1)[:, :10].mean(1), rtol=1e-4)


def test_neighbours_of_every_work_equal_what_similar_prints(demo_catalog):
    cat = demo_catalog
    for by in ("style", "l_style", "content"):
        ids, nbr, dist = cat.neighbours(by, k=5)
        for wid, row, d in zip(ids, nbr, dist):
            res = cat.similar(int(wid), by=by, k=5)
            assert list(res["id"]) == list(row) and list(res["distance"]) == list(d)


def test_a_catalog_from_before_the_parts_off_the_axes_says_so_for_outside_images(demo_copy, tmp_path):
    from typer.testing import CliRunner

    from artspace.cli import app

    index(demo_copy, spec=FeatureSpec(size=64), quiet=True, batch_size=4)
    cat = Catalog.open(demo_copy)
    assert cat.outside_note() is None
    np.save(cat.files / "off_axes.npy", np.full((len(cat.works), 2), np.nan, np.float32))  # as an older index
    outside = tmp_path / "outside.png"
    outside.write_bytes((demo_copy / "dots/star_0.png").read_bytes())
    r = CliRunner().invoke(app, ["similar", str(outside), "-c", str(demo_copy), "-k", "2"])
    assert r.exit_code == 0 and "18 of the catalog's 18 works were indexed before artspace kept" in r.output
    assert "--rebuild` computes them" in r.output
    r = CliRunner().invoke(app, ["similar", "dots/star_0.png", "-c", str(demo_copy), "-k", "2"])
    assert r.exit_code == 0 and "indexed before artspace kept" not in r.output  # a catalogued work: no note


def test_a_high_contrast_image_in_the_first_fit_sample_indexes(tmp_path):
    """A 1-px black-and-white stripe pattern has Gram entries past float16's range: the fit sample keeps each
    sketch scaled (float16 rows of unit size with a float32 scale), so the first run fits its projections."""
    from PIL import Image

    root = tmp_path / "op"
    root.mkdir()
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::2] = 255
    Image.fromarray(stripes).save(root / "op_art.png")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / f"noise{i}.png")
    rep = index(root, spec=FeatureSpec(size=64), quiet=True)
    assert rep.works == 4
    cat = Catalog.open(root)
    found = cat.similar("op_art.png", by="l_style", k=3)
    assert np.isfinite(found["distance"]).all() and (found["distance"] > 0).all()
    assert all(np.isfinite(m).all() for m in cat.moments("op_art.png"))


def test_a_catalog_folder_that_is_a_file_the_collection_or_someone_s_folder_is_refused(demo_copy, tmp_path):
    root = demo_copy
    photo = next(root.rglob("*.png"))
    with pytest.raises(InvalidOption, match="is a file, not a catalog folder"):
        index(root, catalog=photo, spec=TINY_SPEC, quiet=True)
    with pytest.raises(InvalidOption, match="cannot be the collection folder"):
        index(root, catalog=root, spec=TINY_SPEC, quiet=True)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("my notes")
    with pytest.raises(InvalidOption, match="holds other files and is not an artspace catalog"):
        index(root, catalog=notes, spec=TINY_SPEC, quiet=True)
    assert [p.name for p in notes.iterdir()] == ["mine.txt"] and not (root / "lock").exists()


def test_too_few_images_says_what_left_them_out_and_a_rebuild_says_so(demo_copy, tmp_path):
    with pytest.raises(Exception, match=r"holds 0 readable image\(s\) \(\d+ left out by --exclude\)"):
        index(demo_copy, catalog=tmp_path / "cat", spec=TINY_SPEC, quiet=True, exclude=["*"])
    rep = index(demo_copy, spec=TINY_SPEC, quiet=True)
    assert not rep.rebuilt and "afresh" not in rep.summary()
    rep = index(demo_copy, spec=TINY_SPEC, quiet=True, rebuild=True)
    assert rep.rebuilt and rep.unchanged == rep.works and "every work's features computed afresh" in rep.summary()
