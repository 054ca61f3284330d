"""The content space: the multi-layer descriptor, the content model's PCA and learnt projection, the shipped
projection, and a pastiche whose content neighbours share its photograph's subject (generated images)."""

import numpy as np
import pytest
import torch

from artspace.content import load_projection, projection_for, shipped_projection
from artspace.discriminant import LinearProjection, fisher
from artspace.errors import ArtspaceError, InvalidOption
from artspace.features import content_descriptor
from artspace.content_model import ContentModel
from artspace.spec import FeatureSpec


def test_descriptor_of_several_layers_weighs_each_layer_the_same_and_has_unit_length():
    a, b = torch.rand(2, 4, 3, 3), 100 * torch.rand(2, 6, 2, 2)
    d = content_descriptor([a, b])
    assert d.shape == (2, 10)
    torch.testing.assert_close(d.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(d[:, :4].norm(dim=1), d[:, 4:].norm(dim=1))
    torch.testing.assert_close(content_descriptor(a), content_descriptor([a]))


def test_spec_of_an_older_catalog_keeps_its_one_descriptor_layer():
    old = FeatureSpec().to_dict()
    del old["descriptor_layers"]
    old["descriptor_layer"] = "relu5_4"
    spec = FeatureSpec.from_dict(old)
    assert spec.descriptor_layers == ("relu5_4",) and spec.descriptor_dim == 512
    assert FeatureSpec().descriptor_dim == 1536
    assert FeatureSpec.from_dict(FeatureSpec().to_dict()).descriptor_layers == FeatureSpec().descriptor_layers


def _collection(seed=0, n=120, d=600, groups=3):
    rng = np.random.default_rng(seed)
    style = np.repeat(np.eye(groups) * 10, n // groups, axis=0) + rng.normal(0, 0.1, (n, groups))
    desc = rng.random((n, d)).astype(np.float32) + np.repeat(rng.random((groups, d)), n // groups, axis=0)
    return style.astype(np.float32), desc


def test_long_descriptors_are_reduced_by_pca_and_the_learnt_part_is_blended_by_its_weight(tmp_path):
    style, desc = _collection()
    learnt = fisher(desc, np.arange(len(desc)) // 4, dim=8, shrinkage=0.5)
    model = ContentModel.fit(style, desc, groups=3, learnt=learnt)
    assert model.reduce is not None and model.reduce.dim == min(ContentModel.REDUCE_TO, len(desc) - 1)
    assert ContentModel.fit(style, desc[:, :512], groups=3).reduce is None  # relu5_4 alone: as before
    e = model.transform(style, desc)
    assert e.shape == (len(desc), model.reduce.dim + 8)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    split = model.reduce.dim
    w = ContentModel.LEARNT_WEIGHT
    np.testing.assert_allclose((e[:, split:] ** 2).sum(1), w / (1 + w), rtol=1e-5)
    # 1 - cos is the weighted mean of the two parts' 1 - cos
    a = e[:, :split] / np.linalg.norm(e[:, :split], axis=1, keepdims=True)
    b = e[:, split:] / np.linalg.norm(e[:, split:], axis=1, keepdims=True)
    np.testing.assert_allclose(e[0] @ e[1], (a[0] @ a[1] + w * (b[0] @ b[1])) / (1 + w), rtol=1e-5)
    # each part has its style group's mean removed
    groups = model.groups(style)
    parts = model.parts(desc)
    np.testing.assert_allclose(parts[groups == 0].mean(0), model.means[0], rtol=1e-4, atol=1e-4)
    model.save(tmp_path / "m.npz")
    back = ContentModel.load(tmp_path / "m.npz")
    np.testing.assert_allclose(back.transform(style, desc), e, rtol=1e-4, atol=1e-5)
    assert back.learnt.info == learnt.info


def test_update_keeps_the_model_until_the_collection_or_the_learnt_projection_changes():
    style, desc = _collection(d=64)
    learnt = fisher(desc, np.arange(len(desc)) // 4, dim=4)
    model = ContentModel.fit(style, desc, groups=3, learnt=learnt)
    same, refitted = ContentModel.update(model, style[:-2], desc[:-2], learnt=learnt)
    assert same is model and not refitted
    other = fisher(desc, np.arange(len(desc)) // 6, dim=4)
    new, refitted = ContentModel.update(model, style, desc, learnt=other)
    assert refitted and new.learnt is other
    # a projection fitted on another descriptor is not applied
    alone, _ = ContentModel.update(None, style, desc, learnt=fisher(desc[:, :10], np.arange(len(desc)) // 4))
    assert alone.learnt is None and alone.dim == 64


def test_a_work_alone_in_its_style_group_keeps_its_content_and_a_tiny_collection_is_not_centred():
    rng = np.random.default_rng(0)
    style = np.vstack([rng.normal(0, 0.1, (9, 2)), [[50.0, 50.0]]]).astype(np.float32)  # one work far from the rest
    desc = rng.random((10, 32)).astype(np.float32)
    model = ContentModel.fit(style, desc, groups=2)
    assert len(model.centroids) == 1  # the lone work's cluster joined the other: it is no group of its own
    e = model.transform(style, desc)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)  # no empty embedding
    np.testing.assert_allclose(model.means[0], desc.mean(0), rtol=1e-5)  # centred on the ten works' mean
    # a model fitted before groups had a least size, with the lone work's own mean, is fitted again on update
    old = ContentModel(centroids=np.array([[0.0, 0.0], [50.0, 50.0]], np.float32),
                       means=np.zeros((2, 0), np.float32), fitted_on=10).with_means(style, desc)
    old.means[1] = desc[9]  # as before the rule: the lone work less its own mean, nothing
    assert old.centres_small_groups(style) and not model.centres_small_groups(style)
    new, refitted = ContentModel.update(old, style, desc)
    assert refitted and len(new.centroids) == 1
    # three works are too few for a mean of their hand: their cosines are the descriptors' own
    few = ContentModel.fit(style[:3], desc[:3])
    e = few.transform(style[:3], desc[:3])
    unit = desc[:3] / np.linalg.norm(desc[:3], axis=1, keepdims=True)
    np.testing.assert_allclose(e @ e.T, unit @ unit.T, rtol=1e-5)


def test_style_groups_are_wards_and_every_work_is_in_its_nearest_sampled_works_group(tmp_path, monkeypatch):
    from sklearn.cluster import AgglomerativeClustering, KMeans

    rng = np.random.default_rng(1)
    # a wide medium (paintings of every kind) and a tight one (drawings, all alike) of unequal extent
    style = np.vstack([rng.normal(0, 3.0, (150, 2)), rng.normal(0, 0.2, (50, 2)) + [12.0, 0.0]]).astype(np.float32)
    desc = rng.random((200, 16)).astype(np.float32)
    model = ContentModel.fit(style, desc, groups=2)
    g = model.groups(style)
    assert len(set(g[:150])) == 1 and len(set(g[150:])) == 1 and g[0] != g[150]  # each medium one group
    # k-means, which prefers groups of equal extent, cuts the wide medium in two instead
    km = KMeans(2, n_init=4, random_state=0).fit_predict(style.astype(np.float64))
    assert len(set(km[:150])) == 2
    ward = AgglomerativeClustering(2, linkage="ward").fit_predict(style.astype(np.float64))
    assert np.array_equal(g == g[0], ward == ward[0])
    np.testing.assert_allclose(model.centroids[g[150]], style[150:].mean(0), rtol=1e-5)
    # saved and read back: the same groups, and an image from outside joins its nearest sampled work's group
    model.save(tmp_path / "model.npz")
    back = ContentModel.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(back.groups(style.copy()), g)
    assert back.assign(np.array([[11.0, 1.0]], np.float32))[0] == g[150] and not back.nearest_centroid_groups
    # a larger collection: the groups are fitted on a sample, and every work takes its nearest sampled work's group
    monkeypatch.setattr(ContentModel, "GROUP_SAMPLE", 60)
    sampled = ContentModel.fit(style, desc, groups=2)
    assert sampled.sample.shape == (60, 2)
    nearest = ((style[:, None, :] - sampled.sample[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(sampled.groups(style), sampled.sample_groups[nearest])
    # the groups counted while fitting are the ones the publication asks for next, even of a memory-mapped array (at
    # a million works each look-up of every work's nearest sampled work costs about a minute)
    np.save(tmp_path / "style.npy", style)
    mapped = np.load(tmp_path / "style.npy", mmap_mode="r")
    looked_up, assign = [], ContentModel.assign
    monkeypatch.setattr(ContentModel, "assign", lambda m, s, p=None: looked_up.append(len(s)) or assign(m, s, p))
    fitted = ContentModel.fit(mapped, desc, groups=2)
    fitted.transform(mapped, desc)
    found = fitted.groups(mapped)
    assert np.array_equal(found == found[0], g == g[0])  # the two media, as before
    assert looked_up == []


def test_a_content_model_of_k_means_groups_is_fitted_again():
    style, desc = _collection()
    old = ContentModel(centroids=(np.eye(3) * 10).astype(np.float32), means=np.zeros((3, 0), np.float32),
                       fitted_on=len(style)).with_means(style, desc)  # as saved before Ward's groups: no sample
    assert old.nearest_centroid_groups
    new, refitted = ContentModel.update(old, style, desc)
    assert refitted and new.sample is not None and not new.nearest_centroid_groups
    kept, refitted = ContentModel.update(new, style[:-2], desc[:-2])
    assert kept is new and not refitted


def test_the_shipped_projection_fits_the_default_descriptor():
    p = shipped_projection()
    assert p is not None, "artspace/data/content_projection.npz is missing from the package"
    assert p.mean.shape == (FeatureSpec().descriptor_dim,)
    assert p.info["descriptor_layers"] == list(FeatureSpec().descriptor_layers) and p.info["groups"] > 100
    assert projection_for(FeatureSpec()) is p
    assert projection_for(FeatureSpec(descriptor_layers=("relu5_4",))) is None


def test_a_projection_for_another_descriptor_or_no_projection_is_refused(tmp_path):
    p = fisher(np.random.default_rng(0).random((20, 512)), np.arange(20) // 4)
    p.save(tmp_path / "plain.npz")
    with pytest.raises(ArtspaceError, match="not a content projection"):
        load_projection(tmp_path / "plain.npz")
    p.info.update({"descriptor_layers": ["relu5_4"], "size": 224, "weights": "original"})
    p.save(tmp_path / "old.npz")
    with pytest.raises(InvalidOption, match="fit one on this descriptor"):
        projection_for(FeatureSpec(), tmp_path / "old.npz")
    assert isinstance(projection_for(FeatureSpec(descriptor_layers=("relu5_4",), descriptor_norm=None),
                                     tmp_path / "old.npz"),
                      LinearProjection)


@pytest.fixture(scope="module")
def pastiches(tmp_path_factory):
    """Eight generated 'photographs' (four shapes, flat marble) each painted by AdaIN in three generated
    'paintings' (stripes, dots, checker), indexed at 96 px."""
    import pandas as pd

    from artspace.catalog import index
    from artspace.demo import make_demo
    from artspace.pastiches import pastiche_set

    root = tmp_path_factory.mktemp("pastiches")
    photos = make_demo(root / "photos", shapes=("circle", "square", "triangle", "star"), textures=("marble",),
                       variants=2, size=96)
    pd.read_csv(photos / "metadata.csv").rename(columns={"shape": "class"}).to_csv(photos / "metadata.csv",
                                                                                   index=False)
    paintings = make_demo(root / "paintings", shapes=("cross",), textures=("stripes", "dots", "checker"),
                          variants=1, size=96)
    table = pastiche_set(photos, paintings, root / "set", photos_n=8, per_photo=3, size=96)
    assert (table["kind"] == "pastiche").sum() == 24 and table["subject"].notna().all()
    index(root / "set", metadata=root / "set" / "metadata.csv", include_outputs=True, quiet=True,
          spec=FeatureSpec(size=96))
    return root / "set"


def _precision(cat, by, column):
    w = cat.works.set_index("id")
    hits = []
    for wid in w.index[w["kind"] == "pastiche"]:
        found = cat.similar(int(wid), by=by, k=3)
        hits.append((w.loc[found["id"], column].to_numpy() == w.loc[wid, column]).mean())
    return float(np.mean(hits))


def test_a_pastiche_finds_its_subject_by_content_and_its_painting_by_style(pastiches):
    from artspace.catalog import Catalog

    cat = Catalog.open(pastiches)
    assert cat.manifest["spaces"]["content"]["learnt_projection"]["groups"] > 100  # the shipped one is blended in
    # chance: 5 of the 31 other works share a subject, 7 share a painting
    assert _precision(cat, "content", "subject") >= 0.7
    assert _precision(cat, "content", "painting") <= 0.4
    assert _precision(cat, "style", "painting") >= 0.8
    assert _precision(cat, "content", "subject") > _precision(cat, "style", "subject")


def test_fit_content_on_the_command_line_and_index_with_the_projection(pastiches, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from artspace.catalog import Catalog
    from artspace.cli import app

    pastiches = shutil.copytree(pastiches, tmp_path / "set")  # the other tests keep the shipped projection
    out = tmp_path / "projection.npz"
    r = CliRunner().invoke(app, ["fit-content", str(pastiches), "-o", str(out), "--shrinkage", "0.5"])
    assert r.exit_code == 0, r.output
    assert "8 groups" in r.output and load_projection(out).info["group_column"] == "photo"
    again = CliRunner().invoke(app, ["fit-content", str(pastiches), "-o", str(out)])
    assert again.exit_code == 1 and "never overwrites" in again.output
    missing = CliRunner().invoke(app, ["fit-content", str(pastiches), "-o", str(tmp_path / "x.npz"),
                                       "--group-column", "sitter"])
    assert missing.exit_code == 1 and "no column 'sitter'" in missing.output
    before = Catalog.open(pastiches)
    r = CliRunner().invoke(app, ["index", str(pastiches), "--include-outputs", "--content-projection", str(out),
                                 "--quiet"])
    assert r.exit_code == 0, r.output
    after = Catalog.open(pastiches)
    learnt = after.manifest["spaces"]["content"]["learnt_projection"]
    assert after.generation == before.generation + 1 and learnt["groups"] == 8 and learnt["shrinkage"] == 0.5
    assert learnt["dim"] == 7  # 8 groups: at most 7 discriminant directions
    # the style space is untouched: same vectors
    np.testing.assert_array_equal(after.embeddings("style")[1], before.embeddings("style")[1])


def test_a_pastiche_set_never_replaces_someone_elses_metadata(tmp_path):
    from artspace.pastiches import pastiche_set

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "metadata.csv").write_text("path,sitter\na.png,Mme X\n")
    with pytest.raises(ArtspaceError, match="never overwrites"):
        pastiche_set(tmp_path / "photos", tmp_path / "paintings", tmp_path / "out")
    assert (tmp_path / "out" / "metadata.csv").read_text() == "path,sitter\na.png,Mme X\n"
    for bad in (dict(photos_n=0), dict(per_photo=0)):
        with pytest.raises(InvalidOption, match="must be a whole number of at least 1"):
            pastiche_set(tmp_path / "photos", tmp_path / "paintings", tmp_path / "new", **bad)


def test_content_statistics_standardise_exactly_as_the_formula_says(tmp_path):
    from artspace.content_model import ContentStats

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16)) + np.repeat(rng.normal(size=(3, 16)), 100, axis=0)  # three 'hands'
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    groups = np.repeat(np.arange(4), [100, 100, 99, 1])  # the last group holds one work: too few to spread
    stats = ContentStats.fit(X, groups, 4)
    every = X @ X.T
    z = lambda c, ref: (c - ref.mean(-1)) / ref.std(-1)  # noqa: E731
    for q in (X[5], X[250]):
        c = X @ q
        group_z = np.empty_like(c)
        for j in range(3):
            group_z[groups == j] = z(c[groups == j], c[groups == j])
        group_z[groups == 3] = z(c[groups == 3], c)  # the lone work's group: the whole collection's spread
        want = (z(c, c) + group_z + z(c, every)) / 3
        np.testing.assert_allclose(stats.score(q, X, groups), want, atol=1e-6)
    # many queries at once, and the statistics from a sample of the works
    both = stats.score(X[[5, 250]], np.stack([X[:50], X[100:150]]), np.stack([groups[:50], groups[100:150]]))
    np.testing.assert_allclose(both[1], stats.score(X[250], X[100:150], groups[100:150]), atol=1e-12)
    sampled = ContentStats.fit(X, groups, 4, sample=200)
    assert sampled.counts[0] == 200 and np.corrcoef(sampled.score(X[5], X, groups), stats.score(X[5], X, groups))[
        0, 1] > 0.99
    stats.save(tmp_path / "s.npz")
    back = ContentStats.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(back.score(X[5], X, groups), stats.score(X[5], X, groups))
    # works all alike: no spread, every z-score 0 (not a division by zero)
    same = np.tile(X[:1], (6, 1))
    flat = ContentStats.fit(same, np.zeros(6, int), 1)
    assert np.all(flat.score(same[0], same, np.zeros(6, int)) == 0)


def test_content_statistics_carry_over_while_the_collection_changes_little():
    from artspace.content_model import ContentStats

    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 16))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    groups = rng.integers(0, 3, 400)
    asked = []

    def groups_of(rows):
        asked.append(None if rows is None else len(rows))
        return groups if rows is None else groups[rows]

    first = ContentStats.fit(X[:380], groups[:380], 3)
    np.testing.assert_allclose(first.work_var, [x @ first.cov[0] @ x for x in X[:380]], rtol=1e-4)
    # 20 works added, work 5 changed: the others' groups and terms are carried, only those 21 computed
    carried = np.r_[np.arange(380), -np.ones(20, int)]
    carried[5] = -1
    kept, fresh = ContentStats.update(first, X, carried, groups_of, 3)
    assert not fresh and asked == [21] and kept.fitted_on == 380
    np.testing.assert_array_equal(kept.mean, first.mean)
    np.testing.assert_allclose(kept.work_mean[380:], X[380:] @ first.mean[0], rtol=1e-5, atol=1e-7)
    assert (kept.groups == groups).all()
    # a collection changed by more than a tenth, no previous statistics, or another number of groups: fitted afresh
    for previous, n_groups, n in ((first, 3, 200), (None, 3, 400), (first, 4, 400)):
        again, fresh = ContentStats.update(previous, X[:n], carried[:n], groups_of, n_groups)
        assert fresh and again.fitted_on == n and asked[-1] is None
