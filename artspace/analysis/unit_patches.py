"""What single VGG-19 filters respond to in a collection (``artspace units``): each unit shown by the image patches
that excite it most, after Erhan et al. 2009 and Zeiler & Fergus 2014 (top-activating patches).

One pass of the catalog's images through the network up to a layer records, for every work and every filter (unit)
of that layer, the strongest response, where it occurred, and the mean response over the image. The record is kept
in the catalog's cache folder (``cache/units-<layer>.npz``, kept across generations) so that every later question
about that layer is instant:

* :func:`units` — the works whose strongest response of one unit is highest, each shown by the patch of the image
  that unit sees (its receptive field) around that response: a contact sheet;
* :func:`characteristic_units` — the units whose mean response most separates one group of works (an artist, a
  movement) from the rest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_write
from ..spec import CHANNELS, LAYERS, check_layers
from ..errors import ArtspaceError, InvalidOption
from .files import check_out, save_picture, write_csv
from .source import metadata_columns

__all__ = ["UnitsResult", "receptive_field", "unit_responses", "units", "characteristic_units"]


def receptive_field(layer: str) -> tuple[int, int, float]:
    """``(size, stride, offset)`` of a *layer*'s units in input pixels: unit ``p`` sees the input square of side
    *size* centred at ``p * stride + offset`` (VGG-19: 3×3 convolutions with padding 1, 2×2 max-pooling).

    Examples
    --------
    >>> receptive_field("relu1_1"), receptive_field("relu3_1")
    ((3, 1, 0.0), (24, 4, 1.5))
    """
    name = check_layers([layer])[0]
    size, stride, offset = 1, 1, 0.0
    for n in LAYERS[: LAYERS.index(name) + 1]:
        if n.startswith("conv"):
            size += 2 * stride
        elif n.startswith("pool"):
            size += stride
            offset += 0.5 * stride
            stride *= 2
    return size, stride, offset


def _cache_path(cat, layer: str) -> Path:
    return cat.cache_dir / f"units-{layer}.npz"


def _cached(cat, layer: str, spec: str) -> tuple[dict | None, int | None]:
    """The responses recorded for *layer* under this catalog's feature spec, and the map side; None if none."""
    path = _cache_path(cat, layer)
    if not path.is_file():
        return None, None
    with np.load(path) as z:
        if str(z["spec"]) != spec:
            return None, None
        return {k: z[k] for k in ("ids", "max", "mean", "argmax")}, int(z["side"])


def unit_responses(cat, *, layer: str, batch_size: int = 8, cache: bool = True, progress: bool = False) -> dict:
    """Every work's response to every unit of *layer*: ``{"ids", "max", "mean", "argmax", "side"}``.

    ``max`` and ``mean`` are (n, C) arrays of the strongest and the mean response of each unit over each image
    (at the catalog's input size); ``argmax`` the flat position of the strongest on the ``side × side`` map.
    Recorded in the catalog's cache folder (:attr:`Catalog.cache_dir <artspace.catalog.Catalog.cache_dir>`,
    ``units-<layer>.npz``) and computed only for works not yet recorded, with a progress bar when *progress*
    (one forward pass per image: minutes for thousands of works on a CPU).
    """
    layer = check_layers([layer])[0]
    ids = cat.works["id"].to_numpy(np.int64)
    if not len(ids):
        raise ArtspaceError(f"the catalog {cat.dir} has no works; index some first (artspace index)")
    spec = cat.spec.describe()
    old, side = _cached(cat, layer, spec) if cache else (None, None)
    known = {} if old is None else {int(i): j for j, i in enumerate(old["ids"])}
    is_new = np.array([int(i) not in known for i in ids])
    todo = ids[is_new].tolist()
    new, new_side = _compute(cat, layer, todo, batch_size, progress) if todo else ({}, None)
    side = new_side or side
    out = {"ids": ids, "side": side}
    for k in ("max", "mean", "argmax"):
        ref = new[k] if todo else old[k]
        out[k] = np.empty((len(ids), ref.shape[1]), ref.dtype)
        out[k][is_new] = new[k] if todo else ref[:0]
        if (~is_new).any():
            out[k][~is_new] = old[k][[known[int(i)] for i in ids[~is_new]]]
    if cache and todo:
        def write(tmp):
            with open(tmp, "wb") as fh:
                np.savez(fh, spec=np.array(spec), side=np.array(side),
                         **{k: out[k] for k in ("ids", "max", "mean", "argmax")})

        atomic_write(_cache_path(cat, layer), write)
    return out


def _compute(cat, layer: str, todo: list, batch_size: int, progress: bool) -> tuple[dict, int]:
    """The responses of the works *todo* (ids), one batch of images at a time; the side of the layer's map."""
    import torch

    ex = cat.extractor
    if LAYERS.index(layer) > LAYERS.index(ex.net.layer_names[-1]):
        raise ArtspaceError(f"layer {layer} lies beyond the catalog network's last layer {ex.net.layer_names[-1]}; "
                            f"choose a layer up to {ex.net.layer_names[-1]}")
    C = CHANNELS[layer]
    new = {"max": np.zeros((len(todo), C), np.float32), "mean": np.zeros((len(todo), C), np.float32),
           "argmax": np.zeros((len(todo), C), np.int32)}
    paths = cat.works.set_index("id")["path"]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), unit="img", desc=f"units of {layer}")
    side = None
    try:
        with torch.inference_mode():
            for start in range(0, len(todo), batch_size):
                chunk = todo[start:start + batch_size]
                x = torch.stack([ex.load(cat._work_file(paths[i])) for i in chunk]).to(ex.device)
                flat = ex.net(x, [layer])[layer].float()
                side = flat.shape[-1]
                flat = flat.flatten(2)
                m, a = flat.max(2)
                rows = slice(start, start + len(chunk))
                new["max"][rows], new["argmax"][rows] = m.cpu().numpy(), a.cpu().numpy()
                new["mean"][rows] = flat.mean(2).cpu().numpy()
                if bar is not None:
                    bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return new, side


@dataclass
class UnitsResult:
    """The top patches of one unit: ``patches`` (rank, id, path, activation, the box in the square network
    input — ``x``, ``y``, ``x1``, ``y1`` — and in the work's own pixels — ``left``, ``top``, ``right``,
    ``bottom`` — metadata),
    ``sheet`` (a PIL image), the layer's receptive field and the files written."""

    layer: str
    unit: int
    patches: pd.DataFrame
    sheet: object = None
    receptive_field: tuple = ()
    files: list = field(default_factory=list)
    seconds: float = 0.0


def _check_unit(layer: str, unit: int) -> int:
    C = CHANNELS[layer]
    if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)) or not 0 <= int(unit) < C:
        raise InvalidOption(f"{layer} has units 0..{C - 1}; {unit} is not one of them")
    return int(unit)


def _check_top(top: int, what: str) -> int:
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or int(top) < 1:
        raise InvalidOption(f"top must be at least 1 ({what}), not {top}")
    return int(top)


def _check_column(works: pd.DataFrame, column: str | None) -> None:
    if column is not None and column not in works.columns:
        raise ArtspaceError(f"no column {column!r} in the works table; columns: "
                            f"{', '.join(metadata_columns(works))}")


def units(cat, *, layer: str = "relu3_1", unit: int = 0, top: int = 9, column: str | None = None,
          batch_size: int = 8, out=None, thumb: int = 128, progress: bool = False) -> UnitsResult:
    """The *top* catalog patches that excite one unit of *layer* most, as a contact sheet.

    The method of Erhan et al. (2009) and Zeiler & Fergus (2014), applied to a collection: for each work the
    unit's strongest response over the image is found; the works with the highest are shown by the square of the
    image (at the catalog's input size) that the unit sees around that response — its receptive field, 3 px at
    relu1_1, 24 px at relu3_1, 68 px at relu4_1, 156 px at relu5_1 (:func:`receptive_field`). One patch per work.

    Parameters
    ----------
    cat : Catalog
    layer : str
        A VGG-19 layer name (``relu3_1``, ``conv2_2``, ...).
    unit : int
        Filter index within the layer.
    top : int
        Patches shown (nine by default, a 3 × 3 sheet as in Zeiler & Fergus 2014, Fig. 2).
    column : str, optional
        A metadata column to print under each patch.
    out : path, optional
        Folder for ``units-<layer>-<unit>.png`` and ``.csv``.
    progress : bool
        Show a progress bar while the responses of works not yet recorded are computed.

    Returns
    -------
    UnitsResult
    """
    t0 = time.perf_counter()
    layer = check_layers([layer])[0]
    unit = _check_unit(layer, unit)
    top = _check_top(top, "patches shown")
    out = check_out(cat, out) if out is not None else None
    _check_column(cat.works, column)
    r = unit_responses(cat, layer=layer, batch_size=batch_size, progress=progress)
    act = r["max"][:, unit]
    order = np.argsort(-act, kind="stable")[:top]
    works = cat.works.set_index("id", drop=False)
    rows, items = [], []
    for rank, j in enumerate(order, 1):
        w = works.loc[int(r["ids"][j])]
        box = _patch_box(layer, int(r["argmax"][j, unit]), int(r["side"]), cat.spec.size)
        row = {"rank": rank, "id": int(w["id"]), "path": w["path"], "activation": float(act[j]),
               "x": box[0], "y": box[1], "x1": box[2], "y1": box[3], **_image_box(box, w, cat.spec.size)}
        if column is not None:
            row[column] = w[column]
        rows.append(row)
        items.append((_patch(cat, w["path"], box, thumb), f"{str(w['path']).rsplit('/', 1)[-1]}\n"
                      f"{row['activation']:.3g}" + (f" · {w[column]}" if column is not None else "")))
    from ..sheets import contact_sheet

    sheet = contact_sheet(items, columns=3, thumb=thumb,
                          title=f"{layer} unit {unit}: the {len(items)} patches that excite it most")
    result = UnitsResult(layer=layer, unit=unit, patches=pd.DataFrame(rows), sheet=sheet,
                         receptive_field=receptive_field(layer))
    if out is not None:
        result.files.append(save_picture(sheet, out / f"units-{layer}-{unit}.png"))
        result.files.append(write_csv(result.patches, out / f"units-{layer}-{unit}.csv"))
    result.seconds = time.perf_counter() - t0
    return result


def _patch_box(layer: str, flat: int, side: int, size: int) -> list[int]:
    """The input square ``[x0, y0, x1, y1]`` (at least 8 px, clipped to the image) a unit of *layer* at the flat
    map position *flat* sees."""
    rf, stride, offset = receptive_field(layer)
    py, px = divmod(flat, side)
    cy, cx = py * stride + offset, px * stride + offset
    half = max(rf, 8) / 2
    return [int(np.clip(np.floor(cx - half + 0.5), 0, size)), int(np.clip(np.floor(cy - half + 0.5), 0, size)),
            int(np.clip(np.ceil(cx + half + 0.5), 0, size)), int(np.clip(np.ceil(cy + half + 0.5), 0, size))]


def _image_box(box: list[int], work, size: int) -> dict:
    """*box* (in the *size* × *size* network input, which squeezes the image to a square) in the pixels of the
    work's own image: ``left``, ``top``, ``right``, ``bottom`` (what to crop the original file with).

    >>> _image_box([0, 56, 112, 224], {"width": 800, "height": 400}, 224)
    {'left': 0, 'top': 100, 'right': 400, 'bottom': 400}
    """
    sx, sy = float(work["width"]) / size, float(work["height"]) / size
    return {"left": int(round(box[0] * sx)), "top": int(round(box[1] * sy)), "right": int(round(box[2] * sx)),
            "bottom": int(round(box[3] * sy))}


def _patch(cat, rel: str, box: list[int], thumb: int):
    """The patch *box* of the work's image exactly as the network saw it, enlarged to *thumb* px."""
    from PIL import Image

    from ..images import to_pil

    im = to_pil(cat.extractor.load(cat._work_file(rel))).crop(box)
    return im.resize((thumb, thumb), Image.NEAREST if box[2] - box[0] < thumb // 2 else Image.LANCZOS)


def characteristic_units(cat, *, layer: str = "relu3_1", column: str, group, top: int = 10,
                         batch_size: int = 8, progress: bool = False) -> pd.DataFrame:
    """The units of *layer* whose mean response most distinguishes the works where ``column == group``.

    Effect size: Cohen's d (Cohen 1988) of each unit's mean response over the image, group against the rest
    (pooled standard deviation); positive = the group excites the unit more.

    Returns
    -------
    DataFrame with ``unit``, ``effect`` (d), ``mean_group``, ``mean_rest``, ``n_group``, ``n_rest``, strongest
    first.
    """
    layer = check_layers([layer])[0]
    top = _check_top(top, "units listed")
    works = cat.works
    _check_column(works, column)
    values = works[column].astype(str).where(works[column].notna(), None)
    member = (values == str(group)).to_numpy(bool)
    if not member.any():
        levels = ", ".join(map(str, pd.unique(values.dropna())[:20]))
        raise ArtspaceError(f"no work has {column} == {group!r}; values are: {levels}")
    if member.all():
        raise ArtspaceError(f"every work has {column} == {group!r}; nothing to compare the group with")
    r = unit_responses(cat, layer=layer, batch_size=batch_size, progress=progress)
    M = r["mean"][pd.Index(r["ids"]).get_indexer(works["id"].to_numpy(np.int64))].astype(np.float64)
    a, b = M[member], M[~member]
    na, nb = len(a), len(b)
    va = a.var(0, ddof=1) if na > 1 else np.zeros(M.shape[1])
    vb = b.var(0, ddof=1) if nb > 1 else np.zeros(M.shape[1])
    pooled = np.sqrt(((na - 1) * va + (nb - 1) * vb) / max(na + nb - 2, 1))
    d = (a.mean(0) - b.mean(0)) / np.maximum(pooled, 1e-12)
    df = pd.DataFrame({"unit": np.arange(M.shape[1]), "effect": d, "mean_group": a.mean(0), "mean_rest": b.mean(0),
                       "n_group": na, "n_rest": nb})
    return df.sort_values("effect", ascending=False, kind="stable").head(top).reset_index(drop=True)
