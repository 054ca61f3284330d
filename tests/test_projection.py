"""Compact style embeddings: a CountSketch keeps distances, the fitted projection keeps the variance it reports."""

from __future__ import annotations

import numpy as np
import torch

from artspace.projection import CountSketch, StyleProjection


def test_count_sketch_is_linear_and_keeps_distances():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(20, 5000)).astype(np.float32))
    sketch = CountSketch(5000, 2048, seed=3)
    s = sketch(x)
    assert s.shape == (20, 2048)
    assert torch.allclose(sketch(x[:1] + x[1:2]), s[:1] + s[1:2], atol=1e-4)  # linear
    d_full = torch.cdist(x, x) ** 2
    d_sketch = torch.cdist(s, s) ** 2
    off = ~torch.eye(20, dtype=torch.bool)
    assert float((d_sketch[off] / d_full[off] - 1).abs().mean()) < 0.05  # within a few % on average
    assert torch.equal(CountSketch(5000, 2048, seed=3)(x), s)  # the seed fixes it


def test_projection_keeps_the_variance_it_reports_and_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    low = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 300))  # rank 5 plus a little noise
    x = (low + 0.01 * rng.normal(size=(200, 300))).astype(np.float32)
    proj = StyleProjection.fit(x, k=5, seed=9)
    e = proj.embed(x)
    assert e.shape == (200, 5) and proj.explained > 0.99 and proj.n_fit == 200
    d_x = ((x[:, None] - x[None]) ** 2).sum(-1)
    d_e = ((e[:, None] - e[None]) ** 2).sum(-1)
    assert np.allclose(d_e, d_x, rtol=0.02, atol=1e-2 * d_x.mean())
    proj.save(tmp_path / "p.npz")
    again = StyleProjection.load(tmp_path / "p.npz")
    assert np.array_equal(again.embed(x), e) and again.seed == 9
