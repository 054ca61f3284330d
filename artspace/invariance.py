r"""What stays fixed when the style changes: a content projection learnt from pastiches.

Pooled deep VGG features follow texture as much as shape (Geirhos et al. 2019): a sketch of a dog lies near other
sketches. artspace's own transfer says what a change of hand does to a subject: the same photograph painted in many
styles (AdaIN, Huang & Belongie 2017, in one pass each) keeps its subject and composition and changes everything
else. :func:`pastiche_set` makes such groups from a folder of photographs and one of paintings; :func:`fit`
finds the directions of the content descriptor along which a photograph and its pastiches vary least compared with
how different photographs vary — Fisher's linear discriminant with each photograph's group as a class:

.. math::

    W = \arg\max_W \frac{|W^\top S_b W|}{|W^\top (S_w + \epsilon I) W|},\qquad
    S_w = \sum_g \sum_{i \in g} (x_i - \mu_g)(x_i - \mu_g)^\top,\quad
    S_b = \sum_g n_g (\mu_g - \mu)(\mu_g - \mu)^\top

(the generalised eigenvectors of :math:`(S_b, S_w + \epsilon I)`, each scaled so that a unit of it is one
within-group standard deviation). The content embedding is then :math:`W^\top(x - \mu)` scaled to unit length and
compared by :math:`1-\cos`. A projection fitted here ships with artspace
(``artspace/data/content_projection.npz``; ``artspace fit-content`` refits it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write
from .errors import ArtspaceError, InvalidOption

__all__ = ["ContentProjection", "pastiche_set", "fit", "default_projection"]

#: The file of the projection shipped with artspace.
DEFAULT_PROJECTION = "content_projection.npz"


@dataclass
class ContentProjection:
    """A linear map of content descriptors (``mean`` subtracted, then ``components``) and what it was fitted on."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (D, d)
    info: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.components.shape[1])

    def transform(self, descriptors: np.ndarray) -> np.ndarray:
        """The projected descriptors (n, d), float32, not normalised."""
        x = np.asarray(descriptors, np.float64) - self.mean
        return (x @ self.components).astype(np.float32)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write(path, lambda p: np.savez(p, mean=self.mean.astype(np.float32),
                                              components=self.components.astype(np.float32),
                                              info=np.array(json.dumps(self.info, sort_keys=True))))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ContentProjection":
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(mean=z["mean"].astype(np.float64), components=z["components"].astype(np.float64),
                           info=json.loads(str(z["info"])))
        except (OSError, KeyError, ValueError) as e:
            raise ArtspaceError(f"cannot read the content projection {path} ({e}); refit it with "
                                f"`artspace fit-content`") from None


def default_projection() -> Path:
    """The path of the content projection shipped with artspace."""
    from importlib import resources

    return Path(str(resources.files("artspace") / "data" / DEFAULT_PROJECTION))


def fit(descriptors: np.ndarray, groups, *, dim: int = 128, shrinkage: float = 0.1) -> ContentProjection:
    """Fisher's discriminant of *descriptors* (n, D) with *groups* (a photograph and its pastiches share a group):
    the *dim* directions that keep groups apart and each group together. *shrinkage* adds that fraction of the
    mean within-group variance to the diagonal of :math:`S_w`, so that directions no group varies along do not
    dominate."""
    from scipy.linalg import eigh

    x = np.asarray(descriptors, np.float64)
    labels = pd.factorize(pd.Series(groups))[0]
    n, d_in = x.shape
    k = labels.max() + 1
    if k < 2 or n <= k:
        raise InvalidOption(f"fitting a content projection needs at least 2 groups of 2 images or more "
                            f"({n} images in {k} groups given)")
    mu = x.mean(0)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    means = np.zeros((k, d_in))
    np.add.at(means, labels, x)
    means /= counts[:, None]
    within = x - means[labels]
    sw = within.T @ within / n
    centred = means - mu
    sb = (centred * counts[:, None]).T @ centred / n
    sw += shrinkage * np.trace(sw) / d_in * np.eye(d_in)
    dim = int(min(dim, d_in, k - 1))
    values, vectors = eigh(sb, sw, subset_by_index=[d_in - dim, d_in - 1])
    order = np.argsort(values)[::-1]
    # eigh normalises v' Sw v = 1: a unit along each direction is one within-group standard deviation
    return ContentProjection(mean=mu, components=vectors[:, order],
                             info={"method": "fisher", "dim": dim, "shrinkage": shrinkage, "images": int(n),
                                   "groups": int(k), "ratios": [round(float(v), 4) for v in values[order][:8]]})


def pastiche_set(photos: str | os.PathLike, paintings: str | os.PathLike, out: str | os.PathLike, *,
                 photos_n: int = 300, per_photo: int = 6, size: int = 224, skip_photos: int = 0,
                 painting_share: tuple[int, int] = (0, 1), seed: int = 0, progress=None) -> pd.DataFrame:
    """Paint *photos_n* photographs of the folder *photos* (seeded choice, after leaving out the first
    *skip_photos* of that order) each in *per_photo* paintings of *paintings* (seeded, without repeats for a
    photograph) with AdaIN, at *size* px; write them with each photograph (resized) under *out*, and
    ``out/metadata.csv``: path, photo (the group), subject (the photograph's folder label when its metadata.csv
    has a ``class`` column), painting, and kind (``photo`` / ``pastiche``). *painting_share* ``(j, m)`` takes only every m-th painting from the
    j-th (disjoint sets of paintings for fitting and for measuring)."""
    from .feedforward import adain_transfer
    from .images import open_image, resize_long_side, save_image, walk_images

    photos, paintings, out = Path(photos), Path(paintings), Path(out)
    photo_files = sorted(walk_images(photos))
    painting_files = sorted(walk_images(paintings))[painting_share[0]::painting_share[1]]
    if not photo_files or not painting_files:
        raise ArtspaceError(f"{photos if not photo_files else paintings} holds no images")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(photo_files))[skip_photos:skip_photos + photos_n]
    labels = _labels(photos)
    (out / "images").mkdir(parents=True, exist_ok=True)
    cache: dict = {}
    rows = []
    for j, i in enumerate(order):
        photo = photo_files[i]
        rel = photo.relative_to(photos).as_posix()
        stem = f"p{j:04d}"
        im = resize_long_side(open_image(photo, max_side=2 * size), size)
        target = out / "images" / f"{stem}_photo.png"
        if not target.exists():
            save_image(im, target)
        rows.append({"path": f"images/{target.name}", "photo": rel, "subject": labels.get(rel), "painting": None,
                     "kind": "photo"})
        for p in rng.choice(len(painting_files), size=min(per_photo, len(painting_files)), replace=False):
            painting = painting_files[p]
            target = out / "images" / f"{stem}_{painting.stem}.png"
            if not target.exists():
                if painting not in cache:
                    cache[painting] = _moments(painting, size)
                result = adain_transfer(im, [cache[painting]], size=size)
                save_image(result.image, target)
            rows.append({"path": f"images/{target.name}", "photo": rel, "subject": labels.get(rel),
                         "painting": painting.relative_to(paintings).as_posix(), "kind": "pastiche"})
        if progress is not None:
            progress(j + 1, len(order))
    table = pd.DataFrame(rows)
    atomic_write(out / "metadata.csv", lambda p: table.to_csv(p, index=False))
    return table


def _labels(folder: Path) -> dict:
    """``{relative path: class}`` from a folder's metadata.csv, where it has one with a ``class`` column."""
    csv = folder / "metadata.csv"
    if not csv.is_file():
        return {}
    table = pd.read_csv(csv)
    if "class" not in table.columns or "path" not in table.columns:
        return {}
    return dict(zip(table["path"].astype(str), table["class"].astype(str)))


def _moments(painting: Path, size: int):
    """A painting's relu4_1 channel means and standard deviations (AdaIN's style), computed once."""
    import torch

    from .backbone import VGG19
    from .images import open_image, resize_long_side, to_tensor
    from .losses import channel_stats
    from .spec import MOMENTS_LAYER

    global _ENCODER
    if _ENCODER is None:
        _ENCODER = VGG19("original", last_layer=MOMENTS_LAYER)
    x = to_tensor(resize_long_side(open_image(painting, max_side=2 * size), size))[None]
    with torch.inference_mode():
        mean, std = channel_stats(_ENCODER(x, [MOMENTS_LAYER])[MOMENTS_LAYER])
    return mean[0].numpy(), std[0].numpy()


_ENCODER = None
