"""The optimisers of :mod:`artspace.transfer`: L-BFGS and Adam on one image tensor.

Why not ``torch.optim``: constructing any ``torch.optim.Optimizer`` imports ``torch._dynamo`` (2.2 s on a 2-core CPU,
measured in torch 2.13), which is 5 % of a 100-iteration pastiche at 256 px. Both methods are a few lines on a
single flat tensor, and owning them lets :func:`artspace.transfer._optimise` restart, switch the line search on and
off, and count every function evaluation exactly.

L-BFGS is Nocedal & Wright's Algorithm 7.4 (two-loop recursion) with the same conventions as ``torch.optim.LBFGS``
(first step ``lr · min(1, 1/‖g‖₁)``, then full steps of length ``lr``, initial Hessian ``sᵀy / yᵀy``, curvature pairs
with ``sᵀy ≤ 1e-10`` skipped), so runs are comparable with pastiche's. The optional line search is a backtracking
Armijo search (sufficient decrease, c₁ = 1e-4) with a safeguarded quadratic step: it is used only after a restart,
where the point is to take *some* safe steps before the curvature pairs can be trusted again.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..errors import InvalidOption

__all__ = ["LBFGS", "Adam"]

#: Sufficient-decrease constant of the Armijo condition f(x + t d) ≤ f(x) + c₁ t ∇f·d.
ARMIJO_C1 = 1e-4
#: Evaluations a line search may spend before it takes the best point it has seen.
MAX_LINE_SEARCH = 20


class LBFGS:
    """Limited-memory BFGS minimising ``closure()`` over the tensor *x* (updated in place).

    *closure* computes the loss at the current *x*, fills ``x.grad`` and returns the loss as a 0-d tensor; it may
    raise to stop the run (the caller's best-iterate bookkeeping lives in the closure). The curvature history
    persists across :meth:`step` calls, so a caller may change ``lr`` or the line search between calls.

    Examples
    --------
    >>> x = torch.tensor([3.0, -2.0], requires_grad=True)
    >>> def f():
    ...     x.grad = None
    ...     loss = ((x - 1) ** 2 * torch.tensor([1.0, 10.0])).sum()
    ...     loss.backward()
    ...     return loss
    >>> opt = LBFGS(x)
    >>> _ = opt.step(f, max_iter=20)
    >>> [round(v, 4) for v in x.tolist()]
    [1.0, 1.0]
    """

    def __init__(self, x: torch.Tensor, *, lr: float = 1.0, history_size: int = 100,
                 bounds: tuple[float, float] | None = None):
        if not x.requires_grad:
            raise InvalidOption("LBFGS needs a tensor with requires_grad=True")
        if bounds is not None and not bounds[0] < bounds[1]:
            raise InvalidOption(f"bounds must be (low, high) with low < high, not {bounds!r}")
        self.x = x
        self.bounds = bounds
        self.lr = float(lr)
        self.history_size = int(history_size)
        self.line_search = False
        self.iterations = 0
        self.evaluations = 0
        self._dirs: list[torch.Tensor] = []  # y_k = g_{k+1} - g_k
        self._steps: list[torch.Tensor] = []  # s_k = x_{k+1} - x_k
        self._rho: list[float] = []
        self._h_diag = 1.0

    def _evaluate(self, closure: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
        with torch.enable_grad():
            loss = float(closure().detach())
        self.evaluations += 1
        return loss, self.x.grad.detach().reshape(-1).clone()

    def _direction(self, g: torch.Tensor) -> torch.Tensor:
        """−H g by the two-loop recursion over the stored curvature pairs."""
        q = g.neg()
        alpha = [0.0] * len(self._dirs)
        for i in range(len(self._dirs) - 1, -1, -1):
            alpha[i] = float(self._steps[i].dot(q)) * self._rho[i]
            q.add_(self._dirs[i], alpha=-alpha[i])
        r = q.mul_(self._h_diag)
        for i in range(len(self._dirs)):
            beta = float(self._dirs[i].dot(r)) * self._rho[i]
            r.add_(self._steps[i], alpha=alpha[i] - beta)
        return r

    def _first_step(self, g: torch.Tensor) -> float:
        """Step length along −g when there is no curvature yet: ``lr · min(1, 1/‖g‖₁)``."""
        return min(1.0, 1.0 / float(g.abs().sum())) * self.lr

    def _remember(self, s: torch.Tensor, y: torch.Tensor) -> None:
        ys = float(y.dot(s))
        if ys <= 1e-10:  # not a descent-consistent pair (noise, or a non-convex stretch): skip it
            return
        if len(self._dirs) == self.history_size:
            self._dirs.pop(0), self._steps.pop(0), self._rho.pop(0)
        self._dirs.append(y)
        self._steps.append(s)
        self._rho.append(1.0 / ys)
        self._h_diag = ys / float(y.dot(y))

    def _move(self, t: float, d: torch.Tensor) -> None:
        with torch.no_grad():
            self.x.view(-1).add_(d, alpha=t)
            if self.bounds is not None:
                self.x.clamp_(*self.bounds)

    def _project_direction(self, d: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Zero the components of *d* that would leave the box from a variable already on its bound."""
        if self.bounds is None:
            return d
        x = self.x.detach().reshape(-1)
        blocked = ((x <= self.bounds[0]) & (d < 0)) | ((x >= self.bounds[1]) & (d > 0))
        return d.masked_fill_(blocked, 0.0)

    def _search(self, closure, loss: float, g: torch.Tensor, t: float, d: torch.Tensor, gtd: float):
        """Backtracking Armijo search along *d* from the current point; returns (loss, grad, step) and moves x."""
        best = (loss, g, 0.0)
        origin = self.x.detach().clone()
        for _ in range(MAX_LINE_SEARCH):
            self._goto(origin, t, d)
            new_loss, new_g = self._evaluate(closure)
            if math.isfinite(new_loss) and new_loss < best[0]:
                best = (new_loss, new_g, t)
            if math.isfinite(new_loss) and new_loss <= loss + ARMIJO_C1 * t * gtd:
                return new_loss, new_g, t
            # minimiser of the quadratic through f(0), f'(0) and f(t), kept within [t/10, t/2]
            if math.isfinite(new_loss):
                denom = 2.0 * (new_loss - loss - gtd * t)
                t_q = -gtd * t * t / denom if denom > 0 else 0.5 * t
            else:
                t_q = 0.1 * t
            t = min(max(t_q, 0.1 * t), 0.5 * t)
        self._goto(origin, best[2], d)  # no sufficient decrease: stay at the best point seen
        return best

    def _goto(self, origin: torch.Tensor, t: float, d: torch.Tensor) -> None:
        with torch.no_grad():
            self.x.copy_(origin)
        self._move(t, d)

    def step(self, closure: Callable[[], torch.Tensor], *, max_iter: int) -> int:
        """Run up to *max_iter* iterations; return the number of function evaluations made.

        Without the line search an iteration costs one evaluation (the next one's gradient is the step's result);
        the step of the last iteration is taken but not evaluated — the next :meth:`step` starts by evaluating it,
        as ``torch.optim.LBFGS`` does.
        """
        start = self.evaluations
        loss, g = self._evaluate(closure)
        for n in range(1, max_iter + 1):
            if float(g.abs().max()) == 0.0:  # a stationary point: no direction to take (nor a step length)
                break
            self.iterations += 1
            if self.iterations == 1:
                d = g.neg()
                t = self._first_step(g)
            else:
                self._remember(self._last_step, g - self._last_grad)
                d = self._direction(g)
                t = self.lr
            d = self._project_direction(d, g)
            gtd = float(g.dot(d))
            if not gtd < 0 and self._dirs:
                # the quasi-Newton direction, cut at the bounds, no longer descends: forget the curvature and take
                # a projected steepest-descent step of L-BFGS's first-step length
                self._dirs, self._steps, self._rho, self._h_diag = [], [], [], 1.0
                d = self._project_direction(g.neg(), g)
                gtd = float(g.dot(d))
                t = self._first_step(g)
            if not gtd < 0:  # not a descent direction (or NaN): nothing sensible to do from here
                break
            self._last_grad = g
            before = self.x.detach().reshape(-1).clone() if self.bounds is not None else None
            if self.line_search:
                loss, g, t = self._search(closure, loss, g, t, d, gtd)
                if t == 0.0:
                    break
            else:
                self._move(t, d)
                if n != max_iter:
                    loss, g = self._evaluate(closure)
            # the curvature pair uses the step actually taken (clamping shortens it at the bounds)
            self._last_step = d.mul(t) if before is None else self.x.detach().reshape(-1) - before
            if float(self._last_step.abs().max()) == 0.0:
                break
        return self.evaluations - start


class Adam:
    """Adam (Kingma & Ba 2015) with bias correction on one tensor, as ``torch.optim.Adam`` with its defaults.

    Examples
    --------
    >>> x = torch.tensor([1.0], requires_grad=True)
    >>> opt = Adam(x, lr=0.1)
    >>> for _ in range(100):
    ...     x.grad = None
    ...     (x ** 2).sum().backward()
    ...     opt.step()
    >>> abs(x.item()) < 0.1
    True
    """

    def __init__(self, x: torch.Tensor, *, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.x, self.lr, self.betas, self.eps = x, float(lr), betas, float(eps)
        self.m = torch.zeros_like(x)
        self.v = torch.zeros_like(x)
        self.t = 0

    @torch.no_grad()
    def step(self) -> None:
        g = self.x.grad
        b1, b2 = self.betas
        self.t += 1
        self.m.mul_(b1).add_(g, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (self.v / (1 - b2 ** self.t)).sqrt_().add_(self.eps)
        self.x.addcdiv_(self.m, denom, value=-self.lr / (1 - b1 ** self.t))
