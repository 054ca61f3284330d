r"""The content projection learnt from pastiches: what stays fixed when only the hand changes.

A photograph painted in many styles by AdaIN (Huang & Belongie 2017; :func:`artspace.pastiches.pastiche_set`)
keeps its subject and composition and changes everything else. Fisher's discriminant
(:func:`artspace.discriminant.fisher`) with each photograph and its pastiches as one group finds the directions of
the content descriptor along which a change of hand moves a work least compared with a change of subject. The
catalog blends those coordinates into its content embedding (:class:`artspace.search.ContentModel`).

artspace ships one projection (``artspace/data/content_projection.npz``) for the default descriptor, fitted on
pastiches that share no photograph and no painting with the sets it is measured on (docs/benchmarks.md,
"Content that follows the subject"). ``artspace fit-content``
(:func:`artspace.analysis.content_fit.fit_content`) fits another from any catalog of pastiche groups;
``artspace index --content-projection FILE`` uses it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from .discriminant import LinearProjection
from .errors import ArtspaceError, InvalidOption

__all__ = ["DIM", "SHRINKAGE", "shipped_projection", "projection_for", "load_projection"]

#: Directions kept (the top ones): with the collection's 384 PCA axes the content embedding has 512 numbers, as it
#: had before the projection; all 243 found the subject no more often on the development sets.
DIM = 128

#: The shrinkage of the shipped projection: the within-photograph covariance pulled 90 % towards a multiple of the
#: identity (lower values fitted the pastiches better and found the subject less often across real media).
SHRINKAGE = 0.9


def _shipped_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("artspace") / "data" / "content_projection.npz"))


@functools.lru_cache(maxsize=1)
def shipped_projection() -> LinearProjection | None:
    """The content projection shipped with artspace (None in a source tree where it has not been fitted yet)."""
    path = _shipped_path()
    return LinearProjection.load(path) if path.is_file() else None


def load_projection(path: str | os.PathLike) -> LinearProjection:
    """A content projection written by :func:`artspace.analysis.content_fit.fit_content` (``.save``); a clear error if
    it is not one."""
    p = LinearProjection.load(path)
    if "descriptor_layers" not in p.info:
        raise ArtspaceError(f"{path} is not a content projection (it does not say which descriptor it was fitted "
                            f"on); make one with `artspace fit-content`")
    return p


def projection_for(spec, path: str | os.PathLike | None = None) -> LinearProjection | None:
    """The learnt projection a catalog with feature *spec* uses: the file *path* (refused if it was fitted on
    another descriptor), else the shipped one where it was fitted on the same descriptor, else None (the catalog's
    content embedding is then the style-group-centred descriptor alone)."""
    # the input size is not compared: maxima of a layer over space mean the same at any size
    want = {"descriptor_layers": list(spec.descriptor_layers), "weights": str(spec.weights)}
    if path is not None:
        p = load_projection(path)
        got = {k: p.info.get(k) for k in want}
        if got != want:
            raise InvalidOption(f"the content projection {path} was fitted on the descriptor {got}, this catalog's "
                                f"is {want}; fit one on this descriptor with `artspace fit-content`")
        return p
    p = shipped_projection()
    return p if p is not None and {k: p.info.get(k) for k in want} == want else None
