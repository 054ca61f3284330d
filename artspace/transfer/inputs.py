"""The files of a run: the content and style images it reads (files, PIL images, tensors or catalogued works) and
the files it will write, all checked before any work.

Every output a run may write — the image, its JSON sidecar and the ``save_every`` intermediates — is checked with
:func:`artspace.outputs.check_output` up front: none may be one of the run's inputs or lie in the catalog.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image

from ..errors import InvalidOption, UnreadableImage, WorkNotFound
from ..images import aspect_ratio, check_sides, image_name, open_image, to_pil
from ..outputs import check_output, made_by_artspace, replaceable, sidecar_made_here
from ..spec import network_minimum
from .options import INITS, MIN_SIDE, TransferOptions
from .pyramid import dims
from .tiles import tiles_for

__all__ = ["sidecar_path", "step_path", "check_output_path", "resolve_image", "Inputs", "load_inputs",
           "planned_outputs", "check_targets"]


def sidecar_path(output: str | os.PathLike) -> Path:
    """The JSON sidecar written next to an output image: ``out.png`` → ``out.png.json``.

    >>> sidecar_path("out/pastiche.png").name
    'pastiche.png.json'
    """
    output = Path(output)
    return output.with_name(output.name + ".json")


def step_path(output: Path, name: str) -> Path:
    """Where an intermediate image or one layer of a series goes: ``out.png`` → ``out-s1-00050.png``."""
    return output.with_name(f"{output.stem}-{name}{output.suffix}")


def check_output_path(path: str | os.PathLike) -> Path:
    """*path* as a Path, if an image can be written there (:func:`artspace.images.image_name`: a suffix that
    save_image writes, not a folder); :func:`check_targets` checks what it would replace."""
    return image_name(path)


def check_run_output(output: str | os.PathLike | None, save_every: int) -> Path | None:
    """The output of a run, checked; ``save_every`` needs one."""
    if save_every and output is None:
        raise InvalidOption("save_every writes next to the output: give output= (or -o) too")
    return None if output is None else check_output_path(output)


def resolve_image(spec, cat, role: str) -> tuple[Image.Image | Path, str]:
    """A PIL image or a path to open, and a description for the sidecar.

    With an open catalog *cat*, *spec* may name a catalogued work by id, relative path or file name (a file of that
    name is used when no work has it).
    """
    if isinstance(spec, Image.Image):
        return spec.convert("RGB"), f"<{role}: PIL image {spec.width}x{spec.height}>"
    if isinstance(spec, torch.Tensor):
        return to_pil(spec), f"<{role}: tensor {tuple(spec.shape)}>"
    if cat is not None:
        catalog = cat.dir
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


@dataclass
class Inputs:
    """The images of one run, opened, with where they came from."""

    content: Image.Image
    styles: list[Image.Image]
    init: Image.Image | None
    content_desc: str
    style_descs: list[str]
    #: files the run reads (content, styles, init image, state dict): none may be overwritten
    sources: list = field(default_factory=list)


def load_inputs(content, styles: Sequence, catalog, options: TransferOptions) -> Inputs:
    """Resolve and open the content, style and init images of a run with (resolved) *options*."""
    cat = None
    if catalog is not None:
        from ..catalog import Catalog

        cat = Catalog.open(catalog)  # once for every image the run reads
    c_src, c_desc = resolve_image(content, cat, "content")
    s_srcs = [resolve_image(s, cat, "style") for s in styles]
    style_side = max(MIN_SIDE, round(options.size * options.style_scale))
    init_path = None if str(options.init) in INITS else Path(options.init)
    from ..backbone import WEIGHT_SOURCES

    state_dict = None if str(options.weights) in WEIGHT_SOURCES else options.weights
    inputs = Inputs(
        content=_open(c_src, options.size), styles=[_open(src, style_side) for src, _ in s_srcs],
        init=_open(init_path, options.size) if init_path is not None else None,
        content_desc=c_desc, style_descs=[d for _, d in s_srcs],
        sources=[c_src, *(src for src, _ in s_srcs), init_path, state_dict])
    # a panorama at a small size would reach VGG-19 thinner than its four poolings allow
    coarsest = options.level_sides()[0]  # the pyramid's first level is the smallest
    # each pooling up to the deepest layer halves the map: relu5_1 needs 16 px, relu3_1 4 (unknown names are
    # refused elsewhere)
    minimum = network_minimum((*options.content_layers, *options.style_layers))
    check_sides(dims(inputs.content.size, coarsest), c_desc, coarsest, minimum, coarsest / options.size,
                aspect=aspect_ratio(c_src, inputs.content))
    for (src, _), im, desc in zip(s_srcs, inputs.styles, inputs.style_descs):
        side = max(MIN_SIDE, round(coarsest * options.style_scale))
        check_sides(dims(im.size, side), desc, side, minimum, coarsest * options.style_scale / options.size,
                    aspect=aspect_ratio(src, im))
    return inputs


def planned_outputs(output: Path, options: TransferOptions, content_size: tuple[int, int]) -> list[Path]:
    """Every file a run with (resolved) *options* may write: the image, its sidecar and the ``save_every``
    intermediates (one per tile on tiled levels, else one per ``save_every`` evaluations)."""
    targets = [output, sidecar_path(output)]
    every = options.save_every
    for k, (side, iters) in enumerate(zip(options.level_sides(), options.iterations) if every else []):
        n_tiles = len(tiles_for(dims(content_size, side), options.tile, options.tile_overlap))
        names = [f"s{k + 1}-tile{t + 1:03d}" for t in range(n_tiles)] if n_tiles > 1 else \
            [f"s{k + 1}-{n:05d}" for n in range(every, iters + 1, every)]
        targets += [step_path(output, name) for name in names]
    return targets


def check_targets(targets: Sequence[Path], inputs: Sequence, catalog) -> None:
    """Refuse before any work when a file about to be written is one of the run's inputs, lies in the catalog, or
    exists without being artspace's own earlier output (an image marked in its header, a JSON sidecar)."""
    protected = []
    if catalog is not None:
        from ..catalog import find_catalog

        protected.append(find_catalog(catalog))
    for target in targets:
        check_output(target, inputs=inputs, protected_dirs=protected)
        json_sidecar = Path(target).suffix.lower() == ".json"
        replaceable(target, sidecar_made_here if json_sidecar else made_by_artspace,
                    unlike="is not an artspace sidecar" if json_sidecar else "was not made by artspace")
