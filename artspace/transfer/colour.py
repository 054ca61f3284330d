"""Colour control for pastiches: keep the content's colours, or match a style's colour histogram to the content's.

Both are the colour control of Gatys et al. 2017, *Controlling perceptual factors in neural style transfer* (CVPR):

* :func:`preserve_colors` — *luminance-only transfer*, done after the optimisation: the pastiche's luminance (Y of
  YIQ) is kept and its chrominance (I, Q) replaced by the content's. The style's brush strokes and texture live in
  luminance; its palette lives in chrominance.
* :func:`match_histograms` — *colour histogram matching*, done before the optimisation: each channel of the style
  image is remapped so that its histogram equals the content's, and the transfer then runs as usual.

All functions take and return float tensors of shape (3, H, W) or (B, 3, H, W) with values in [0, 1].
"""

from __future__ import annotations

import torch

from ..errors import InvalidOption

__all__ = ["rgb_to_yiq", "yiq_to_rgb", "preserve_colors", "match_histograms"]

_RGB_TO_YIQ = torch.tensor([
    [0.299, 0.587, 0.114],
    [0.595716, -0.274453, -0.321263],
    [0.211456, -0.522591, 0.311135],
])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _mix(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,...jhw->...ihw", m.to(x.device, x.dtype), x)


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] to YIQ (Y in [0, 1]); channel dimension is the third from last."""
    return _mix(x, _RGB_TO_YIQ)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_yiq` (not clipped)."""
    return _mix(x, _YIQ_TO_RGB)


def preserve_colors(pastiche: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The pastiche's luminance with the content's chrominance, clipped to [0, 1].

    Examples
    --------
    Away from the clipping (mid-range colours), the chrominance is the content's and the luminance the pastiche's:

    >>> c = 0.3 + 0.4 * torch.rand(3, 8, 8); p = 0.3 + 0.4 * torch.rand(3, 8, 8)
    >>> out = preserve_colors(p, c)
    >>> bool(torch.allclose(rgb_to_yiq(out)[1:], rgb_to_yiq(c)[1:], atol=1e-5))
    True
    >>> bool(torch.allclose(rgb_to_yiq(out)[0], rgb_to_yiq(p)[0], atol=1e-5))
    True
    """
    if content.shape[-2:] != pastiche.shape[-2:]:
        raise InvalidOption(f"content {tuple(content.shape)} and pastiche {tuple(pastiche.shape)} differ in size")
    y = rgb_to_yiq(pastiche)[..., :1, :, :]
    iq = rgb_to_yiq(content)[..., 1:, :, :]
    return yiq_to_rgb(torch.cat([y, iq], dim=-3)).clamp(0, 1)


def match_histograms(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Remap each RGB channel of *source* so that its histogram equals *reference*'s (sizes may differ).

    Exact histogram specification: the k-th smallest value of a source channel becomes the value at the same
    quantile of the reference channel (ties keep their order).

    Examples
    --------
    >>> s = torch.rand(3, 16, 16) ** 3; r = torch.rand(3, 8, 12)
    >>> out = match_histograms(s, r)
    >>> bool(abs(out.mean() - r.mean()) < 0.05)
    True
    """
    if source.dim() == 4:
        return torch.stack([match_histograms(s, reference[min(i, reference.shape[0] - 1)] if reference.dim() == 4
                                             else reference) for i, s in enumerate(source)])
    if reference.dim() == 4:
        reference = reference[0]
    out = torch.empty_like(source)
    n = source.shape[-1] * source.shape[-2]
    for c in range(source.shape[0]):
        src = source[c].reshape(-1)
        ref_sorted = reference[c].reshape(-1).sort().values
        order = src.argsort(stable=True)
        # quantile of each rank in the reference, by linear interpolation between its sorted values
        q = torch.linspace(0, ref_sorted.numel() - 1, n, dtype=torch.float64)
        lo = q.floor().long()
        hi = q.ceil().long()
        frac = (q - lo).to(ref_sorted.dtype)
        values = ref_sorted[lo] * (1 - frac) + ref_sorted[hi] * frac
        flat = torch.empty_like(src)
        flat[order] = values
        out[c] = flat.reshape(source.shape[-2:])
    return out
