"""What one run produced, and how it is written: the image plus a JSON sidecar (``out.png`` → ``out.png.json``)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from ..atomic import atomic_write
from ..images import command_line, file_sha256, save_image
from .inputs import check_output_path, sidecar_path

__all__ = ["TransferResult", "mean_losses"]


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
        One entry per pyramid level (an interrupted one too): size, tiles (each with its loss history), evaluations,
        seconds, best losses, why it stopped and the total loss at each of its evaluations (``history``).
    history : list of float
        Total loss at every evaluation of the last untiled level (empty for tiled levels).
    elapsed_s : float
        Wall-clock seconds of the whole run, loading included.
    log : list of str
        The messages the run logged.
    output : Path or None
        Where :meth:`save` wrote the image.
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
                      "file": str(self.output) if self.output else None,
                      # the written file's own checksum: which file this record describes
                      "sha256": file_sha256(self.output) if self.output and Path(self.output).is_file() else None},
            "command": command_line(),
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
        path = check_output_path(path)
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


def mean_losses(records: list[dict]) -> dict:
    """The mean of several tiles' ``losses`` dicts (one record is returned as a copy).

    >>> mean_losses([{"total": 1.0, "tv": 0.0, "content": {}, "style": {"relu1_1": 2.0}},
    ...              {"total": 3.0, "tv": 2.0, "content": {}, "style": {"relu1_1": 4.0}}])
    {'total': 2.0, 'tv': 1.0, 'content': {}, 'style': {'relu1_1': 3.0}}
    """
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
