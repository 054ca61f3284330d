"""How much memory a run needs, whether it fits, and what to do when it does not.

Every level's size (or, for tiled levels, one tile's) is checked against the free memory before any pixel is
allocated; a size that does not fit, and a real out-of-memory error during the run, both become
:class:`~artspace.errors.OutOfMemoryAdvice` naming the size that fits and the options that help (``--tile``,
``--scales``).
"""

from __future__ import annotations

import math
import os

import torch

from ..backbone import CHANNELS, LAYERS, check_layers
from ..errors import OutOfMemoryAdvice
from .optim import LBFGS_HISTORY
from .options import MIN_SIDE
from .pyramid import dims

__all__ = ["estimate_memory", "available_memory", "memory_advice", "check_memory", "check_levels_fit", "is_oom"]


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


def memory_advice(h: int, w: int, need: int | None, free: int | None, device: torch.device,
                  tile: int | None) -> OutOfMemoryAdvice:
    """The error for an *h* × *w* evaluation that does not fit: what it needs, what is free, what to use instead."""
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


def check_memory(h: int, w: int, *, last_layer: str, optimizer: str, device: torch.device, tile: int | None,
                 max_memory: int | None) -> None:
    """Raise :class:`OutOfMemoryAdvice` if one evaluation at *h* × *w* needs more than *max_memory* (default: the
    memory free on *device*)."""
    need = estimate_memory(h, w, last_layer=last_layer, optimizer=optimizer)
    free = max_memory if max_memory is not None else available_memory(device)
    if free is not None and need > free:
        raise memory_advice(h, w, need, free, device, tile)


def check_levels_fit(content_size: tuple[int, int], options, last_layer: str, device: torch.device) -> None:
    """Check every pyramid level of a run with (resolved) *options* — one tile of it, for tiled levels."""
    tile = options.tile
    for side in options.level_sides():
        h, w = dims(content_size, side)
        if tile is not None and max(h, w) > tile:
            h, w = min(tile, h), min(tile, w)
        check_memory(h, w, last_layer=last_layer, optimizer=options.optimizer, device=device, tile=tile,
                     max_memory=options.max_memory)


def is_oom(e: BaseException) -> bool:
    """Whether *e* is an out-of-memory error (torch's own, or a RuntimeError or MemoryError saying so)."""
    if isinstance(e, torch.OutOfMemoryError if hasattr(torch, "OutOfMemoryError") else MemoryError):
        return True
    msg = str(e).lower()
    return isinstance(e, (RuntimeError, MemoryError)) and ("out of memory" in msg or "can't allocate" in msg
                                                          or "cannot allocate" in msg)
