r"""The two feed-forward networks: an image transformation network per style, and AdaIN's decoder for any style.

:class:`TransformNet` is the image transformation network of Johnson et al. 2016 (*Perceptual losses for real-time
style transfer and super-resolution*, ECCV) with two changes that later work showed to matter: instance
normalisation in place of batch normalisation (Ulyanov et al. 2016, *Instance normalization: the missing ingredient
for fast stylization*), and upsampling by nearest-neighbour resizing followed by a convolution in place of
fractionally strided convolutions, which leave checkerboard artefacts (Odena et al. 2016, *Deconvolution and
checkerboard artifacts*, Distill).

:class:`AdaINDecoder` inverts VGG-19's relu4_1 features, mirroring the encoder (Huang & Belongie 2017, *Arbitrary
style transfer in real-time with adaptive instance normalization*, ICCV); :func:`adain` gives content features the
channel means and standard deviations of a style's.

Both networks take and return RGB images in [0, 1] (B, 3, H, W) of any size: every upsampling stage resizes to the
exact size its mirror stage had, so odd sizes come back unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidOption
from ..losses import channel_stats

__all__ = ["NORMS", "TransformNet", "AdaINDecoder", "adain", "channel_stats", "ADAIN_LAYER", "ADAIN_STYLE_LAYERS"]

NORMS = ("instance", "batch")
#: The encoder's output that AdaIN re-normalises, and the layers whose channel statistics its style loss matches.
ADAIN_LAYER = "relu4_1"
ADAIN_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise InvalidOption(f"norm must be one of {NORMS}, not {kind!r}")


class _Conv(nn.Sequential):
    """Reflection padding, a convolution, then optionally a normalisation and a ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, norm: str | None = None,
                 relu: bool = True):
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride)]
        if norm:
            layers.append(_norm(norm, cout))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class _Residual(nn.Module):
    """Two 3×3 convolutions with normalisation and a skip connection (He et al. 2016), as Johnson et al. use."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(_Conv(channels, channels, 3, norm=norm),
                                  _Conv(channels, channels, 3, norm=norm, relu=False))

    def forward(self, x):
        return x + self.body(x)


class TransformNet(nn.Module):
    """Johnson et al.'s (2016) image transformation network with resize-convolutions and instance norm.

    9×9 convolution (32 filters) → two stride-2 3×3 convolutions (64, 128) → five residual blocks (128) → two
    stages of nearest-neighbour upsampling ×2 and a 3×3 convolution (64, 32) → 9×9 convolution to RGB. Every
    convolution but the last is followed by the normalisation and a ReLU. *width* multiplies every layer's channels
    (1: Johnson et al.'s). *skip* adds the input image to the output, the last convolution starting at zero, so an
    untrained network returns the photograph, where the optimiser starts (not Johnson et al.'s; an experiment of
    benchmarks/bench_feedforward.py capacity).

    Examples
    --------
    >>> net = TransformNet()
    >>> tuple(net(torch.rand(1, 3, 37, 50)).shape)
    (1, 3, 37, 50)
    """

    def __init__(self, norm: str = "instance", width: float = 1.0, skip: bool = False):
        super().__init__()
        if norm not in NORMS:
            raise InvalidOption(f"norm must be one of {NORMS}, not {norm!r}")
        self.norm = norm
        # *width* times Johnson et al.'s channels (a wider network: benchmarks/bench_feedforward.py capacity)
        a, b, c = (max(1, round(width * n)) for n in (32, 64, 128))
        self.down = nn.ModuleList([_Conv(3, a, 9, norm=norm), _Conv(a, b, 3, 2, norm=norm),
                                   _Conv(b, c, 3, 2, norm=norm)])
        self.residual = nn.Sequential(*[_Residual(c, norm) for _ in range(5)])
        self.up = nn.ModuleList([_Conv(c, b, 3, norm=norm), _Conv(b, a, 3, norm=norm)])
        self.out = _Conv(a, 3, 9, relu=False)
        self.skip = skip
        if skip:
            for t in self.out.parameters():
                nn.init.zeros_(t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image = x
        sizes = []
        for layer in self.down:
            sizes.append(x.shape[-2:])
            x = layer(x)
        x = self.residual(x)
        for layer, size in zip(self.up, reversed(sizes[1:])):
            x = layer(F.interpolate(x, size=tuple(size), mode="nearest"))
        return image + self.out(x) if self.skip else self.out(x)


class AdaINDecoder(nn.Module):
    """The decoder of Huang & Belongie (2017): VGG-19 from relu4_1 back to the image, mirrored.

    Convolutions with reflection padding and ReLUs; nearest-neighbour upsampling where the encoder pooled; no
    normalisation. 3.5 million parameters.

    Examples
    --------
    >>> dec = AdaINDecoder()
    >>> tuple(dec(torch.rand(1, 512, 4, 6), size=(37, 50)).shape)
    (1, 3, 37, 50)
    """

    #: (input channels, output channels) of each 3×3 convolution; "up" where the encoder had a pooling layer.
    PLAN = ((512, 256), "up", (256, 256), (256, 256), (256, 256), (256, 128), "up", (128, 128), (128, 64), "up",
            (64, 64), (64, 3))

    def __init__(self):
        super().__init__()
        layers = []
        for i, step in enumerate(self.PLAN):
            if step == "up":
                continue
            last = i == len(self.PLAN) - 1
            layers.append(_Conv(*step, 3, relu=not last))
        self.layers = nn.ModuleList(layers)

    def forward(self, features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Decode relu4_1 *features* (B, 512, h, w) into images of *size* (H, W), default (8h, 8w).

        VGG-19's poolings floor odd sizes (H → H//2 → H//4 → H//8), so each upsampling goes back to the exact size
        the mirrored pooling had seen.
        """
        h, w = features.shape[-2:]
        size = tuple(size) if size is not None else (8 * h, 8 * w)
        targets = [(size[0] // 4, size[1] // 4), (size[0] // 2, size[1] // 2), size]
        x, it = features, iter(self.layers)
        for step in self.PLAN:
            if step == "up":
                x = F.interpolate(x, size=targets.pop(0), mode="nearest")
            else:
                x = next(it)(x)
        return x


def adain(content: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor) -> torch.Tensor:
    r"""Adaptive instance normalisation: :math:`\sigma(y)\,\frac{x-\mu(x)}{\sigma(x)} + \mu(y)` per channel.

    Parameters
    ----------
    content : Tensor (B, N, H, W)
        The content's feature maps.
    style_mean, style_std : Tensor (B, N) or (N,)
        The style's channel statistics (:func:`artspace.losses.channel_stats`).
    """
    mean, std = channel_stats(content)
    normalised = (content.float() - mean[..., None, None]) / std[..., None, None]
    return normalised * style_std.float().reshape(-1, content.shape[1], 1, 1) \
        + style_mean.float().reshape(-1, content.shape[1], 1, 1)
