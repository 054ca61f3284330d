r"""The loss a pastiche minimises, and its style targets.

.. math:: L_{total} = \alpha \sum_{l} c_l L^l_{content} + \beta \sum_l w_l E_l + \lambda\,TV(\vec x)

— the total loss of Gatys et al. 2016 (*Image style transfer using convolutional neural networks*, CVPR) with the
total-variation prior of Mahendran & Vedaldi 2015 as used by Johnson et al. 2016. The terms are those of
:mod:`artspace.losses` (the same code serves the catalog's distances).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..backbone import LAYERS, VGG19
from ..losses import ContentLoss, StyleLoss, blend_grams, gram, total_variation
from ..precision import autocast
from .tiles import pooled_grams

__all__ = ["Objective", "style_targets"]


class Objective:
    """The total loss of an image against fixed targets; calling it returns (total, per-term tensors).

    The terms are the content loss of each content layer, the style term of each style layer (each already
    multiplied by its layer weight) and the total variation, in that order (:attr:`names`).
    """

    def __init__(self, net: VGG19, content_loss: ContentLoss | None, style_loss: StyleLoss | None, *,
                 content_weight: float, style_weight: float, tv_weight: float, device: str | torch.device = "cpu",
                 precision: str = "float32"):
        self.net = net
        self.device, self.precision = torch.device(device), precision
        self.content_loss = content_loss
        self.style_loss = style_loss
        self.alpha, self.beta, self.tv_weight = content_weight, style_weight, tv_weight
        self.layers = sorted(set((content_loss.layers if content_loss else []) +
                                 (style_loss.layers if style_loss else [])), key=LAYERS.index)
        self.names = ([f"content:{n}" for n in content_loss.layers] if content_loss else []) + \
                     ([f"style:{n}" for n in style_loss.layers] if style_loss else []) + ["tv"]

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # channels-last runs oneDNN's convolutions without layout reorders (measured ~20-30% faster on CPU); the
        # optimised variable itself stays contiguous, as L-BFGS flattens it.
        # The network's passes (forward and backward) may run in bfloat16; the image, the Gram matrices, the losses
        # and so the optimiser's state stay float32 (the terms are computed outside autocast on upcast maps).
        with autocast(self.device, self.precision):
            feats = self.net(x.contiguous(memory_format=torch.channels_last), self.layers)
        terms = []
        total = x.new_zeros(())
        if self.content_loss is not None:
            c = list(self.content_loss(feats).values())
            terms += c
            total = total + self.alpha * torch.stack(c).sum()
        if self.style_loss is not None:
            s = list(self.style_loss(feats).values())
            terms += s
            total = total + self.beta * torch.stack(s).sum()
        tv = total_variation(x).sum()
        terms.append(tv)
        if self.tv_weight:
            total = total + self.tv_weight * tv
        return total, terms

    def record(self, values: Sequence[float]) -> dict:
        """Per-term floats ([total, *terms]) as the sidecar's ``losses`` dict."""
        out: dict[str, Any] = {"total": values[0], "content": {}, "style": {}, "tv": values[-1]}
        for name, v in zip(self.names[:-1], values[1:-1]):
            kind, layer = name.split(":")
            out[kind][layer] = v
        return out

    def summary(self, values: Sequence[float]) -> dict[str, str]:
        """The weighted terms of one evaluation, formatted for the progress bar."""
        n_content = len(self.content_loss.layers) if self.content_loss else 0
        n_style = len(self.style_loss.layers) if self.style_loss else 0
        post = {"total": f"{values[0]:.4g}"}
        if n_content:
            post["content"] = f"{self.alpha * sum(values[1:1 + n_content]):.3g}"
        if n_style:
            post["style"] = f"{self.beta * sum(values[1 + n_content:1 + n_content + n_style]):.3g}"
        if self.tv_weight:
            post["tv"] = f"{self.tv_weight * values[-1]:.3g}"
        return post


@torch.no_grad()
def style_targets(net: VGG19, style_ts: list[torch.Tensor], blend: list[float], layers: list[str],
                  device: torch.device, tile: int | None) -> dict[str, torch.Tensor]:
    """The blended, size-normalised Gram targets of the style images *style_ts*, weighted by *blend*.

    A style larger than *tile* px is summarised by its Gram matrices pooled over tiles (Σ F Fᵀ / Σ M), so that
    memory stays bounded by one tile.
    """
    grams = []
    for s in style_ts:
        if tile is None or max(s.shape[-2:]) <= tile:
            feats = net(s.to(device), layers)
            grams.append({n: gram(feats[n]) for n in layers})
        else:
            grams.append(pooled_grams(net, s, layers, tile, device))
    return blend_grams(grams, blend)
