"""Taught style spaces and attributions: fitted on the demo catalog's texture labels (or on synthetic blobs), stored
as a space of the catalog, searched by every command, refused once stale."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from artspace.analysis.teaching import _neighbours, calibration_table, fit_projection
from artspace.catalog import Catalog, index
from artspace.cli import app
from artspace.errors import InvalidOption, StaleSpace
from artspace.spaces import space

runner = CliRunner()


@pytest.fixture
def demo(demo_catalog, tmp_path) -> Catalog:
    """A writable copy of the indexed demo collection (3 textures x 3 shapes x 2 variants)."""
    root = tmp_path / "demo"
    shutil.copytree(demo_catalog.root, root)
    return Catalog.open(root)


def _hide(cat: Catalog, column: str, every: int = 3, new: str = "half") -> pd.Series:
    """Store column *new*: *column*'s labels with every *every*-th work's left out; returns the hidden truth."""
    s = cat.works.set_index("id")[column].copy()
    hidden = s.iloc[::every].copy()
    s.iloc[::every] = None
    cat.update_columns(pd.DataFrame({new: s}), source="test: hide labels")
    return hidden


# ---- the learner ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["lda", "nca", "mlp"])
def test_fit_projection_brings_each_group_together(blobs, method):
    works, X = blobs(groups=3, per=30, dim=12, sep=1.0, seed=1)
    noise = np.random.default_rng(0).normal(size=(len(X), 20)) * 3.0  # loud directions no group follows
    X = np.c_[X, noise]
    y = pd.factorize(works["g"])[0]
    proj = fit_projection(X, y, method=method, pca=None, shrinkage=0.3)
    rows = np.arange(len(X))
    raw = (y[_neighbours(X, rows, 5)] == y[:, None]).mean()
    taught = (y[_neighbours(proj.transform(X), rows, 5)] == y[:, None]).mean()
    assert taught > raw + 0.1 and taught > 0.9


def test_an_mlp_head_is_saved_and_read_back_exactly(blobs, tmp_path):
    from artspace.contrastive import MLPProjection, load_projection
    from artspace.discriminant import LinearProjection

    works, X = blobs(groups=3, per=20, dim=8, seed=2)
    y = pd.factorize(works["g"])[0]
    head = fit_projection(X, y, method="mlp", steps=20, seed=3)
    again = fit_projection(X, y, method="mlp", steps=20, seed=3)
    np.testing.assert_array_equal(head.transform(X), again.transform(X))  # deterministic for a seed
    np.testing.assert_allclose(np.linalg.norm(head.transform(X), axis=1), 1.0, rtol=1e-5)
    head.save(tmp_path / "head.npz")
    back = load_projection(tmp_path / "head.npz")
    assert isinstance(back, MLPProjection) and back.info["steps"] == 20
    np.testing.assert_allclose(back.transform(X), head.transform(X), rtol=1e-4, atol=1e-5)
    lda = fit_projection(X, y, method="lda", pca=None)
    lda.save(tmp_path / "lda.npz")
    assert isinstance(load_projection(tmp_path / "lda.npz"), LinearProjection)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(Exception, match="bad.npz.*refit it"):
        load_projection(tmp_path / "bad.npz")


def test_calibration_table_bins_the_top_probability():
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.55, 0.45], [0.3, 0.7]])
    t = calibration_table(probs, np.array([0, 1, 0, 1]), bins=10)
    assert t["works"].sum() == 4
    row = t[t["bin"] == "0.9-1.0"].iloc[0]
    assert row["works"] == 2 and row["accuracy"] == 0.5 and row["confidence"] == pytest.approx(0.925)


def test_a_taught_space_is_named_in_the_one_table_of_spaces():
    sp = space("taught:movement")
    assert sp.taught and sp.metric == "l2" and not sp.relative and sp.key == "taught_movement"
    assert not space("style").taught and space("style").key == "style"
    with pytest.raises(InvalidOption, match="taught space's name"):
        space("taught:../etc")
    with pytest.raises(InvalidOption, match="taught:NAME"):
        space("movement")


# ---- teach ----------------------------------------------------------------------------------------------------------


def test_teach_stores_a_space_that_every_command_searches(demo, tmp_path):
    before = {by: demo.similar("dots/star_0.png", by=by, k=5) for by in ("style", "l_style", "content")}
    result = demo.teach("texture", name="tex", folds=3, out=tmp_path / "report")
    for by, table in before.items():  # the untaught spaces do not change
        pd.testing.assert_frame_equal(demo.similar("dots/star_0.png", by=by, k=5), table)
    assert result.space == "taught:tex" and demo.generation == result.generation
    assert set(result.labels) == {"stripes", "dots", "checker"}
    f = result.figures.set_index("label")
    assert f.loc["all", "works"] == 18 and list(f.index[:-1]) == result.labels
    for col in ("taught_precision", "taught_accuracy", "raw_precision", "raw_accuracy"):
        assert (f[f"{col}_lo"] <= f[col]).all() and (f[col] <= f[f"{col}_hi"]).all()
    # each texture has 6 works, so precision@10 is at most 5/10; textures are what a Gram matrix sees best
    assert f.loc["all", "taught_precision"] >= 0.45 and f.loc["all", "taught_accuracy"] >= 0.8
    # the raw space votes among 5 neighbours (one fewer than a texture's works), where textures are told apart too
    assert result.vote_k == 5 and "raw style 5-NN vote" in result.summary() and f.loc["all", "raw_accuracy"] >= 0.8
    assert result.confusion.to_numpy().sum() == 18
    assert {p.name for p in result.files} >= {"teach-tex-figures.csv", "teach-tex-confusion.png",
                                              "teach-tex-confusion.csv", "teach-tex-calibration.png"}
    entry = demo.taught_space("taught:tex")
    assert entry["label_column"] == "texture" and entry["method"] == result.method
    assert entry["cross_validated"]["taught_precision"] == pytest.approx(f.loc["all", "taught_precision"], abs=1e-6)
    assert demo.taught_spaces == {"taught:tex": None}

    near = demo.similar("dots/star_0.png", by="taught:tex", k=4)
    assert (near["texture"] == "dots").mean() >= 0.75
    assert (near["distance"].diff().dropna() >= 0).all() and near["percentile"].between(0, 100).all()
    ids, X = demo.embeddings("taught:tex")
    assert X.shape == (18, entry["dim"])
    q, wid = demo.query_vector("dots/star_0.png", by="taught:tex")
    outside = demo.vectors([demo.root / "dots/star_0.png"], by="taught:tex")[0]
    np.testing.assert_allclose(outside, q, rtol=1e-3, atol=1e-3)  # an image is placed as its work was
    d = demo.distance("dots/star_0.png", "dots/star_1.png")["taught:tex"]
    near_d = demo.similar("dots/star_0.png", by="taught:tex", k=17).set_index("path").loc["dots/star_1.png"]
    assert d["distance"] == pytest.approx(near_d["distance"], rel=1e-5)
    _, nbr, dist = demo.neighbours("taught:tex", k=3)
    assert nbr.shape == (18, 3) and np.isfinite(dist).all()

    from artspace.analysis import cluster, export, layout

    c = cluster(demo, by="taught:tex", k=3, label_column="texture")
    assert c.purity >= 0.8 and c.column == "cluster_taught_tex"
    assert "cluster_taught_tex" in Catalog.open(demo.dir).works.columns
    xy = layout(demo, by="taught:tex", method="pca")
    assert len(xy) == 18
    table = export(demo, tmp_path / "works.csv", neighbors=2, by=["taught:tex"])
    assert "taught_tex_neighbors" in table.columns
    assert demo.taught_spaces == {"taught:tex": None}  # storing analysis columns leaves it current
    every = export(Catalog.open(demo.dir), tmp_path / "every.csv", neighbors=2)  # the default: every current space
    assert {f"{b}_neighbors" for b in ("style", "l_style", "content", "taught_tex")} <= set(every.columns)


def test_a_taught_space_is_refused_once_its_labels_change_and_refitted_by_teach(demo):
    demo.teach("texture", name="tex", folds=3)
    labels = demo.works.set_index("id")["texture"].copy()
    labels.iloc[0] = "checker" if labels.iloc[0] != "checker" else "dots"
    demo.update_columns(pd.DataFrame({"texture": labels}), source="test: a scholar corrects a label",
                        replace_metadata=True)
    assert "labels in column 'texture' changed" in demo.taught_spaces["taught:tex"]
    with pytest.raises(StaleSpace, match=r"artspace teach --label-column texture --name tex --catalog \S+` refits it"):
        demo.similar(0, by="taught:tex")
    with pytest.raises(StaleSpace):
        demo.embeddings("taught:tex")
    assert "taught:tex" not in demo.distance(0, 1)  # the stale space is left out, the others answer
    r = runner.invoke(app, ["similar", "0", "-k", "1", "--catalog", str(demo.dir)])
    assert r.exit_code == 0 and "note: the taught space taught:tex is stale" in r.output
    demo.teach("texture", name="tex", folds=3)
    assert demo.taught_spaces == {"taught:tex": None}
    assert len(demo.similar(0, by="taught:tex", k=3)) == 3


def test_unteach_removes_a_taught_space_and_keeps_everything_else(demo):
    demo.teach("texture", name="tex", folds=3)
    demo.teach("shape", name="form", folds=3)
    before = demo.generation
    style = demo.similar(0, by="style", k=3)["id"].tolist()
    assert demo.unteach("taught:tex") == before + 1 and demo.generation == before + 1
    assert demo.taught_spaces == {"taught:form": None}
    assert not any(f.startswith("taught-tex") for f in demo.manifest["files"])
    assert any(f.startswith("taught-form") for f in demo.manifest["files"])
    with pytest.raises(InvalidOption, match="no taught space"):
        demo.similar(0, by="taught:tex")
    assert demo.similar(0, by="style", k=3)["id"].tolist() == style  # the rest answers as before
    assert len(demo.similar(0, by="taught:form", k=3)) == 3
    with pytest.raises(InvalidOption, match=r"no taught space taught:tex \(taught spaces: taught:form\)"):
        demo.unteach("tex")
    r = runner.invoke(app, ["unteach", "form", "--catalog", str(demo.dir)])
    assert r.exit_code == 0 and "removed taught:form" in r.output and "no taught space" in r.output, r.output
    r = runner.invoke(app, ["unteach", "form", "--catalog", str(demo.dir)])
    assert r.exit_code == 1 and r.output.count("Error:") == 1 and "taught spaces: none" in r.output


def test_index_carries_a_taught_space_over_and_marks_it_stale_when_works_change(demo):
    demo.teach("texture", name="tex", folds=3)
    root = demo.root
    Image.open(root / "dots/star_0.png").transpose(Image.FLIP_LEFT_RIGHT).save(root / "dots/star_9.png")
    index(root, quiet=True, batch_size=4)  # the catalog's own settings and metadata
    cat = Catalog.open(root)
    assert "taught:tex" in cat.taught_spaces
    assert "works were added, removed or changed" in cat.taught_spaces["taught:tex"]
    with pytest.raises(StaleSpace, match="refits it"):
        cat.similar(0, by="taught:tex")


def test_teach_names_the_labels_left_out_and_refuses_what_it_cannot_learn(demo):
    labels = demo.works.set_index("id")["texture"].copy()
    labels.iloc[0] = "lonely"
    demo.update_columns(pd.DataFrame({"one_odd": labels}), source="test")
    with pytest.warns(UserWarning, match=r"'lonely' \(1\)"):
        result = demo.teach("one_odd", folds=3)
    assert result.left_out == {"lonely": 1} and "lonely" not in result.labels
    assert "warning:" in result.summary()
    with pytest.raises(InvalidOption, match=r"no column 'nope' in the works table .*; columns: .*texture"):
        demo.teach("nope")
    with pytest.raises(InvalidOption, match=r"has 0 label\(s\) with at least 7 works \(checker: 6, .*at least 2 "
                                            r"labels of at least 7 works each"):
        demo.teach("texture", min_works=7)
    with pytest.raises(InvalidOption, match="methods must be among lda, nca, mlp"):
        demo.teach("texture", methods=["svm"])
    # labels that differ only in case or spaces are named; more than 8 labels in an error end with "… N more"
    spelt = labels.where(labels != "checker", "Checker ").where(labels != "lonely", "checker")
    demo.update_columns(pd.DataFrame({"spelt": spelt, "many": [f"l{i}" for i in range(len(labels))]},
                                     index=labels.index), source="test")
    with pytest.warns(UserWarning, match=r"differ only in case or spaces .*'Checker ' / 'checker'"):
        demo.teach("spelt", folds=3, methods=["lda"])
    with pytest.raises(InvalidOption, match=rf", … {len(labels) - 8} more\); teaching needs"):
        demo.teach("many")
    with pytest.raises(InvalidOption, match="holds no taught space 'other'.*artspace teach"):
        demo.similar(0, by="taught:other")


def test_teach_with_a_group_column_never_splits_a_group(demo):
    result = demo.teach("texture", name="grouped", group_column="shape", folds=3)
    assert result.folds == 3 and demo.taught_space("taught:grouped")["group_column"] == "shape"


# ---- attribute ------------------------------------------------------------------------------------------------------


def test_attribute_gives_calibrated_labels_and_labelled_evidence(demo, tmp_path):
    hidden = _hide(demo, "texture")
    demo.teach("half", folds=3, min_works=3)
    table = demo.attribute("half", evidence=3, sheet=tmp_path / "sheets")
    assert sorted(table["id"]) == sorted(hidden.index)
    p = table[["p_1", "p_2", "p_3"]].to_numpy()
    assert (np.diff(p, axis=1) <= 1e-12).all() and (p.sum(1) <= 1 + 1e-9).all() and (p > 0).all()
    assert (table["label_1"].to_numpy() == hidden.loc[table["id"]].to_numpy()).mean() >= 0.8
    labelled = set(demo.works.loc[demo.works["half"].notna(), "id"])
    for ev, labs in zip(table["evidence"], table["evidence_labels"]):
        assert len(ev) == 3 and set(ev) <= labelled
        assert labs == demo.works.set_index("id").loc[ev, "half"].tolist()
    assert len(table.attrs["files"]) == len(table) and all(f.is_file() for f in table.attrs["files"])
    with pytest.raises(InvalidOption, match="was taught from column 'half', not 'texture'"):
        demo.attribute("texture", name="half")
    demo.teach("texture", folds=3)  # every work labelled: an empty table, and a warning that says why
    with pytest.warns(UserWarning, match="every work has a label in column 'texture': nothing to attribute"):
        assert demo.attribute("texture").empty


# ---- the command line ------------------------------------------------------------------------------------------------


def test_cli_teach_then_attribute_then_similar(demo, tmp_path):
    _hide(demo, "texture")
    c = str(demo.dir)
    r = runner.invoke(app, ["teach", "--label-column", "half", "--name", "tex", "--min-works", "3", "--folds", "3",
                            "-o", str(tmp_path / "report"), "--catalog", c])
    assert r.exit_code == 0, r.output
    assert "same-label precision@10, cross-validated" in r.output and "raw style" in r.output
    assert (tmp_path / "report" / "teach-tex-confusion.png").is_file()
    assert Catalog.open(c).taught_space("taught:tex")["label_column"] == "half"
    r = runner.invoke(app, ["attribute", "--name", "tex", "--format", "json", "--catalog", c])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert len(rows) == 6 and {"label_1", "p_1", "evidence"} <= set(rows[0])
    r = runner.invoke(app, ["attribute", "--label-column", "half", "--name", "tex", "--format", "csv", "--catalog",
                            c])
    assert r.exit_code == 0 and r.stdout.splitlines()[0].startswith("id,path,label_1,p_1")
    r = runner.invoke(app, ["similar", "0", "--by", "taught:tex", "-k", "2", "--catalog", c])
    assert r.exit_code == 0 and "distance" in r.output
    r = runner.invoke(app, ["teach", "--label-column", "nope", "--catalog", c])
    assert r.exit_code == 1 and r.output.splitlines()[-1].startswith("Error: no column 'nope'")
    r = runner.invoke(app, ["similar", "0", "--by", "taught:absent", "--catalog", c])
    assert r.exit_code == 1 and "artspace teach --label-column COLUMN --name absent" in r.output


# ---- reference axes -------------------------------------------------------------------------------------------------


def _sq(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    return ((z[:, None] - z[None]) ** 2).sum(-1)


def test_reference_axes_are_folded_into_a_map_of_the_embedding_alone(blobs, tmp_path):
    from artspace.contrastive import load_projection

    works, X = blobs(groups=3, per=20, dim=10, sep=1.0, seed=4)
    y = pd.factorize(works["g"])[0]
    axes = np.random.default_rng(0).normal(size=(10, 2))
    wide = np.c_[X, 0.5 * X @ axes]  # what the learner sees: each row and its weighted reference coordinates
    lda = fit_projection(X, y, method="lda", pca=None, shrinkage=0.3, reference=0.5, axes=axes)
    direct = fit_projection(wide, y, method="lda", pca=None, shrinkage=0.3)
    assert lda.components.shape[0] == 10 and lda.info["reference"] == 0.5
    np.testing.assert_allclose(_sq(lda.transform(X)), _sq(direct.transform(wide)), rtol=1e-3, atol=1e-4)

    head = fit_projection(X, y, method="mlp", steps=20, seed=1, reference=0.5, axes=axes)
    plain = fit_projection(wide, y, method="mlp", steps=20, seed=1)
    z = head.transform(X)
    assert z.shape == (60, 2 + plain.dim) and head.mean.shape == (10,)
    np.testing.assert_allclose(z[:, 2:] / head.head_weight, plain.transform(wide), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(_sq(z[:, :2]), _sq(X @ axes) * head.skip[0, 0] ** 2 / axes[0, 0] ** 2, rtol=1e-3)
    for part in (z[:, :2], z[:, 2:]):  # each part's median squared distance between two works is 1
        d = _sq(part)
        assert np.median(d[np.triu_indices(60, 1)]) == pytest.approx(1.0, rel=1e-3)
    head.save(tmp_path / "head.npz")
    back = load_projection(tmp_path / "head.npz")
    assert back.dim == head.dim and back.info["reference"] == 0.5
    np.testing.assert_allclose(back.transform(X), z, rtol=1e-4, atol=1e-5)


def _manifest(layers=("relu4_1", "relu5_1"), weights="original", seed=150806576) -> dict:
    return {"spec": {"signature_layers": list(layers), "weights": weights}, "spaces": {"style": {"sketch_seed": seed}}}


def test_reference_axes_are_fitted_saved_and_refused_where_they_do_not_apply(tmp_path):
    from artspace.errors import ArtspaceError
    from artspace.reference import ReferenceAxes, axes_for, fit_reference

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    centres = np.zeros((3, 300))
    centres[:, :5] = 2.0 * rng.normal(size=(3, 5))
    x = rng.normal(size=(120, 300)) + centres[y]  # three labels along 5 of the 300 numbers of a "sketch"
    info = {"signature_layers": ["relu4_1", "relu5_1"], "weights": "original", "sketch_seed": 150806576}
    axes = fit_reference(x, np.array(["a", "b", "c"])[y], name="three labels", info=info, folds=3)
    assert axes.dim == 2 and axes.info["labels"] == ["a", "b", "c"] and axes.info["pca"] <= 79
    # each held-out fold (40 works, 13 or 14 a label) is searched among itself
    assert axes.info["cv_precision_at_10"] > 0.75 and len(axes.info["cv_grid"]) >= 4
    assert axes.info["cv_search"] == "held-out works among themselves" and axes.info["cv_chance"] == pytest.approx(
        39 / 119, abs=1e-4)
    # with 3 works a label in each held-out fold, precision@10 among themselves could not pass 0.2: each held-out
    # work is searched among all the others instead, and the score says what the axes do
    few = np.repeat(np.arange(3), 9)
    small = fit_reference(rng.normal(size=(27, 300)) + centres[few], np.array(["a", "b", "c"])[few], name="few",
                          info=info, folds=3)
    assert small.info["cv_search"] == "held-out works among all the others"
    assert small.info["cv_precision_at_10"] > 1.5 * small.info["cv_chance"]
    raw = (y[np.argsort(_sq(x) + np.diag(np.full(120, np.inf)), 1)[:, :10]] == y[:, None]).mean()
    z = (x - axes.mean) @ axes.components
    taught = (y[np.argsort(_sq(z) + np.diag(np.full(120, np.inf)), 1)[:, :10]] == y[:, None]).mean()
    assert taught > 0.95 and raw < 0.7
    axes.save(tmp_path / "axes.npz")
    back = ReferenceAxes.load(tmp_path / "axes.npz")
    np.testing.assert_allclose(back.components, axes.components, rtol=2e-3, atol=1e-3 * np.abs(axes.components).max())
    assert back.info == axes.info

    assert back.matches(_manifest()) is None
    assert "signature layers ['relu3_1'] (the axes need ['relu4_1', 'relu5_1'])" in back.matches(_manifest(["relu3_1"]))
    assert axes_for(_manifest(), tmp_path / "axes.npz")[0].info["name"] == "three labels"
    with pytest.raises(InvalidOption, match=r"axes.npz do not apply to this catalog: the catalog's sketch seed 7"):
        axes_for(_manifest(seed=7), tmp_path / "axes.npz")
    assert axes_for(_manifest(), False) == (None, "no reference axes (turned off)")
    none, note = axes_for(_manifest(seed=7), True)  # the shipped axes: left out, silently, where they do not apply
    assert none is None and note.startswith("no reference axes (")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ArtspaceError, match="other.npz is not a file of reference axes"):
        ReferenceAxes.load(tmp_path / "other.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ArtspaceError, match="cannot read the reference axes .*bad.npz"):
        ReferenceAxes.load(tmp_path / "bad.npz")


def _demo_axes(demo: Catalog, path, **info):
    """Reference axes for the demo catalog: two random directions of its own principal axes of the sketch."""
    from artspace.catalog.generation import PROJECTIONS
    from artspace.projection import StyleProjection
    from artspace.reference import ReferenceAxes

    proj = StyleProjection.load(demo.files / PROJECTIONS["style"])
    r = np.random.default_rng(1).normal(size=(proj.dim, 2))
    axes = ReferenceAxes(mean=np.zeros(proj.components.shape[1]), components=proj.components.T.astype(np.float64) @ r,
                         info={"name": "demo axes", "signature_layers": demo.manifest["spec"]["signature_layers"],
                               "weights": demo.manifest["spec"]["weights"],
                               "sketch_seed": demo.manifest["spaces"]["style"]["sketch_seed"], **info})
    axes.save(path)
    return path


def test_teach_offers_reference_axes_beside_its_other_settings(demo, tmp_path, monkeypatch):
    from artspace.analysis import teaching

    path = _demo_axes(demo, tmp_path / "axes.npz")
    result = demo.teach("texture", name="tex", folds=3, reference=path)
    with_ref = result.candidates[result.candidates["reference"].notna()]
    assert len(with_ref) == len(teaching.REFERENCE_SETTINGS) and "reference axes: demo axes" in result.summary()
    nca = demo.teach("texture", name="tex4", folds=3, methods=["nca"], reference=path)
    # the candidates table has the same columns whatever the methods (a report folder takes the next run's report)
    assert nca.candidates["reference"].isna().all() and "offered to lda and mlp only" in nca.summary()
    off = demo.teach("texture", name="tex2", folds=3, reference=False)
    assert off.candidates["reference"].isna().all() and "no reference axes (turned off)" in off.summary()
    assert str(off.candidates["pca"].dtype) == "Int64"  # whole numbers, empty where a method has none
    with pytest.raises(InvalidOption, match="do not apply to this catalog"):
        demo.teach("texture", name="tex3", reference=_demo_axes(demo, tmp_path / "other.npz", weights="other"))

    # only the reference settings of the head to choose from: the space stored is the folded head with its skip
    monkeypatch.setattr(teaching, "STEPS", ())
    result = demo.teach("texture", name="ref", folds=3, methods=["mlp"], reference=path)
    assert result.settings["reference"] == 0.3 and demo.taught_space("taught:ref")["settings"]["reference"] == 0.3
    ids, X = demo.embeddings("taught:ref")
    assert X.shape == (18, 2 + 32)
    q, wid = demo.query_vector("dots/star_0.png", by="taught:ref")
    outside = demo.vectors([demo.root / "dots/star_0.png"], by="taught:ref")[0]
    np.testing.assert_allclose(outside, q, rtol=1e-3, atol=1e-3)  # an image is placed as its work was
    near = demo.similar("dots/star_0.png", by="taught:ref", k=4)
    assert (near["texture"] == "dots").mean() >= 0.75


def test_cli_teach_takes_reference_axes_or_none(demo, tmp_path):
    path = _demo_axes(demo, tmp_path / "axes.npz")
    c = str(demo.dir)
    r = runner.invoke(app, ["teach", "--label-column", "texture", "--folds", "3", "--reference", str(path),
                            "-o", str(tmp_path / "a"), "--catalog", c])
    assert r.exit_code == 0 and "reference axes: demo axes" in r.output, r.output
    r = runner.invoke(app, ["teach", "--label-column", "texture", "--folds", "3", "--no-reference",
                            "-o", str(tmp_path / "b"), "--catalog", c])
    assert r.exit_code == 0 and "no reference axes (turned off)" in r.output, r.output
    r = runner.invoke(app, ["teach", "--label-column", "texture", "--reference", str(path), "--no-reference",
                            "--catalog", c])
    assert r.exit_code == 1 and "give --reference FILE or --no-reference, not both" in r.output


def test_cli_fit_reference_fits_axes_on_a_catalog_that_teach_then_takes(demo, tmp_path):
    from artspace.reference import ReferenceAxes

    c = str(demo.dir)
    out = tmp_path / "textures.npz"
    r = runner.invoke(app, ["fit-reference", "--label-column", "texture", "-o", str(out), "--catalog", c])
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output and "2 axes separating 3 labels of column 'texture' (18 works" in r.output
    axes = ReferenceAxes.load(out)
    assert axes.info["labels"] == ["checker", "dots", "stripes"] and axes.matches(demo.manifest) is None
    assert axes.components.shape == (32768, 2)
    # the axes separate the textures they were fitted on, seen through the catalog's own stored embedding
    from artspace.catalog.generation import PROJECTIONS
    from artspace.projection import StyleProjection

    ids, X = demo.embeddings("style")
    z = X @ axes.on_embedding(StyleProjection.load(demo.files / PROJECTIONS["style"]))
    y = demo.works.set_index("id").loc[ids, "texture"].to_numpy()
    assert (y[_neighbours(z, np.arange(18), 5)] == y[:, None]).mean() >= 0.9
    r = runner.invoke(app, ["teach", "--label-column", "texture", "--folds", "3", "--reference", str(out),
                            "-o", str(tmp_path / "r"), "--catalog", c])
    assert r.exit_code == 0 and "reference axes: texture" in r.output, r.output
    r = runner.invoke(app, ["fit-reference", "--label-column", "texture", "-o", str(out), "--catalog", c])
    assert r.exit_code == 1 and "exists; artspace never overwrites a file" in r.output
    r = runner.invoke(app, ["fit-reference", "--label-column", "shape", "--min-works", "7", "-o",
                            str(tmp_path / "x.npz"), "--catalog", c])
    assert r.exit_code == 1 and "reference axes need at least 2: label more works" in r.output
