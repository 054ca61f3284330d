"""The one source adapter: a catalog or a (works, X) pair, read once; default output folders stay out of the
collection."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import shutil

import numpy as np
import pandas as pd
import pytest

import artspace.analysis
from artspace.analysis import Source, distance_scale, map_collection, read_source
from artspace.analysis.files import OWNER_FILE, check_out, default_out, folder_owner
from artspace.catalog import Catalog
from artspace.errors import InvalidOption, OutputConflict


@pytest.mark.parametrize("by", ["style", "l_style", "content"])
def test_catalog_rows_are_aligned_with_each_space(demo_catalog, by):
    src = read_source(demo_catalog, by=by)
    ids, X = demo_catalog.embeddings(by)
    assert src.ids.tolist() == ids.tolist() and np.array_equal(src.vectors(by), X)
    paths = demo_catalog.works.set_index("id").loc[ids, "path"].tolist()
    assert src.works["path"].tolist() == paths


def test_content_embeddings_are_unit_vectors_so_half_squared_l2_is_one_minus_cos(demo_catalog):
    X = read_source(demo_catalog, by="content").vectors("content")
    assert np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-4)
    assert distance_scale("content") == 0.5 and distance_scale("style") == distance_scale("l_style") == 1.0


def test_pair_sources_are_checked():
    with pytest.raises(ValueError, match="3 works but 2"):
        read_source((pd.DataFrame({"a": [1, 2, 3]}), np.zeros((2, 4))))
    with pytest.raises(ValueError, match="no 'content' embeddings"):
        read_source((pd.DataFrame({"a": [1, 2]}), {"style": np.zeros((2, 4))}), by="content")
    with pytest.raises(InvalidOption, match="keyed by space"):
        read_source((pd.DataFrame({"a": [1, 2]}), {"signature": np.zeros((2, 4))}))
    with pytest.raises(InvalidOption, match="by must be style, l_style or content, not 'colour'"):
        read_source((pd.DataFrame({"a": [1, 2]}), np.zeros((2, 4))), by="colour")
    with pytest.raises(TypeError):
        read_source([1, 2])


def test_a_single_matrix_serves_every_space_and_a_source_passes_through():
    works = pd.DataFrame({"g": ["a", "b"]})
    src = read_source((works, np.eye(2)))
    assert src.ids.tolist() == [0, 1] and src.vectors("l_style") is src.vectors("content")
    assert read_source(src, by="style") is src and isinstance(src, Source) and src.catalog is None


def test_map_collection_reads_each_embedding_once(analysis_catalog, tmp_path, monkeypatch):
    calls = []
    real = Catalog.embeddings

    def counting(self, by="style"):
        calls.append(by)
        return real(self, by)

    monkeypatch.setattr(Catalog, "embeddings", counting)
    map_collection(analysis_catalog, tmp_path, by="content", method="pca", recompute=True, picture=True,
                   neighbors_k=2)
    assert calls == ["content"]


def test_default_output_folders_stay_out_of_the_collection(analysis_catalog, tmp_path, monkeypatch):
    root = analysis_catalog.root
    beside = root.parent / f"{root.name}-artspace" / "clusters-style"
    monkeypatch.chdir(root)
    assert default_out(analysis_catalog, "clusters-style") == beside
    monkeypatch.chdir(root / "dots")
    assert default_out(analysis_catalog, "clusters-style") == beside
    monkeypatch.chdir(tmp_path)
    assert default_out(analysis_catalog, "clusters-style").as_posix() == "clusters-style"
    with pytest.raises(OutputConflict, match="choose another output"):
        check_out(analysis_catalog, analysis_catalog.dir / "plots")


def test_an_analysis_folder_holds_one_catalogs_analyses(analysis_catalog, tmp_path, monkeypatch):
    from artspace.analysis import compare

    other_root = tmp_path / "other" / "demo"
    shutil.copytree(analysis_catalog.root, other_root)
    other = Catalog.open(other_root)
    out = tmp_path / "compare"
    compare(analysis_catalog, group_by="texture", permutations=0, out=out)
    assert folder_owner(out) == analysis_catalog.root.resolve()
    mine = {p.name: p.read_bytes() for p in out.iterdir()}
    compare(analysis_catalog, group_by="texture", permutations=0, out=out)  # the same catalog again: replaced
    with pytest.raises(OutputConflict, match=f"holds the analyses of another catalog .*{analysis_catalog.root.name}"):
        compare(other, group_by="texture", permutations=0, out=out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == mine  # the first catalog's files, untouched
    # by default the second catalog's analysis goes beside its collection instead
    monkeypatch.chdir(tmp_path)
    assert default_out(other, "compare") == other_root.resolve().parent / "demo-artspace" / "compare"
    assert default_out(analysis_catalog, "compare").as_posix() == "compare"
    # a folder that held nothing but the record, or a record that is not artspace's, belongs to no catalog
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(out / OWNER_FILE, empty / OWNER_FILE)
    assert folder_owner(empty) is None
    compare(other, group_by="texture", permutations=0, out=empty)
    assert folder_owner(empty) == other_root.resolve()
    (out / OWNER_FILE).write_text('{"catalog": "/elsewhere"}')
    assert folder_owner(out) is None


ANALYSIS_MODULES = sorted(m.name for m in pkgutil.iter_modules(artspace.analysis.__path__, "artspace.analysis."))


@pytest.mark.parametrize("name", ANALYSIS_MODULES)
def test_examples_of_the_analysis_modules(name):
    # tests/test_doc_examples.py runs the top-level modules' examples; this runs the package's
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
