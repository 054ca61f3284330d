"""Model files: a network's weights and a JSON header saying what it is and how it was made.

A model file is what ``torch.save`` writes for ``{"artspace_model": HEADER, "state_dict": WEIGHTS}``: HEADER a JSON
text, WEIGHTS a plain state dict of tensors. It is read with ``torch.load(weights_only=True)``, which unpickles
tensors, numbers and strings only — no code a file might carry is run. The header records the architecture, the
losses, layers and weights, the training images' SHA-256 checksums, the settings and the artspace version; a file
in another model format, another kind of network, or a damaged file gives one error line (:class:`InvalidModel`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_write
from ..errors import InvalidModel
from .networks import AdaINDecoder, TransformNet

__all__ = ["MODEL_FORMAT", "KINDS", "Model", "full_header", "save_model", "load_model", "build_network"]

#: Bumped whenever a change makes older files load wrongly; files of another format are refused.
MODEL_FORMAT = 1
#: What a model file can hold: "style" (one image transformation network per style, Johnson et al. 2016) or
#: "adain-decoder" (the decoder of Huang & Belongie 2017, for any style).
KINDS = ("style", "adain-decoder")
_KEY = "artspace_model"


def build_network(kind: str, architecture: dict) -> nn.Module:
    """An untrained network of *kind* with *architecture* (as a header records it)."""
    if kind == "style":
        return TransformNet(norm=architecture.get("norm", "instance"))
    if kind == "adain-decoder":
        return AdaINDecoder()
    raise InvalidModel(f"unknown model kind {kind!r}; artspace makes {', '.join(KINDS)}")


@dataclass
class Model:
    """A loaded model: the network (in eval mode, float32) and its header."""

    kind: str
    net: nn.Module
    header: dict
    path: Path | None = None

    def __repr__(self):
        return f"Model(kind={self.kind!r}, path={str(self.path)!r}, steps={self.header.get('steps')})"


def full_header(kind: str, header: dict) -> dict:
    """*header* with what every model file records first: the model format, the kind and the artspace and torch
    versions."""
    from .. import __version__

    return {"format": MODEL_FORMAT, "kind": kind, "artspace_version": __version__, "torch_version": torch.__version__,
            **header}


def save_model(path: str | os.PathLike, kind: str, net: nn.Module, header: dict, *, half: bool = False) -> Path:
    """Write *net*'s weights and *header* to *path* atomically (a reader never sees half a file).

    *half* stores the weights as float16 (half the size; they are loaded back as float32).
    """
    header = full_header(kind, header)
    state = {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu().contiguous()
             for k, v in net.state_dict().items()}
    blob = {_KEY: json.dumps(header, sort_keys=True), "state_dict": state}
    return atomic_write(Path(path), lambda tmp: torch.save(blob, tmp))


def load_model(path: str | os.PathLike, *, kind: str | None = None, device: str | torch.device = "cpu") -> Model:
    """Read a model file written by :func:`save_model`; *kind* refuses a file holding another kind of network."""
    path = Path(path)
    if not path.is_file():
        raise InvalidModel(f"{path}: no such model file; train one with `artspace train-style` or "
                           "`artspace train-decoder`")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, garbage, a pickle with code: all "not a model file we can read"
        raise InvalidModel(f"{path}: not a readable model file ({type(e).__name__}); it is damaged or not made "
                           "by artspace: train it again") from None
    if not isinstance(blob, dict) or _KEY not in blob or not isinstance(blob.get("state_dict"), dict):
        raise InvalidModel(f"{path}: a torch file, but not an artspace model (no {_KEY!r} header); artspace reads "
                           "the networks that `artspace train-style` and `artspace train-decoder` write")
    try:
        header = json.loads(blob[_KEY])
        fmt, found = header["format"], header["kind"]
    except (ValueError, TypeError, KeyError):
        raise InvalidModel(f"{path}: its header is damaged; train the model again") from None
    if fmt != MODEL_FORMAT:
        raise InvalidModel(f"{path}: model format {fmt} (written by artspace {header.get('artspace_version', '?')}) "
                           f"but this artspace reads format {MODEL_FORMAT}; use that version of artspace or train "
                           "the model again")
    if kind is not None and found != kind:
        raise InvalidModel(f"{path} holds a network of kind {found!r}, not {kind!r}")
    net = build_network(found, header.get("architecture", {}))
    try:
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    except (RuntimeError, AttributeError) as e:
        first = str(e).splitlines()[0]
        raise InvalidModel(f"{path}: its weights do not fit the {found} network it declares ({first}); "
                           "the file is damaged: train it again") from None
    return Model(found, net.to(device).eval(), header, path)
