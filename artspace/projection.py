r"""Compact style embeddings: a projection fitted on the collection, kept with the catalog.

A work's full style vector (305,888 numbers for the default layers, 1.2 MB) is too large to store for millions of
works. artspace stores instead its coordinates on the principal axes of the collection's style vectors:

1. **Sketch** (data-independent, regenerated from a seed, nothing stored): a CountSketch maps the full vector to
   ``m = 32,768`` numbers — each coordinate is added, with a random sign, to one random bucket. Squared distances
   are preserved in expectation with a relative standard deviation near :math:`\sqrt{2/m}` (under 1 %).
2. **PCA** (fitted on a sample of the collection): the sketched vectors are centred and projected on their top
   ``k`` principal axes. The squared distance of two embeddings is then :math:`L_{style}` minus what
   lies outside those axes — the fraction of variance kept is recorded in the manifest.

The catalog keeps 384 axes for L_style and 128 for the style signature (together 2 KB a work in float32); each
fitted projection file is ``k × m`` float32 (50 MB and 17 MB). Style signatures
(:func:`artspace.features.style_signature`) are sketched and projected the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from .atomic import atomic_savez

__all__ = ["SKETCH_DIM", "CountSketch", "StyleProjection"]

SKETCH_DIM = 32_768


class CountSketch:
    """A seeded CountSketch from ``dim`` to ``m`` coordinates (linear, so distances sketch like vectors)."""

    def __init__(self, dim: int, m: int = SKETCH_DIM, seed: int = 1508_06576):
        rng = np.random.default_rng(seed)
        self.dim, self.m, self.seed = int(dim), int(m), int(seed)
        self.bucket = torch.from_numpy(rng.integers(0, m, size=dim, dtype=np.int64))
        self.sign = torch.from_numpy(rng.integers(0, 2, size=dim).astype(np.float32) * 2 - 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Sketch a batch (B, dim) into (B, m), in float32."""
        if x.shape[1] != self.dim:
            raise ValueError(f"expected vectors of {self.dim} numbers, got {x.shape[1]}")
        bucket, sign = self.bucket.to(x.device), self.sign.to(x.device)
        out = torch.zeros(x.shape[0], self.m, device=x.device, dtype=torch.float32)
        return out.index_add_(1, bucket, x.float() * sign)


@dataclass
class StyleProjection:
    """PCA of sketched style vectors: ``embed(v) = (sketch(v) - mean) @ components.T``.

    Attributes
    ----------
    mean : ndarray (m,)
    components : ndarray (k, m), orthonormal rows
    explained : float
        Fraction of the fitted sample's variance (= mean squared pairwise :math:`L_{style}`) the k axes keep.
    n_fit : int
        Number of works the projection was fitted on.
    """

    mean: np.ndarray
    components: np.ndarray
    explained: float
    n_fit: int
    seed: int = 1508_06576

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    @classmethod
    def fit(cls, sketches: np.ndarray, *, k: int = 512, seed: int = 1508_06576) -> "StyleProjection":
        """Fit on sketched vectors (n, m). Uses the n × n Gram trick, so memory is O(n·m + n²) — never m × m."""
        x = torch.from_numpy(np.ascontiguousarray(sketches, dtype=np.float32)).double()
        n = x.shape[0]
        if n < 2:
            raise ValueError("a style projection needs at least 2 works")
        mean = x.mean(0)
        xc = x - mean
        gram = xc @ xc.T
        evals, evecs = torch.linalg.eigh(gram)
        order = torch.argsort(evals, descending=True)
        evals, evecs = evals[order], evecs[:, order]
        total = float(evals.clamp_min(0).sum())
        keep = int(min(k, n - 1, int((evals > evals[0] * 1e-12).sum())))
        comps = (xc.T @ evecs[:, :keep]) / evals[:keep].sqrt()  # (m, keep), orthonormal columns
        explained = float(evals[:keep].sum() / total) if total > 0 else 1.0
        return cls(mean=mean.float().numpy(), components=comps.T.float().contiguous().numpy(),
                   explained=explained, n_fit=n, seed=seed)

    def embed(self, sketches: torch.Tensor | np.ndarray) -> np.ndarray:
        """Project sketched vectors (B, m) to (B, k) float32."""
        s = torch.as_tensor(sketches, dtype=torch.float32)
        out = (s - torch.from_numpy(self.mean)) @ torch.from_numpy(self.components).T
        return out.numpy()

    def off_axes(self, sketches: torch.Tensor | np.ndarray) -> np.ndarray:
        """Each sketched vector's squared distance to the axes (the part of its squared norm about the mean that
        :meth:`embed` leaves out), (B,) float32, computed in float64."""
        s = torch.as_tensor(np.asarray(sketches, np.float32) if isinstance(sketches, np.ndarray) else sketches)
        centred = s.double() - torch.from_numpy(np.asarray(self.mean)).double()
        kept = centred @ torch.from_numpy(np.asarray(self.components)).double().T
        return ((centred ** 2).sum(1) - (kept ** 2).sum(1)).clamp_min(0).float().numpy()

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically (temporary file, then rename)."""
        atomic_savez(path, mean=self.mean, components=self.components, explained=self.explained, n_fit=self.n_fit,
                     seed=self.seed)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "StyleProjection":
        with np.load(path) as z:
            return cls(mean=z["mean"], components=z["components"], explained=float(z["explained"]),
                       n_fit=int(z["n_fit"]), seed=int(z["seed"]))
