"""Coarse-to-fine levels: the size of each level, its images, and the image a level starts from.

A run with ``scales=N`` optimises at size / 2**(N-1), …, size / 2, size; each level starts from the previous
result, upscaled (bicubic). Coarse levels are cheap (a quarter of the pixels per halving) and settle the large
structures, so the full-size level starts close to a good optimum — the coarse-to-fine scheme of Gatys et al. 2017
(*Controlling perceptual factors in neural style transfer*, CVPR) for large outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image

from ..images import to_tensor
from .colour import match_histograms
from .options import MIN_SIDE

__all__ = ["dims", "resized_tensor", "level_images", "start_image", "upscale"]


def dims(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(height, width) of an image of PIL *size* (w, h) resized so that its long side is *long_side*.

    >>> dims((60, 40), 48)
    (32, 48)
    """
    w, h = size
    s = long_side / max(w, h)
    return max(1, round(h * s)), max(1, round(w * s))


def resized_tensor(im: Image.Image, hw: tuple[int, int]) -> torch.Tensor:
    """*im* resized to *hw* (Lanczos) as a (1, 3, H, W) tensor in [0, 1]."""
    h, w = hw
    if im.size != (w, h):
        im = im.resize((w, h), Image.LANCZOS, reducing_gap=3.0)
    return to_tensor(im).unsqueeze(0).contiguous()


def style_shapes(style_ims, side: int, style_scale: float) -> list[tuple[int, int]]:
    """(height, width) of each style image at a level of long side *side*: each keeps its own aspect ratio."""
    return [dims(im.size, max(MIN_SIDE, round(side * style_scale))) for im in style_ims]


def level_images(content_im: Image.Image, style_ims, side: int, *, style_scale: float, match_histogram: bool,
                 device: torch.device):
    """The content (on *device*) and the style images (on the CPU) of the level of long side *side*, with their
    sizes; with *match_histogram*, each style recoloured to the content's histogram (Gatys et al. 2017)."""
    hw = dims(content_im.size, side)
    content_t = resized_tensor(content_im, hw).to(device)
    s_hw = style_shapes(style_ims, side, style_scale)
    style_ts = [resized_tensor(im, shw) for im, shw in zip(style_ims, s_hw)]
    if match_histogram:
        style_ts = [match_histograms(s[0], content_t[0].cpu()).unsqueeze(0) for s in style_ts]
    return hw, content_t, s_hw, style_ts


def start_image(init: str, init_im: Image.Image | None, content_t: torch.Tensor, style_im: Image.Image,
                generator: torch.Generator) -> torch.Tensor:
    """The image the first level starts from: an image file, white noise from *generator*, the first style
    stretched to the content's shape, or the content itself."""
    hw, device = tuple(content_t.shape[-2:]), content_t.device
    if init_im is not None:
        return resized_tensor(init_im, hw).to(device)
    if init == "noise":
        return torch.rand((1, 3, *hw), generator=generator).to(device)
    if init == "style":
        return resized_tensor(style_im, hw).to(device)
    return content_t.clone()


def upscale(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """*x* brought to *hw* (bicubic), kept in [0, 1]."""
    return F.interpolate(x, size=hw, mode="bicubic", align_corners=False).clamp_(0, 1)
