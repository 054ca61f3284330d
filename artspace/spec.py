"""What decides the numbers a catalog stores: VGG-19's layer names and the feature spec.

Kept apart from :mod:`artspace.backbone` and :mod:`artspace.features` because it needs no torch: the command line
opens a catalog and answers a query about catalogued works without loading the network.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Iterable

from .errors import InvalidOption, UnknownLayer

__all__ = ["LAYERS", "CONV_LAYERS", "CHANNELS", "check_layers", "DEFAULT_STYLE_LAYERS", "DEFAULT_CONTENT_LAYER",
           "DEFAULT_SIGNATURE_LAYERS", "MOMENTS_LAYER", "DEFAULT_DESCRIPTOR_LAYERS",
           "DEFAULT_DESCRIPTOR_NORM", "FeatureSpec"]

_CFG = [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]]


def _layer_names() -> tuple[str, ...]:
    names = []
    for b, block in enumerate(_CFG, start=1):
        for i in range(1, len(block) + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return tuple(names)


#: Every layer name, in forward order: conv1_1, relu1_1, conv1_2, relu1_2, pool1, ..., relu5_4, pool5.
LAYERS: tuple[str, ...] = _layer_names()
CONV_LAYERS: tuple[str, ...] = tuple(n for n in LAYERS if n.startswith("conv"))
#: Channels (N, the number of filters) of each layer.
CHANNELS: dict[str, int] = {}
for _b, _block in enumerate(_CFG, start=1):
    for _i, _c in enumerate(_block, start=1):
        CHANNELS[f"conv{_b}_{_i}"] = CHANNELS[f"relu{_b}_{_i}"] = _c
    CHANNELS[f"pool{_b}"] = _block[-1]

def network_minimum(layers: Iterable[str]) -> int:
    """The least side (px) an image needs to reach the deepest of *layers* (names not in :data:`LAYERS` are left to
    :func:`check_layers`): each pooling before it halves the map.

    >>> network_minimum(["relu1_1", "relu5_1"]), network_minimum(["relu3_1"])
    (16, 4)
    """
    used = [LAYERS.index(n) for n in layers if n in LAYERS]
    return 2 ** sum(name.startswith("pool") for name in LAYERS[:max(used, default=0) + 1])


def check_layers(layers: Iterable[str]) -> list[str]:
    """Return *layers* as a list, raising :class:`UnknownLayer` for any name VGG-19 does not have."""
    out = []
    for name in layers:
        if name not in LAYERS:
            raise UnknownLayer(name, LAYERS)
        out.append(name)
    return out


#: Gatys et al. 2016 match the style on conv1_1 … conv5_1 and the content on conv4_2; artspace takes each after its
#: ReLU. The catalog's features and the transfer optimiser both read them from here.
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
DEFAULT_CONTENT_LAYER = "relu4_2"
#: Chosen on pacs-dev (same-domain precision@10: all five style layers 0.844, relu3_1-relu5_1 0.869, relu4_1 and
#: relu5_1 0.875), compared on wikiart-dev too, and checked afterwards on the demo grid (docs/benchmarks.md).
DEFAULT_SIGNATURE_LAYERS = ("relu4_1", "relu5_1")
#: The layer whose channel means and standard deviations the catalog keeps for every work (``moments.npy``): a
#: style for AdaIN (Huang & Belongie 2017) without reading the work's image again.
MOMENTS_LAYER = "relu4_1"

#: Layers of the content search descriptor: the maxima of relu5_2, relu5_3 and relu5_4 found the same subject more
#: often than relu5_4 alone on every development set (docs/benchmarks.md, "Content that follows the subject").
DEFAULT_DESCRIPTOR_LAYERS = ("relu5_2", "relu5_3", "relu5_4")
#: The layer whose maps the content descriptor's branch of the network restyles to the mean statistics of photographs
#: before running on (:func:`artspace.features.restyle`): the medium's share of deep features falls, the subject's
#: stays (docs/benchmarks.md, "Content that follows the subject"). Shipped statistics exist for the original weights
#: only, so with other weights the default is no restyling.
DEFAULT_DESCRIPTOR_NORM = "conv5_1"


def _triangle_dims(layers) -> tuple[int, ...]:
    """Length of the upper triangle of each layer's Gram matrix, :math:`N(N+1)/2`."""
    return tuple(CHANNELS[n] * (CHANNELS[n] + 1) // 2 for n in layers)


@dataclass(frozen=True)
class FeatureSpec:
    """Everything that decides the numbers a catalog stores; two catalogs compare only if their specs are equal.

    Parameters
    ----------
    weights : str
        Backbone weight source: ``original``, ``torchvision`` or a path (see :class:`artspace.backbone.VGG19`).
    size : int
        Every image is resized to ``size × size`` pixels before the network (a fixed input size makes the content
        maps of any two works comparable position by position, and batches possible).
    style_layers : tuple of str
        Layers whose Gram matrices form the style representation.
    style_weights : tuple of float, optional
        :math:`w_l` for each style layer; default :math:`1/|L|`.
    content_layer : str
        Layer of the exact content distance (Gatys et al.'s conv4_2, taken after its relu).
    descriptor_layers : tuple of str
        Layers whose maxima over space form the content search descriptor (:func:`artspace.features.content_descriptor`).
        Catalogs made before this default used relu5_4 alone (their specs say ``descriptor_layer``) and keep it.
    signature_layers : tuple of str
        Layers whose Gram matrices form the style signature (:func:`style_signature`).
    descriptor_norm : str or None
        A convolution shallower than every descriptor layer whose maps the descriptor's branch of the network gives
        the mean channel statistics of photographs (:func:`artspace.features.restyle`) before running on to the
        descriptor layers; None runs them on the maps as they are. ``"auto"`` (the default):
        :data:`DEFAULT_DESCRIPTOR_NORM` with the original weights, for which artspace ships those statistics, else
        None. Catalogs made before it existed keep None.
    """

    weights: str = "original"
    size: int = 224
    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    style_weights: tuple[float, ...] | None = None
    content_layer: str = DEFAULT_CONTENT_LAYER
    descriptor_layers: tuple[str, ...] = DEFAULT_DESCRIPTOR_LAYERS
    signature_layers: tuple[str, ...] = DEFAULT_SIGNATURE_LAYERS
    descriptor_norm: str | None = "auto"

    def __post_init__(self):
        check_layers(self.style_layers)
        check_layers(self.signature_layers)
        check_layers([self.content_layer, *self.descriptor_layers])
        norm = self.descriptor_norm
        if norm == "auto":
            norm = DEFAULT_DESCRIPTOR_NORM if str(self.weights) == "original" else None
            object.__setattr__(self, "descriptor_norm", norm)
        if norm is not None:
            check_layers([norm])
            if not norm.startswith("conv"):
                raise InvalidOption(f"descriptor_norm must be a convolution (conv1_1 … conv5_4), not {norm!r}")
            shallow = [n for n in self.descriptor_layers if LAYERS.index(n) <= LAYERS.index(norm)]
            if shallow:
                raise InvalidOption(f"descriptor_norm {norm!r} must come before every descriptor layer, and "
                                    f"{shallow} do not; choose a shallower layer or None")
            if str(self.weights) != "original":
                raise InvalidOption(f"descriptor_norm needs the photograph statistics of the backbone, which artspace "
                                    f"ships for the original weights only, not {self.weights!r}; use None")
        if not 32 <= int(self.size) <= 4096:
            raise InvalidOption(f"size must be between 32 and 4096 pixels, not {self.size}")
        if self.style_weights is not None and len(self.style_weights) != len(self.style_layers):
            raise InvalidOption(
                f"{len(self.style_layers)} style layers but {len(self.style_weights)} style weights "
                f"{tuple(self.style_weights)}; give one weight per layer")
        # the default weights spelt out, so that a spec read back from a catalog (which stores them) equals the
        # spec of a run that asks for the same settings without naming the weights
        object.__setattr__(self, "style_weights", self.layer_weights if self.style_weights is None
                           else tuple(float(w) for w in self.style_weights))

    @property
    def layer_weights(self) -> tuple[float, ...]:
        """:math:`w_l` of each style layer."""
        if self.style_weights is not None:
            return tuple(float(w) for w in self.style_weights)
        return tuple(1.0 / len(self.style_layers) for _ in self.style_layers)

    @property
    def style_dims(self) -> tuple[int, ...]:
        """Length of each style layer's upper-triangle vector, :math:`N(N+1)/2`."""
        return _triangle_dims(self.style_layers)

    @property
    def signature_dims(self) -> tuple[int, ...]:
        """Length of each signature layer's part of the signature, :math:`N(N+1)/2`."""
        return _triangle_dims(self.signature_layers)

    @property
    def descriptor_dim(self) -> int:
        return sum(CHANNELS[n] for n in self.descriptor_layers)

    @property
    def last_layer(self) -> str:
        wanted = set(self.style_layers) | set(self.signature_layers) | {self.content_layer, MOMENTS_LAYER,
                                                                        *self.descriptor_layers}
        return max(wanted, key=LAYERS.index)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["style_layers"] = list(self.style_layers)
        d["style_weights"] = list(self.layer_weights)
        d["signature_layers"] = list(self.signature_layers)
        d["descriptor_layers"] = list(self.descriptor_layers)
        if self.descriptor_norm is None:
            # absent means none: the spec of a catalog made before restyling reads, and digests, as it always did
            del d["descriptor_norm"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSpec":
        d = dict(d)
        d["style_layers"] = tuple(d["style_layers"])
        if d.get("style_weights") is not None:
            d["style_weights"] = tuple(d["style_weights"])
        if d.get("signature_layers") is not None:
            d["signature_layers"] = tuple(d["signature_layers"])
        if d.get("descriptor_layers") is not None:
            d["descriptor_layers"] = tuple(d["descriptor_layers"])
        elif d.get("descriptor_layer") is not None:  # a catalog from before the three-layer default
            d["descriptor_layers"] = (d["descriptor_layer"],)
        d.setdefault("descriptor_norm", None)  # a catalog from before the restyled descriptor
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})

    def describe(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


