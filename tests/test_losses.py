"""The loss formulas and their gradients, against direct computation, autograd and the seeds' closed forms.

Notation of the lecture notes (§3.2): at layer l, F is an N × M matrix (N filters, M positions), G = F Fᵀ,
E_l = Σ(G − A)² / (4 N² M²); the closed forms are ∂L_content/∂F = F − P and ∂E_l/∂F = (Fᵀ(G − A))ᵀ / (N² M²).
"""

from __future__ import annotations

import pytest
import torch

from artspace.losses import ContentLoss, StyleLoss, content_term, gram, style_term, total_variation

torch.manual_seed(0)


def _fmap(n=6, h=5, w=7, b=1, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, n, h, w, generator=g, dtype=dtype)


def test_gram_is_f_ft_over_m_computed_directly():
    f = _fmap(b=2)
    b, n, h, w = f.shape
    m = h * w
    expected = torch.zeros(b, n, n)
    for k in range(b):
        for i in range(n):
            for j in range(n):
                expected[k, i, j] = sum(float(f[k, i].flatten()[p] * f[k, j].flatten()[p]) for p in range(m)) / m
    assert torch.allclose(gram(f), expected, atol=1e-5)


def test_content_term_is_half_sum_of_squares_and_l1_is_sum_of_abs():
    f, p = _fmap(seed=1), _fmap(seed=2)
    assert torch.allclose(content_term(f, p), 0.5 * ((f - p) ** 2).sum().reshape(1))
    assert torch.allclose(content_term(f, p, "l1"), (f - p).abs().sum().reshape(1))


def test_style_term_equals_the_seeds_E_l_with_unnormalised_grams():
    f, a = _fmap(seed=3), _fmap(seed=4)
    n, m = f.shape[1], f.shape[2] * f.shape[3]
    F_ = f[0].reshape(n, m)
    A_ = a[0].reshape(n, m)
    G, A = F_ @ F_.T, A_ @ A_.T
    e_seeds = ((G - A) ** 2).sum() / (4 * n**2 * m**2)
    assert torch.allclose(style_term(gram(f), gram(a)), e_seeds.reshape(1), rtol=1e-5)


def test_style_term_l1_variant():
    f, a = _fmap(seed=5), _fmap(seed=6)
    n = f.shape[1]
    assert torch.allclose(style_term(gram(f), gram(a), "l1"), ((gram(f) - gram(a)).abs().sum() / (2 * n)).reshape(1))


def test_total_variation_is_thesis_eq_3_2():
    x = torch.rand(1, 3, 6, 5)
    expected = 0.0
    for c in range(3):
        for i in range(6):
            for j in range(5):
                if i + 1 < 6:
                    expected += abs(float(x[0, c, i + 1, j] - x[0, c, i, j]))
                if j + 1 < 5:
                    expected += abs(float(x[0, c, i, j + 1] - x[0, c, i, j]))
    assert total_variation(x).item() == pytest.approx(expected, rel=1e-5)
    assert total_variation(torch.ones(1, 3, 4, 4)).item() == 0


def test_content_gradient_is_f_minus_p():
    f = _fmap(seed=7).requires_grad_(True)
    p = _fmap(seed=8)
    content_term(f, p).sum().backward()
    assert torch.allclose(f.grad, f.detach() - p, atol=1e-6)


def test_style_gradient_matches_notes_closed_form_in_their_layout():
    """∂E_l/∂F = (Fᵀ(G − A))ᵀ / (N² M²), F being N × M (notes eq. 9, transposed back to F's layout)."""
    f = _fmap(n=5, h=4, w=6, seed=9, dtype=torch.float64).requires_grad_(True)
    a = _fmap(n=5, h=4, w=6, seed=10, dtype=torch.float64)
    n, m = 5, 24
    # float64 through the same formula (gram() computes in float32; use its definition to check in float64)
    F_ = f[0].reshape(n, m)
    A_ = a[0].reshape(n, m)
    E = ((F_ @ F_.T - A_ @ A_.T) ** 2).sum() / (4 * n**2 * m**2)
    E.backward()
    Fd = F_.detach()
    G, A = Fd @ Fd.T, A_ @ A_.T
    closed = (Fd.T @ (G - A)).T / (n**2 * m**2)
    assert torch.allclose(f.grad[0].reshape(n, m), closed, rtol=1e-10, atol=1e-14)


def test_style_gradient_of_artspace_style_term_matches_closed_form():
    f = _fmap(n=4, h=3, w=5, seed=11).requires_grad_(True)
    a = _fmap(n=4, h=3, w=5, seed=12)
    n, m = 4, 15
    style_term(gram(f), gram(a)).sum().backward()
    Fd, Ad = f.detach()[0].reshape(n, m), a[0].reshape(n, m)
    closed = (Fd.T @ (Fd @ Fd.T - Ad @ Ad.T)).T / (n**2 * m**2)
    assert torch.allclose(f.grad[0].reshape(n, m), closed, rtol=1e-4, atol=1e-7)


def test_corrected_quiz_update_is_one_gradient_descent_step_gated_by_relu():
    """The quiz's question 7, with its sign and bracket fixed:
    F ← F − η[α(F − P) + β w_l/(N²M²) (Fᵀ(G − A))ᵀ], applied where the relu is active."""
    alpha, beta, w, eta = 1.0, 3.0, 0.5, 1e-3
    x = _fmap(n=4, h=3, w=4, seed=13, dtype=torch.float64).requires_grad_(True)  # pre-activation
    p = torch.relu(_fmap(n=4, h=3, w=4, seed=14, dtype=torch.float64))
    a = torch.relu(_fmap(n=4, h=3, w=4, seed=15, dtype=torch.float64))
    n, m = 4, 12

    def loss(x):
        f = torch.relu(x)[0].reshape(n, m)
        A_ = a[0].reshape(n, m)
        e = ((f @ f.T - A_ @ A_.T) ** 2).sum() / (4 * n**2 * m**2)
        return alpha * 0.5 * ((f - p[0].reshape(n, m)) ** 2).sum() + beta * w * e

    before = loss(x)
    before.backward()
    f = torch.relu(x.detach())[0].reshape(n, m)
    G, A = f @ f.T, a[0].reshape(n, m) @ a[0].reshape(n, m).T
    grad_f = alpha * (f - p[0].reshape(n, m)) + beta * w / (n**2 * m**2) * (f.T @ (G - A)).T
    active = (x.detach()[0].reshape(n, m) > 0).double()
    assert torch.allclose(x.grad[0].reshape(n, m), grad_f * active, rtol=1e-10, atol=1e-14)
    stepped = (x.detach()[0].reshape(n, m) - eta * grad_f * active).reshape(1, n, 3, 4)
    assert loss(stepped) < before  # descent subtracts the gradient (the notes' eq. 1-2 had the sign wrong)


def test_style_loss_default_weights_blend_and_pooled_targets():
    layers = ["a", "b"]
    s1 = {"a": _fmap(seed=16), "b": _fmap(n=3, seed=17)}
    s2 = {"a": _fmap(seed=18), "b": _fmap(n=3, seed=19)}
    x = {"a": _fmap(seed=20), "b": _fmap(n=3, seed=21)}
    sl = StyleLoss(layers)
    assert sl.weights == [0.5, 0.5]
    sl.set_target([s1, s2], blend=[3, 1])
    assert torch.allclose(sl.targets["a"], 0.75 * gram(s1["a"]) + 0.25 * gram(s2["a"]))
    terms = sl(x)
    assert terms["b"].item() == pytest.approx(0.5 * style_term(gram(x["b"]), sl.targets["b"]).item(), rel=1e-6)
    # Pooling Gram matrices over pieces of a feature map (Σ F Fᵀ / Σ M) gives the whole map's Gram matrix.
    f = s1["a"]
    top, bottom = f[:, :, :2], f[:, :, 2:]
    pooled = (gram(top) * top[0, 0].numel() + gram(bottom) * bottom[0, 0].numel()) / f[0, 0].numel()
    assert torch.allclose(pooled, gram(f), atol=1e-5)


def test_content_loss_layer_weights_and_kind():
    p = {"a": _fmap(seed=22)}
    x = {"a": _fmap(seed=23)}
    cl = ContentLoss(["a"], [2.0], kind="l1")
    cl.set_target(p)
    assert cl(x)["a"].item() == pytest.approx(2.0 * (x["a"] - p["a"]).abs().sum().item(), rel=1e-6)
    with pytest.raises(ValueError):
        ContentLoss(["a"], [1.0, 2.0])
    with pytest.raises(ValueError):
        StyleLoss(["a"], kind="l3")
