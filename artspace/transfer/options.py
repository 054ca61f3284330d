r"""Every option of a pastiche, declared once: its default, the values it takes, and what it does.

:class:`TransferOptions` is the one table of options, in the manner of scikit-learn's estimators: each field is
declared with its default and its rule (the allowed range or set), and ``__post_init__`` checks every value once,
raising :class:`~artspace.errors.InvalidOption` with the bad value and the allowed ones. The functions of
:mod:`artspace.transfer` and the ``artspace transfer`` command both take their defaults, checks and help texts from
here, so none of them is written twice.

Values may be given as the command line gives them: ``iterations="200,100"`` (one count per pyramid level),
``style_blend="0.7,0.3"``, ``style_layers="relu1_1,relu2_1"`` or ``["relu1_1,relu2_1", "relu3_1"]``; they are
parsed into ints, floats and tuples.

This module imports neither torch nor the network (the command line reads its help texts from it on every start);
the checks that need them load them when they run.

Examples
--------
>>> TransferOptions(iterations="200,100", scales=2).iterations
(200, 100)
>>> TransferOptions(tolerance=2)
Traceback (most recent call last):
...
artspace.errors.InvalidOption: tolerance must be in [0, 1), not 2
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ArtspaceError, InvalidOption
from ..spec import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS

__all__ = [
    "TransferOptions",
    "DEFAULT_CONTENT_LAYERS",
    "DEFAULT_STYLE_LAYERS",
    "DEFAULT_STYLE_WEIGHT",
    "DEFAULT_LR",
    "DEFAULT_SIZE",
    "OPTIMIZERS",
    "INITS",
    "POOLINGS",
    "MIN_SIDE",
    "PLATEAU_WINDOW",
    "RECONSTRUCT_ONLY",
    "RECONSTRUCT_INIT",
    "check_only",
    "parse_names",
    "parse_numbers",
    "parse_counts",
]

#: Gatys et al. 2016's layers, defined once in :mod:`artspace.spec` for the catalog and the optimiser alike.
DEFAULT_CONTENT_LAYERS: tuple[str, ...] = (DEFAULT_CONTENT_LAYER,)
#: β with α = 1. The features are those of the Caffe VGG-19 (0-255 input, not normalised as Gatys et al.'s network
#: was), where the deep layers' E_l are of the order of 1e8-1e10 at 128-256 px and the content term at relu4_2 of
#: the order of 1e9-1e10 once stylised. Measured on tubingen x starry_night (docs/transfer.md): β = 1 barely
#: stylises, β = 1e3 (Gatys et al.'s ratio for their normalised network) wipes out the layout, β = 1e2 gives a clearly
#: stylised image that keeps it.
DEFAULT_STYLE_WEIGHT = 1e2
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")
POOLINGS = ("max", "avg")
#: Learning rates for images in [0, 1]. L-BFGS scales its steps itself; 1 is its natural step.
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}
#: Output long side by device type when ``size`` is not given (a 500-evaluation run at 512 px takes about an hour on
#: two CPU cores).
DEFAULT_SIZE = {"cuda": 512, "mps": 512, "cpu": 256}
#: The smallest side an image (a level, a style image) is given to the network: four poolings leave one pixel.
MIN_SIDE = 16
#: Evaluations over which ``tolerance`` measures a plateau.
PLATEAU_WINDOW = 20
#: What :func:`artspace.transfer.reconstruct` inverts, the first being its default; it starts from white noise, as
#: feature inversion does (Mahendran & Vedaldi 2015).
RECONSTRUCT_ONLY = ("content", "style")
RECONSTRUCT_INIT = "noise"


# ---- rules: the values one option takes ------------------------------------------------------------------------


class Rule:
    """The values one option takes. :attr:`allowed` says them in words (errors quote it); :meth:`parse` returns a
    value in its canonical form or raises ValueError or TypeError, which :class:`TransferOptions` turns into
    InvalidOption."""

    allowed = ""

    def parse(self, value):
        return value


class Number(Rule):
    """A real number (or a whole number, *integer*) in the range given by *lo* and *hi* (either may be open)."""

    def __init__(self, lo=None, hi=None, *, lo_open=False, hi_open=False, integer=False, unit=""):
        self.lo, self.hi, self.lo_open, self.hi_open, self.integer = lo, hi, lo_open, hi_open, integer
        self.allowed = self._words(unit)

    def _words(self, unit: str) -> str:
        if self.lo is not None and self.hi is not None:
            lo, hi = (str(int(self.lo)), str(int(self.hi))) if self.integer else (f"{self.lo:g}", f"{self.hi:g}")
            return f"in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        if self.integer and unit:
            return f"at least {self.lo} {unit}"
        kind = "a whole number" if self.integer else "a finite number"
        return kind if self.lo is None else f"{kind} {'>' if self.lo_open else '>='} {self.lo:g}"

    def parse(self, value):
        if isinstance(value, bool):
            raise TypeError(value)
        if isinstance(value, str):
            v = int(value.strip()) if self.integer else float(value)
        elif self.integer and isinstance(value, numbers.Real) and float(value).is_integer():
            v = int(value)
        elif not self.integer and isinstance(value, numbers.Real):
            v = float(value)
        else:
            raise TypeError(value)
        if not math.isfinite(v) or (self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo)) or \
                (self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi)):
            raise ValueError(value)
        return v


class Numbers(Rule):
    """Finite numbers >= 0, from a sequence or a string such as ``0.7,0.3``: a tuple of floats."""

    allowed = "numbers >= 0 such as 0.7,0.3"

    def parse(self, value):
        return tuple(parse_numbers(value))


class Counts(Rule):
    """A whole number >= 1, or one per pyramid level (``200,100`` or a sequence, kept as a tuple)."""

    allowed = "a whole number >= 1, or one per pyramid level such as 200,100"

    def parse(self, value):
        return parse_counts(value)


class Layers(Rule):
    """VGG-19 layer names, from a sequence (each item possibly comma-separated) or a string: a tuple."""

    allowed = "VGG-19 layer names such as relu4_2"

    def parse(self, value):
        from ..backbone import check_layers  # imports torch: only when options are checked, never for help texts

        return tuple(check_layers(parse_names(value) or ()))


class OneOf(Rule):
    """One of a few strings; *load* gives them where they are defined in a module that needs torch."""

    def __init__(self, *choices: str, load: Callable[[], Sequence[str]] | None = None):
        self._choices, self._load = choices, load

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self._load()) if self._load is not None else self._choices

    @property
    def allowed(self) -> str:
        return "one of " + ", ".join(map(repr, self.choices))

    def parse(self, value):
        if value not in self.choices:
            raise ValueError(value)
        return value


class Flag(Rule):
    """True or False (1 or 0)."""

    allowed = "True or False"

    def parse(self, value):
        if value in (True, False) and not isinstance(value, str):
            return bool(value)
        raise ValueError(value)


class Init(Rule):
    """A named start or an existing image file."""

    allowed = "one of " + ", ".join(map(repr, INITS)) + " or an image file"

    def parse(self, value):
        if str(value) in INITS:
            return str(value)
        if isinstance(value, (str, os.PathLike)) and Path(value).is_file():
            return value
        raise ValueError(value)


class Weights(Rule):
    """A named weight source of :class:`artspace.backbone.VGG19`, or a state-dict file."""

    allowed = "'original', 'torchvision' or a state-dict file (.pth)"

    def parse(self, value):
        from ..backbone import WEIGHT_SOURCES

        if str(value) in WEIGHT_SOURCES:
            return str(value)
        if isinstance(value, (str, os.PathLike)) and Path(value).expanduser().is_file():
            return value
        raise ValueError(value)


class Device(Rule):
    """``auto`` or a name torch knows (whether the device is present is checked when a run starts)."""

    allowed = "auto, cpu, cuda, cuda:N or mps"

    def parse(self, value):
        value = str(value)
        if value != "auto":
            import torch

            try:
                torch.device(value)
            except RuntimeError:
                raise InvalidOption(f"unknown device {value!r}: device must be {self.allowed}") from None
        return value


class OrNone(Rule):
    """None (the default, described in the table) or a value of *rule*."""

    def __init__(self, rule: Rule):
        self.rule = rule

    @property
    def allowed(self) -> str:
        return self.rule.allowed

    def parse(self, value):
        return None if value is None else self.rule.parse(value)


# ---- parsing helpers (the CLI passes strings; Python callers may pass lists) -----------------------------------


def parse_names(values) -> list[str] | None:
    """Names given as ``"a,b"``, or as a list whose items may themselves be comma-separated; None stays None.

    >>> parse_names(["relu1_1,relu2_1", "relu3_1"])
    ['relu1_1', 'relu2_1', 'relu3_1']
    """
    if values is None:
        return None
    items = [values] if isinstance(values, str) else list(values)
    return [v.strip() for item in items for v in str(item).split(",") if v.strip()]


def parse_numbers(values) -> list[float]:
    """Finite numbers >= 0 from ``"0.7,0.3"`` (commas or spaces) or a sequence; raises ValueError otherwise.

    >>> parse_numbers("0.7, 0.3")
    [0.7, 0.3]
    """
    if isinstance(values, str):
        values = [v for v in values.replace(" ", ",").split(",") if v]
    if isinstance(values, (bool, numbers.Number)):
        raise TypeError(values)
    return [Number(lo=0).parse(v) for v in values]


def normalised(weights) -> list[float]:
    """Non-negative *weights* scaled to sum 1, divided by the largest first so that no sum overflows
    (``1e308,1e308`` is an even blend, not a zero one).

    >>> normalised([3, 1]), normalised([1e308, 1e308])
    ([0.75, 0.25], [0.5, 0.5])
    """
    top = max(weights)
    scaled = [float(w) / top for w in weights]
    total = sum(scaled)
    return [w / total for w in scaled]


def parse_counts(value) -> int | tuple[int, ...]:
    """A whole number >= 1, or one per level: ``"500"`` → 500, ``"200,100"`` or ``[200, 100]`` → (200, 100).

    >>> parse_counts("200,100"), parse_counts("500"), parse_counts(500)
    ((200, 100), 500, 500)
    """
    count = Number(lo=1, integer=True)
    if isinstance(value, str):
        parts = [v for v in value.split(",") if v.strip()]
        out = tuple(count.parse(v) for v in parts)
        return out[0] if len(out) == 1 else out
    if isinstance(value, (bool, numbers.Number)):
        return count.parse(value)
    return tuple(count.parse(v) for v in value)


def _loss_kinds() -> tuple[str, ...]:
    from ..losses import LOSS_KINDS

    return LOSS_KINDS


# ---- the table ---------------------------------------------------------------------------------------------------


def _option(default, rule: Rule, help: str, *, default_text: str | None = None):
    """One row of the table: the default, the rule its values follow, and the help text (papers cited)."""
    return field(default=default, metadata={"rule": rule, "help": help, "default_text": default_text})


def _show(value) -> str:
    """A default as the command line writes it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class TransferOptions:
    """The options of one pastiche or reconstruction: every value checked on construction.

    Give any subset as keywords (the others keep their defaults); ``dataclasses.replace(options, size=512)`` makes
    a changed copy, checked again. :func:`artspace.transfer.synthesise` takes the same names as keywords, or an
    instance as ``options=``. The parameters, their defaults and allowed values are listed below (generated from
    the table in the source, which is their one definition).

    Raises
    ------
    InvalidOption
        A value out of its range or set, naming the value and the allowed ones; or two values that do not fit
        together (weights per layer, counts per level, tile overlap, levels too small).
    UnknownLayer
        A layer name VGG-19 does not have, with the list of valid names.
    """

    # ---- sizes ----
    size: int | None = _option(
        None, OrNone(Number(MIN_SIDE, integer=True, unit="px")),
        "Long side of the output in pixels; the content keeps its aspect ratio.",
        default_text=f"{DEFAULT_SIZE['cuda']} on a GPU, {DEFAULT_SIZE['cpu']} on a CPU (logged)")
    style_scale: float = _option(
        1.0, Number(0, 16, lo_open=True),
        "The style images' long side is size x style_scale: smaller paints the style's strokes larger "
        "(scale control, Gatys et al. 2017).")
    # ---- what is matched: the losses of Gatys et al. 2016 ----
    content_layers: tuple[str, ...] = _option(
        DEFAULT_CONTENT_LAYERS, Layers(),
        "VGG-19 layers whose features must match the content's (Gatys et al. 2016: conv4_2); may be empty.")
    style_layers: tuple[str, ...] = _option(
        DEFAULT_STYLE_LAYERS, Layers(),
        "VGG-19 layers whose Gram matrices must match the style's (Gatys et al. 2016: conv1_1 ... conv5_1); "
        "may be empty.")
    content_layer_weights: tuple[float, ...] | None = _option(
        None, OrNone(Numbers()), "One weight c_l per content layer, such as 1,0.5.", default_text="1 each")
    style_layer_weights: tuple[float, ...] | None = _option(
        None, OrNone(Numbers()), "One weight w_l per style layer (Gatys et al. 2016), such as 100,10,1,0.2,0.2.",
        default_text="1/|L| each")
    style_blend: tuple[float, ...] | None = _option(
        None, OrNone(Numbers()),
        "One weight per style image, such as 0.7,0.3 (normalised to sum 1): the target Gram matrices are the "
        "weighted mean of the styles'.", default_text="equal")
    content_weight: float = _option(
        1.0, Number(0), "alpha, the weight of the content loss (Gatys et al. 2016).")
    style_weight: float = _option(
        DEFAULT_STYLE_WEIGHT, Number(0),
        "beta, the weight of the style loss. Gatys et al. 2016 used alpha/beta = 1e-3 on a normalised network; "
        "on the Caffe VGG-19 used here, whose deep activations are far larger, the default keeps the layout.")
    tv_weight: float = _option(
        0.0, Number(0),
        "lambda, the weight of the total variation of the image in [0, 1] (Mahendran & Vedaldi 2015; Johnson et al. "
        "2016); 0 switches it off.")
    loss: str = _option(
        "l2", OneOf(load=_loss_kinds),
        "l2: the squared errors of Gatys et al. 2016; l1: absolute errors, less dominated by a few large "
        "deviations (retune style_weight).")
    # ---- the optimiser ----
    optimizer: str = _option(
        "lbfgs", OneOf(*OPTIMIZERS),
        "lbfgs: L-BFGS, as Gatys et al. 2016, bounded to the pixel range; adam: Adam (Kingma & Ba 2015), which "
        "needs more iterations.")
    lr: float | None = _option(
        None, OrNone(Number(0, lo_open=True)), "Step size.",
        default_text=", ".join(f"{v:g} for {k}" for k, v in DEFAULT_LR.items()))
    iterations: int | tuple[int, ...] = _option(
        500, Counts(),
        "Loss-and-gradient evaluations per pyramid level (and per tile); or one count per level, coarsest first, "
        "such as 200,100.")
    tolerance: float = _option(
        1e-4, Number(0, 1, hi_open=True),
        f"Stop a level when the best loss improved by less than this fraction over the last {PLATEAU_WINDOW} "
        "evaluations; 0 never stops early.")
    init: str | os.PathLike = _option(
        "content", Init(),
        "Starting image: content (keeps the layout, fastest), noise (white noise from seed, as Gatys et al. 2016), "
        "style (the first style, stretched to the output's shape) or an image file.")
    seed: int | None = _option(
        None, OrNone(Number(0, 2 ** 63 - 1, integer=True)),  # what a torch generator takes; drawn seeds are 32-bit
        "Seeds the noise; a CPU run with the same seed and settings is identical bit for bit.",
        default_text="drawn at random and recorded in the sidecar")
    # ---- colour, scale and tiles ----
    preserve_colors: bool = _option(
        False, Flag(),
        "Keep the content's colours: transfer in colour, then give the pastiche's luminance the content's "
        "chrominance (YIQ; Gatys et al. 2017's colour-preservation, done after the transfer rather than by "
        "optimising the luminance alone).")
    match_histogram: bool = _option(
        False, Flag(),
        "Match each style image's colour histogram to the content's before the transfer (colour histogram "
        "matching, Gatys et al. 2017).")
    scales: int = _option(
        1, Number(1, integer=True),
        "Coarse-to-fine levels: optimise at size/2^(scales-1), ..., size, each level from the previous result "
        "upscaled (coarse-to-fine, Gatys et al. 2017).")
    tile: int | None = _option(
        None, OrNone(Number(32, integer=True, unit="px")),
        "Optimise levels larger than this many px in overlapping tiles, each against the whole style's Gram "
        "matrices; memory is then bounded by one tile.", default_text="no tiles")
    tile_overlap: int | None = _option(
        None, OrNone(Number(1, integer=True, unit="px")),
        "Pixels shared by neighbouring tiles, at most tile/2.", default_text="tile/4")
    # ---- the network and the machine ----
    weights: str | os.PathLike = _option(
        "original", Weights(),
        "VGG-19 weights: original (the Caffe/Oxford weights Gatys et al. 2016 used), torchvision, or a state-dict "
        "file.")
    pooling: str = _option(
        "max", OneOf(*POOLINGS),
        "max, or avg (Gatys et al. 2016 found average pooling slightly more appealing).")
    device: str = _option("auto", Device(), "auto, cpu, cuda, cuda:N or mps.")
    precision: str = _option(
        "auto", OneOf("auto", "float32", "bfloat16", "float16"),
        "Precision of VGG-19's forward and backward passes; the image, the losses and the L-BFGS state stay "
        "float32. auto: bfloat16 on a CPU that runs it natively (AMX, AVX512-BF16), where it reached pastiche's "
        "100-step loss in 0.22x pastiche's time against 0.54x for float32 (docs/benchmarks.md); float32 elsewhere, "
        "GPUs included, until measured there.")
    save_every: int = _option(
        0, Number(0, integer=True),
        "With an output, also write the iterate every N evaluations (out-s1-00050.png); 0: never.")
    max_memory: int | None = _option(
        None, OrNone(Number(1, integer=True, unit="bytes")),
        "Bytes the run may use; a run that needs more raises OutOfMemoryAdvice before any work.",
        default_text="what the device has free")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _checked(f.name, f.metadata["rule"], getattr(self, f.name)))
        self._check_together()

    def _check_together(self) -> None:
        """The checks that need two options at once."""
        c, s = self.content_layers, self.style_layers
        if not c and not s:
            raise InvalidOption("no content layers and no style layers: give at least one layer to match")
        twice = sorted({n for names in (c, s) for n in names if names.count(n) > 1})
        if twice:
            raise InvalidOption(f"{', '.join(twice)} listed twice in content_layers or style_layers; list each once")
        for name, layers in (("content_layer_weights", c), ("style_layer_weights", s)):
            w = getattr(self, name)
            if w is not None and len(w) != len(layers):
                raise InvalidOption(f"{name} has {len(w)} values {list(w)} for {len(layers)} layers "
                                    f"{', '.join(layers)}; give one per layer")
        if self.style_blend is not None and not self.style_blend:
            raise InvalidOption("style_blend (--style-blend) is empty; give one weight per style image, such as "
                                "0.7,0.3")
        if self.style_blend is not None and not max(self.style_blend) > 0:
            raise InvalidOption(f"style_blend weights {list(self.style_blend)} sum to 0; give one positive weight")
        if isinstance(self.iterations, tuple) and len(self.iterations) != self.scales:
            raise InvalidOption(f"iterations gives {len(self.iterations)} counts for {self.scales} pyramid levels; "
                                f"give one or {self.scales}")
        if self.tile is None and self.tile_overlap is not None:
            raise InvalidOption(f"tile_overlap {self.tile_overlap} needs tile: give --tile too (e.g. --tile 1024), or "
                                f"leave --tile-overlap out")
        if self.tile is not None and self.tile_overlap is not None and self.tile_overlap > self.tile // 2:
            raise InvalidOption(f"tile_overlap must be between 1 and tile/2 = {self.tile // 2}, not "
                                f"{self.tile_overlap}")
        if self.size is not None:
            self.level_sides()

    # ---- derived values ----

    def level_sides(self) -> list[int]:
        """Long side of each pyramid level, coarsest first: size / 2**(scales-1), …, size.

        >>> TransferOptions(size=256, scales=3).level_sides()
        [64, 128, 256]
        """
        sides = [max(1, round(self.size / 2 ** (self.scales - 1 - k))) for k in range(self.scales)]
        if sides[0] < MIN_SIDE:
            raise InvalidOption(f"scales={self.scales} is too many for size {self.size}: the coarsest level would be "
                                f"{sides[0]} px (at least {MIN_SIDE}); use fewer scales")
        return sides

    def level_iterations(self) -> tuple[int, ...]:
        """Evaluations of each pyramid level."""
        it = self.iterations
        return it if isinstance(it, tuple) else (it,) * self.scales

    def blend_for(self, n_styles: int) -> list[float]:
        """The blend weights of *n_styles* style images (default equal), scaled to sum 1 (:func:`normalised`)."""
        if self.style_blend is None:
            return normalised([1.0] * n_styles)
        if len(self.style_blend) != n_styles:
            raise InvalidOption(f"style_blend has {len(self.style_blend)} weights {list(self.style_blend)} for "
                                f"{n_styles} style image(s); give one per style image")
        return normalised(self.style_blend)

    def resolved(self, device) -> "TransferOptions":
        """These options with every default that is chosen at run time filled in (and checked again): the
        *device* (a ``torch.device``) and the size for it, the learning rate for the optimiser, the tile overlap,
        one iteration count per level, the layer weights and the seed (a random one, recorded)."""
        return dataclasses.replace(
            self,
            device=str(device),
            size=self.size if self.size is not None else DEFAULT_SIZE.get(device.type, DEFAULT_SIZE["cpu"]),
            lr=self.lr if self.lr is not None else DEFAULT_LR[self.optimizer],
            tile_overlap=None if self.tile is None else self.tile_overlap or self.tile // 4,
            iterations=self.level_iterations(),
            content_layer_weights=self.content_layer_weights or (1.0,) * len(self.content_layers),
            style_layer_weights=self.style_layer_weights or (1.0 / max(1, len(self.style_layers)),)
            * len(self.style_layers),
            seed=self.seed if self.seed is not None else int.from_bytes(os.urandom(4), "little"),
            precision=self.resolved_precision(device),
        )

    def resolved_precision(self, device) -> str:
        """The precision of a run on *device* (a ``torch.device``): ``auto`` is bfloat16 only where it was measured
        to reach the same loss sooner — a CPU with native bfloat16 — and float32 elsewhere."""
        if self.precision != "auto":
            return self.precision
        from ..precision import cpu_has_native_bf16  # imports torch: only at run time

        return "bfloat16" if device.type == "cpu" and cpu_has_native_bf16() else "float32"

    def as_settings(self) -> dict[str, Any]:
        """Every option as JSON-ready values (tuples as lists, paths as strings), for the sidecar."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    # ---- the table, read ----

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def default(cls, name: str):
        """The default of option *name*."""
        return _field(name).default

    @classmethod
    def allowed(cls, name: str) -> str:
        """The allowed values of option *name*, in words."""
        return _field(name).metadata["rule"].allowed

    @classmethod
    def help(cls, name: str, note: str = "") -> str:
        """The help text of option *name* (with *note* added), ending with its default: what ``artspace transfer
        --help`` shows."""
        f = _field(name)
        return f"{f.metadata['help']}{note} Default: {f.metadata['default_text'] or _show(f.default)}."


def _field(name: str) -> dataclasses.Field:
    for f in dataclasses.fields(TransferOptions):
        if f.name == name:
            return f
    raise InvalidOption(f"no option {name!r}; the options are: {', '.join(TransferOptions.names())}")


def _checked(name: str, rule: Rule, value):
    try:
        return rule.parse(value)
    except ArtspaceError:  # UnknownLayer, or a rule's own message
        raise
    except (ValueError, TypeError, OverflowError):
        raise InvalidOption(f"{name} must be {rule.allowed}, not {value!r}") from None


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return str(value)
    return value


def check_only(only: str) -> str:
    """*only* of :func:`artspace.transfer.reconstruct`, checked."""
    if only not in RECONSTRUCT_ONLY:
        raise InvalidOption(f"only must be 'content' or 'style', not {only!r}")
    return only


def _document() -> str:
    """The Parameters section of :class:`TransferOptions`, written from the table."""
    lines = ["", "    Parameters", "    ----------"]
    for f in dataclasses.fields(TransferOptions):
        lines.append(f"    {f.name} : {f.type}, default "
                     f"{f.metadata['default_text'] or repr(f.default)}")
        lines.append(f"        {f.metadata['help']}")
    return "\n".join(lines) + "\n"


TransferOptions.__doc__ = (TransferOptions.__doc__ or "") + _document()
