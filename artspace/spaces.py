"""The one table of search spaces: what "style" and "content" mean in every command, function, file and page.

=========  ==================================================================  =================================
name       what a distance in it is                                            ranking
=========  ==================================================================  =================================
style      the style signature: mean over relu4_1, relu5_1 of the squared      the signature distance divided by
           Hellinger distance between the two Gram matrices read as            both works' neighbourhood scales
           distributions, :math:`H^2 = 1-\\sum_{ij}\\sqrt{P_{ij}Q_{ij}}`         (Jégou et al. 2010)
           (0 = same statistics, 1 = nothing in common)
l_style    Gatys et al.'s (2016) style loss :math:`L_{style}=\\sum_l w_lE_l`,   the distance itself
           :math:`E_l=\\frac{1}{4N_l^2M_l^2}\\sum_{ij}(G^l_{ij}-A^l_{ij})^2`,
           relu1_1 … relu5_1, :math:`w_l = 1/5`
content    :math:`1-\\cos` of style-free content embeddings: maxima of          the distance itself
           relu5_2, relu5_3, relu5_4, less each work's style-group mean,
           blended with a projection learnt from pastiches,
           :math:`1-(\\cos_a + w\\cos_b)/(1+w)` (:mod:`artspace.content`;
           Geirhos et al. 2019 on why ImageNet features follow texture)
=========  ==================================================================  =================================

Every space is searched through a compact embedding stored in the catalog (squared L2 of the compact vectors
estimates the distance above; for content it is exact). ``artspace distance`` prints the exact figures of a pair
beside the estimate each space ranks by. This module imports nothing heavy, so the command line can read it fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidOption

__all__ = ["Space", "SPACES", "DEFAULT_SPACE", "space", "measure"]


@dataclass(frozen=True)
class Space:
    """One search space: its name, the faiss metric of its stored embedding, and how to say what it measures."""

    name: str
    #: ``l2``: squared Euclidean distance of the stored vectors; ``ip``: 1 − inner product of unit vectors
    metric: str
    #: whether searches divide the distance by both works' neighbourhood scales
    relative: bool
    #: a short label for tables, plots and captions
    label: str
    #: the estimated quantity, as a formula in plain text (help texts, manifests)
    formula: str


SPACES: dict[str, Space] = {
    "style": Space("style", "l2", True, "style (relative signature distance)",
                   "mean_l H^2_l / sqrt(rho_a rho_b), H^2 = 1 - sum sqrt(P Q) on relu4_1, relu5_1"),
    "l_style": Space("l_style", "l2", False, "L_style (Gatys et al.)",
                     "sum_l w_l E_l, E_l = sum (G - A)^2 / (4 N^2 M^2) on relu1_1 ... relu5_1"),
    "content": Space("content", "ip", False, "content (1 - cos)",
                     "1 - (cos_a + w cos_b)/(1 + w): a = relu5_2-5_4 maxima, b = their pastiche-learnt projection, "
                   "each less its style-group mean"),
}
DEFAULT_SPACE = "style"


def space(name: str) -> Space:
    """The :class:`Space` called *name*; :class:`~artspace.errors.InvalidOption` listing the names otherwise."""
    try:
        return SPACES[name]
    except (KeyError, TypeError):
        *first, last = SPACES
        raise InvalidOption(f"by must be {', '.join(first)} or {last}, not {name!r}") from None


def measure(by: str, q: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distances in space *by* from queries *q* (m, d) to their works *y* (m, k, d), (m, k), in float64: one
    computation (the same summation order for one query or many) behind every figure artspace prints."""
    q, y = np.asarray(q, np.float64)[:, None, :], np.asarray(y, np.float64)
    if space(by).metric == "ip":
        return np.maximum(1.0 - np.einsum("mkd,mkd->mk", np.broadcast_to(q, y.shape), y), 0.0)
    diff = y - q
    return np.einsum("mkd,mkd->mk", diff, diff)
