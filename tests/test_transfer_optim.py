"""The optimisers against torch.optim's on the same functions (same iterates, step for step), and :func:`optimise`:
best iterate, plateau, NaN and blow-ups."""

import math

import numpy as np
import pytest
import torch

from artspace.transfer import synthesise
from artspace.transfer.optim import LBFGS, Adam, optimise


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2 + ((x[2:] - 0.5) ** 2 * torch.arange(1.0, len(x) - 1)).sum()


def closure_for(x, f, log=None):
    def closure():
        x.grad = None
        loss = f(x)
        loss.backward()
        if log is not None:
            log.append(x.detach().clone())
        return loss

    return closure


def test_lbfgs_follows_torch_lbfgs_without_line_search():
    start = torch.tensor([-1.2, 1.0, 3.0, -2.0], dtype=torch.float64)
    a = start.clone().requires_grad_(True)
    b = start.clone().requires_grad_(True)
    ours, theirs = [], []
    LBFGS(a, lr=0.5, history_size=5).step(closure_for(a, rosenbrock, ours), max_iter=25)
    torch.optim.LBFGS([b], lr=0.5, max_iter=25, history_size=5, tolerance_grad=0, tolerance_change=0).step(
        closure_for(b, rosenbrock, theirs))
    assert len(ours) == len(theirs) == 25  # one evaluation an iteration, the last step not evaluated
    for p, q in zip(ours, theirs):
        assert torch.allclose(p, q, rtol=1e-10, atol=1e-12)
    assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_lbfgs_history_persists_across_steps_like_torch():
    start = torch.tensor([2.0, -1.0, 0.0], dtype=torch.float64)
    a = start.clone().requires_grad_(True)
    b = start.clone().requires_grad_(True)
    ours, theirs = LBFGS(a, history_size=3), torch.optim.LBFGS([b], max_iter=4, history_size=3,
                                                               tolerance_grad=0, tolerance_change=0)
    for _ in range(3):
        ours.step(closure_for(a, rosenbrock), max_iter=4)
        theirs.step(closure_for(b, rosenbrock))
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    assert len(ours._dirs) <= 3


def test_lbfgs_line_search_decreases_where_a_full_step_overshoots():
    # a steep quartic: the full step lr=1e3 overshoots by far; the Armijo search must still decrease the loss
    x = torch.tensor([3.0, -4.0], dtype=torch.float64, requires_grad=True)

    def f(x):
        return (x ** 4).sum()

    opt = LBFGS(x, lr=1e3)
    opt.line_search = True
    losses = []

    def closure():
        x.grad = None
        loss = f(x)
        loss.backward()
        losses.append(loss.item())
        return loss

    opt.step(closure, max_iter=5)
    assert f(x).item() < losses[0] / 10
    assert all(math.isfinite(v) for v in losses)


def test_lbfgs_stops_at_a_zero_gradient_without_moving():
    x = torch.zeros(3, requires_grad=True)
    opt = LBFGS(x)
    made = opt.step(closure_for(x, lambda x: (x ** 2).sum()), max_iter=10)
    assert made == 1 and torch.equal(x.detach(), torch.zeros(3))


def test_lbfgs_needs_a_tensor_that_requires_grad():
    with pytest.raises(ValueError, match="requires_grad"):
        LBFGS(torch.zeros(2))


def test_adam_matches_torch_adam():
    start = torch.tensor([-1.2, 1.0, 3.0, -2.0], dtype=torch.float64)
    a = start.clone().requires_grad_(True)
    b = start.clone().requires_grad_(True)
    ours, theirs = Adam(a, lr=0.05), torch.optim.Adam([b], lr=0.05)
    for _ in range(50):
        closure_for(a, rosenbrock)()
        ours.step()
        theirs.zero_grad()
        closure_for(b, rosenbrock)()
        theirs.step()
    assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_lbfgs_with_bounds_stays_in_the_box_and_finds_the_constrained_minimum():
    # minimum of the unconstrained quadratic at (2, -1, 0.5); the box [0, 1] puts the constrained one at (1, 0, 0.5)
    target = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    x = torch.full((3,), 0.3, dtype=torch.float64, requires_grad=True)
    seen = []
    opt = LBFGS(x, bounds=(0.0, 1.0))
    opt.step(closure_for(x, lambda x: ((x - target) ** 2 * torch.tensor([1.0, 3.0, 10.0])).sum(), seen), max_iter=30)
    assert all(float(p.min()) >= 0.0 and float(p.max()) <= 1.0 for p in seen)
    assert torch.allclose(x.detach(), torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64), atol=1e-6)


def test_lbfgs_rejects_an_empty_box():
    with pytest.raises(ValueError, match="low < high"):
        LBFGS(torch.zeros(2, requires_grad=True), bounds=(1.0, 1.0))


def test_lbfgs_stops_when_it_reaches_an_exact_minimum_mid_run():
    # a separable quadratic that L-BFGS solves exactly within a few steps: the gradient then becomes exactly zero
    # and the remaining iterations must stop there, not divide by the zero gradient's norm
    x = torch.tensor([3.0, -2.0], requires_grad=True)
    opt = LBFGS(x)
    made = opt.step(closure_for(x, lambda x: ((x - 1) ** 2 * torch.tensor([1.0, 10.0])).sum()), max_iter=20)
    assert made < 20
    assert torch.equal(x.detach(), torch.ones(2))


# ---- optimise: a pastiche's run ----------------------------------------------------------------------------

FAST = dict(style_layers=["relu1_1", "relu2_1", "relu3_1"], content_layers=["relu2_2"], tolerance=0)


@pytest.fixture
def images(transfer_images):
    """The tiny pastiche inputs of conftest.py, under a short name."""
    return transfer_images


def test_plateau_stops_early(images):
    r = synthesise(images / "content.png", images / "style.png", size=32, iterations=200, tolerance=0.9, seed=0,
                   content_layers=["relu1_1"], style_layers=["relu1_1"])
    assert r.stopped == "plateau" and r.evaluations < 200


def test_nan_loss_stops_and_keeps_the_best_iterate():
    # an objective that turns NaN at its fifth evaluation, as an overflowing loss on a GPU would
    calls = []

    def objective(x):
        calls.append(1)
        total = ((x - 0.25) ** 2).sum()
        if len(calls) >= 5:
            total = total * float("nan")
        return total, [total]

    st, reason = optimise(torch.full((1, 3, 4, 4), 0.9), objective, optimizer="adam", lr=0.05, iterations=20,
                           tolerance=0.0, on_eval=lambda *a: None)
    assert reason == "nan" and st.evaluations == 5
    assert st.best_loss == min(st.history) and len(st.history) == 4
    assert torch.isfinite(st.best_x).all() and float(st.best_x.max()) < 0.9  # Adam's 4th iterate, not the start


def test_a_huge_step_stays_finite_and_in_range(images):
    # L-BFGS is bounded to the pixel range, so even an absurd learning rate cannot leave it or overflow
    r = synthesise(images / "content.png", images / "style.png", size=32, iterations=10, lr=1e30, seed=0, **FAST)
    assert r.stopped in ("iterations", "converged") and np.isfinite(r.history).all()
    assert r.losses["total"] == min(r.history)

