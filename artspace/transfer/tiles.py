"""Tiles: optimising a level larger than memory in overlapping pieces, one at a time.

Each tile of a level starts from the same image (the previous level's result, upscaled) and is optimised against the
content targets of the matching content tile and the *whole* style's Gram matrices; the tiles are then blended in
raster order with raised-cosine weights over their overlaps with tiles already placed, so no seam shows. A style
image larger than a tile is summarised by Gram matrices pooled over its tiles (Σ F Fᵀ / Σ M), which equal the whole
image's apart from the convolutions' zero padding at the tile borders.
"""

from __future__ import annotations

import math

import torch

from ..losses import gram
from .options import MIN_SIDE

__all__ = ["tile_grid", "tiles_for", "ramp", "feather", "pooled_grams"]

#: A tile as (y0, x0, height, width, overlap_top, overlap_left).
Tile = tuple[int, int, int, int, int, int]


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of *tile* px covering *length* px with at least *overlap* px shared by neighbours."""
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """Tiles in raster order as (y0, x0, h, w, overlap_top, overlap_left) — overlaps with tiles placed earlier.

    >>> tile_grid(40, 70, 40, 10)
    [(0, 0, 40, 40, 0, 0), (0, 30, 40, 40, 0, 10)]
    """
    ys, xs = _tile_starts(height, tile, overlap), _tile_starts(width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    out = []
    for r, y in enumerate(ys):
        for c, x in enumerate(xs):
            top = ys[r - 1] + th - y if r else 0
            left = xs[c - 1] + tw - x if c else 0
            out.append((y, x, th, tw, top, left))
    return out


def tiles_for(hw: tuple[int, int], tile: int | None, overlap: int | None) -> list[Tile]:
    """The tiles of a level of shape *hw*: one whole-image tile unless the level is larger than *tile*."""
    if tile and max(hw) > tile:
        return tile_grid(*hw, tile, overlap)
    return [(0, 0, *hw, 0, 0)]


def ramp(n: int, length: int, *, device) -> torch.Tensor:
    """Weights over *length* px rising from ~0 to 1 over the first *n* px (a raised cosine), then 1."""
    w = torch.ones(length, device=device)
    if n > 0:
        i = torch.arange(n, device=device, dtype=torch.float32)
        w[:n] = 0.5 - 0.5 * torch.cos(math.pi * (i + 0.5) / n)
    return w


def feather(canvas: torch.Tensor, piece: torch.Tensor, tile: Tile) -> None:
    """Blend the optimised *piece* into *canvas* (in place) over the tiles placed before it."""
    y0, x0, th, tw, top, left = tile
    region = (slice(None), slice(None), slice(y0, y0 + th), slice(x0, x0 + tw))
    mask = ramp(top, th, device=canvas.device)[:, None] * ramp(left, tw, device=canvas.device)[None, :]
    canvas[region] = mask * piece + (1 - mask) * canvas[region]


@torch.no_grad()
def pooled_grams(net, image: torch.Tensor, layers, tile: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Size-normalised Gram matrices of *image* pooled over its tiles of *tile* px: Σ F Fᵀ / Σ M per layer.

    Pieces narrower than the network's smallest input are left out.
    """
    h, w = image.shape[-2:]
    sums = {n: 0.0 for n in layers}
    counts = {n: 0 for n in layers}
    for y in range(0, h, tile):
        for x0 in range(0, w, tile):
            piece = image[:, :, y:y + tile, x0:x0 + tile]
            if min(piece.shape[-2:]) < MIN_SIDE:
                continue
            feats = net(piece.to(device), layers)
            for n in layers:
                m = feats[n].shape[-1] * feats[n].shape[-2]
                sums[n] = sums[n] + gram(feats[n]) * m
                counts[n] += m
    return {n: sums[n] / counts[n] for n in layers}
