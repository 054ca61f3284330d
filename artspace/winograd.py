r"""3×3 convolutions by Winograd's minimal filtering F(m×m, 3×3), for inference on CPUs.

oneDNN, which PyTorch's CPU convolutions use, runs 3×3 float32 convolutions directly on AVX-512 machines. Winograd's
algorithm (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016) computes each m×m block of
outputs from an (m+2)×(m+2) block of inputs d:

.. math:: Y = A^\top \left[ (G g G^\top) \odot (B^\top d B) \right] A

with g the 3×3 kernel and B, G, A the constant matrices below. Summed over input channels, the element-wise
product becomes (m+2)² matrix products (tiles × C_in by C_in × C_out), which BLAS runs near its peak: 16 products
for 4 outputs with m = 2 (against 36 multiplications directly), 36 for 16 outputs with m = 4 (against 144). The
transforms are small matrix products over all channels at once and cost memory traffic, so the method pays where
channels are many: on this project's 2-core AVX-512 CPU, for VGG-19's 256- and 512-filter layers at 224 px, F(4×4)
runs 1.2-2.5× faster than oneDNN on maps of 28 px and more and F(2×2) 1.2-1.3× on 14 px maps, where F(4×4) wastes
work on padded tiles; its 64- and 128-filter layers run faster directly (``benchmarks/bench_index.py winograd``,
docs/benchmarks.md).

Accuracy, against a float64 convolution, as a fraction of the layer's largest output: F(2×2) 5e-7, better than
the direct float32 convolution (2e-6); F(4×4) about 1e-5, since its transforms hold 4, 5 and 8 and its kernel
transform sixths. Both are far below the differences any distance in artspace resolves; tests hold them to 1e-5
and 5e-5.
"""

from __future__ import annotations

import functools
import threading

import torch
import torch.nn.functional as F
from torch import nn

from .errors import InvalidOption

__all__ = ["TRANSFORMS", "MIN_FILTERS", "tile_size", "winograd_weights", "conv3x3_winograd", "WinogradConv2d"]

#: (Bᵀ, G, Aᵀ) for F(2×2, 3×3) and F(4×4, 3×3) (Lavin & Gray 2016, with interpolation points 0, ±1, ±2, ∞).
TRANSFORMS = {
    2: (((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
        ((1, 0, 0), (1 / 2, 1 / 2, 1 / 2), (1 / 2, -1 / 2, 1 / 2), (0, 0, 1)),
        ((1, 1, 1, 0), (0, 1, -1, -1))),
    4: (((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0), (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0),
         (0, 4, 0, -5, 0, 1)),
        ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6), (1 / 24, 1 / 12, 1 / 6),
         (1 / 24, -1 / 12, 1 / 6), (0, 0, 1)),
        ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))),
}


#: Convolutions with at least this many filters run by Winograd on CPUs (VGG-19's 256- and 512-filter layers; the
#: 64- and 128-filter ones are faster directly: ``benchmarks/bench_index.py winograd``).
MIN_FILTERS = 256

# Guards the transformed-weight caches: the indexer runs batches on two threads at once.
_CACHE_LOCK = threading.Lock()


@functools.lru_cache(maxsize=16)
def _data_transforms(m: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Bᵀ and Aᵀ of F(m×m, 3×3) as tensors, built once per tile size, dtype and device (every call needs them)."""
    bt, _, at = TRANSFORMS[m]
    return torch.tensor(bt, dtype=dtype, device=device), torch.tensor(at, dtype=dtype, device=device)


def tile_size(height: int, width: int) -> int:
    """The output tile m used for maps of this size: 4 from 28 px up, 2 below (measured, see the module doc)."""
    return 4 if min(height, width) >= 28 else 2


def winograd_weights(weight: torch.Tensor, m: int = 2) -> torch.Tensor:
    """Transformed kernels :math:`U = G g G^\\top` of a (C_out, C_in, 3, 3) weight, as ((m+2)², C_in, C_out)."""
    if weight.shape[-2:] != (3, 3):
        raise InvalidOption(f"Winograd F(mxm, 3x3) needs 3x3 kernels, not {tuple(weight.shape[-2:])}")
    if m not in TRANSFORMS:
        raise InvalidOption(f"tile size m must be one of {sorted(TRANSFORMS)}, not {m!r}")
    g = torch.tensor(TRANSFORMS[m][1], dtype=torch.float64, device=weight.device)
    # Exact in float64, rounded once. Indexed (column, row) of the tile, the order conv3x3_winograd builds V in.
    u = torch.einsum("ai,kcij,bj->back", g, weight.double(), g)
    return u.reshape((m + 2) ** 2, weight.shape[1], weight.shape[0]).to(weight.dtype).contiguous()


def conv3x3_winograd(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=1)`` for a 3×3 *weight* given as ``u = winograd_weights(weight, m)``.

    *x* is (B, C_in, H, W), any H and W; the result is (B, C_out, H, W) in channels-last memory layout. One image
    at a time, so the transformed tiles stay in cache.

    Examples
    --------
    >>> w, x = torch.randn(8, 4, 3, 3), torch.randn(1, 4, 10, 9)
    >>> y = conv3x3_winograd(x, winograd_weights(w, m=4))
    >>> y.shape, bool(torch.allclose(y, F.conv2d(x, w, padding=1), atol=1e-4))
    (torch.Size([1, 8, 10, 9]), True)
    """
    b, c, h, w = x.shape
    alpha = round(u.shape[0] ** 0.5)
    m = alpha - 2
    if m not in TRANSFORMS or u.shape[0] != alpha * alpha or u.shape[1] != c:
        raise ValueError(f"transformed weights {tuple(u.shape)} do not fit an input with {c} channels")
    k = u.shape[2]
    bt, at = _data_transforms(m, x.dtype, x.device)
    th, tw = -(-h // m), -(-w // m)
    # Zero padding of 1 (the convolution's own), plus what completes the last tiles where m does not divide H or W.
    xp = F.pad(x, (1, 1 + m * tw - w, 1, 1 + m * th - h)).permute(0, 2, 3, 1)  # (B, m·th+2, m·tw+2, C)
    out = torch.empty(b, th, m, tw, m, k, dtype=x.dtype, device=x.device)
    for n in range(b):
        # V = Bᵀ d B over every tile at once: tile rows first, then tile columns.
        d = torch.stack([xp[n, i: i + m * th: m] for i in range(alpha)])        # (α_i, th, Wp, C)
        rows = (bt @ d.view(alpha, -1)).view(alpha, th, -1, c)                    # (α_a, th, Wp, C)
        e = torch.stack([rows[:, :, j: j + m * tw: m] for j in range(alpha)])    # (α_j, α_a, th, tw, C)
        v = (bt @ e.view(alpha, -1)).view(alpha * alpha, th * tw, c)              # (α_b·α_a, tiles, C)
        # M = U ⊙ V summed over input channels: α² matrix products.
        mm = torch.bmm(v, u).view(alpha, -1)                                      # (α_b, α_a·tiles·K)
        # Y = Aᵀ M A: tile columns, then rows.
        z = (at @ mm).view(m, alpha, -1).transpose(0, 1).reshape(alpha, -1)      # (α_a, m_j·tiles·K)
        y = (at @ z).view(m, m, th, tw, k)                                        # (m_i, m_j, th, tw, K)
        out[n].copy_(y.permute(2, 0, 3, 1, 4))
    out = out.view(b, m * th, m * tw, k)
    if bias is not None:
        out.add_(bias)
    if m * th != h or m * tw != w:
        out = out[:, :h, :w].contiguous()
    return out.permute(0, 3, 1, 2)


class WinogradConv2d(nn.Conv2d):
    """A 3×3, stride-1, padding-1 ``nn.Conv2d`` that uses :func:`conv3x3_winograd` for CPU inference.

    Where autograd records (the input or the weights need gradients), on other devices (cuDNN chooses Winograd itself
    where it pays), or for other dtypes it is the plain convolution. The transformed weights of each tile size are
    computed on first use and kept (for a 512-filter layer 17 MB with m = 2, 38 MB with m = 4); they are recomputed
    when the weights change in place through the parameter, as ``load_state_dict`` does (a change through ``.data``
    bypasses the version counter that tells).
    """

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> "WinogradConv2d":
        """The same convolution, sharing *conv*'s weight and bias tensors."""
        if (conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups) != ((3, 3), (1, 1), (1, 1),
                                                                                         (1, 1), 1):
            raise InvalidOption(f"Winograd F(mxm, 3x3) covers 3x3 convolutions of stride 1 and padding 1, not {conv}")
        new = torch.nn.utils.skip_init(cls, conv.in_channels, conv.out_channels, 3, padding=1,
                                       bias=conv.bias is not None, device=conv.weight.device, dtype=conv.weight.dtype)
        new.weight = conv.weight
        new.bias = conv.bias
        return new

    def transformed(self, m: int) -> torch.Tensor:
        """:func:`winograd_weights` of the current weights for tile size *m* (cached)."""
        key = (m, self.weight.data_ptr(), self.weight._version, self.weight.dtype)
        with _CACHE_LOCK:
            cache = self.__dict__.setdefault("_winograd_cache", {})
            u = cache.get(key)
            if u is None:
                u = winograd_weights(self.weight.detach(), m)
                for stale in [k for k in cache if k[0] == m]:
                    del cache[stale]
                cache[key] = u
        return u

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)) or x.device.type != "cpu" \
                or x.dtype != torch.float32 or self.weight.dtype != torch.float32:
            return super().forward(x)
        return conv3x3_winograd(x, self.transformed(tile_size(x.shape[-2], x.shape[-1])), self.bias)
