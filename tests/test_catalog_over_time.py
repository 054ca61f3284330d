"""A catalog over months of use: a refused run changes nothing, a moved collection is followed, another folder is
refused, and stored analysis columns stay stale until computed again (a new user's walkthrough found each)."""

import shutil

import pytest

from artspace.analysis import cluster
from artspace.catalog import Catalog, index
from artspace.errors import IncompatibleCatalog, InvalidMetadata
from artspace.spec import FeatureSpec

TINY_SPEC = FeatureSpec(size=64)


def test_a_refused_rebuild_keeps_the_extraction_log(demo_catalog, tmp_path):
    root = tmp_path / "demo"
    shutil.copytree(demo_catalog.root, root)
    (root / "metadata.csv").rename(tmp_path / "moved.csv")  # the remembered metadata is gone
    shards = sorted((root / ".artspace" / "log").rglob("*.npz"))
    assert shards
    with pytest.raises(InvalidMetadata, match="is gone"):
        index(root, rebuild=True, spec=TINY_SPEC, quiet=True)
    assert sorted((root / ".artspace" / "log").rglob("*.npz")) == shards  # nothing discarded
    report = index(root, metadata=tmp_path / "moved.csv", spec=TINY_SPEC, quiet=True)
    assert report.extracted == 0  # no image read again
    # the metadata can also be dropped: the remembered CSV is forgotten with its columns, no image read
    report = index(root, metadata=False, spec=TINY_SPEC, quiet=True)
    assert report.published and report.extracted == 0 and any("no longer joined" in n for n in report.notes)
    cat = Catalog.open(root)
    assert "texture" not in cat.works and cat.manifest.get("metadata") is None
    assert not index(root, spec=TINY_SPEC, quiet=True).published  # nothing remembered, nothing asked for


def test_a_catalog_outside_its_collection_follows_a_move_and_refuses_another_folder(demo_source, tmp_path):
    root, cat = tmp_path / "coll", tmp_path / "ext"
    shutil.copytree(demo_source, root)
    index(root, catalog=cat, spec=TINY_SPEC, quiet=True, batch_size=8)
    ids = Catalog.open(cat).works[["path", "id"]].values.tolist()
    moved = root.rename(tmp_path / "moved")
    # before index has followed the move, every command says where the collection was and how to record it
    from typer.testing import CliRunner

    from artspace.cli import app

    r = CliRunner().invoke(app, ["similar", str(moved / "dots" / "star_0.png"), "-k", "2", "--catalog", str(cat)])
    assert r.exit_code == 0 and f"no longer at {root}" in r.stderr and "records where it went" in r.stderr
    report = index(moved, catalog=cat, spec=TINY_SPEC, quiet=True)
    assert report.published and report.extracted == 0 and any("is now at" in n for n in report.notes)
    c = Catalog.open(cat)
    assert c.works[["path", "id"]].values.tolist() == ids and c.image_path(0).is_file()
    copy = shutil.copytree(moved, tmp_path / "copy")  # the collection copied while it is still there: refused
    with pytest.raises(IncompatibleCatalog, match="which is still there"):
        index(copy, catalog=cat, spec=TINY_SPEC, quiet=True)
    shutil.rmtree(copy)
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(moved / "dots" / "star_0.png", other / "star_0.png")
    with pytest.raises(IncompatibleCatalog, match="which is still there"):
        index(other, catalog=cat, spec=TINY_SPEC, quiet=True)
    shutil.rmtree(moved)  # the collection gone, and a folder that holds almost none of its works: refused too
    with pytest.raises(IncompatibleCatalog, match="holds 0 of them"):
        index(other, catalog=cat, spec=TINY_SPEC, quiet=True)
    assert Catalog.open(cat).works[["path", "id"]].values.tolist() == ids


def test_a_stored_column_stays_stale_until_computed_again(demo_catalog, tmp_path):
    root = tmp_path / "demo"
    shutil.copytree(demo_catalog.root, root)
    cluster(Catalog.open(root), by="style", k=3)
    index(root, spec=TINY_SPEC, quiet=True, exclude=["dots/*"])
    index(root, spec=TINY_SPEC, quiet=True)  # the same works as when it was computed, but their labels are gone
    cat = Catalog.open(root)
    assert cat.works["cluster_style"].isna().any() and "cluster_style" in cat.stale_columns()
    cluster(cat, by="style", k=3)
    assert Catalog.open(root).stale_columns() == {}
    index(root, spec=FeatureSpec(size=72), quiet=True, rebuild=True)  # every embedding changes, the works do not
    assert "cluster_style" in Catalog.open(root).stale_columns()


def test_a_second_csv_says_which_columns_and_values_of_the_first_it_replaces(demo_catalog, tmp_path):
    import pandas as pd

    root = tmp_path / "demo"
    shutil.copytree(demo_catalog.root, root)
    md = pd.read_csv(root / "metadata.csv")
    md[["path", "shape"]].head(4).to_csv(root / "more.csv", index=False)
    report = index(root, metadata=root / "more.csv", spec=TINY_SPEC, quiet=True)
    note = next(n for n in report.notes if "replaces the metadata file" in n)
    assert "'texture' is dropped" in note and "'shape' now holds only the new file's values" in note
    assert "texture" not in Catalog.open(root).works  # as the note said
    again = index(root, metadata=root / "more.csv", spec=TINY_SPEC, quiet=True)
    assert not any("replaces the metadata file" in n for n in again.notes)  # the same file: nothing to say
