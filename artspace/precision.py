"""The numeric precision of network passes: ``auto``, ``float32``, ``bfloat16`` or ``float16``.

The convolutions of VGG-19 (and of the feed-forward networks) may run in a 16-bit format where the hardware does so
natively; everything artspace accumulates or stores — Gram matrices, signatures, projections, distances, losses and
the optimised image — stays float32 (:func:`artspace.losses.gram` upcasts its input before the product).

``auto`` picks bfloat16 where the hardware runs it natively — an x86 CPU with AMX or AVX512-BF16 (Intel Sapphire
Rapids and later, AMD Zen 4 and later), a CUDA GPU that supports it (Ampere and later) — and float32 elsewhere.
float16 is offered for GPUs without bfloat16; on CPUs it is slower than float32.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

from .errors import InvalidOption

__all__ = ["PRECISIONS", "resolve_precision", "autocast", "cpu_has_native_bf16"]

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AMX or AVX512-BF16, from ``/proc/cpuinfo`` on Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return any(f in flags for f in _BF16_FLAGS)
    return False


def resolve_precision(precision: str | None, device: str | torch.device) -> str:
    """The precision a run on *device* uses: *precision* itself, or for ``auto`` (and None) the one the hardware
    runs natively.

    Examples
    --------
    >>> resolve_precision("float32", "cpu")
    'float32'
    >>> resolve_precision("double", "cpu")
    Traceback (most recent call last):
    ...
    artspace.errors.InvalidOption: precision must be one of auto, float32, bfloat16, float16, not 'double'
    """
    precision = "auto" if precision is None else str(precision)
    if precision not in PRECISIONS:
        raise InvalidOption(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if device.type == "cpu":
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    return "float32"


def autocast(device: str | torch.device, precision: str):
    """A context in which eligible operations (convolutions, matrix products) run in *precision* on *device*.

    float32 (or a device autocast does not cover) gives a context that changes nothing.
    """
    device = torch.device(device)
    dtype = _DTYPES[resolve_precision(precision, device)]
    if dtype == torch.float32 or device.type not in ("cpu", "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
