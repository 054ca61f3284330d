r"""A small network head learnt from groups of works with a supervised contrastive loss.

A taught style space (:mod:`artspace.analysis.teaching`) may be non-linear: a two-layer perceptron maps the
standardised style embedding to a unit vector, trained on the labelled works so that works of one label lie close,

.. math::

    \mathcal L = -\frac1n\sum_i \frac1{|P_i|}\sum_{p \in P_i}
    \log\frac{\exp(z_i\cdot z_p/\tau)}{\sum_{a \ne i}\exp(z_i\cdot z_a/\tau)}

(Khosla et al. 2020), :math:`P_i` the other works of :math:`i`'s label in the batch. Training uses torch; the head is
stored as plain arrays and applied with numpy, so that a query needs no torch. Squared Euclidean distances of the
unit outputs are :math:`2 - 2\cos`.

A head taught beside reference axes (:mod:`artspace.reference`) also passes those axes' coordinates through (a
linear *skip* S of the input, scaled against the head's weighted unit output), so that the squared distance of two
works a and b adds :math:`\lVert (a - b)\,S\rVert^2` to the head's.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from .atomic import atomic_savez
from .errors import ArtspaceError

__all__ = ["MLPProjection", "train_head", "load_projection"]


@dataclass
class MLPProjection:
    """``unit((relu(((x − mean) / scale) W1 + b1)) W2 + b2)``, times ``head_weight``, after ``x S`` when a *skip*
    matrix S (D, s) is given; ``info`` says what it was fitted on and how."""

    mean: np.ndarray
    scale: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    info: dict = field(default_factory=dict)
    skip: np.ndarray | None = None
    head_weight: float = 1.0

    @property
    def dim(self) -> int:
        """The output dimension."""
        return int(self.w2.shape[1]) + (0 if self.skip is None else int(self.skip.shape[1]))

    def transform(self, x: np.ndarray, batch: int = 65_536) -> np.ndarray:
        """The output vectors (n, dim) in float32, in blocks of rows: the skip coordinates, then the unit output
        times the head's weight."""
        out = np.empty((len(x), self.dim), np.float32)
        first = 0 if self.skip is None else self.skip.shape[1]
        for s in range(0, len(x), batch):
            rows = np.asarray(x[s:s + batch], np.float64)
            h = (rows - self.mean) / self.scale
            h = np.maximum(h @ self.w1 + self.b1, 0.0) @ self.w2 + self.b2
            out[s:s + batch, first:] = self.head_weight * h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True),
                                                                         1e-12)
            if first:
                out[s:s + batch, :first] = rows @ self.skip
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write the head to an ``.npz`` file (atomically; no pickled objects)."""
        arrays = {k: np.asarray(getattr(self, k), np.float32) for k in ("mean", "scale", "w1", "b1", "w2", "b2")}
        if self.skip is not None:
            arrays.update(skip=np.asarray(self.skip, np.float32), head_weight=np.float64(self.head_weight))
        atomic_savez(path, kind=np.array("mlp"), info=np.array(json.dumps(self.info, sort_keys=True)), **arrays)


def load_projection(path: str | os.PathLike):
    """The projection stored at *path*: an :class:`MLPProjection`, or a
    :class:`~artspace.discriminant.LinearProjection`; :class:`~artspace.errors.ArtspaceError` naming the file if it is
    missing or damaged."""
    from .discriminant import LinearProjection

    try:
        with np.load(path, allow_pickle=False) as z:
            if "kind" not in z.files:
                return LinearProjection.load(path)
            parts = {k: z[k].astype(np.float64) for k in ("mean", "scale", "w1", "b1", "w2", "b2")}
            if "skip" in z.files:
                parts.update(skip=z["skip"].astype(np.float64), head_weight=float(z["head_weight"]))
            info = json.loads(str(z["info"]))
    except ArtspaceError:
        raise
    except (OSError, KeyError, ValueError, EOFError) as e:
        raise ArtspaceError(f"cannot read the projection {path} ({e}); refit it") from None
    return MLPProjection(**parts, info=info)


def train_head(x: np.ndarray, y: np.ndarray, *, hidden: int = 128, dim: int = 32, steps: int = 200,
               temperature: float = 0.1, lr: float = 0.01, weight_decay: float = 1e-3, batch: int = 512,
               seed: int = 0) -> MLPProjection:
    """Train the head on the rows of *x* (n, D) with integer labels *y* (full batches up to *batch* rows, random
    batches of *batch* rows beyond), deterministically for a given *seed*."""
    import torch

    x = np.asarray(x, np.float64)
    mean, scale = x.mean(0), float(x.std()) or 1.0
    xs = torch.tensor((x - mean) / scale, dtype=torch.float32)
    ys = torch.as_tensor(np.asarray(y))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is faster than several waiting for each other
    try:
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, dim))
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
        for _ in range(steps):
            rows = torch.randperm(len(xs), generator=gen)[:batch] if len(xs) > batch else slice(None)
            xb, yb = xs[rows], ys[rows]
            z = torch.nn.functional.normalize(net(xb), dim=1)
            eye = torch.eye(len(yb), dtype=torch.bool)
            s = (z @ z.T / temperature).masked_fill(eye, -1e9)
            logp = s - torch.logsumexp(s, 1, keepdim=True)
            pos = (yb[:, None] == yb[None]) & ~eye
            has = pos.any(1)
            loss = -((logp * pos).sum(1)[has] / pos.sum(1)[has]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    w = [p.detach().numpy().astype(np.float64) for p in net.parameters()]
    return MLPProjection(mean=mean, scale=np.full_like(mean, scale), w1=w[0].T, b1=w[1], w2=w[2].T, b2=w[3],
                         info={"method": "mlp", "hidden": hidden, "dim": dim, "steps": steps,
                               "temperature": temperature, "lr": lr, "weight_decay": weight_decay})
