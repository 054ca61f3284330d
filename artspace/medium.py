r"""Which works are photographs: a logistic model of relu4_1's channel statistics.

Content search subtracts what every work of a style group shares (:class:`artspace.content_model.ContentModel`). Style
groups come from the works' L_style embeddings, and in those a photograph and a realistic painting lie close: on
pacs-dev every clustering artspace tried kept photographs and paintings in one group, and content search then found
photographs for photographs (docs/benchmarks.md, "Content that follows the subject"). A photograph is a medium of its
own, and one a linear model tells apart well from the channel statistics AdaIN calls style (Huang & Belongie 2017): with
:math:`\mu_c, \sigma_c` the mean and standard deviation of channel :math:`c` of relu4_1 over the image's positions (the
2 × 512 ``moments`` every catalog stores),

.. math::

    P(\text{photograph}) = \operatorname{logistic}\big(w^\top(x - m)\big),\qquad
    x = \big(\log(\mu + \epsilon), \log(\sigma + \epsilon)\big),\ \epsilon = 10^{-3},

fitted by L2-regularised logistic regression (the strength chosen by 5-fold cross-validated log-loss) on
photographs against paintings. A work is called a photograph where the logit :math:`w^\top(x-m)` is positive.
The content model then splits each style group into its photographs and its other works where both parts are large
enough (:meth:`artspace.content_model.ContentModel.fit`).

artspace ships one model (``artspace/data/photograph_model.npz``, 10 KB) for the default input size and weights,
fitted on the 1,320 photographs of ``photos-train`` against the 2,100 paintings of ``paintings-train``, neither in
any set the docs measure on, by ``artspace fit-medium PHOTOS PAINTINGS -o photograph_model.npz`` (then copied there)
(:func:`fit_medium`). ``artspace index --medium-model FILE`` uses another.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from .discriminant import LinearProjection
from .errors import ArtspaceError, InvalidOption
from .spec import MOMENTS_LAYER

__all__ = ["EPS", "shipped_model", "load_model", "model_for", "photograph_logits", "is_photograph", "PhotographCalls",
           "fit_logistic", "fit_medium", "moments_of"]

#: added to the channel statistics before their logarithm (relu4_1's means are often 0 for a channel)
EPS = 1e-3


def _shipped_path():
    from .content import _data_file

    return _data_file("photograph_model.npz")


def load_model(path: str | os.PathLike) -> LinearProjection:
    """A photograph model written by :func:`fit_medium`; a clear error naming the file if it is not one."""
    p = LinearProjection.load(path)
    if p.info.get("kind") != "photograph model" or p.dim != 1 or p.mean.shape[0] != 1024:
        raise ArtspaceError(f"{path} is not a photograph model (a file of `artspace fit-medium`); make one with "
                            f"`artspace fit-medium PHOTOS PAINTINGS -o FILE`")
    return p


@functools.lru_cache(maxsize=1)
def shipped_model() -> LinearProjection | None:
    """The photograph model shipped with artspace (None in a source tree where it has not been fitted)."""
    path = _shipped_path()
    return load_model(path) if path.is_file() else None


def _wanted(spec) -> dict:
    # relu4_1's statistics depend on the input size (a larger image, finer texture) and on the weights
    return {"size": int(spec.size), "weights": str(spec.weights), "layer": MOMENTS_LAYER}


def model_for(spec, path: str | os.PathLike | None = None) -> LinearProjection | None:
    """The photograph model a catalog with feature *spec* uses: the file *path* (refused if it was fitted at another
    input size or with other weights), else the shipped one where it fits, else None (style groups are not split)."""
    want = _wanted(spec)
    if path is not None:
        p = load_model(path)
        got = {k: p.info.get(k) for k in want}
        if got != want:
            raise InvalidOption(f"the photograph model {path} was fitted on {got}, this catalog's features are "
                                f"{want}; fit one at these settings with `artspace fit-medium --size "
                                f"{want['size']}`")
        return p
    p = shipped_model()
    return p if p is not None and {k: p.info.get(k) for k in want} == want else None


def _log_moments(moments, dtype=np.float32) -> np.ndarray:
    """The model's input x: the logarithms of the channel statistics plus :data:`EPS`."""
    return np.log(np.maximum(np.asarray(moments, dtype), 0.0) + EPS)


def photograph_logits(model: LinearProjection, moments, batch: int = 65_536) -> np.ndarray:
    """The logit of P(photograph) for each row of *moments* (n × 1024: relu4_1's channel means then standard
    deviations, as catalogs store them), in blocks of rows. Positive: a photograph."""
    out = np.empty(len(moments), np.float32)
    for s in range(0, len(moments), batch):
        out[s:s + batch] = model.transform(_log_moments(moments[s:s + batch]))[:, 0]
    return out


def is_photograph(model: LinearProjection, moments) -> np.ndarray:
    """Whether *model* calls each row of *moments* a photograph: a positive logit (:func:`photograph_logits`)."""
    return photograph_logits(model, moments) > 0


class PhotographCalls:
    """Whether the photograph *model* calls each work a photograph, from the works' relu4_1 *moments* (n × 1024),
    computed for the rows asked for (``calls[rows]``) or, as an array (``np.asarray(calls)``), for all of them once.
    A publication that keeps its content model needs the calls of its new works only: a million works' calls
    take about 11 s."""

    def __init__(self, model: LinearProjection, moments):
        self.model, self.moments, self._all = model, moments, None

    def __len__(self) -> int:
        return len(self.moments)

    def __getitem__(self, rows) -> np.ndarray:
        if self._all is not None:
            return self._all[rows]
        return is_photograph(self.model, self.moments[rows])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if self._all is None:
            self._all = is_photograph(self.model, self.moments)
        return self._all if dtype is None else self._all.astype(dtype)


def moments_of(folder: str | os.PathLike, *, size: int = 224, weights: str = "original", batch_size: int = 16,
               device: str = "auto", progress: bool = False) -> np.ndarray:
    """relu4_1's channel means and standard deviations (n × 1024, float32) of every image in *folder*, prepared and
    computed as an index run computes them in float32 (:class:`artspace.features.Extractor`, *size* × *size*);
    *progress* shows a bar on standard error."""
    import torch
    from tqdm.auto import tqdm

    from . import losses
    from .backbone import ieee_float32
    from .features import Extractor
    from .images import walk_images
    from .spec import FeatureSpec

    files = sorted(walk_images(folder))
    if not files:
        raise ArtspaceError(f"{folder} holds no images; give a folder of images")
    ex = Extractor(FeatureSpec(size=size, weights=weights), device=device)
    net = ex.net  # the indexer's network (channels-last, Winograd on a CPU), run only as far as relu4_1
    out = []
    with torch.inference_mode(), ieee_float32(ex.device), tqdm(
            total=len(files), desc=f"relu4_1 of {os.path.basename(os.path.normpath(folder))}", unit="img",
            disable=not progress) as bar:
        for i in range(0, len(files), batch_size):
            x = ex.batch(files[i:i + batch_size]).to(ex.device).contiguous(memory_format=torch.channels_last)
            mean, std = losses.channel_stats(net(x, frozenset({MOMENTS_LAYER}))[MOMENTS_LAYER])
            out.append(torch.cat([mean, std], 1).cpu().numpy())
            bar.update(len(x))
    return np.concatenate(out).astype(np.float32)


def fit_logistic(photographs: np.ndarray, others: np.ndarray, *, info: dict | None = None,
                 seed: int = 0) -> LinearProjection:
    """The photograph model of two sets of relu4_1 moments: L2-regularised logistic regression on the standardised
    log statistics (the strength among 10⁻⁴ … 10 by 5-fold cross-validated log-loss; its 5-fold error rates on
    each side are kept in ``info``), folded into one
    :class:`LinearProjection` of dimension 1 whose output is the logit (the standardisation into its components,
    the intercept into its mean)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict, cross_val_score

    if len(photographs) < 5 or len(others) < 5:
        raise InvalidOption(f"a photograph model needs at least 5 photographs and 5 other images (got "
                            f"{len(photographs)} and {len(others)})")
    x = _log_moments(np.vstack([photographs, others]), np.float64)
    y = np.r_[np.ones(len(photographs)), np.zeros(len(others))]
    m, s = x.mean(0), x.std(0) + 1e-6
    z, folds = (x - m) / s, StratifiedKFold(5, shuffle=True, random_state=seed)
    losses = {c: cross_val_score(LogisticRegression(C=c, max_iter=5000), z, y, cv=folds, scoring="neg_log_loss").mean()
              for c in np.logspace(-4, 1, 11)}
    c = float(max(losses, key=losses.get))
    clf = LogisticRegression(C=c, max_iter=5000).fit(z, y)
    w = clf.coef_[0] / s
    # w·(x − m) + b = w·(x − m′) with m′ = m − b w / |w|²
    mean = m - clf.intercept_[0] * w / max(float(w @ w), 1e-30)
    accuracy = float((((x - mean) @ w > 0) == (y == 1)).mean())
    # how often it errs on images it was not fitted on: 5-fold predictions at the chosen strength
    held_out = cross_val_predict(LogisticRegression(C=c, max_iter=5000), z, y, cv=folds)
    return LinearProjection(mean=mean, components=w[:, None], info={
        "kind": "photograph model", "layer": MOMENTS_LAYER, "eps": EPS, "C": c,
        "photographs": int(len(photographs)), "others": int(len(others)), "training_accuracy": round(accuracy, 4),
        "cv_photographs_missed": round(float((held_out[y == 1] == 0).mean()), 4),
        "cv_others_called_photographs": round(float((held_out[y == 0] == 1).mean()), 4),
        **(info or {})})


def fit_medium(photographs: str | os.PathLike, paintings: str | os.PathLike, path: str | os.PathLike, *,
               size: int = 224, weights: str = "original", device: str = "auto",
               progress: bool = False) -> LinearProjection:
    """Fit a photograph model on the images of the folder *photographs* against those of *paintings* (or any
    non-photographic media) and write it to *path* (``.npz``, atomically): :func:`moments_of` each folder at
    *size* × *size*, then :func:`fit_logistic`; an existing *path* is refused, never overwritten. The shipped model:
    ``photos-train`` against ``paintings-train`` at 224 px (docs/benchmarks.md). A catalog uses a refitted model
    from its next ``artspace index --medium-model FILE``; its content embeddings then change, no image is read."""
    from . import __version__
    from .errors import OutputConflict

    if os.path.lexists(path):  # said now, not after minutes of reading images
        raise OutputConflict(f"{path} exists; artspace never overwrites a file: choose another --output")
    p = fit_logistic(moments_of(photographs, size=size, weights=weights, device=device, progress=progress),
                     moments_of(paintings, size=size, weights=weights, device=device, progress=progress),
                     info={"size": int(size), "weights": str(weights), "artspace": __version__,
                           "photograph_folder": os.path.basename(os.path.normpath(photographs)),
                           "painting_folder": os.path.basename(os.path.normpath(paintings))})
    p.save(path)
    shipped_model.cache_clear()
    return p
