"""Style and content features against a direct computation of the seeds' formulas."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from artspace import losses
from artspace.features import Extractor, FeatureSpec, content_descriptor
from artspace.projection import CountSketch, StyleProjection


def seeds_E(F, P):
    """E_l straight from the lecture notes: F, P are (N, M) matrices of the same size."""
    N, M = F.shape
    G, A = F @ F.T, P @ P.T
    return ((G - A) ** 2).sum() / (4 * N**2 * M**2)


def test_style_vector_distance_is_the_seeds_style_loss():
    torch.manual_seed(0)
    layers = [torch.rand(2, n, 6, 5, dtype=torch.float64) for n in (4, 7, 9)]
    w = [0.5, 0.3, 0.2]
    v = torch.cat([losses.style_vector(losses.gram(f).double(), wl) for f, wl in zip(layers, w)], 1)
    direct = sum(wl * seeds_E(f[0].reshape(f.shape[1], -1), f[1].reshape(f.shape[1], -1)) for f, wl in zip(layers, w))
    assert float(((v[0] - v[1]) ** 2).sum()) == pytest.approx(float(direct), rel=1e-9)


def test_style_term_across_sizes_divides_each_gram_by_its_own_m():
    torch.manual_seed(1)
    a, b = torch.rand(1, 5, 4, 4, dtype=torch.float64), torch.rand(1, 5, 8, 6, dtype=torch.float64)
    Fa, Fb = a.reshape(5, -1), b.reshape(5, -1)
    expected = (((Fa @ Fa.T) / 16 - (Fb @ Fb.T) / 48) ** 2).sum() / (4 * 25)
    assert float(losses.style_term(losses.gram(a).double(), losses.gram(b).double())) == pytest.approx(float(expected))


def test_extractor_distance_matches_direct_computation():
    ex = Extractor(FeatureSpec(size=48), device="cpu")
    rng = np.random.default_rng(0)
    from PIL import Image

    ims = [Image.fromarray(rng.integers(0, 255, (60, 50, 3), dtype=np.uint8)) for _ in range(2)]
    d = ex.distance(*ims)
    x = torch.stack([ex.prepare(i) for i in ims])
    with torch.no_grad():
        out = ex.net(x, ex.spec.style_layers + (ex.spec.content_layer,))
    direct = {}
    for name in ex.spec.style_layers:
        f = out[name].double()
        n = f.shape[1]
        direct[name] = float(seeds_E(f[0].reshape(n, -1), f[1].reshape(n, -1))) / len(ex.spec.style_layers)
    for name in direct:
        assert d["style_layers"][name] == pytest.approx(direct[name], rel=1e-4)
    assert d["style"] == pytest.approx(sum(direct.values()), rel=1e-4)
    c = out[ex.spec.content_layer].double()
    assert d["content"] == pytest.approx(float(0.5 * ((c[0] - c[1]) ** 2).sum()), rel=1e-4)
    same = ex.distance(ims[0], ims[0])
    assert same["style"] == pytest.approx(0, abs=1e-6 * d["style"]) and same["content"] == 0
    # The style signature: the squared Hellinger distance between Gram matrices read as distributions (F Fᵀ / sum).
    with torch.no_grad():
        out = ex.net(x, ex.spec.signature_layers)
    hellinger = {}
    for name in ex.spec.signature_layers:
        f = out[name].double()
        g = [fi.reshape(f.shape[1], -1) @ fi.reshape(f.shape[1], -1).T for fi in f]
        p, q = (gi / gi.sum() for gi in g)
        hellinger[name] = float(1 - (p * q).sqrt().sum())
    for name, h in hellinger.items():
        assert d["signature_layers"][name] == pytest.approx(h, rel=1e-4)
    assert d["signature"] == pytest.approx(np.mean(list(hellinger.values())), rel=1e-4)
    assert 0 < d["signature"] < 1 and same["signature"] == pytest.approx(0, abs=1e-6)


def test_style_signature_ignores_scale_and_is_bounded():
    from artspace.features import style_signature

    torch.manual_seed(2)
    f = torch.rand(3, 6, 20, dtype=torch.float64)
    g = f @ f.transpose(1, 2)
    s = style_signature([g, g[:, :4, :4]])
    assert s.shape == (3, 21 + 10)
    assert torch.allclose(s.norm(dim=1), torch.full((3,), 0.5**0.5, dtype=torch.float64))  # norm 1/√2, so d² ≤ 2
    # a brighter or larger copy (every Gram entry times c) has the same signature: it is style, not exposure
    assert torch.allclose(style_signature([5 * g, 5 * g[:, :4, :4]]), s)
    # disjoint co-activations (no pair of filters active in both) are at mean H² = 1, the most for relu maps
    a, b = torch.zeros(1, 2, 2, dtype=torch.float64), torch.zeros(1, 2, 2, dtype=torch.float64)
    a[0, 0, 0], b[0, 1, 1] = 3.0, 2.0
    sa, sb = style_signature([a]), style_signature([b])
    assert float((sa - sb).pow(2).sum()) == pytest.approx(1.0)


def test_spec_validation_and_round_trip():
    spec = FeatureSpec(size=96, style_layers=("relu1_1", "relu2_1"))
    assert FeatureSpec.from_dict(spec.to_dict()) == FeatureSpec(size=96, style_layers=("relu1_1", "relu2_1"),
                                                                style_weights=(0.5, 0.5))
    # the default weights are the uniform ones spelt out: a spec read back from a catalog equals a new default one
    assert FeatureSpec.from_dict(FeatureSpec(size=128).to_dict()) == FeatureSpec(size=128)
    assert FeatureSpec(size=128).style_weights == (0.2,) * 5
    with pytest.raises(ValueError, match="unknown layer 'relu9_1'"):
        FeatureSpec(style_layers=("relu9_1",))
    with pytest.raises(ValueError, match="size"):
        FeatureSpec(size=8)


def test_content_descriptor_is_the_unit_spatial_maximum():
    f = torch.rand(3, 16, 5, 5)
    d = content_descriptor(f)
    assert d.shape == (3, 16)
    peak = f.amax((2, 3))
    torch.testing.assert_close(d, peak / peak.norm(dim=1, keepdim=True))
    # Where the subject stands does not matter: moving the feature maps leaves the descriptor unchanged.
    torch.testing.assert_close(content_descriptor(torch.roll(f, shifts=(2, 1), dims=(2, 3))), d)


def test_count_sketch_preserves_distances_and_pca_keeps_them_in_span():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((40, 20_000)).astype(np.float32))
    sk = CountSketch(20_000, 8192, seed=3)
    s = sk(x)
    true = ((x[0] - x[1]) ** 2).sum()
    assert float(((s[0] - s[1]) ** 2).sum() / true) == pytest.approx(1.0, rel=0.1)
    proj = StyleProjection.fit(s.numpy(), k=64)
    assert proj.dim == 39 and proj.explained == pytest.approx(1.0, abs=1e-5)
    e = proj.embed(s)
    # Differences between fitted works lie in the span of the centred sample: distances are kept exactly.
    np.testing.assert_allclose(((e[3] - e[7]) ** 2).sum(), float(((s[3] - s[7]) ** 2).sum()), rtol=1e-3)


def test_gram_of_channels_last_maps_equals_gram_of_contiguous_maps():
    f = torch.rand(2, 8, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(losses.gram(f.contiguous(memory_format=torch.channels_last)), losses.gram(f))


@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")),
                    reason="torch.compile on a CPU generates C++ and needs a compiler")
def test_a_compiled_network_gives_the_same_features():
    """``torch.compile`` (``index --compile``) changes how the network runs, not what it computes."""
    spec = FeatureSpec(size=32)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    plain = Extractor(spec, device="cpu").encode(x)
    compiled = Extractor(spec, device="cpu", compile=True)
    assert compiled.compiled
    out = compiled.encode(x)
    for key in ("signature", "descriptor", "moments"):
        assert torch.allclose(out[key], plain[key], rtol=1e-3, atol=1e-5), key
    assert torch.allclose(out["style"], plain["style"], rtol=1e-3, atol=1e-3 * float(plain["style"].abs().max()))
