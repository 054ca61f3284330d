"""Pastiches in one pass: feed-forward networks trained with artspace's perceptual losses.

* :mod:`~artspace.feedforward.networks` — :class:`TransformNet` (Johnson et al. 2016, with instance norm and
  resize-convolutions) and :class:`AdaINDecoder` with :func:`adain` (Huang & Belongie 2017);
* :mod:`~artspace.feedforward.models` — model files: weights plus a JSON header, loaded without running code;
* :mod:`~artspace.feedforward.training` — :func:`train_style`, :func:`train_decoder`;
* :mod:`~artspace.feedforward.inference` — :func:`stylise` (a style network on images of any size, folders in
  batches) and :func:`adain_transfer` (any style, or a catalogued work's stored statistics).
"""

from __future__ import annotations

from ..lazy import exports

_WHERE = {
    "networks": ["TransformNet", "AdaINDecoder", "adain", "channel_stats", "NORMS"],
    "models": ["Model", "load_model", "save_model", "MODEL_FORMAT"],
    "training": ["train_style", "train_decoder", "TrainingResult", "checkpoint_path"],
    "inference": ["stylise", "adain_transfer", "default_decoder", "StyliseResult"],
}
__all__, __getattr__, __dir__ = exports(__name__, _WHERE)
