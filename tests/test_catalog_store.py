"""The catalog never lies: generations, the writer lock, killed runs, concurrent readers, damage and its repair."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from artspace.catalog import Catalog, index
from artspace.catalog.store import WriterLock
from artspace.errors import ArtspaceError, CatalogNotFound, CorruptCatalog, IncompatibleCatalog
from artspace.features import FeatureSpec

TINY_SPEC = FeatureSpec(size=64)
SPACES = ("style", "l_style", "content")


@pytest.fixture(scope="module")
def indexed(demo_source, tmp_path_factory) -> Path:
    """The demo collection with its catalog, built once for this module: copy it before changing it."""
    root = tmp_path_factory.mktemp("store") / "demo"
    shutil.copytree(demo_source, root)
    index(root, metadata=root / "metadata.csv", spec=TINY_SPEC, quiet=True, batch_size=4)
    return root


@pytest.fixture
def collection(indexed, tmp_path) -> Path:
    root = tmp_path / "demo"
    shutil.copytree(indexed, root, symlinks=True)
    return root


def _consistent(root: Path) -> Catalog:
    """Open the catalog and check that everything it reads belongs to one generation."""
    cat = Catalog.open(root)
    works = cat.works
    assert len(works) == cat.manifest["works"]
    for space in SPACES:
        ids, x = cat.embeddings(space)
        assert list(ids) == list(works["id"]) and len(x) == len(works)
    q = int(works["id"].iloc[0])
    for by in SPACES:
        res = cat.similar(q, by=by, k=5)
        assert len(res) == 5 and set(res["id"]) <= set(works["id"])
    return cat


def _leftovers(cdir: Path) -> list[str]:
    return [p.name for p in cdir.rglob("*") if ".tmp" in p.name or p.name.startswith((".building", ".trash"))]


def _cli(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "artspace.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300, **kw)


# ---- generations --------------------------------------------------------------------------------------------------


def test_an_unchanged_collection_publishes_nothing(collection):
    before = Catalog.open(collection).generation
    rep = index(collection, quiet=True)
    assert not rep.published and rep.generation == before and rep.extracted == 0
    assert (rep.works, rep.unchanged, rep.added, rep.removed) == (18, 18, 0, 0)
    assert "nothing changed" in rep.summary()


def test_each_change_publishes_one_new_generation_and_old_ones_go(collection):
    cdir = collection / ".artspace"
    first = Catalog.open(collection)
    (collection / "dots/star_0.png").unlink()
    rep = index(collection, quiet=True)
    assert rep.published and rep.generation == first.generation + 1
    assert (rep.works, rep.removed, rep.unchanged, rep.added) == (17, 1, 17, 0)
    # the first generation is still read by `first`, so the writer kept it; its answers are unchanged
    assert len(first.works) == 18 and len(first.similar(0, by="content", k=17)) == 17
    assert len(list((cdir / "generations").glob("0*[0-9]"))) == 2
    first.close()
    index(collection, metadata=collection / "metadata.csv", quiet=True)  # nothing changed: no new generation
    (collection / "dots/star_1.png").unlink()
    index(collection, quiet=True)
    assert [p.name for p in (cdir / "generations").iterdir() if p.is_dir()] == [f"{rep.generation + 1:06d}"]
    assert not _leftovers(cdir)


def test_counts_add_up_when_some_new_files_are_unreadable(collection):
    (collection / "new").mkdir()
    shutil.copy(collection / "dots/star_0.png", collection / "new/copy.png")
    (collection / "new/broken.png").write_bytes(b"not an image")
    rep = index(collection, quiet=True)
    assert (rep.works, rep.added, rep.unchanged, rep.removed) == (19, 1, 18, 0)
    assert [p for p, _ in rep.skipped] == ["new/broken.png"]
    assert "19 works" in rep.summary() and "1 added" in rep.summary() and "1 skipped" in rep.summary()


def test_analyses_store_columns_as_a_new_generation(collection):
    cat = Catalog.open(collection)
    n = cat.generation
    cat.update_columns(pd.DataFrame({"cluster_style": cat.works["id"] % 3}).set_index(cat.works["id"]))
    assert cat.generation == n + 1 and (cat.works["cluster_style"] == cat.works["id"] % 3).all()
    assert list(Catalog.open(collection).manifest["analyses"]) == ["cluster_style"] and not cat.stale_columns()
    (collection / "dots/star_0.png").unlink()
    index(collection, quiet=True)
    cat.refresh()
    assert cat.stale_columns() == {"cluster_style": "update_columns"}  # computed before a work was removed
    assert cat.works["cluster_style"].dtype == "Int64"
    with pytest.raises(ValueError, match="artspace's own"):
        cat.update_columns(pd.DataFrame({"path": cat.works["path"]}).set_index(cat.works["id"]))


def test_switching_metadata_files_drops_the_old_columns(collection, tmp_path):
    md = pd.read_csv(collection / "metadata.csv")
    md[["path", "shape"]].rename(columns={"shape": "subject"}).to_csv(tmp_path / "other.csv", index=False)
    index(collection, metadata=tmp_path / "other.csv", quiet=True)
    works = Catalog.open(collection).works
    assert "subject" in works.columns and "texture" not in works.columns and "shape" not in works.columns


def test_a_bad_metadata_file_is_refused_before_any_image_is_read(demo_copy, tmp_path):
    (tmp_path / "bad.csv").write_text("title,year\nA,1650\n")
    with pytest.raises(ArtspaceError, match="bad.csv"):
        index(demo_copy, metadata=tmp_path / "bad.csv", spec=TINY_SPEC, quiet=True)
    assert not list((demo_copy / ".artspace").rglob("part-*.npz"))


def test_rebuild_keeps_work_ids_and_the_catalog_readable(collection):
    cat = Catalog.open(collection)
    ids = dict(zip(cat.works["path"], cat.works["id"]))
    rep = index(collection, rebuild=True, quiet=True)
    assert rep.extracted == 18 and rep.generation == cat.generation + 1
    assert dict(zip(Catalog.open(collection).works["path"], Catalog.open(collection).works["id"])) == ids
    assert len(cat.works) == 18  # the old generation stayed readable throughout


# ---- damage and repair --------------------------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damage(root: Path, what: str) -> str:
    """Damage one catalog file; returns the file name the error must name."""
    cdir = root / ".artspace"
    folder = Catalog.open(root).files
    if what == "CURRENT":
        (cdir / "CURRENT").write_text("{garbage")
        return "CURRENT"
    if what == "manifest":
        (folder / "manifest.json").write_text("{garbage")
        return "manifest.json"
    if what == "bare manifest":
        (folder / "manifest.json").write_text(json.dumps({"format_version": 4}))
        return "manifest.json"
    if what == "edited manifest":  # still valid JSON, every field there: a spec changed by hand
        m = json.loads((folder / "manifest.json").read_text())
        m["spec"]["size"] = 2 * m["spec"]["size"]
        (folder / "manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True))
        return "manifest.json"
    _truncate(folder / what)
    return what


DAMAGE = ["works.parquet", "style.npy", "ids.npy", "style_scale.npy", "style.faiss", "l_style.faiss", "content.faiss", "content_model.npz",
          "style_projection.npz", "l_style_projection.npz", "style_neighbours.npz", "pairs.npz", "CURRENT",
          "manifest", "bare manifest", "edited manifest"]


@pytest.mark.parametrize("what", DAMAGE)
def test_damage_gives_one_line_naming_the_file_and_index_repairs_it(collection, what):
    expected = {by: Catalog.open(collection).similar(3, by=by, k=5)[["id", "distance"]] for by in SPACES}
    name = _damage(collection, what)
    with pytest.raises((CorruptCatalog, IncompatibleCatalog)) as err:
        cat = Catalog.open(collection)
        for by in SPACES:
            cat.similar(3, by=by, k=5)
    message = str(err.value)
    assert name in message and "artspace index" in message and "\n" not in message
    rep = index(collection, quiet=True)
    assert rep.published and rep.extracted == 0
    cat = _consistent(collection)
    for by in SPACES:
        pd.testing.assert_frame_equal(cat.similar(3, by=by, k=5)[["id", "distance"]], expected[by], rtol=1e-5)


def test_cli_reports_damage_in_one_error_line(collection):
    _damage(collection, "works.parquet")
    out = _cli("similar", "3", "--catalog", collection)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("Error: catalog file") and "works.parquet" in out.stderr


@pytest.mark.parametrize("what", ["shard", "projection", "log.json"])
def test_damaged_extraction_log_is_recomputed_from_the_images(collection, what):
    log = collection / ".artspace/log"
    target = {"shard": next((log / "shards").glob("part-*.npz")), "projection": log / "projection.npz",
              "log.json": log / "log.json"}[what]
    lost = 18
    if what == "shard":  # the log may hold several shards: the damaged one's works are extracted again
        with np.load(target) as z:
            lost = len(z["id"])
    _truncate(target) if what != "log.json" else target.write_text("{garbage")
    ids = dict(zip(Catalog.open(collection).works["path"], Catalog.open(collection).works["id"]))
    rep = index(collection, quiet=True)
    assert rep.extracted == lost > 0 and rep.notes
    cat = _consistent(collection)
    assert dict(zip(cat.works["path"], cat.works["id"])) == ids


def test_rebuild_works_from_any_state(collection):
    folder = Catalog.open(collection).files
    (folder / "manifest.json").write_text("{garbage")
    (collection / ".artspace/CURRENT").write_text("{garbage")
    (collection / ".artspace/log/log.json").write_text("[]")
    rep = index(collection, rebuild=True, quiet=True)
    assert rep.works == 18
    _consistent(collection)


def test_leftovers_of_killed_writers_are_removed(collection):
    cdir = collection / ".artspace"
    (cdir / "log/shards/.part-000009.123.tmp.npz").write_bytes(b"half")
    (cdir / "generations/.building-999").mkdir()
    (cdir / "generations/.building-999/works.parquet").write_bytes(b"half")
    (collection / "dots/star_0.png").unlink()
    index(collection, quiet=True)
    assert not _leftovers(cdir)


# ---- killed runs, concurrent readers and writers -------------------------------------------------------------------


@pytest.mark.slow
def test_killed_at_every_file_replacement_the_catalog_is_old_or_new(indexed, tmp_path):
    """`kill -9` (ARTSPACE_KILL_AT) before each rename of a run that removes one work and adds one: afterwards the
    catalog is the old generation or the new one, whole, and the next run finishes the job."""
    step, outcomes = 0, []
    while True:
        step += 1
        root = tmp_path / f"run{step}"
        shutil.copytree(indexed, root)
        (root / "dots/star_0.png").unlink()
        shutil.copy(root / "waves/circle_0.png" if (root / "waves").exists() else root / "checker/circle_0.png",
                    root / "added.png")
        out = _cli("index", root, "-q", env={"ARTSPACE_KILL_AT": str(step)})
        if out.returncode == 0:
            break
        assert out.returncode == -9, out.stderr
        works = len(_consistent(root).works)
        assert works in (18, 19) and (works == 18) == ((root / ".artspace/CURRENT").read_text() ==
                                                        (indexed / ".artspace/CURRENT").read_text())
        outcomes.append(works)
        rep = index(root, quiet=True)
        assert rep.works == 18 and set(_consistent(root).works["path"]) == (
            {p for p in Catalog.open(indexed).works["path"] if p != "dots/star_0.png"} | {"added.png"})
        assert not _leftovers(root / ".artspace")
        shutil.rmtree(root)
    assert step > 5 and 18 in outcomes  # every fault point was reached, and the early ones left the old catalog


@pytest.mark.slow
def test_queries_during_index_each_come_from_one_generation(collection):
    """Queries in this process while `artspace index` publishes in another: each sees one whole generation."""
    for i in range(6):
        shutil.copy(collection / "dots/star_0.png", collection / f"copy{i}.png")
    proc = subprocess.Popen([sys.executable, "-m", "artspace.cli", "index", str(collection), "-q", "-b", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = set()
    while proc.poll() is None:
        cat = _consistent(collection)
        seen.add((cat.generation, len(cat.works)))
        cat.close()
    assert proc.returncode == 0, proc.stderr.read().decode()
    cat = _consistent(collection)
    seen.add((cat.generation, len(cat.works)))
    assert {n for _, n in seen} <= {18, 24} and (cat.generation, 24) in seen


@pytest.mark.slow
def test_map_during_index_waits_and_loses_no_work(collection):
    """An analysis storing a column while `artspace index` runs waits for it, then adds to the new generation."""
    for i in range(4):
        shutil.copy(collection / "dots/star_0.png", collection / f"copy{i}.png")
    cat = Catalog.open(collection)
    cdir = collection / ".artspace"
    proc = subprocess.Popen([sys.executable, "-m", "artspace.cli", "index", str(collection), "-q", "-b", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not (cdir / "lock").read_text():
        time.sleep(0.02)  # the index run holds the lock
    assert (cdir / "lock").read_text().startswith("pid"), proc.stderr.read().decode()
    cat.update_columns(pd.DataFrame({"map_x": cat.works["id"] * 1.0}).set_index(cat.works["id"]))
    assert proc.wait() == 0
    works = _consistent(collection).works
    assert len(works) == 22 and works["map_x"].notna().sum() == 18


def test_a_writer_waits_for_the_lock_only_when_asked(collection):
    cdir = collection / ".artspace"
    cat = Catalog.open(collection)
    with WriterLock(cdir):
        t = threading.Thread(target=lambda: cat.update_columns(
            pd.DataFrame({"x": cat.works["id"]}).set_index(cat.works["id"])))
        t.start()
        time.sleep(0.5)
        assert t.is_alive()  # waiting, not failed
    t.join(30)
    assert not t.is_alive() and "x" in Catalog.open(collection).works.columns


def test_catalog_without_a_published_generation_says_how_to_finish(demo_copy):
    (demo_copy / ".artspace/log/shards").mkdir(parents=True)
    with pytest.raises(CatalogNotFound, match="no artspace catalog|no finished index"):
        Catalog.open(demo_copy)


# ---- hostile collections ----------------------------------------------------------------------------------------


def test_a_hostile_folder_is_indexed_with_every_problem_listed(collection, make_hostile):
    """FIFO, dangling link, non-UTF-8 name, link loop, a 30000 x 30000 PNG and an animated GIF inside a collection:
    the run ends, lists each problem once, and catalogues what can be read."""
    make_hostile(collection / "hostile")
    out = _cli("index", collection, "-q", "--max-pixels", "50000000")
    assert out.returncode == 3 and "Traceback" not in out.stderr, out.stderr
    rep = index(collection, quiet=True)
    reasons = dict(rep.skipped)
    assert {"hostile/x.png", "hostile/gone.png", "hostile/bomb.png"} <= set(reasons)
    assert any("UTF-8" in r for r in reasons.values()) and "FIFO" in reasons["hostile/x.png"]
    assert "megapixels" in reasons["hostile/bomb.png"] and "--max-pixels" in reasons["hostile/bomb.png"]
    works = _consistent(collection).works
    assert {"hostile/anim.gif", "hostile/good.png", "hostile/link.png"} <= set(works["path"])
    assert rep.works == len(works) == 21 and not rep.published  # the second run found nothing new
    skipped = Catalog.open(collection).skipped  # non-UTF-8 names are stored in a printable form
    assert len(skipped) == len(rep.skipped) and skipped["path"].map(lambda p: p.encode("utf-8")).all()


def test_metadata_problems_are_reported_not_silent(collection, tmp_path):
    md = pd.read_csv(collection / "metadata.csv")
    md = pd.concat([md, md.iloc[:2], pd.DataFrame({"path": ["dots/sta_0.png"], "shape": ["star"]})])
    md.to_csv(tmp_path / "works.csv", index=False, sep=";")
    rep = index(collection, metadata=tmp_path / "works.csv", quiet=True)
    notes = " ".join(rep.notes)
    assert "1 row of works.csv matches no image (first: 'dots/sta_0.png')" in notes
    assert "2 images are listed more than once" in notes
    assert Catalog.open(collection).works["shape"].notna().all()


def test_adding_works_updates_the_content_groups_instead_of_refitting(collection):
    before = Catalog.open(collection)
    shutil.copy(collection / "dots/star_0.png", collection / "copy.png")
    rep = index(collection, quiet=True)
    assert rep.added == 1 and not any("fitted again" in n for n in rep.notes)
    after = Catalog.open(collection)
    assert after.manifest["spaces"]["content"]["groups"] == before.manifest["spaces"]["content"]["groups"]
    # the copy's content embedding equals its original's: same style group, same group means
    res = after.similar("copy.png", by="content", k=1)
    assert res["path"].iloc[0] == "dots/star_0.png" and res["distance"].iloc[0] < 1e-6


def test_images_artspace_wrote_are_not_catalogued_unless_asked(collection):
    from artspace.images import made_by_artspace, open_image, save_image

    for suffix in (".png", ".jpg", ".webp", ".tif"):
        save_image(open_image(collection / "dots/star_0.png"), collection / f"sheet{suffix}")
        assert made_by_artspace(collection / f"sheet{suffix}")
    assert not made_by_artspace(collection / "dots/star_0.png")
    rep = index(collection, quiet=True)
    assert rep.works == 18 and sorted(p for p, r in rep.skipped if "artspace wrote" in r) == [
        "sheet.jpg", "sheet.png", "sheet.tif", "sheet.webp"]
    rep = index(collection, include_outputs=True, quiet=True)
    assert rep.works == 22 and rep.added == 4 and not rep.skipped


def test_naming_the_same_metadata_file_again_publishes_nothing(collection, monkeypatch):
    monkeypatch.chdir(collection)
    # this collection was copied from elsewhere with its CSV: nothing changed, however the same file is named
    runs = [index(".", metadata="metadata.csv", quiet=True), index(".", quiet=True),
            index(".", metadata="./metadata.csv", quiet=True), index(".", metadata=collection / "metadata.csv")]
    assert not any(r.published for r in runs)
    (collection / "meta").mkdir()
    shutil.copy(collection / "metadata.csv", collection / "meta/works.csv")
    moved = index(".", metadata="meta/works.csv", quiet=True)  # the same rows in another file: recorded anew
    assert moved.published and Catalog.open(collection).manifest["metadata"] == "meta/works.csv"


def test_a_works_table_path_leading_outside_the_collection_is_refused(collection):
    cat = Catalog.open(collection)
    works = cat.works.copy()
    works.loc[0, "path"] = "../outside.png"
    (collection.parent / "outside.png").write_bytes((collection / "dots/star_0.png").read_bytes())
    table = cat.files / "works.parquet"
    table.unlink()  # a hard link shared with no other generation here; rewritten as a tampered file would be
    works.to_parquet(table, index=False)
    manifest = json.loads((cat.files / "manifest.json").read_text())
    manifest["files"]["works.parquet"] = table.stat().st_size  # tampered consistently: the size check passes
    (cat.files / "manifest.json").write_text(json.dumps(manifest))
    from artspace.catalog.store import manifest_digest  # ... and the digest CURRENT records, so that it passes too

    (collection / ".artspace" / "CURRENT").write_text(json.dumps(
        {"generation": cat.generation, "manifest_sha256": manifest_digest(cat.files)}))
    with pytest.raises(CorruptCatalog, match=r"outside the collection.*artspace index"):
        Catalog.open(collection).image_path(int(works.loc[0, "id"]))


def test_a_catalog_from_before_content_statistics_ranks_by_the_cosine_until_index_publishes_them(collection):
    from artspace.catalog.generation import CONTENT_STATS
    from artspace.catalog.store import manifest_digest

    cat = Catalog.open(collection)
    standardised = cat.similar(3, by="content", k=5)
    # the generation as artspace wrote it before it kept the statistics
    (cat.files / CONTENT_STATS).unlink()
    manifest = json.loads((cat.files / "manifest.json").read_text())
    del manifest["content_stats"], manifest["files"][CONTENT_STATS]
    (cat.files / "manifest.json").write_text(json.dumps(manifest))
    (collection / ".artspace" / "CURRENT").write_text(json.dumps(
        {"generation": cat.generation, "manifest_sha256": manifest_digest(cat.files)}))
    old = Catalog.open(collection)
    plain = old.similar(3, by="content", k=5)
    assert "score" not in plain and plain["id"].tolist() == old.similar(3, by="content", k=5,
                                                                        standardise=False)["id"].tolist()
    rep = index(collection, quiet=True)
    assert rep.published and rep.extracted == 0 and any("standardised its similarities" in n for n in rep.notes)
    new = Catalog.open(collection)
    assert new.generation > old.generation and (new.files / CONTENT_STATS).is_file()
    pd.testing.assert_frame_equal(new.similar(3, by="content", k=5), standardised)
    assert not index(collection, quiet=True).published  # published once, not at every run


def test_a_catalog_whose_style_groups_were_k_means_clusters_is_published_again_with_wards(collection):
    from artspace.catalog.store import manifest_digest
    from artspace.content_model import ContentModel

    cat = Catalog.open(collection)
    model = ContentModel.load(cat.files / "content_model.npz")
    assert cat.manifest["content_groups"] == "ward" and model.sample is not None
    # the generation as artspace wrote it before: groups at their nearest k-means centroid, no sample
    old = ContentModel(centroids=model.centroids, means=model.means, fitted_on=model.fitted_on, reduce=model.reduce,
                       learnt=model.learnt)
    old.save(cat.files / "content_model.npz")
    manifest = json.loads((cat.files / "manifest.json").read_text())
    del manifest["content_groups"]
    manifest["files"]["content_model.npz"] = (cat.files / "content_model.npz").stat().st_size
    (cat.files / "manifest.json").write_text(json.dumps(manifest))
    (collection / ".artspace" / "CURRENT").write_text(json.dumps(
        {"generation": cat.generation, "manifest_sha256": manifest_digest(cat.files)}))
    before = Catalog.open(collection)
    assert len(before.similar(3, by="content", k=5)) == 5  # still searched as it was
    rep = index(collection, quiet=True)
    assert rep.published and rep.extracted == 0 and any("Ward's clustering" in n for n in rep.notes)
    after = Catalog.open(collection)
    assert ContentModel.load(after.files / "content_model.npz").sample is not None
    assert not index(collection, quiet=True).published  # published once, not at every run


def test_content_statistics_that_do_not_match_the_works_are_refused(collection):
    from artspace.catalog.generation import CONTENT_STATS
    from artspace.catalog.store import manifest_digest
    from artspace.content_model import ContentStats

    cat = Catalog.open(collection)
    stats = ContentStats.load(cat.files / CONTENT_STATS)
    stats.groups = stats.groups[:-1]  # a forgery consistent with the manifest: sizes and digest updated
    path = cat.files / CONTENT_STATS
    path.unlink()
    stats.save(path)
    manifest = json.loads((cat.files / "manifest.json").read_text())
    manifest["files"][CONTENT_STATS] = path.stat().st_size
    (cat.files / "manifest.json").write_text(json.dumps(manifest))
    (collection / ".artspace" / "CURRENT").write_text(json.dumps(
        {"generation": cat.generation, "manifest_sha256": manifest_digest(cat.files)}))
    forged = Catalog.open(collection)
    assert len(forged.similar(3, by="style", k=3)) == 3  # the other spaces answer
    with pytest.raises(CorruptCatalog, match=r"content_stats.npz does not match.*artspace index .* --rebuild"):
        forged.similar(3, by="content", k=3)


def test_a_publication_that_compacts_the_log_reads_its_works_before_replacing_the_shards(collection, monkeypatch):
    # A million works' log is memory-mapped and its rows gathered by file name (pread): compacting the log before the
    # new generation was written removed the files those rows were still to be read from (FileNotFoundError).
    import artspace.catalog.generation as generation
    import artspace.catalog.shards as shards

    monkeypatch.setattr(shards, "MAP_BYTES", 0)  # every array memory-mapped, as a million works' are
    monkeypatch.setattr(generation, "MAX_SHARDS", 0)  # and the log compacted by this publication
    (collection / "dots/star_copy.png").write_bytes((collection / "dots/star_0.png").read_bytes() + b"\0")
    rep = index(collection, quiet=True)
    assert rep.added == 1
    assert len(list((collection / ".artspace/log/shards").glob("part-*.npz"))) == 1  # compacted
    cat = _consistent(collection)
    new = int(cat.works.loc[cat.works["path"] == "dots/star_copy.png", "id"].iloc[0])
    assert cat.similar(new, by="content", k=3)["id"].tolist()[0] != new
    monkeypatch.undo()
    assert index(collection, quiet=True).generation == rep.generation  # the compacted log holds what was published


def test_a_work_moved_within_the_collection_keeps_its_features(collection):
    before = Catalog.open(collection)
    old = before.works.set_index("path")
    (collection / "sorted").mkdir()
    os.rename(collection / "dots/star_0.png", collection / "sorted/star.png")  # a move keeps the modification time
    shutil.copy2(collection / "dots/star_1.png", collection / "dots/star_1_copy.png")  # a copy, the original kept
    rep = index(collection, quiet=True)
    assert rep.extracted == 1 and any("1 work(s) moved or renamed" in n for n in rep.notes), rep.notes
    after = Catalog.open(collection)
    works = after.works.set_index("path")
    assert "dots/star_0.png" not in works.index and works["id"].is_unique
    moved, was = int(works.loc["sorted/star.png", "id"]), int(old.loc["dots/star_0.png", "id"])
    assert works.loc["sorted/star.png", "checksum"] == old.loc["dots/star_0.png", "checksum"]
    for by in ("style", "l_style", "content"):  # the same row (the content model is kept)
        ids, x = after.embeddings(by)
        ids0, x0 = before.embeddings(by)
        np.testing.assert_allclose(x[np.searchsorted(ids, moved)], x0[np.searchsorted(ids0, was)], atol=1e-6)
    assert index(collection, quiet=True).generation == rep.generation  # the log records the new place
    shutil.copy2(collection / "sorted/star.png", collection / "dots/star_0.png")  # put back beside the moved one
    index(collection, quiet=True)
    assert Catalog.open(collection).works["id"].is_unique


def test_a_log_that_records_two_files_under_one_id_is_refused(collection):
    # artspace numbers each file once; a log that gives a new file an id another file has would pair one work's
    # features with the other's analyses and metadata (a benchmark's synthetic log did, and the run that followed
    # failed deep in numpy)
    from artspace.catalog.shards import Log, read_npz, write_npz

    cdir = collection / ".artspace"
    new = collection / "dots/star_copy.png"
    new.write_bytes((collection / "dots/star_0.png").read_bytes() + b"\0")
    shard = sorted(Log(cdir).shards.glob("part-*.npz"))[0]
    z = {k: np.asarray(v) for k, v in read_npz(shard).items()}
    row = {k: v[:1] for k, v in z.items() if not k.startswith("skip_") and len(v) == len(z["id"])}
    row.update(path=np.array(["dots/star_copy.png"]), size=np.array([new.stat().st_size], np.int64),
               mtime_ns=np.array([new.stat().st_mtime_ns], np.int64))
    write_npz(Log(cdir).shards / "part-999999.npz", **row, **{k: v for k, v in z.items() if k.startswith("skip_")})
    generation = Catalog.open(collection).generation
    with pytest.raises(CorruptCatalog, match=r"under an id another file has too .*--rebuild` reads every image"):
        index(collection, quiet=True)
    assert Catalog.open(collection).generation == generation  # nothing published
    rep = index(collection, quiet=True, rebuild=True)
    assert rep.works == 19 and Catalog.open(collection).works["id"].is_unique


def test_adding_a_work_carries_the_content_statistics_over(collection, monkeypatch):
    import artspace.content_model
    from artspace.catalog.generation import CONTENT_STATS
    from artspace.content_model import ContentModel, ContentStats

    before = Catalog.open(collection)
    old = ContentStats.load(before.files / CONTENT_STATS)
    shutil.copy(collection / "dots/star_0.png", collection / "dots/star_copy.png")
    (collection / "dots/star_copy.png").write_bytes((collection / "dots/star_0.png").read_bytes() + b"\0")
    looked_up, assign = [], artspace.content_model.ContentModel.assign
    monkeypatch.setattr(artspace.content_model.ContentModel, "assign",
                        lambda m, s, p=None: looked_up.append(len(s)) or assign(m, s, p))
    rep = index(collection, quiet=True)
    assert rep.added == 1
    # the kept works' style groups are read from the statistics: only the new work's is looked up (at a million works
    # every work's would read every style embedding again)
    assert looked_up and max(looked_up) == 1, looked_up
    monkeypatch.undo()
    after = Catalog.open(collection)
    new = ContentStats.load(after.files / CONTENT_STATS)
    assert after.manifest["content_stats"]["fitted_on"] == 18 and len(new.groups) == 19  # 1 of 18 works: kept
    np.testing.assert_array_equal(new.cov, old.cov)
    rows = np.searchsorted(after.embeddings("content")[0], before.embeddings("content")[0])
    np.testing.assert_array_equal(new.groups[rows], old.groups)
    np.testing.assert_array_equal(new.work_var[rows], old.work_var)
    # the new work's group and terms are its own
    model = ContentModel.load(after.files / "content_model.npz")
    np.testing.assert_array_equal(new.groups, model.groups(after.embeddings("l_style")[1]))
    x = after.embeddings("content")[1].astype(np.float64)
    np.testing.assert_allclose(new.work_var, np.einsum("nd,de,ne->n", x, new.cov[0].astype(np.float64), x),
                               rtol=1e-4)
