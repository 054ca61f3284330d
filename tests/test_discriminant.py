"""Fisher's discriminant with shrinkage (artspace.discriminant), on generated groups."""

import numpy as np
import pytest

from artspace.discriminant import LinearProjection, fisher
from artspace.errors import ArtspaceError, InvalidOption


def _groups(seed=0, k=6, per=20, d=12):
    """k groups that differ only along the first axis, with large shared noise along the second."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((k, d))
    centres[:, 0] = np.arange(k) * 1.0
    labels = np.repeat(np.arange(k), per)
    x = centres[labels] + rng.normal(0, 0.1, (k * per, d))
    x[:, 1] += rng.normal(0, 10.0, k * per)  # a direction of large variance that says nothing about the group
    return x, labels


def test_fisher_finds_the_separating_direction_and_ignores_the_noisy_one():
    x, labels = _groups()
    w = fisher(x, labels, dim=1, shrinkage=0.05).components[:, 0]
    w = w / np.linalg.norm(w)
    assert abs(w[0]) > 0.99 and abs(w[1]) < 0.01
    p = fisher(x, labels, dim=1, shrinkage=0.0)
    z = p.transform(x)[:, 0]
    # without shrinkage one unit is one within-group standard deviation
    within = np.concatenate([z[labels == g] - z[labels == g].mean() for g in range(6)])
    assert within.std() == pytest.approx(1.0, rel=0.05)
    assert p.info["groups"] == 6 and p.info["dim"] == 1


def test_dimension_is_capped_by_the_groups_and_labels_may_be_strings():
    x, labels = _groups(k=4)
    p = fisher(x, np.array(["a", "b", "c", "d"])[labels], dim=50)
    assert p.dim == 3 and p.transform(x).shape == (len(x), 3) and p.transform(x).dtype == np.float32


def test_save_load_round_trip_and_damaged_file(tmp_path):
    x, labels = _groups()
    p = fisher(x, labels, shrinkage=0.3)
    p.save(tmp_path / "p.npz")
    q = LinearProjection.load(tmp_path / "p.npz")
    np.testing.assert_allclose(q.transform(x), p.transform(x), rtol=1e-4, atol=1e-4)
    assert q.info == p.info
    (tmp_path / "bad.npz").write_bytes(b"not a projection")
    with pytest.raises(ArtspaceError, match="bad.npz"):
        LinearProjection.load(tmp_path / "bad.npz")


def test_bad_input_is_refused():
    x, labels = _groups()
    with pytest.raises(InvalidOption, match="2 groups"):
        fisher(x, np.zeros(len(x)))
    with pytest.raises(InvalidOption, match="needs a group"):
        fisher(x, np.where(labels == 0, None, labels))
    with pytest.raises(InvalidOption, match="shrinkage"):
        fisher(x, labels, shrinkage=1.5)
    with pytest.raises(InvalidOption, match="group labels"):
        fisher(x, labels[:-1])
