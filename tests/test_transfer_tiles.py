"""Tiles: the grid covers every pixel with overlaps, a tiled run shows no seams, a large style's Gram matrices are
pooled over its tiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from artspace.images import to_tensor
from artspace.transfer import synthesise, tile_grid

FAST = dict(style_layers=["relu1_1", "relu2_1", "relu3_1"], content_layers=["relu2_2"], tolerance=0)


@pytest.fixture
def images(transfer_images):
    """The tiny pastiche inputs of conftest.py, under a short name."""
    return transfer_images


def test_tile_grid_covers_the_image_with_overlaps():
    tiles = tile_grid(100, 150, 48, 12)
    cover = np.zeros((100, 150), int)
    for y, x, h, w, top, left in tiles:
        cover[y:y + h, x:x + w] += 1
        assert h == 48 and w == 48 and (top == 0 or top >= 12) and (left == 0 or left >= 12)
    assert cover.min() >= 1


@pytest.mark.slow
def test_tiled_run_has_no_seams(images, tmp_path):
    """Tiles optimised separately and feathered: no step across a tile boundary larger than within tiles."""
    # a content without edges of its own (a smooth colour ramp), so any step at a tile border would be a seam
    yy, xx = np.mgrid[0:64, 0:96]
    smooth = np.stack([xx * 2.5, yy * 3.5, 200 - xx], axis=-1).clip(0, 255).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "smooth.png")
    r = synthesise(tmp_path / "smooth.png", images / "style.png", size=96, tile=40, tile_overlap=12, iterations=5,
                   seed=0, output=tmp_path / "tiled.png", save_every=1, **FAST)
    lv = r.levels[0]
    assert isinstance(lv["tiles"], list) and len(lv["tiles"]) == 6  # 3 x 2 tiles of 40 px over 96 x 64
    assert r.losses["aggregate"] == "mean over 6 tiles"
    assert len(list(tmp_path.glob("tiled-s1-tile*.png"))) == 6
    a = np.asarray(r.image, float)
    dx = np.abs(np.diff(a, axis=1)).mean(axis=(0, 2))  # mean step between column j and j+1
    dy = np.abs(np.diff(a, axis=0)).mean(axis=(1, 2))
    xs = sorted({t["box"][0] for t in lv["tiles"]})
    ys = sorted({t["box"][1] for t in lv["tiles"]})
    seam_x = [x - 1 for x in xs[1:]] + [x + 40 - 1 for x in xs[:-1]]
    seam_y = [y - 1 for y in ys[1:]] + [y + 40 - 1 for y in ys[:-1]]
    inner_x = np.delete(dx, seam_x)
    inner_y = np.delete(dy, seam_y)
    assert dx[seam_x].max() <= inner_x.max() and dx[seam_x].mean() <= 1.5 * inner_x.mean()
    assert dy[seam_y].max() <= inner_y.max() and dy[seam_y].mean() <= 1.5 * inner_y.mean()


def test_tiled_style_grams_pool_over_style_tiles(images):
    """A style larger than a tile is summarised by Gram matrices pooled over its tiles (Σ F Fᵀ / Σ M)."""
    from artspace.backbone import VGG19
    from artspace.transfer.objective import style_targets

    net = VGG19(last_layer="relu1_1")
    s = to_tensor(Image.open(images / "style2.jpg")).unsqueeze(0).contiguous()
    whole = style_targets(net, [s], [1.0], ["relu1_1"], torch.device("cpu"), None)["relu1_1"]
    pooled = style_targets(net, [s], [1.0], ["relu1_1"], torch.device("cpu"), 20)["relu1_1"]
    # only the convolution's zero padding at the tile borders differs
    assert float((whole - pooled).norm() / whole.norm()) < 0.15
    same = style_targets(net, [s], [1.0], ["relu1_1"], torch.device("cpu"), 40)["relu1_1"]
    assert torch.equal(same, whole)

