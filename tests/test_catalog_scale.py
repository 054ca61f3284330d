"""What lets a catalog grow to millions of works: chunked arrays rewritten only where works changed, compressed
indexes that re-rank on the stored vectors and take works in place, and the chunked reader."""

from __future__ import annotations

import numpy as np
import pytest

import artspace.catalog.chunks as chunks
import artspace.search as search
from artspace.catalog import Catalog, index
from artspace.catalog.chunks import ChunkedArray, chunk_file
from artspace.spaces import SPACES

from artspace.features import FeatureSpec

TINY_SPEC = FeatureSpec(size=64)  # the spec of the demo_catalog fixture


def test_the_fast_digests_hash_the_same_bytes_as_the_definition():
    import hashlib

    import pandas as pd

    from artspace.catalog.generation import digest, digest_columns

    def definition(rows):  # the bytes every published manifest's works_digest and content_digest were made from
        h = hashlib.sha256()
        h.update("".join("\0".join(map(str, row)) + "\n" for row in sorted(rows)).encode("utf-8", "backslashreplace"))
        return h.hexdigest()

    rng = np.random.default_rng(0)
    paths = [f"a/{i:05d}.png" for i in range(70_000)] + ["b/é, ü.png", "b/x\ty.png"]  # two blocks, odd text
    table = pd.DataFrame({"path": pd.array(paths, dtype="str"), "size": rng.integers(0, 10**9, len(paths)),
                          "id": np.arange(len(paths))})
    for order in (np.arange(len(paths)), rng.permutation(len(paths))):  # in order (the fast path) and not
        t = table.iloc[order]
        expected = definition(zip(t["path"], t["size"].astype(int), t["id"].astype(int)))
        assert digest_columns(t["path"], t["size"].astype(int), t["id"].astype(int)) == expected
        assert digest(list(zip(t["path"].tolist(), t["size"].tolist(), t["id"].tolist()))) == expected
    ties = [("b", 2), ("a", 1), ("b", 1)]  # a repeated first field is ordered by the next
    assert digest(ties) == definition(ties) == digest_columns(["b", "a", "b"], [2, 1, 1])
    assert digest([]) == digest_columns([], []) == hashlib.sha256().hexdigest()


def test_chunked_array_gathers_rows_like_one_array():
    rng = np.random.default_rng(0)
    whole = rng.normal(size=(23, 3)).astype(np.float32)
    a = ChunkedArray([whole[:10], whole[10:20], whole[20:]])
    assert a.shape == (23, 3) and len(a) == 23 and a.dtype == np.float32
    rows = np.array([[0, 22], [9, 10], [19, 20]])
    assert np.array_equal(a[rows], whole[rows])
    assert np.array_equal(a[5], whole[5]) and np.array_equal(a[-1], whole[-1])
    assert np.array_equal(a[3:15], whole[3:15]) and np.array_equal(np.asarray(a), whole)
    assert np.array_equal(a[whole[:, 0] > 0], whole[whole[:, 0] > 0]) and a.max() == whole.max()


def test_a_run_rewrites_only_the_chunks_whose_works_changed(demo_copy, monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 5)
    root = demo_copy
    index(root, spec=TINY_SPEC, quiet=True)
    cat = Catalog.open(root)
    m = cat.manifest["chunks"]
    assert m["count"] == 4 and all(m["written"][name] == 4 for name in chunks.CHUNKED)
    assert {chunk_file("style", k) for k in range(4)} <= set(cat.manifest["files"])
    for by in SPACES:  # the chunks read back as the arrays they were cut from
        ids, x = cat.embeddings(by)
        assert x.shape[0] == len(ids) == 18 and isinstance(x, np.ndarray)
    folder = cat.files
    first = {by: cat.embeddings(by)[1].copy() for by in SPACES}

    (root / "new").mkdir()
    (root / "new/extra.png").write_bytes((root / "checker/circle_0.png").read_bytes())
    index(root, quiet=True)  # one work added, with the largest id: only the last chunk changes
    cat = Catalog.open(root)
    m = cat.manifest["chunks"]
    assert m["count"] == 4 and all(m["written"][name] == 1 for name in chunks.CHUNKED)
    for k in range(3):
        assert (cat.files / chunk_file("content", k)).stat().st_ino == (folder / chunk_file("content", k)).stat().st_ino
    new = int(cat.works.index[cat.works["path"] == "new/extra.png"][0])
    twin = int(cat.works.index[cat.works["path"] == "checker/circle_0.png"][0])
    for by in SPACES:  # a copy of a work gets that work's embedding, and the other rows are the old ones
        x = cat.embeddings(by)[1]
        assert np.linalg.norm(x[new] - x[twin]) <= 1e-2 * np.linalg.norm(x[twin])  # batches differ in bfloat16
        assert np.array_equal(x[:18], first[by])
    raw = cat.similar(int(cat.works["id"].iloc[new]), by="l_style", k=1)
    assert raw["id"].iloc[0] == cat.works["id"].iloc[twin]


def test_removing_a_work_rewrites_the_chunks_after_it_and_answers_stay_right(demo_copy, monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 5)
    root = demo_copy
    index(root, spec=TINY_SPEC, quiet=True)
    first = Catalog.open(root)
    gone = first.works["path"].iloc[7]
    keep = first.works.loc[first.works["path"] != gone, "id"].to_numpy()
    vectors = {by: first.embeddings(by)[1][first.works["path"].to_numpy() != gone] for by in SPACES}
    first.close()
    (root / gone).unlink()
    index(root, quiet=True)
    cat = Catalog.open(root)
    assert cat.manifest["chunks"]["written"]["style"] == 3  # chunk 0 (rows 0-4) kept; the others shift by a row
    for by in SPACES:
        ids, x = cat.embeddings(by)
        assert np.array_equal(ids, keep) and np.allclose(x, vectors[by], atol=1e-6)
        assert len(cat.similar(int(keep[-1]), by=by, k=16)) == 16


def test_compressed_index_reranks_exactly_and_takes_new_works_in_place(demo_copy, monkeypatch):
    monkeypatch.setattr(search, "EXACT_LIMIT", 8)  # 18 works: above it, so quantised and re-ranked
    root = demo_copy
    index(root, spec=TINY_SPEC, quiet=True)
    cat = Catalog.open(root)
    for by in SPACES:
        space = cat.manifest["spaces"][by]
        assert space["index"] == "IndexIVFScalarQuantizer"
        cal = space["index_calibration"]
        assert cal["trained_on"] == 18 and cal["recall_at_10"] >= search.TARGET_RECALL and cal["shortlist"] >= 10
    # on a collection this small the shortlist holds every work: the answers are the exact ones
    ids, x = cat.embeddings("l_style")
    got = cat.similar(int(ids[0]), by="l_style", k=5)
    exact = ((x - x[0]) ** 2).sum(1)
    order = np.argsort(exact, kind="stable")[1:6]
    assert list(got["id"]) == list(ids[order]) and np.allclose(got["distance"], exact[order], rtol=1e-4)

    (root / "new").mkdir()
    (root / "new/extra.png").write_bytes((root / "checker/circle_0.png").read_bytes())
    rep = index(root, quiet=True)
    cat = Catalog.open(root)
    for by in SPACES:
        cal = cat.manifest["spaces"][by]["index_calibration"]
        assert cal["trained_on"] == 18 and cal["works_changed_since_trained"] == 1  # added, not trained again
    new_id = int(cat.works.loc[cat.works["path"] == "new/extra.png", "id"].iloc[0])
    twin = int(cat.works.loc[cat.works["path"] == "checker/circle_0.png", "id"].iloc[0])
    assert rep.added == 1 and cat.similar(new_id, by="style", k=1)["id"].iloc[0] == twin  # found at once


def test_a_compressed_index_refuses_to_search_without_its_vectors():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 16)).astype(np.float32)
    ix = search.VectorIndex.build(np.arange(400), x, exact_limit=100)
    ix.ids = ix.vectors = None
    with pytest.raises(RuntimeError, match="attach"):
        ix.search(x[:1], 5)
