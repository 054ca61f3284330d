"""Photographs as a medium of their own: the photograph model (artspace.medium), the content model's style groups
split by it, and `artspace fit-medium` / `artspace index --medium-model` end to end (generated images)."""

import shutil

import numpy as np
import pytest
from PIL import Image

from artspace.content_model import ContentModel, split_by_medium
from artspace.errors import ArtspaceError, InvalidOption
from artspace.medium import fit_logistic, load_model, model_for, photograph_logits, shipped_model
from artspace.spec import FeatureSpec


def _moments(n, shift, seed):
    """relu4_1-like moments (n × 1024, positive): two media differ in the log of a few channels' statistics."""
    rng = np.random.default_rng(seed)
    logs = rng.normal(0.0, 0.3, (n, 1024))
    logs[:, :16] += shift
    return np.exp(logs).astype(np.float32)


def test_the_photograph_model_is_a_logistic_regression_folded_into_one_linear_map():
    from sklearn.linear_model import LogisticRegression

    photos, paintings = _moments(60, 1.0, 0), _moments(80, -1.0, 1)
    model = fit_logistic(photos, paintings)
    assert model.dim == 1 and model.info["kind"] == "photograph model" and model.info["photographs"] == 60
    logits = photograph_logits(model, np.vstack([photos, paintings]))
    assert (logits[:60] > 0).all() and (logits[60:] < 0).all()
    assert model.info["cv_photographs_missed"] == 0 and model.info["cv_others_called_photographs"] == 0
    # the standardisation and the intercept folded into the map: the logit is sklearn's decision function
    x = np.log(np.vstack([photos, paintings]).astype(np.float64) + 1e-3)
    y = np.r_[np.ones(60), np.zeros(80)]
    m, s = x.mean(0), x.std(0) + 1e-6
    clf = LogisticRegression(C=model.info["C"], max_iter=5000).fit((x - m) / s, y)
    np.testing.assert_allclose(logits, clf.decision_function((x - m) / s), rtol=1e-3, atol=1e-3)
    with pytest.raises(InvalidOption, match="at least 5 photographs"):
        fit_logistic(photos[:3], paintings)


def test_the_shipped_photograph_model_fits_the_default_features_only(tmp_path):
    p = shipped_model()
    assert p is not None, "artspace/data/photograph_model.npz is missing from the package"
    assert p.mean.shape == (1024,) and p.info["size"] == 224 and p.info["weights"] == "original"
    assert p.info["photographs"] > 1000 and p.info["cv_others_called_photographs"] < 0.05
    assert model_for(FeatureSpec()) is p and model_for(FeatureSpec(size=64)) is None
    # a file made for other features, or no model at all, is refused with what to do
    p.save(tmp_path / "model.npz")
    with pytest.raises(InvalidOption, match="fit-medium --size 64"):
        model_for(FeatureSpec(size=64), tmp_path / "model.npz")
    np.savez(tmp_path / "other.npz", mean=np.zeros(3), components=np.zeros((3, 2)), info=np.array("{}"))
    with pytest.raises(ArtspaceError, match="not a photograph model"):
        load_model(tmp_path / "other.npz")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ArtspaceError, match="broken.npz"):
        load_model(tmp_path / "broken.npz")


def test_a_group_is_split_only_where_both_media_hold_enough_of_it():
    groups = np.repeat([0, 1, 2], [40, 40, 40])
    photographic = np.zeros(120, bool)
    photographic[:20] = True  # group 0: half photographs
    photographic[40:43] = True  # group 1: 3 of 40, below the share (and the least group)
    photographic[80:86] = True  # group 2: 6 of 40, enough works but below a share of 0.2
    table = split_by_medium(groups, photographic, minimum=4, share=0.2)
    np.testing.assert_array_equal(table, [[0, 1], [2, 2], [3, 3]])
    np.testing.assert_array_equal(split_by_medium(groups, photographic, minimum=4, share=0.1)[2], [3, 4])


def _photo_and_painting_collection(seed=0):
    """Two style clusters: drawings (tight), and photographs with realistic paintings (one cluster in style)."""
    rng = np.random.default_rng(seed)
    style = np.vstack([rng.normal(0, 1.0, (80, 4)), rng.normal(0, 0.2, (40, 4)) + 10.0]).astype(np.float32)
    photographic = np.zeros(120, bool)
    photographic[:40] = True
    desc = rng.random((120, 24)).astype(np.float32)
    desc[:40, :4] += 2.0  # what every photograph shares, whatever it depicts
    return style, photographic, desc


def test_style_groups_are_split_into_photographs_and_other_works(tmp_path):
    style, photographic, desc = _photo_and_painting_collection()
    medium = fit_logistic(_moments(10, 1.0, 0), _moments(10, -1.0, 1))
    model = ContentModel.fit(style, desc, groups=2, medium=medium, photographic=photographic)
    g = model.groups(style, photographic)
    assert len(model.centroids) == 3 and model.split is not None
    assert len(set(g[:40])) == 1 and len(set(g[40:80])) == 1 and len(set(g[80:])) == 1
    assert len({g[0], g[40], g[80]}) == 3  # photographs, paintings, drawings
    # each part less its own mean: the photographs' shared component is gone from their embeddings
    np.testing.assert_allclose(model.means[g[0]], desc[:40].mean(0), rtol=1e-4, atol=1e-5)
    # the same works without the split: photographs and paintings share one mean
    whole = ContentModel.fit(style, desc, groups=2)
    assert len(whole.centroids) == 2 and whole.split is None
    # an image from outside needs its photograph call; it joins its part of its nearest sampled work's group
    with pytest.raises(ValueError, match="photograph call"):
        model.assign(style[:1])
    assert model.assign(style[:1], np.array([False]))[0] == g[40]
    # saved and read back: the same groups, the same model
    model.save(tmp_path / "model.npz")
    back = ContentModel.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(back.groups(style.copy(), photographic.copy()), g)
    np.testing.assert_allclose(back.transform(style, desc, photographic), model.transform(style, desc, photographic),
                               rtol=1e-5, atol=1e-6)
    assert back.medium_fingerprint == model.medium_fingerprint and back.medium.info == medium.info
    # kept while the collection and the photograph model stay; fitted again with another model or none
    kept, refitted = ContentModel.update(back, style, desc, medium=medium, photographic=photographic)
    assert kept is back and not refitted
    other = fit_logistic(_moments(10, 2.0, 2), _moments(10, -2.0, 3))
    assert ContentModel.update(back, style, desc, medium=other, photographic=photographic)[1]
    assert ContentModel.update(back, style, desc)[1]
    # a few works of the drawings called photographs (6 of 40: the model's mistakes, below SPLIT_SHARE) split nothing
    mistaken = photographic.copy()
    mistaken[80:86] = True
    few = ContentModel.fit(style, desc, groups=2, medium=medium, photographic=mistaken)
    assert len(few.centroids) == 3 and len(set(few.groups(style, mistaken)[80:])) == 1
    # a collection with no photographs: checked, not split, and kept by the next update
    painted = ContentModel.fit(style, desc, groups=2, medium=medium, photographic=np.zeros(120, bool))
    assert painted.split is None and painted.medium is medium and len(painted.centroids) == 2
    assert painted.is_photograph(_moments(2, 1.0, 4)) is None
    assert ContentModel.update(painted, style, desc, medium=medium, photographic=np.zeros(120, bool))[0] is painted


def _textures(folder, kind, n, seed):
    """Generated 'photographs' (smooth light and fine noise) or 'paintings' (flat patches of a few colours)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        if kind == "photo":
            yy, xx = np.mgrid[0:64, 0:64] / 64.0
            base = np.stack([yy * rng.random(), xx * rng.random(), (yy + xx) / 2 * rng.random()], -1)
            img = np.clip(base * 200 + rng.normal(0, 12, (64, 64, 3)), 0, 255)
        else:
            img = np.repeat(np.repeat(rng.integers(0, 255, (4, 4, 3)), 16, 0), 16, 1).astype(float)
        Image.fromarray(img.astype(np.uint8)).save(folder / f"{kind}_{i:02d}.png")


def test_fit_medium_on_the_command_line_and_index_with_the_model(demo_catalog, tmp_path):
    from typer.testing import CliRunner

    from artspace.catalog import Catalog
    from artspace.cli import app

    _textures(tmp_path / "photos", "photo", 8, 0)
    _textures(tmp_path / "paintings", "painting", 8, 1)
    out = tmp_path / "medium.npz"
    r = CliRunner().invoke(app, ["fit-medium", str(tmp_path / "photos"), str(tmp_path / "paintings"), "-o", str(out),
                                 "--size", "64", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "8 photographs against 8 other images, 64 px" in r.output
    model = load_model(out)
    assert model.info["size"] == 64 and model.info["training_accuracy"] == 1.0
    again = CliRunner().invoke(app, ["fit-medium", str(tmp_path / "photos"), str(tmp_path / "paintings"), "-o",
                                     str(out), "--size", "64"])
    assert again.exit_code == 1 and "never overwrites" in again.output
    empty = tmp_path / "empty"
    empty.mkdir()
    none = CliRunner().invoke(app, ["fit-medium", str(empty), str(tmp_path / "paintings"), "-o",
                                    str(tmp_path / "x.npz"), "--size", "64"])
    assert none.exit_code == 1 and "holds no images" in none.output
    # the demo (64 px) indexed with it: the model is recorded, the style space untouched, an image from outside
    # is asked about through it, and the next run publishes nothing
    root = shutil.copytree(demo_catalog.root, tmp_path / "demo")
    before = Catalog.open(root)
    assert before.manifest["content_groups"] == "ward"  # the shipped model is for 224 px: not used at 64
    r = CliRunner().invoke(app, ["index", str(root), "--medium-model", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    after = Catalog.open(root)
    assert after.generation == before.generation + 1 and after.manifest["content_groups"] == "ward+photographs"
    assert ContentModel.load(after.files / "content_model.npz").medium_fingerprint is not None
    np.testing.assert_array_equal(after.embeddings("style")[1], before.embeddings("style")[1])
    outside = after.similar(str(tmp_path / "photos" / "photo_00.png"), by="content", k=3)
    assert len(outside) == 3
    assert CliRunner().invoke(app, ["index", str(root), "--quiet"]).exit_code == 0
    assert Catalog.open(root).generation == after.generation
    wrong = CliRunner().invoke(app, ["index", str(root), "--medium-model", str(tmp_path / "photos" / "photo_00.png"),
                                     "--quiet"])
    assert wrong.exit_code == 1 and "photo_00.png" in wrong.output


def test_a_catalog_published_before_photographs_were_set_apart_is_published_again(demo_catalog, tmp_path,
                                                                                  monkeypatch):
    import artspace.medium as medium_module
    from artspace.catalog import Catalog, index

    root = shutil.copytree(demo_catalog.root, tmp_path / "demo")
    assert not index(root, quiet=True).published
    # a photograph model shipped for these features (64 px): the catalog was published without it
    shipped = fit_logistic(_moments(10, 1.0, 0), _moments(10, -1.0, 1), info={"size": 64, "weights": "original"})
    monkeypatch.setattr(medium_module, "shipped_model", lambda: shipped)
    rep = index(root, quiet=True)
    assert rep.published and rep.extracted == 0 and any("photographs and other works" in n for n in rep.notes)
    cat = Catalog.open(root)
    assert cat.manifest["content_groups"] == "ward+photographs"
    assert ContentModel.load(cat.files / "content_model.npz").medium_fingerprint is not None
    assert not index(root, quiet=True).published  # published once, not at every run


def test_an_index_run_splits_a_style_group_and_keeps_the_split_as_works_are_added(tmp_path, monkeypatch):
    import artspace.content_model
    from artspace.catalog import Catalog, index
    from artspace.catalog.generation import CONTENT_STATS
    from artspace.content_model import ContentStats
    from artspace.medium import fit_medium

    _textures(tmp_path / "train" / "photos", "photo", 8, 0)
    _textures(tmp_path / "train" / "paintings", "painting", 8, 1)
    medium = tmp_path / "medium.npz"
    fit_medium(tmp_path / "train" / "photos", tmp_path / "train" / "paintings", medium, size=64, device="cpu")
    root = tmp_path / "collection"
    _textures(root / "photos", "photo", 12, 2)
    _textures(root / "paintings", "painting", 12, 3)
    # one style group for the whole collection, as photographs and realistic paintings often are
    monkeypatch.setattr(artspace.content_model, "choose_groups", lambda *a, **k: 1)
    index(root, spec=FeatureSpec(size=64), medium_model=medium, quiet=True)
    cat = Catalog.open(root)
    model = ContentModel.load(cat.files / "content_model.npz")
    assert model.split is not None and len(model.centroids) == 2
    photo = cat.works.set_index("id").loc[cat.embeddings("content")[0], "path"].str.startswith("photos/").to_numpy()
    groups = ContentStats.load(cat.files / CONTENT_STATS).groups
    assert len(set(groups[photo])) == 1 and len(set(groups[~photo])) == 1 and groups[photo][0] != groups[~photo][0]
    # a new photograph: the model is kept (no clustering), and the new work joins the photographs' part
    _textures(tmp_path / "more", "photo", 1, 4)
    shutil.copy(tmp_path / "more" / "photo_00.png", root / "photos" / "new.png")
    rep = index(root, quiet=True)
    assert rep.added == 1 and not any("fitted again" in n for n in rep.notes)
    cat = Catalog.open(root)
    assert ContentModel.load(cat.files / "content_model.npz").medium_fingerprint == model.medium_fingerprint
    new_id = int(cat.works.set_index("path").loc["photos/new.png", "id"])
    row = int(np.searchsorted(cat.embeddings("content")[0], new_id))
    assert ContentStats.load(cat.files / CONTENT_STATS).groups[row] == groups[photo][0]
    # an image from outside is asked about through the same calls: its nearest works by content
    found = cat.similar(str(tmp_path / "more" / "photo_00.png"), by="content", k=3)
    assert found["path"].tolist()[0] == "photos/new.png"
