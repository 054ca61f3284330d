r"""Linear projections learnt from groups of works: Fisher's discriminant with shrinkage.

Two of artspace's spaces are taught rather than fixed: the content space learns from pastiches which directions of
a content descriptor change when only the hand changes, and a taught style space learns from a scholar's labels
which directions of the style embedding separate movements, workshops or hands. Both are Fisher's linear
discriminant (Fisher 1936; Rao 1948) with each group as a class:

.. math::

    W = \arg\max_W \frac{|W^\top S_b W|}{|W^\top S_w^{(\lambda)} W|},\qquad
    S_w = \frac1n\sum_g \sum_{i \in g} (x_i - \mu_g)(x_i - \mu_g)^\top,\quad
    S_b = \frac1n\sum_g n_g (\mu_g - \mu)(\mu_g - \mu)^\top,

    S_w^{(\lambda)} = (1-\lambda)\,S_w + \lambda\,\tfrac{\operatorname{tr} S_w}{D} I

— the generalised eigenvectors of :math:`(S_b, S_w^{(\lambda)})` with the largest eigenvalues. The shrinkage
:math:`\lambda` (Friedman 1989; Ledoit & Wolf 2004) pulls the within-group covariance towards a multiple of the
identity, so that directions along which no group happens to vary in the fitting set do not dominate. Each
direction is scaled so that one unit of it is one within-group standard deviation (:math:`w^\top S_w^{(\lambda)}
w = 1`): squared Euclidean distances in the projected space are Mahalanobis distances under the pooled
within-group covariance.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .atomic import atomic_savez
from .errors import ArtspaceError, InvalidOption

__all__ = ["LinearProjection", "fisher", "principal_axes"]


@dataclass
class LinearProjection:
    """A linear map of vectors: subtract ``mean`` (D,), multiply by ``components`` (D, d); ``info`` says what it was
    fitted on and how (a JSON-able dict, kept in the file)."""

    mean: np.ndarray
    components: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """The projected dimension d."""
        return int(self.components.shape[1])

    def transform(self, x: np.ndarray, batch: int = 65_536) -> np.ndarray:
        """The projected vectors (n, d) in float32, computed in float32 (embeddings need no more; a million
        1,536-number descriptors project twice as fast) in blocks of rows, so that a million works need no copy of
        the whole array."""
        out = np.empty((len(x), self.dim), np.float32)
        mean, comp = self.mean.astype(np.float32), self.components.astype(np.float32)
        for s in range(0, len(x), batch):
            np.matmul(np.asarray(x[s:s + batch], np.float32) - mean, comp, out=out[s:s + batch])
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write the projection to an ``.npz`` file (atomically; no pickled objects)."""
        atomic_savez(path, mean=np.asarray(self.mean, np.float32), components=np.asarray(self.components, np.float32),
                     info=np.array(json.dumps(self.info, sort_keys=True)))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LinearProjection":
        """Read a projection written by :meth:`save`; :class:`~artspace.errors.ArtspaceError` naming the file if it
        is missing or damaged."""
        try:
            with np.load(path, allow_pickle=False) as z:
                mean, comp, info = z["mean"], z["components"], json.loads(str(z["info"]))
        except (OSError, KeyError, ValueError, EOFError) as e:
            raise ArtspaceError(f"cannot read the projection {path} ({e}); refit it") from None
        if mean.ndim != 1 or comp.ndim != 2 or comp.shape[0] != mean.shape[0]:
            raise ArtspaceError(f"the projection {path} is damaged (mean {mean.shape}, components {comp.shape}); "
                                f"refit it")
        return cls(mean=mean.astype(np.float64), components=comp.astype(np.float64), info=info)


def fisher(x: np.ndarray, groups, *, dim: int | None = None, shrinkage: float = 0.1) -> LinearProjection:
    """Fisher's discriminant of the rows of *x* (n, D) given each row's group (*groups*, n labels of any kind;
    missing labels are not allowed): at most *dim* directions (default and cap: groups − 1 and D), with the
    within-group covariance shrunk by *shrinkage* ∈ [0, 1] towards a multiple of the identity (see the module's
    formula). Rows are weighted equally, so a large group counts for more."""
    from scipy.linalg import eigh

    if not 0.0 <= float(shrinkage) <= 1.0:
        raise InvalidOption(f"shrinkage must be between 0 and 1, not {shrinkage}")
    x = np.asarray(x, np.float64)
    labels, names = pd.factorize(pd.Series(np.asarray(groups, dtype=object)))
    if len(labels) != len(x):
        raise InvalidOption(f"{len(x)} vectors but {len(labels)} group labels")
    if (labels < 0).any():
        raise InvalidOption("every vector needs a group; drop the unlabelled ones before fitting")
    n, d_in = x.shape
    k = len(names)
    if k < 2 or n <= k:
        raise InvalidOption(f"a discriminant needs at least 2 groups and more vectors than groups "
                            f"({n} vectors in {k} groups given)")
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    mu = x.mean(0)
    means = np.zeros((k, d_in))
    np.add.at(means, labels, x)
    means /= counts[:, None]
    within = x - means[labels]
    sw = within.T @ within / n
    centred = means - mu
    sb = (centred * counts[:, None]).T @ centred / n
    sw = (1.0 - shrinkage) * sw + shrinkage * np.trace(sw) / d_in * np.eye(d_in)
    top = int(min(dim if dim is not None else k - 1, d_in, k - 1))
    if top < 1:
        raise InvalidOption(f"dim must be at least 1, not {dim}")
    try:
        values, vectors = eigh(sb, sw, subset_by_index=[d_in - top, d_in - 1])
    except np.linalg.LinAlgError:
        raise InvalidOption("the within-group covariance is singular (constant vectors?); use a shrinkage above "
                            "0") from None
    order = np.argsort(values)[::-1]
    return LinearProjection(mean=mu, components=vectors[:, order],
                            info={"method": "fisher", "dim": top, "shrinkage": float(shrinkage), "vectors": int(n),
                                  "groups": int(k),
                                  "ratios": [round(float(v), 6) for v in values[order][:16]]})


def principal_axes(x: np.ndarray, dim: int | None = None, *, block: int = 8192) -> LinearProjection:
    """The mean and the leading *dim* principal axes (default: all of them up to the rank) of the rows of *x*, as a
    :class:`LinearProjection`, largest variance first. The covariance is summed over blocks of rows (50,000 works of
    1,536 numbers need no centred copy) and diagonalised; axes whose variance is below 1e-12 of the largest are
    beyond the rank and left out."""
    x = np.asarray(x, np.float64)
    mean = x.mean(0)
    cov = np.zeros((x.shape[1], x.shape[1]))
    for s in range(0, len(x), block):
        c = x[s:s + block] - mean
        cov += c.T @ c
    values, vectors = np.linalg.eigh(cov)
    values, vectors = values[::-1], vectors[:, ::-1]
    rank = int((values > values[0] * 1e-12).sum()) if len(values) and values[0] > 0 else 0
    keep = rank if dim is None else min(dim, rank)
    return LinearProjection(mean=mean, components=vectors[:, :keep].copy(),
                            info={"method": "pca", "dim": int(keep), "fitted_on": int(len(x))})
