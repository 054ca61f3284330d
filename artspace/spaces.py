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
content    :math:`1-\\cos` of style-free content embeddings: maxima of          the cosine to the query averaged
           relu5_2, relu5_3, relu5_4, less each work's style-group mean,       with its 2 nearest works (query
           blended with a projection learnt from pastiches,                    expansion, Chum et al. 2007),
           :math:`1-(\\cos_a + w\\cos_b)/(1+w)` (:mod:`artspace.content`;        standardised against the
           Geirhos et al. 2019 on why ImageNet features follow texture)        collection, the work's style
                                                                               group and the work's own
                                                                               similarities (Schnitzer et al.
                                                                               2012; ``ContentStats``)
taught:N   squared Euclidean distance after a projection of the style          the distance itself
           embedding taught by a scholar's labels (``artspace teach``:
           Fisher 1936 with shrinkage, NCA, Goldberger et al. 2004, or a
           supervised contrastive head, Khosla et al. 2020), beside
           reference axes of WikiArt movements where they help
           (:mod:`artspace.reference`)
=========  ==================================================================  =================================

The first three are every catalog's; a taught space ``taught:NAME`` is one catalog's own, made by
:meth:`Catalog.teach <artspace.catalog.Catalog.teach>` and resolved against that catalog's generation (refused, with
the command that refits it, once its labels or works have changed).

Every space is searched through a compact embedding stored in the catalog (squared L2 of the compact vectors
estimates the distance above; for content it is exact). ``artspace distance`` prints the exact figures of a pair
beside the estimate each space ranks by. This module imports nothing heavy, so the command line can read it fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .errors import InvalidOption

__all__ = ["Space", "SPACES", "DEFAULT_SPACE", "TAUGHT", "space", "measure", "is_taught"]


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

    @property
    def key(self) -> str:
        """The name as it may appear in file and column names (``taught:movement`` → ``taught_movement``)."""
        return self.name.replace(":", "_")

    @property
    def taught(self) -> bool:
        """Whether this is a space taught by labels (one catalog's own) rather than one of :data:`SPACES`."""
        return self.name.startswith(TAUGHT)


def _content_formula(norm: str | None) -> str:
    """The content space's formula, its descriptor on *norm*'s restyled maps where one is named."""
    maps = f" on {norm} maps restyled to photographs' channel statistics" if norm else ""
    return (f"1 - (cos_a + w cos_b)/(1 + w): a = relu5_2-5_4 maxima{maps}, b = their pastiche-learnt projection, "
            f"each less its style-group mean")


SPACES: dict[str, Space] = {
    "style": Space("style", "l2", True, "style (relative signature distance)",
                   "mean_l H^2_l / sqrt(rho_a rho_b), H^2 = 1 - sum sqrt(P Q) on relu4_1, relu5_1"),
    "l_style": Space("l_style", "l2", False, "L_style (Gatys et al.)",
                     "sum_l w_l E_l, E_l = sum (G - A)^2 / (4 N^2 M^2) on relu1_1 ... relu5_1"),
    "content": Space("content", "ip", False, "content (1 - cos)", _content_formula(None)),
}
DEFAULT_SPACE = "style"
#: The prefix of a taught space's name: ``taught:NAME``.
TAUGHT = "taught:"
_TAUGHT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def is_taught(name) -> bool:
    """Whether *name* names a taught space (``taught:NAME``), whether or not a catalog holds it."""
    return isinstance(name, str) and name.startswith(TAUGHT)


def space(name: str) -> Space:
    """The :class:`Space` called *name*: one of :data:`SPACES`, or ``taught:NAME`` (its name checked here, its
    existence by the catalog that is asked); :class:`~artspace.errors.InvalidOption` listing the names otherwise."""
    try:
        return SPACES[name]
    except (KeyError, TypeError):
        pass
    if is_taught(name):
        taught = name[len(TAUGHT):]
        if not _TAUGHT_NAME.fullmatch(taught):
            raise InvalidOption(f"a taught space's name is letters, digits, '_', '.' or '-' (at most 64, starting with "
                                f"a letter or digit), not {taught!r}")
        return Space(name, "l2", False, f"{name} (taught by labels)",
                     "squared L2 after the projection of the style embedding taught by labels")
    *first, last = SPACES
    raise InvalidOption(f"by must be {', '.join(first)} or {last}, not {name!r} (or taught:NAME, a space made by "
                        f"`artspace teach`)")


def formula(by: str, spec=None) -> str:
    """The formula of space *by* as a catalog with feature *spec* computes it: :attr:`Space.formula`, the content
    descriptor's restyled maps named where *spec* restyles them (``FeatureSpec.descriptor_norm``)."""
    norm = getattr(spec, "descriptor_norm", None)
    return _content_formula(norm) if by == "content" and norm else space(by).formula


def measure(by: str, q: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distances in space *by* from queries *q* (m, d) to their works *y* (m, k, d), (m, k), in float64: one
    computation (the same summation order for one query or many) behind every figure artspace prints."""
    q, y = np.asarray(q, np.float64)[:, None, :], np.asarray(y, np.float64)
    if space(by).metric == "ip":
        return np.maximum(1.0 - np.einsum("mkd,mkd->mk", np.broadcast_to(q, y.shape), y), 0.0)
    diff = y - q
    return np.einsum("mkd,mkd->mk", diff, diff)
