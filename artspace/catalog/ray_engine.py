"""The Ray engine of ``artspace index``: the same extraction as the local engine, as stages of a Ray Data pipeline.

``index(..., engine="ray")`` (``artspace index DIR --engine ray [--address ADDR]``) plans the run as the local engine
does — which files are new or changed, which work ids they get, the fit sample first on a new catalog — and then
runs each batch of files through three stages:

1. ``from_items``: the files to read (relative path, id, size, modification time);
2. decoding and resizing in CPU tasks (:func:`decode_batch`: the same checks, pixel budget and checksums as a local
   run, :func:`artspace.catalog.indexer._load_one`);
3. VGG-19, Gram matrices, signatures, projections and moments in an actor pool (:class:`EncodeActor`), one actor per
   GPU of the cluster (or per share of its CPUs), each loading the network once
   (:func:`artspace.catalog.indexer.shard_arrays`, the function the local engine calls).

The driver receives each batch's arrays and writes them as shards of the extraction log, exactly as a local run does;
it then publishes the generation as a local run would. A killed run resumes from the shards written, and unreadable
files are skipped with the same reasons. The images are read by the workers from the path the driver sees, so on a
cluster the collection must be on a filesystem every node mounts at that path.

Ray is an optional dependency: ``pip install 'artspace[ray]'``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InvalidOption

__all__ = ["require_ray", "connect", "decode_batch", "EncodeActor", "RayExtraction", "ENGINES"]

ENGINES = ("local", "ray")


def require_ray():
    """The ``ray`` module, or one error line saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the pipeline needs Ray Data, not only Ray Core
    except ImportError:
        raise InvalidOption("--engine ray needs Ray Data, which is not installed: pip install 'artspace[ray]' "
                            "(or use the default --engine local)") from None
    return ray


def connect(address: str | None):
    """Join the Ray cluster at *address* (``auto``, ``ray://host:10001``), keep a running connection, or start a
    local Ray instance on this machine's CPUs (and GPUs)."""
    import logging

    ray = require_ray()
    # Ray's own INFO lines (the instance started, each dataset's plan and progress) would bury artspace's output:
    # warnings and errors still show
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if ray.is_initialized():
        return ray
    try:
        if address:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(ignore_reinit_error=True, log_to_driver=False, include_dashboard=False,
                     logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise InvalidOption(f"could not reach a Ray cluster at {address or 'this machine'}: {e}; start one with "
                            "`ray start --head`, or leave out --address for a local instance") from None
    return ray


def decode_batch(batch: dict, *, root: str, size: int, max_pixels: int | None, include_outputs: bool) -> dict:
    """Ray Data stage 2: read and resize each file of *batch* (numpy columns rel, id, size, mtime_ns)."""
    from .indexer import _Item, _load_one

    n = len(batch["rel"])
    images = np.zeros((n, size, size, 3), np.uint8)
    reason = np.full(n, "", dtype=object)
    checksum = np.full(n, "", dtype=object)
    width, height = np.zeros(n, np.int32), np.zeros(n, np.int32)
    for j in range(n):
        item = _Item(str(batch["rel"][j]), int(batch["id"][j]), int(batch["size"][j]), int(batch["mtime_ns"][j]))
        _, x, why, info = _load_one(root if not isinstance(root, str) else Path(root), item, size, max_pixels,
                                    include_outputs)
        if x is None:
            reason[j] = why
            continue
        # PIL resized an 8-bit image, so x is k/255 exactly and the hop through uint8 loses nothing: the actors see
        # the very tensor a local run would
        images[j] = (x.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
        checksum[j], width[j], height[j] = info["checksum"], info["width"], info["height"]
    return {**batch, "image": images, "reason": reason, "checksum": checksum, "width": width, "height": height}


class EncodeActor:
    """Ray Data stage 3: VGG-19 and everything a shard stores, for the rows that were read."""

    def __init__(self, spec: dict, device: str, precision: str, projections: dict | None, threads: int,
                 compile: bool = False):
        import torch

        from ..features import Extractor, FeatureSpec
        from .generation import Embedder

        torch.set_num_threads(max(1, threads))
        self.spec = FeatureSpec.from_dict(spec)
        self.extractor = Extractor(self.spec, device=device, precision=precision, compile=compile)
        self.embedder = Embedder(self.spec, {})
        if projections is not None:
            self.embedder = self.embedder.with_projections(projections)
        self.fitting = projections is None

    def __call__(self, batch: dict) -> dict:
        import torch

        from .indexer import shard_arrays

        ok = np.array([r == "" for r in batch["reason"]], bool)
        n = len(ok)
        out = {k: batch[k] for k in ("rel", "id", "size", "mtime_ns", "reason", "checksum", "width", "height")}
        if ok.any():
            x = torch.from_numpy(np.ascontiguousarray(batch["image"][ok])).permute(0, 3, 1, 2).float().div_(255.0)
            arrays = shard_arrays(self.extractor, self.embedder, x, self.fitting)
        else:
            arrays = None
        for name, k in zip(("l_style", "style", "descriptor", "moments", "off_axes"), range(5)):
            dim = arrays[k].shape[1] if arrays is not None else 1
            full = np.zeros((n, dim), np.float16 if name == "moments" else np.float32)
            if arrays is not None:
                full[ok] = arrays[k]
            out[name] = full
        return out


class RayExtraction:
    """Runs a list of planned files through the Ray pipeline; the caller writes each returned batch as a shard.

    Parameters
    ----------
    run : indexer._Run
        The planned run (spec, root, precision).
    address : str, optional
        The cluster to join (default: a running connection, else a local instance).
    device : str
        The actors' device: ``auto`` gives each actor a GPU when the cluster has GPUs.
    batch_size : int, optional
        Images per batch (default 64 on GPU actors, 8 on CPU actors).
    max_pixels, include_outputs
        As for the local engine.
    actors : int, optional
        Size of the actor pool (default: the cluster's GPUs, or one actor per 4 CPUs, at least 1; each CPU actor
        runs the network on all but one of its CPUs, which decodes).
    """

    def __init__(self, run, *, address: str | None, device: str, batch_size: int | None, max_pixels: int | None,
                 include_outputs: bool, actors: int | None = None, compile: bool = False):
        self.ray = connect(address)
        self.compile = compile
        self.run_, self.device = run, device
        self.max_pixels, self.include_outputs = max_pixels, include_outputs
        resources = self.ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0)) if device in ("auto", "cuda") or device.startswith("cuda") else 0
        cpus = int(resources.get("CPU", os.cpu_count() or 1))
        self.actors = actors or (self.gpus if self.gpus else max(1, cpus // 4))
        self.batch_size = batch_size or (64 if self.gpus else 8)
        # an actor's share of the CPUs (its torch threads); the rest decode
        self.threads = max(1, cpus // self.actors - (1 if cpus > self.actors else 0)) if not self.gpus else 2

    def batches(self, items: list, projections: dict | None):
        """Yield, batch by batch, ``dict`` of numpy columns: the files' record and what the shard stores."""
        if not items:
            return
        ray = self.ray
        rows = [{"rel": it.rel, "id": it.id, "size": it.size, "mtime_ns": it.mtime_ns} for it in items]
        ds = ray.data.from_items(rows)
        ds = ds.map_batches(decode_batch, batch_size=self.batch_size, batch_format="numpy",
                            fn_kwargs={"root": str(self.run_.root.resolve()) if isinstance(self.run_.root, Path)
                                       else self.run_.root, "size": self.run_.spec.size,
                                       "max_pixels": self.max_pixels, "include_outputs": self.include_outputs})
        device = "cuda" if self.gpus else "cpu"
        ds = ds.map_batches(EncodeActor, batch_size=self.batch_size, batch_format="numpy",
                            fn_constructor_kwargs={"spec": self.run_.spec.to_dict(), "device": device,
                                                   "precision": self.run_.precision, "projections": projections,
                                                   "threads": self.threads, "compile": self.compile},
                            compute=ray.data.ActorPoolStrategy(size=self.actors), num_gpus=1 if self.gpus else 0,
                            num_cpus=None if self.gpus else self.threads)
        yield from ds.iter_batches(batch_size=None, batch_format="numpy")
