r"""The content projection learnt from pastiches: what stays fixed when only the hand changes.

A photograph painted in many styles by AdaIN (Huang & Belongie 2017; :func:`artspace.pastiches.pastiche_set`)
keeps its subject and composition and changes everything else. Fisher's discriminant
(:func:`artspace.discriminant.fisher`) with each photograph and its pastiches as one group finds the directions of
the content descriptor along which a change of hand moves a work least compared with a change of subject. The
catalog blends those coordinates into its content embedding (:class:`artspace.content_model.ContentModel`).

artspace ships one projection (``artspace/data/content_projection.npz``) for the default descriptor, fitted on
pastiches that share no photograph and no painting with the sets it is measured on (docs/benchmarks.md,
"Content that follows the subject"). ``artspace fit-content``
(:func:`artspace.analysis.content_fit.fit_content`) fits another from any catalog of pastiche groups;
``artspace index --content-projection FILE`` uses it.

The descriptor itself is computed on maps with the medium's channel statistics replaced by those of photographs
(:func:`artspace.features.restyle`); :func:`photo_statistics` reads the shipped statistics
(``artspace/data/photo_statistics.npz``) and :func:`fit_photo_statistics` measures them again.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from .discriminant import LinearProjection
from .errors import ArtspaceError, InvalidOption

__all__ = ["DIM", "SHRINKAGE", "shipped_projection", "projection_for", "load_projection", "photo_statistics",
           "fit_photo_statistics"]

#: Directions kept (the top ones): with the collection's 384 PCA axes the content embedding has 512 numbers, as it
#: had before the projection; all 243 found the subject no more often on the development sets.
DIM = 128

#: The shrinkage of the shipped projection: the within-photograph covariance pulled 90 % towards a multiple of the
#: identity (lower values fitted the pastiches better and found the subject less often across real media).
SHRINKAGE = 0.9


def _data_file(name: str) -> Path:
    """A file shipped in ``artspace/data``."""
    from importlib import resources

    return Path(str(resources.files("artspace") / "data" / name))


def _shipped_path() -> Path:
    return _data_file("content_projection.npz")


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
    want = {"descriptor_layers": list(spec.descriptor_layers), "weights": str(spec.weights),
            "descriptor_norm": spec.descriptor_norm}
    if path is not None:
        p = load_projection(path)
        got = {k: p.info.get(k) for k in want}
        if got != want:
            raise InvalidOption(f"the content projection {path} was fitted on the descriptor {got}, this catalog's "
                                f"is {want}; fit one on this descriptor with `artspace fit-content`")
        return p
    p = shipped_projection()
    return p if p is not None and {k: p.info.get(k) for k in want} == want else None


@functools.lru_cache(maxsize=None)
def _statistics() -> dict:
    import numpy as np

    path = _data_file("photo_statistics.npz")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as e:
        raise ArtspaceError(f"the photograph statistics {path} cannot be read ({e}); reinstall artspace") from None


def photo_statistics(layer: str):
    r"""The mean channel statistics of photographs at convolution *layer* of VGG-19 (original weights): two float32
    tensors (N,), :math:`\bar\mu_c` and :math:`\bar\sigma_c`, the averages over photographs of each channel's
    mean and standard deviation over an image's positions (:func:`fit_photo_statistics`)."""
    import torch

    stats = _statistics()
    if f"{layer}/mean" not in stats:
        have = sorted({k.split("/")[0] for k in stats if "/" in k})
        raise InvalidOption(f"artspace has no photograph statistics for layer {layer!r}; it has {have}")
    return torch.from_numpy(stats[f"{layer}/mean"]), torch.from_numpy(stats[f"{layer}/std"])


def fit_photo_statistics(folder: str | os.PathLike, path: str | os.PathLike, *, size: int = 224,
                         batch_size: int = 16, device: str = "auto") -> dict:
    """Measure :func:`photo_statistics` on the photographs in *folder* and write them to *path* (``.npz``): for each
    convolution of VGG-19 (original weights), every channel's mean and standard deviation over an image's positions
    (*size* × *size* input, float32), averaged over the photographs. The shipped file was measured on the 1,320
    photographs of ``photos-train`` (PACS photographs, Li et al. 2017; docs/benchmarks.md) by
    ``python benchmarks/bench_content.py statistics --photos DIR --save artspace/data/photo_statistics.npz``.
    Returns what it wrote. The file is replaced atomically; a refitted file changes every content descriptor, so
    catalogs indexed before it must be rebuilt to be compared with catalogs indexed after."""
    import numpy as np
    import torch

    from .atomic import atomic_savez
    from .backbone import VGG19, ieee_float32, resolve_device
    from .features import prepare_image
    from .images import open_image, walk_images
    from .spec import CONV_LAYERS

    files = sorted(walk_images(folder))
    if not files:
        raise ArtspaceError(f"{folder} holds no images; give a folder of photographs")
    dev = resolve_device(device)
    net = VGG19("original", last_layer=CONV_LAYERS[-1]).to(dev)
    sums = {n: [0.0, 0.0] for n in CONV_LAYERS}
    with torch.inference_mode(), ieee_float32(dev):
        for i in range(0, len(files), batch_size):
            x = torch.stack([prepare_image(open_image(f, max_side=2 * size), size) for f in files[i:i + batch_size]])
            out = net(x.to(dev), CONV_LAYERS)
            for n, f in out.items():
                f = f.float()
                sums[n][0] = sums[n][0] + f.mean((2, 3)).sum(0).double().cpu()
                sums[n][1] = sums[n][1] + f.std((2, 3)).sum(0).double().cpu()
    arrays = {}
    for n, (m, s) in sums.items():
        arrays[f"{n}/mean"] = (m / len(files)).numpy().astype(np.float32)
        arrays[f"{n}/std"] = (s / len(files)).numpy().astype(np.float32)
    arrays["photographs"] = np.asarray(len(files))
    arrays["size"] = np.asarray(size)
    atomic_savez(path, **arrays)
    _statistics.cache_clear()
    return arrays
