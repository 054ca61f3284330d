r"""The formulas of Gatys et al. 2016 (*Image style transfer using convolutional neural networks*, CVPR) — one
implementation each.

The catalog's distances and the transfer optimiser both call these functions; nothing else in artspace computes a
Gram matrix, a blend of Gram matrices, a style term, a content term or a total variation.

Notation (Gatys et al. 2016, Sec. 2): at layer :math:`l` the feature map is a matrix :math:`F^l` of
:math:`N_l` filters by :math:`M_l` positions (height × width).

* content: :math:`L^l_{content} = \tfrac12 \sum_{ij} (F^l_{ij} - P^l_{ij})^2`
* Gram: :math:`G^l = F^l {F^l}^\top`
* style term: :math:`E_l = \frac{1}{4 N_l^2 M_l^2} \sum_{ij} (G^l_{ij} - A^l_{ij})^2`
* style loss: :math:`L_{style} = \sum_l w_l E_l`, :math:`w_l = 1/|L|` by default
* total variation (the image prior of Mahendran & Vedaldi 2015, *Understanding deep image representations by
  inverting them*, CVPR, with β = 1): :math:`\sum_{ij} |x_{i+1,j} - x_{ij}| + |x_{i,j+1} - x_{ij}|`

Size normalisation. artspace stores :math:`\hat G = G / M` (the Gram matrix divided by the number of positions).
Then :math:`E_l = \frac{1}{4N_l^2} \sum_{ij} (\hat G_{ij} - \hat A_{ij})^2`, which is Gatys et al.'s formula exactly
when both images have the same size, and stays defined (and comparable) when they do not — the two Gram matrices
are each divided by their own :math:`M`.

L1 variants replace the squared norm by the absolute one with the matching square-rooted scale:
:math:`\sum_{ij}|F-P|` for content and :math:`\frac{1}{2N_l}\sum_{ij}|\hat G - \hat A|` for style.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from .errors import InvalidOption

__all__ = [
    "LOSS_KINDS",
    "gram",
    "blend_grams",
    "content_term",
    "style_term",
    "total_variation",
    "style_vector",
    "moment_term",
    "channel_stats",
    "ContentLoss",
    "StyleLoss",
]

LOSS_KINDS = ("l2", "l1")


def _check_kind(kind: str) -> None:
    if kind not in LOSS_KINDS:
        raise InvalidOption(f"loss kind must be one of {LOSS_KINDS}, not {kind!r}")


def gram(features: torch.Tensor) -> torch.Tensor:
    r"""Size-normalised Gram matrices :math:`\hat G = F F^\top / M` of a batch of feature maps.

    Parameters
    ----------
    features : Tensor of shape (B, N, H, W)

    Returns
    -------
    Tensor of shape (B, N, N), in float32 for half-precision input (float64 input stays float64).
    """
    b, n, h, w = features.shape
    if features.dtype in (torch.float16, torch.bfloat16):
        features = features.float()
    if n > 1 and features.is_contiguous(memory_format=torch.channels_last):
        # NHWC maps: (B, M, N) is a free view, so the Gram matrix needs no copy of the feature maps.
        f = features.permute(0, 2, 3, 1).reshape(b, h * w, n)
        return torch.bmm(f.transpose(1, 2), f) / (h * w)
    f = features.reshape(b, n, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (h * w)


def blend_grams(grams: Sequence[Mapping[str, torch.Tensor]],
                blend: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    r"""The target Gram matrices of several style images: :math:`\sum_i b_i \hat A^l_i / \sum_i b_i` per layer.

    Parameters
    ----------
    grams : list of dict
        One dict per style image: layer name to its size-normalised Gram matrix (as :func:`gram` returns it).
    blend : list of float, optional
        One weight per style image (normalised here to sum 1); default equal weights.

    Examples
    --------
    >>> a, b = {"l": torch.ones(1, 2, 2)}, {"l": torch.zeros(1, 2, 2)}
    >>> blend_grams([a, b], [3, 1])["l"][0, 0].tolist()
    [0.75, 0.75]
    """
    grams = list(grams)
    blend = list(blend) if blend is not None else [1.0 / len(grams)] * len(grams)
    if len(blend) != len(grams):
        raise InvalidOption(f"{len(grams)} style images but {len(blend)} blend weights; give one weight per image")
    total = float(sum(blend))
    if not total > 0:
        raise InvalidOption(f"blend weights {blend} sum to {total:g}; give at least one positive weight")
    return {name: sum(b / total * g[name] for b, g in zip(blend, grams)) for name in grams[0]}


def content_term(f: torch.Tensor, p: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    r"""Per-image content loss :math:`\tfrac12\sum(F-P)^2` (or :math:`\sum|F-P|`) of shape (B,)."""
    _check_kind(kind)
    d = (f - p).flatten(1)
    if d.dtype in (torch.float16, torch.bfloat16):
        d = d.float()
    return 0.5 * d.pow(2).sum(1) if kind == "l2" else d.abs().sum(1)


def style_term(g: torch.Tensor, a: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    r"""Per-image style term :math:`E_l` between size-normalised Gram matrices *g* and *a*, shape (B,).

    ``l2``: :math:`\frac{1}{4N^2}\sum(\hat G-\hat A)^2` — equal to Gatys et al.'s :math:`\frac{1}{4N^2M^2}\sum(G-A)^2`.
    ``l1``: :math:`\frac{1}{2N}\sum|\hat G-\hat A|`.
    """
    _check_kind(kind)
    n = g.shape[-1]
    d = (g - a).flatten(1)
    return d.pow(2).sum(1) / (4.0 * n * n) if kind == "l2" else d.abs().sum(1) / (2.0 * n)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    r"""Anisotropic total variation of images *x* (B, C, H, W), shape (B,) (Mahendran & Vedaldi 2015, β = 1)."""
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().flatten(1).sum(1)
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().flatten(1).sum(1)
    return dh + dw


#: A floor under channel variances, so flat feature maps do not divide by zero.
MOMENT_EPS = 1e-5


def channel_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-image channel means and standard deviations (B, N) of feature maps (B, N, H, W), in float32.

    :math:`\mu_c = \frac1M\sum_m F_{cm}`, :math:`\sigma_c = \sqrt{\frac1M\sum_m (F_{cm}-\mu_c)^2 + \epsilon}`
    (Huang & Belongie 2017, Eq. 5-6).
    """
    f = features.float().flatten(2)
    mean = f.mean(2)
    std = (f.var(2, unbiased=False) + MOMENT_EPS).sqrt()
    return mean, std


def moment_term(mean: torch.Tensor, std: torch.Tensor, target_mean: torch.Tensor,
                target_std: torch.Tensor) -> torch.Tensor:
    r"""Per-image style term of Huang & Belongie 2017 (Eq. 11) on channel statistics, shape (B,).

    :math:`\frac1N\|\mu(F)-\mu(S)\|^2 + \frac1N\|\sigma(F)-\sigma(S)\|^2` for the (B, N) channel means and standard
    deviations of a layer (:func:`channel_stats`); the mean squared error of their
    published code, with which their style weight λ = 10 was chosen.
    """
    return (mean - target_mean).pow(2).mean(1) + (std - target_std).pow(2).mean(1)


_TRIU_CACHE: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}


def _triu(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    key = (n, str(device))
    if key not in _TRIU_CACHE:
        idx = torch.triu_indices(n, n, device=device)
        scale = torch.full(idx[0].shape, 2.0**0.5, dtype=torch.float64, device=device)
        scale[idx[0] == idx[1]] = 1.0
        _TRIU_CACHE[key] = (idx[0] * n + idx[1], scale)
    return _TRIU_CACHE[key]


def style_vector(g: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    r"""Flatten size-normalised Gram matrices (B, N, N) into vectors whose squared distance is :math:`w_l E_l`.

    The upper triangle (with the diagonal) is kept — :math:`N(N+1)/2` numbers — off-diagonal entries are scaled by
    :math:`\sqrt 2` (each stands for two equal entries of the symmetric matrix) and everything by
    :math:`\sqrt{w_l}/(2N)`, so that :math:`\|v_x - v_a\|^2 = w_l E_l` exactly. Concatenating the vectors of
    every style layer gives an embedding whose squared Euclidean distance is :math:`L_{style}`.
    """
    b, n, _ = g.shape
    flat_idx, scale = _triu(n, g.device)
    return g.reshape(b, n * n)[:, flat_idx] * (scale * (weight**0.5) / (2.0 * n)).to(g.dtype)


class ContentLoss(torch.nn.Module):
    """Weighted content loss over several layers against targets fixed once (under ``no_grad``).

    Call :meth:`set_target` with the content image's features, then the module with the current image's features;
    it returns one term per layer, already multiplied by that layer's weight.
    """

    def __init__(self, layers: Sequence[str], weights: Sequence[float] | None = None, kind: str = "l2"):
        super().__init__()
        _check_kind(kind)
        self.layers = list(layers)
        self.weights = list(weights) if weights is not None else [1.0] * len(self.layers)
        if len(self.weights) != len(self.layers):
            raise InvalidOption(f"{len(self.layers)} content layers but {len(self.weights)} weights")
        self.kind = kind
        self.targets: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def set_target(self, features: Mapping[str, torch.Tensor]) -> None:
        self.targets = {name: features[name].detach() for name in self.layers}

    def forward(self, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            name: w * content_term(features[name], self.targets[name], self.kind).sum()
            for name, w in zip(self.layers, self.weights)
        }


class StyleLoss(torch.nn.Module):
    """Weighted style loss :math:`\\sum_l w_l E_l` against target Gram matrices fixed once.

    :meth:`set_target` takes the style image's features, or several images' features with blend weights (the
    target Gram matrix is then the blend of theirs). Default layer weights are :math:`1/|L|`.
    """

    def __init__(self, layers: Sequence[str], weights: Sequence[float] | None = None, kind: str = "l2"):
        super().__init__()
        _check_kind(kind)
        self.layers = list(layers)
        self.weights = list(weights) if weights is not None else [1.0 / len(self.layers)] * len(self.layers)
        if len(self.weights) != len(self.layers):
            raise InvalidOption(f"{len(self.layers)} style layers but {len(self.weights)} weights")
        self.kind = kind
        self.targets: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def set_target(self, features: Mapping[str, torch.Tensor] | Sequence[Mapping[str, torch.Tensor]],
                   blend: Sequence[float] | None = None) -> None:
        many = list(features) if not isinstance(features, Mapping) else [features]
        grams = [{name: gram(f[name]).mean(0, keepdim=True) for name in self.layers} for f in many]
        self.set_gram_targets(blend_grams(grams, blend))

    @torch.no_grad()
    def set_gram_targets(self, grams: Mapping[str, torch.Tensor]) -> None:
        """Set the targets directly from size-normalised Gram matrices (e.g. pooled over the tiles of an image)."""
        self.targets = {name: grams[name].detach() for name in self.layers}

    def forward(self, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            name: w * style_term(gram(features[name]), self.targets[name], self.kind).sum()
            for name, w in zip(self.layers, self.weights)
        }
