r"""Style and content features of images, batched, and the exact distances between two works.

Style of an image: its size-normalised Gram matrices :math:`\hat G^l = F^l {F^l}^\top / M_l` on the style layers,
flattened by :func:`artspace.losses.style_vector` so that the squared Euclidean distance between two works' style
vectors *is* Gatys et al.'s (2016) :math:`L_{style} = \sum_l w_l E_l`. The full vector has 305,888 numbers for the default
layers; the catalog stores a compact projection of it (:mod:`artspace.projection`).

Style *signature* of an image (:func:`style_signature`, what ``similar --by style`` ranks by): the same Gram
matrices on the signature layers (relu4_1 and relu5_1), each read as a distribution of filter co-activations
:math:`P^l_{ij} = \hat G^l_{ij} / \sum_{ij} \hat G^l_{ij}`. The signature distance of two works is the mean over
layers of the squared Hellinger distance :math:`H^2_l = 1 - \sum_{ij}\sqrt{P^l_{ij} Q^l_{ij}}`, a number between
0 (same statistics) and 1 (no co-activation in common). Square-rooting damps the few huge entries that dominate
:math:`L_{style}` (power normalisation, as in bilinear-CNN texture recognition) and the per-layer normalisation
removes the overall activation level; on the shared sets it finds the same style more often than :math:`L_{style}`
(docs/benchmarks.md).

Content of an image: the relu4_2 feature map at a fixed input size gives Gatys et al.'s exact content distance
:math:`\tfrac12\sum (F-P)^2` of a pair; for search across a collection, the *descriptor* of
:func:`content_descriptor` (deep relu5_2, relu5_3 and relu5_4 responses pooled over space) is kept, computed on a
branch of the same pass whose conv5_1 maps were given the mean statistics of photographs (:func:`restyle`), and the
catalog removes from it what each style group shares (:mod:`artspace.search`).
"""

from __future__ import annotations

from typing import Sequence

import torch
from PIL import Image

from . import losses
from .backbone import VGG19, ieee_float32, resolve_device
from .images import open_image, to_tensor
from .precision import autocast, resolve_precision
from .spec import DEFAULT_SIGNATURE_LAYERS, DEFAULT_STYLE_LAYERS, MOMENTS_LAYER, FeatureSpec  # noqa: F401

__all__ = [
    "DEFAULT_STYLE_LAYERS",
    "FeatureSpec",
    "Extractor",
    "DEFAULT_SIGNATURE_LAYERS",
    "content_descriptor",
    "restyle",
    "style_signature",
]

def content_descriptor(features: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    r"""Content search descriptor of deep feature maps, one (B, N_l, H, W) tensor per layer: shape (B, ΣN_l).

    The maximum of each filter over all positions — does this part of a subject appear anywhere? — scaled to unit
    length per layer, the layers concatenated and the whole scaled to unit length (each layer then weighs the same).
    Pooling over space makes it indifferent to where the subject stands; max pooling keeps the strongest part
    detector rather than the average texture response (on pacs-dev same-class precision@10 0.67 against 0.64 for
    mean pooling). The default layers, relu5_2, relu5_3 and relu5_4, found the subject more often than relu5_4
    alone on every development set (docs/benchmarks.md). Style is removed later, at the catalog level.
    """
    maps = [features] if isinstance(features, torch.Tensor) else list(features)
    parts = []
    for f in maps:
        peak = f.float().clamp_min(0).amax((2, 3))
        parts.append(peak / peak.norm(dim=1, keepdim=True).clamp_min(1e-12))
    return torch.cat(parts, 1) / len(parts) ** 0.5


def restyle(maps: torch.Tensor, layer: str) -> torch.Tensor:
    r"""*maps* (B, N, H, W) of convolution *layer* given the mean channel statistics of photographs.

    Each channel of each image is instance-normalised and then scaled and shifted to the statistics photographs have
    there on average, AdaIN (Huang & Belongie 2017) with one fixed style,
    :math:`\hat F_{c} = \bar\sigma_c (F_{c} - \mu_c(F)) / \sigma_c(F) + \bar\mu_c`, where :math:`\mu_c(F)` and
    :math:`\sigma_c(F)` are the mean and standard deviation of channel *c* over the image's positions and
    :math:`\bar\mu_c, \bar\sigma_c` their averages over photographs (:func:`artspace.content.photo_statistics`).
    A channel's mean and spread are the part of a deep map that carries the medium (they are AdaIN's style); what
    is left is where each filter responds. The content descriptor's branch of the network runs on from these maps
    (:meth:`Extractor.encode`). Computed in float32.

    Examples
    --------
    >>> f = torch.rand(2, 512, 7, 7)
    >>> g = restyle(f, "conv5_1")
    >>> from artspace.content import photo_statistics
    >>> mean, std = photo_statistics("conv5_1")
    >>> bool(torch.allclose(g.mean((2, 3))[0], mean, atol=1e-4))
    True
    """
    from .content import photo_statistics

    mean, std = photo_statistics(layer)
    f = maps.float()
    mu = f.mean((2, 3), keepdim=True)
    sd = f.std((2, 3), keepdim=True).add_(1e-5)
    mean, std = mean.to(f.device).view(1, -1, 1, 1), std.to(f.device).view(1, -1, 1, 1)
    return (f - mu).div_(sd).mul_(std).add_(mean).to(maps.dtype)


def style_signature(grams: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""Style signatures (B, D) of size-normalised Gram matrices, one (B, N, N) tensor per signature layer.

    Each layer contributes :math:`\sqrt{\hat G}` (element-wise; the sign is kept for layers that can be negative),
    scaled to unit Frobenius norm, flattened like :func:`artspace.losses.style_vector` (upper triangle,
    off-diagonal entries times :math:`\sqrt 2`) and multiplied by :math:`1/\sqrt{2|L|}`. For relu layers
    (:math:`\hat G \ge 0`) the squared distance of two signatures is then exactly
    :math:`\frac{1}{|L|}\sum_l H^2_l`, the mean squared Hellinger distance between the layers' co-activation
    distributions :math:`P^l = \hat G^l / \sum_{ij}\hat G^l_{ij}`.

    Examples
    --------
    >>> f = torch.rand(2, 4, 9); g = f @ f.transpose(1, 2)    # two Gram matrices of 4 filters
    >>> s = style_signature([g])
    >>> p, q = (g / g.sum((1, 2), keepdim=True)).unbind()
    >>> hellinger2 = 1 - (p * q).sqrt().sum()
    >>> bool(torch.isclose((s[0] - s[1]).pow(2).sum(), hellinger2, atol=1e-6))
    True
    """
    parts = []
    scale = (2.0 * len(grams)) ** -0.5
    for g in grams:
        g = g if g.dtype == torch.float64 else g.float()
        b, n, _ = g.shape
        flat_idx, off_diag = losses._triu(n, g.device)
        # Upper triangle first, so the square roots run on half the matrix; in place, as this runs on every batch.
        tri = g.reshape(b, n * n)[:, flat_idx]
        v = torch.copysign(tri.abs().sqrt_(), tri).mul_(off_diag.to(tri.dtype))  # squared norm: Σ_ij |G_ij|
        parts.append(v.mul_(scale / v.norm(dim=1, keepdim=True).clamp_min(1e-30)))
    return torch.cat(parts, 1)


def prepare_image(im: Image.Image, size: int) -> torch.Tensor:
    """An RGB image resized (bicubic) to the *size* × *size* input of a catalog, as a (3, S, S) tensor in [0, 1]."""
    if im.size != (size, size):
        im = im.resize((size, size), Image.BICUBIC, reducing_gap=3.0)
    return to_tensor(im)


class Extractor:
    """Runs VGG-19 once per batch and returns every representation artspace needs.

    Parameters
    ----------
    spec : FeatureSpec
    device : str
        ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:1``, ``mps``.
    precision : {"float32", "auto", "bfloat16", "float16"}
        Precision of the convolutions (:mod:`artspace.precision`); Gram matrices, signatures, descriptors and
        moments are computed from the feature maps in float32 whatever it is.
    compile : bool
        Run the network through ``torch.compile`` (fused kernels; the first batch of each shape pays for the
        compilation: about a minute). Worth it for long runs on a GPU; measure before relying on it on a CPU.

    Examples
    --------
    >>> ex = Extractor(FeatureSpec(size=64), device="cpu")
    >>> out = ex.encode(torch.rand(2, 3, 64, 64))
    >>> out["style"].shape, out["signature"].shape, out["descriptor"].shape
    (torch.Size([2, 305888]), torch.Size([2, 262656]), torch.Size([2, 1536]))
    """

    def __init__(self, spec: FeatureSpec = FeatureSpec(), *, device: str | torch.device = "auto",
                 precision: str = "float32", compile: bool = False):
        self.spec = spec
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        # channels_last (NHWC) lets oneDNN on CPUs and cuDNN on GPUs pick their fastest convolutions: measured
        # 1.4x on this project's 2-core CPU (benchmarks/bench_index.py).
        self.net = VGG19(spec.weights, last_layer=spec.last_layer).to(self.device, memory_format=torch.channels_last)
        if self.device.type == "cpu":
            # Subnormal floats in deep relu maps are slow on x86 and change nothing measurable.
            torch.set_flush_denormal(True)
            # Winograd's minimal filtering for the 256- and 512-filter convolutions: equal to float32 rounding, and
            # the forward pass measured 1.3x faster on this project's 2-core CPU (docs/benchmarks.md). In bfloat16
            # oneDNN's own convolutions are faster still (AMX), so Winograd serves float32 only.
            if self.precision == "float32" and not compile:
                self.net.use_winograd()
        self.compiled = bool(compile)
        self._forward = torch.compile(self.net) if compile else self.net

    def prepare(self, im: Image.Image) -> torch.Tensor:
        """Resize an RGB image to the spec's square input and return it as a (3, S, S) tensor in [0, 1]."""
        return prepare_image(im, self.spec.size)

    def batch(self, images) -> torch.Tensor:
        """A (B, 3, S, S) batch of images given as paths or PIL images (:meth:`load`, :meth:`prepare`)."""
        return torch.stack([self.prepare(i) if isinstance(i, Image.Image) else self.load(i) for i in images])

    def load(self, path) -> torch.Tensor:
        """:func:`open_image` then :meth:`prepare` (decoding huge JPEGs at reduced scale)."""
        return self.prepare(open_image(path, max_side=2 * self.spec.size))

    @torch.inference_mode()
    def encode(self, x: torch.Tensor, *, content_maps: bool = False) -> dict[str, torch.Tensor]:
        """Features of a batch *x* (B, 3, S, S) in [0, 1].

        Returns a dict with ``style`` (B, D) full style vectors (float32, on the CPU), ``signature`` (B, D') style
        signatures, ``descriptor`` (B, N) content search descriptors (unit length), ``moments`` (B, 1024) the
        channel means then standard deviations of relu4_1 (AdaIN's style), and with *content_maps* also
        ``content`` (B, N, H, W), the content layer's maps.
        """
        spec = self.spec
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        norm = spec.descriptor_norm
        layers = (set(spec.style_layers) | set(spec.signature_layers) | {MOMENTS_LAYER}
                  | ({spec.content_layer} if content_maps else set()))
        # the descriptor layers run on restyled maps of `norm`, a branch of the same pass after it
        layers |= {norm} if norm else set(spec.descriptor_layers)
        # not TF32: a float32 catalog built on a GPU must agree with one built on a CPU
        with ieee_float32(self.device):
            with autocast(self.device, self.precision):
                out = self._forward(x, frozenset(layers))
                deep = self.net.resume(restyle(out[norm], norm), norm, spec.descriptor_layers) if norm else out
            # outside autocast: the products of the Gram matrices run in float32 on upcast maps
            grams = {n: losses.gram(out[n]) for n in dict.fromkeys(spec.style_layers + spec.signature_layers)}
        style = torch.cat(
            [losses.style_vector(grams[n], w) for n, w in zip(spec.style_layers, spec.layer_weights)], 1)
        signature = style_signature([grams[n] for n in spec.signature_layers])
        mean, std = losses.channel_stats(out[MOMENTS_LAYER])
        result = {"style": style.cpu(), "signature": signature.cpu(),
                  "descriptor": content_descriptor([deep[n] for n in spec.descriptor_layers]).cpu(),
                  "moments": torch.cat([mean, std], 1).cpu()}
        if content_maps:
            result["content"] = out[spec.content_layer].float().cpu()
        return result

    def style_per_layer(self, style: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split full style vectors (B, D) into each layer's part (B, D_l)."""
        parts = torch.split(style, list(self.spec.style_dims), dim=1)
        return dict(zip(self.spec.style_layers, parts))

    def distance(self, a, b) -> dict:
        """Exact distances between two images (paths or PIL images), as Gatys et al. (2016) define them.

        Returns ``{"style": L_style, "style_layers": {layer: w_l E_l}, "signature": mean H²,
        "signature_layers": {layer: H²_l}, "content": ½Σ(F−P)², "size": side, "precision": …, "weights": …}``,
        every number a Python float, computed at this spec's input size (*size* px square) in the network precision
        used (``float32``, ``bfloat16``: the figures differ in their third digit) with the VGG-19 *weights* named.
        """
        return self.exact_distances(self.encode(self.batch((a, b)), content_maps=True))

    def exact_distances(self, out: dict[str, torch.Tensor]) -> dict:
        """:meth:`distance` of the two images whose :meth:`encode` output (with ``content_maps=True``) is *out*."""
        per_layer = {
            name: float((va[0] - va[1]).double().pow(2).sum())
            for name, va in self.style_per_layer(out["style"]).items()
        }
        sig = out["signature"].double()
        sig_layers = {
            # Each layer's part is a unit vector times 1/√(2|L|): H²_l = |L| × the part's squared distance.
            name: float((va[0] - va[1]).pow(2).sum()) * len(self.spec.signature_layers)
            for name, va in zip(self.spec.signature_layers, torch.split(sig, list(self.spec.signature_dims), 1))
        }
        content = float(losses.content_term(out["content"][:1], out["content"][1:]).item())
        return {"style": float(sum(per_layer.values())), "style_layers": per_layer,
                "signature": float(sum(sig_layers.values()) / len(sig_layers)), "signature_layers": sig_layers,
                "content": content, "size": int(self.spec.size), "precision": self.precision,
                "weights": str(self.spec.weights)}
