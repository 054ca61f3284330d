"""Pastiches in one pass: a trained style network on images of any size, and AdaIN between any two images or works.

:func:`stylise` runs an image transformation network (:func:`artspace.feedforward.train_style`) over images or
whole folders, in batches of images of equal size, in overlapping tiles for images larger than ``tile`` pixels
(blended with raised-cosine weights, as ``transfer --tile`` does), optionally keeping each photograph's colours
(luminance-only transfer, Gatys et al. 2017).

:func:`adain_transfer` encodes the content with VGG-19 to relu4_1, gives its channels the means and standard
deviations of the style's (:func:`artspace.feedforward.networks.adain`) — blended over several styles, mixed with
the content's own by ``alpha`` — and decodes the result (Huang & Belongie 2017). A style may be an image or the
statistics the catalog stores for every work (:meth:`artspace.catalog.Catalog.moments`), so a catalogued work needs
no image read. Without ``decoder`` the decoder shipped with artspace is used (docs/transfer.md says how it was
trained).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from ..atomic import atomic_write
from ..backbone import VGG19, resolve_device
from ..errors import InvalidOption, UnreadableImage
from ..images import (check_sides, command_line, file_sha256, image_format, image_output, input_record,
                      open_image, resize_long_side, save_image, to_pil, to_tensor, walk_images)
from ..losses import channel_stats
from ..outputs import check_output, replaceable, sidecar_made_here
from ..precision import autocast, resolve_precision
from ..spec import MOMENTS_LAYER
from ..transfer.colour import preserve_colors as keep_colours
from ..transfer.tiles import feather, tile_grid
from .models import Model, load_model
from .networks import ADAIN_LAYER, adain

__all__ = ["StyliseResult", "stylise", "adain_transfer", "default_decoder", "DEFAULT_DECODER", "DEFAULT_TILE"]

#: The decoder shipped with artspace (float16 weights; docs/transfer.md gives the command that trained it).
DEFAULT_DECODER = "adain_decoder.pt"
#: Images whose long side exceeds this many pixels are stylised in overlapping tiles (per device type).
DEFAULT_TILE = {"cpu": 2048, "cuda": 4096, "mps": 2048}
#: Pixels shared by neighbouring tiles, blended with raised-cosine weights.
TILE_OVERLAP = 64
#: Long side of an AdaIN pastiche when none is asked for (written out in `artspace transfer --help`: change both).
ADAIN_SIZE = 512

assert ADAIN_LAYER == MOMENTS_LAYER  # the catalog's stored moments are AdaIN's style


@dataclass
class StyliseResult:
    """One pastiche: the image, what it was made from, where it was written, and how long the network took."""

    image: Image.Image
    source: str
    output: Path | None = None
    elapsed_s: float = 0.0
    settings: dict = field(default_factory=dict)


def _model(model, kind: str, device: torch.device) -> Model:
    if isinstance(model, Model):
        if model.kind != kind:
            raise InvalidOption(f"this needs a {kind!r} model, not a {model.kind!r} one")
        return model
    return _load_cached(str(Path(model).resolve()), kind, str(device), _mtime(model))


def _mtime(path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, kind: str, device: str, mtime: int) -> Model:
    m = load_model(path, kind=kind, device=device)
    m.net.to(memory_format=torch.channels_last)
    return m


def default_decoder() -> Path:
    """The path of the decoder shipped with artspace."""
    return Path(str(resources.files("artspace.feedforward") / "data" / DEFAULT_DECODER))


@functools.lru_cache(maxsize=2)
def _encoder(weights: str, device: str) -> VGG19:
    return VGG19(weights, last_layer=ADAIN_LAYER).to(device, memory_format=torch.channels_last)


def _sources(images, skip: Path | None = None) -> list[tuple[object, str, Path | None]]:
    """(image or path, description, path relative to its folder) for each image, folders expanded; the images of a
    folder that lie in *skip* (the output folder, when it is inside an input folder: the pastiches of an earlier
    run) are left out."""
    skip = Path(os.path.abspath(skip)) if skip is not None else None
    if isinstance(images, (str, os.PathLike, Image.Image, torch.Tensor)):
        images = [images]
    out = []
    for item in images:
        if isinstance(item, Image.Image):
            out.append((item.convert("RGB"), f"<PIL image {item.width}x{item.height}>", None))
        elif isinstance(item, torch.Tensor):
            out.append((to_pil(item), f"<tensor {tuple(item.shape)}>", None))
        else:
            path = Path(item)
            if path.is_dir():
                every = list(walk_images(path))
                found = [p for p in every if skip is None or skip not in Path(os.path.abspath(p)).parents]
                if every and not found:
                    raise InvalidOption(f"every image of {path} lies in the output folder {skip}, whose images are "
                                        f"pastiches and are never stylised again; write to another folder (-o)")
                if not found:
                    raise InvalidOption(f"{path} holds no images (.jpg, .png, ...)")
                out += [(p, str(p), p.relative_to(path)) for p in found]
            elif path.exists():
                out.append((path, str(path), Path(path.name)))
            else:
                raise UnreadableImage(path, "no such image file or folder")
    if not out:
        raise InvalidOption("give at least one image or folder to stylise")
    return out


def _image_output(path: Path) -> Path:
    """*path* if a pastiche may be written there: a known image extension, and not a file someone else made
    (artspace replaces its own outputs, never a user's file)."""
    image_output(path)
    replaceable(sidecar(path), sidecar_made_here, unlike="is not an artspace sidecar")
    return path


def sidecar(path: Path) -> Path:
    """The JSON written beside a pastiche: ``out.png`` → ``out.png.json``."""
    return path.with_name(path.name + ".json")


def _write_sidecar(path: Path, settings: dict) -> None:
    from .. import __version__

    record = {"artspace_version": __version__, "torch_version": torch.__version__, "command": command_line(),
              "image_sha256": file_sha256(path), **settings}  # after the image: its checksum says which file
    atomic_write(sidecar(path), lambda p: p.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8"))


def _targets(sources, output) -> list[Path | None]:
    """Where each pastiche goes: *output* itself for one image given as a file; else *output*/relative path."""
    if output is None:
        return [None] * len(sources)
    output = Path(output)
    if len(sources) == 1 and not output.is_dir() and output.suffix != "":
        return [_image_output(output)]
    if output.exists() and not output.is_dir():
        raise InvalidOption(f"output {output} is a file but {len(sources)} images are stylised; give a folder")
    targets = []
    for k, (_, _, rel) in enumerate(sources):
        rel = rel if rel is not None else Path(f"image{k:04d}.png")
        try:
            image_format(rel)
        except ValueError:
            rel = rel.with_suffix(".png")
        targets.append(_image_output(output / rel))
    seen: dict[Path, str] = {}
    for target, (_, desc, _) in zip(targets, sources):
        if target in seen:
            raise InvalidOption(f"{desc} and {seen[target]} would both be written to {target}; stylise them into "
                                "separate folders")
        seen[target] = desc
    return targets


def _run_net(net: torch.nn.Module, x: torch.Tensor, device: torch.device, precision: str) -> torch.Tensor:
    with torch.inference_mode(), autocast(device, precision):
        return net(x.to(device).contiguous(memory_format=torch.channels_last)).float().clamp_(0, 1).cpu()


def _tiled(net, x: torch.Tensor, tile: int, device, precision) -> torch.Tensor:
    """*net* over overlapping tiles of the (1, 3, H, W) image *x*, blended (:func:`artspace.transfer.tiles.feather`)."""
    h, w = x.shape[-2:]
    canvas = torch.zeros_like(x)
    for t in tile_grid(h, w, tile, min(TILE_OVERLAP, tile // 4)):
        y0, x0, th, tw = t[:4]
        feather(canvas, _run_net(net, x[:, :, y0:y0 + th, x0:x0 + tw], device, precision), t)
    return canvas


def stylise(model, images, output: str | os.PathLike | None = None, *, size: int | None = None,
            batch_size: int = 4, tile: int | None = None, preserve_colors: bool = False, device: str = "auto",
            precision: str = "auto", progress: bool = False, log: Callable[[str], None] | None = None,
            on_skip: Callable[[str, str], None] | None = None) -> list[StyliseResult]:
    """Paint *images* with a trained style network, one pass each.

    Parameters
    ----------
    model : path or Model
        A style network from :func:`artspace.feedforward.train_style`.
    images : path, folder, PIL image, or a list of them
        Folders are searched recursively.
    output : path, optional
        For one image, an image file; otherwise a folder, in which each pastiche keeps its path relative to the
        folder it came from. Each pastiche gets a JSON sidecar (``out.png.json``: the source, the model file and its
        training header, the settings, the time). Nothing is written without it. An input, or a file artspace did
        not make, is never overwritten.
    size : int, optional
        Long side of the pastiches; default each image's own size.
    batch_size : int
        Images of equal size run through the network together.
    tile : int, optional
        Images with a longer side are stylised in overlapping tiles of this side (default
        :data:`DEFAULT_TILE` for the device).
    preserve_colors : bool
        Keep each image's colours, taking only luminance from the network (Gatys et al. 2017).
    log, on_skip : callable, optional
        ``log(message)`` for what is said along the way (a file that cannot be read, among several);
        ``on_skip(source, reason)`` for each such file, which gets no pastiche.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidOption(f"batch_size must be a whole number of at least 1, not {batch_size!r}")
    if size is not None and (not isinstance(size, int) or size < 16):
        raise InvalidOption(f"size must be a whole number of pixels, at least 16, not {size!r}")
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    tile = tile or DEFAULT_TILE.get(dev.type, 2048)
    if tile < 64:
        raise InvalidOption(f"tile must be at least 64 pixels, not {tile}")
    m = _model(model, "style", dev)
    sources = _sources(images, skip=Path(output) if output is not None else None)
    targets = _targets(sources, output)
    inputs = [s for s, _, _ in sources if isinstance(s, Path)] + ([model] if not isinstance(model, Model) else [])
    for t in targets:
        if t is not None:
            check_output(t, inputs=inputs)
    from tqdm.auto import tqdm

    # beside a progress bar, a message goes on a line of its own (tqdm.write), not at the end of the bar's
    say = (lambda msg: tqdm.write(msg, file=sys.stderr)) if progress and log is not None else (log or (lambda m: None))
    results: list[StyliseResult | None] = [None] * len(sources)
    pending: dict[tuple[int, int], list[tuple[int, torch.Tensor]]] = {}
    settings = {"method": "feed-forward", "model": str(m.path) if m.path else None,
                "model_file": input_record(m.path) if m.path else None, "precision": prec,
                "size": size, "tile": tile, "preserve_colors": preserve_colors, "model_header": m.header}

    def flush(key):
        group = pending.pop(key)
        t0 = time.perf_counter()
        y = _run_net(m.net, torch.stack([x for _, x in group]), dev, prec)
        each = (time.perf_counter() - t0) / len(group)
        for (k, x), out in zip(group, y):
            finish(k, x, out[None], each)

    def finish(k, x, out, elapsed):
        if preserve_colors:
            out = keep_colours(out, x[None] if x.dim() == 3 else x)
        image = to_pil(out)
        # "tiled": whether this image ran in tiles (instance normalisation then sees each tile on its own)
        record = {**settings, "source": sources[k][1], "source_file": input_record(sources[k][0]),
                  "tiled": bool(max(x.shape[-2:]) > tile),
                  "network_s": round(elapsed, 4)}
        if targets[k] is not None:
            save_image(image, targets[k])
            _write_sidecar(targets[k], record)
        results[k] = StyliseResult(image, sources[k][1], targets[k], elapsed, record)

    for k, (src, desc, _) in enumerate(tqdm(sources, disable=not progress, unit="img", desc="stylise")):
        try:
            im = src if isinstance(src, Image.Image) else open_image(src, max_side=size)
            if size is not None:
                im = resize_long_side(im, size)
            check_sides(im.size[::-1], desc, size)
        except UnreadableImage as e:
            if len(sources) == 1:
                raise
            say(f"skipped: {e}")
            if on_skip is not None:
                on_skip(desc, str(e))
            continue
        x = to_tensor(im)
        if max(x.shape[-2:]) > tile:
            t0 = time.perf_counter()
            finish(k, x, _tiled(m.net, x[None], tile, dev, prec), time.perf_counter() - t0)
            continue
        key = tuple(x.shape[-2:])
        pending.setdefault(key, []).append((k, x))
        if len(pending[key]) >= batch_size:
            flush(key)
    for key in list(pending):
        flush(key)
    return [r for r in results if r is not None]


def blend_weights(style_blend, n: int) -> list[float]:
    """One non-negative weight per style, not all zero, scaled to sum 1: *style_blend* as a list or ``"0.7,0.3"``;
    default equal."""
    from ..transfer.options import normalised, parse_numbers

    if style_blend is None:
        weights = [1.0] * n
    else:
        try:
            weights = parse_numbers(style_blend)
        except (TypeError, ValueError):
            raise InvalidOption(f"style_blend {style_blend!r}: give non-negative numbers such as 0.7,0.3") from None
    if n == 0 or len(weights) != n or not max(weights) > 0:
        raise InvalidOption(f"style_blend {weights}: give one non-negative weight per style ({n}), not all zero")
    return normalised(weights)


def _style_moments(style, size: int, encoder, device, precision) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(mean, std) of relu4_1 for one style, and what it was: given as a (mean, std) pair (or a (mean, std,
    description) triple, as :meth:`artspace.Catalog.transfer` names a catalogued work) or a 1024-vector, or an
    image to encode at *size*."""
    if isinstance(style, tuple) and len(style) in (2, 3):
        mean, std = (torch.as_tensor(np.asarray(v, np.float32)) for v in style[:2])
        return mean.reshape(1, -1), std.reshape(1, -1), style[2] if len(style) == 3 else "<stored moments>"
    if isinstance(style, np.ndarray):
        v = torch.as_tensor(style.astype(np.float32)).reshape(1, -1)
        return v[:, :v.shape[1] // 2], v[:, v.shape[1] // 2:], "<stored moments>"
    if isinstance(style, Image.Image):
        im, desc = style.convert("RGB"), f"<PIL image {style.width}x{style.height}>"
    else:
        im, desc = open_image(style, max_side=size), str(style)
    im = resize_long_side(im, size)
    check_sides(im.size[::-1], desc, size)
    with torch.inference_mode(), autocast(device, precision):
        f = encoder(to_tensor(im)[None].to(device).contiguous(memory_format=torch.channels_last), [ADAIN_LAYER])
    mean, std = channel_stats(f[ADAIN_LAYER])
    return mean.cpu(), std.cpu(), desc


def adain_transfer(content, styles, output: str | os.PathLike | None = None, *, decoder=None, alpha: float = 1.0,
                   style_blend: Sequence[float] | None = None, size: int = ADAIN_SIZE, style_size: int | None = None,
                   preserve_colors: bool = False, weights: str = "original", device: str = "auto",
                   precision: str = "auto", protected_dirs: Iterable = ()) -> StyliseResult:
    """Paint *content* in the style of *styles* in one pass with AdaIN (Huang & Belongie 2017).

    Parameters
    ----------
    content : path or PIL image
    styles : image, path, (mean, std) pair or 1024-vector, or a list of them
        Style sources; a pair (or the catalog's stored row) needs no image.
    output : path, optional
        Image file to write, with a JSON sidecar (``out.png.json``) recording how it was made.
    decoder : path or Model, optional
        Default: the decoder shipped with artspace (:func:`default_decoder`).
    alpha : float in [0, 1]
        How much style: 1 gives the style's statistics, 0 decodes the content's own features.
    style_blend : list of float, optional
        One weight per style (normalised to sum 1): the target statistics are their weighted mean, which for
        AdaIN equals interpolating the re-normalised feature maps (Huang & Belongie 2017, Sec. 7).
    size, style_size : int
        Long sides of the content (and of the pastiche) and of style images (default *size*).
    """
    t_start = time.perf_counter()
    if not 0.0 <= float(alpha) <= 1.0:
        raise InvalidOption(f"alpha must lie between 0 and 1, not {alpha}")
    if not isinstance(size, int) or size < 16:
        raise InvalidOption(f"size must be a whole number of pixels, at least 16, not {size!r}")
    if isinstance(styles, (str, os.PathLike, Image.Image, np.ndarray)) or (
            isinstance(styles, tuple) and len(styles) == 2 and not isinstance(styles[0], (str, os.PathLike))):
        styles = [styles]
    styles = list(styles)
    blend = blend_weights(style_blend, len(styles))
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    dec = _model(decoder if decoder is not None else default_decoder(), "adain-decoder", dev)
    enc = _encoder(str(weights), str(dev))
    if output is not None:
        output = _image_output(Path(output))
        paths = [p for p in [content, *styles] if isinstance(p, (str, os.PathLike))]
        for target in (output, output.with_name(output.name + ".json")):
            check_output(target, inputs=paths, protected_dirs=protected_dirs)
    im = content.convert("RGB") if isinstance(content, Image.Image) else open_image(content, max_side=size)
    im = resize_long_side(im, size)
    check_sides(im.size[::-1], content if isinstance(content, (str, os.PathLike)) else "the content image", size)
    x = to_tensor(im)[None]
    moments = [_style_moments(s, style_size or size, enc, dev, prec) for s in styles]
    mean = sum(b * m[0] for b, m in zip(blend, moments)).to(dev)  # the weights sum to 1
    std = sum(b * m[1] for b, m in zip(blend, moments)).to(dev)
    t0 = time.perf_counter()
    with torch.inference_mode(), autocast(dev, prec):
        fc = enc(x.to(dev).contiguous(memory_format=torch.channels_last), [ADAIN_LAYER])[ADAIN_LAYER]
        t = adain(fc, mean, std)
        t = alpha * t + (1 - alpha) * fc.float()
        y = dec.net(t.to(fc.dtype).contiguous(memory_format=torch.channels_last), size=x.shape[-2:])
    y = y.float().clamp(0, 1).cpu()
    if preserve_colors:
        y = keep_colours(y, x)
    image = to_pil(y)
    elapsed = time.perf_counter() - t0
    from_images = any(not isinstance(s, (tuple, np.ndarray)) for s in styles)
    settings = {"method": "adain", "alpha": float(alpha), "style_blend": blend, "size": size,
                # the size the styles read from images were encoded at; none for moments stored by a catalog,
                # whose description in "styles" gives the size they were measured at
                "style_size": (style_size or size) if from_images else None, "preserve_colors": preserve_colors,
                "precision": prec,
                "device": str(dev), "vgg_weights": str(weights), "decoder": str(dec.path) if dec.path else None,
                "decoder_training": dec.header.get("training", {}),
                "content": str(content) if not isinstance(content, Image.Image) else "<PIL image>",
                "styles": [m[2] for m in moments],
                "input_files": [r for r in map(input_record, [content, *styles, dec.path]) if r is not None],
                "network_s": round(elapsed, 4),
                "total_s": round(time.perf_counter() - t_start, 4)}
    if output is not None:
        save_image(image, output)
        _write_sidecar(output, settings)
    return StyliseResult(image, settings["content"], output, elapsed, settings)
