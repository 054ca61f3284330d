"""A demo collection whose style and content are known by construction: shapes × textures.

Each image shows one *shape* (its content: what is depicted) painted in one *texture* (its style: the hand), the
cue-conflict design of Geirhos et al. (ICLR 2019) in miniature — a star in zebra stripes is still a star. Style
search should return the same texture; content search the same shape, whatever its texture.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .atomic import atomic_write
from .errors import InvalidOption

__all__ = ["SHAPES", "TEXTURES", "make_demo"]

SHAPES = ("circle", "square", "triangle", "star", "cross", "crescent")
TEXTURES = ("stripes", "dots", "checker", "waves", "marble", "strokes")

# Each texture family has its own palette (dark, light), as a painter has a palette.
_PALETTES = {
    "stripes": ((20, 20, 30), (235, 225, 200)),
    "dots": ((180, 30, 40), (250, 230, 120)),
    "checker": ((30, 60, 140), (220, 235, 250)),
    "waves": ((10, 90, 80), (150, 220, 200)),
    "marble": ((90, 70, 60), (225, 215, 205)),
    "strokes": ((200, 100, 20), (60, 30, 90)),
}


def _texture(name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size) field in [0, 1] for texture *name*, with random phase, angle and frequency jitter."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / size
    a = rng.uniform(0, math.pi)
    u = x * math.cos(a) + y * math.sin(a)
    v = -x * math.sin(a) + y * math.cos(a)
    f = rng.uniform(0.85, 1.15)
    ph = rng.uniform(0, 2 * math.pi)
    if name == "stripes":
        t = (np.sin(2 * math.pi * 9 * f * u + ph) > 0).astype(float)
    elif name == "dots":
        cu, cv = np.mod(u * 8 * f + ph, 1.0) - 0.5, np.mod(v * 8 * f + ph, 1.0) - 0.5
        t = (np.hypot(cu, cv) < 0.28).astype(float)
    elif name == "checker":
        t = ((np.floor(u * 7 * f + ph) + np.floor(v * 7 * f + ph)) % 2).astype(float)
    elif name == "waves":
        t = 0.5 + 0.5 * np.sin(2 * math.pi * (5 * f * u + 0.6 * np.sin(2 * math.pi * 3 * v + ph)))
    elif name == "marble":
        n = rng.standard_normal((size // 8 + 2, size // 8 + 2))
        n = np.asarray(Image.fromarray(n.astype(np.float32), "F").resize((size, size), Image.BICUBIC))
        t = 0.5 + 0.5 * np.sin(2 * math.pi * 3 * f * u + 4.0 * n + ph)
    elif name == "strokes":
        t = np.zeros((size, size))
        img = Image.new("L", (size, size), 0)
        d = ImageDraw.Draw(img)
        for _ in range(int(size * 1.2)):
            cx, cy = rng.uniform(0, size, 2)
            ang = a + rng.normal(0, 0.25)
            ln = rng.uniform(0.05, 0.12) * size
            dx, dy = math.cos(ang) * ln, math.sin(ang) * ln
            d.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=int(rng.uniform(120, 255)),
                   width=max(1, size // 40))
        t = np.asarray(img.filter(ImageFilter.GaussianBlur(size / 200)), dtype=float) / 255.0
    else:
        raise InvalidOption(f"unknown texture {name!r}; known: {', '.join(TEXTURES)}")
    return t


def _mask(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A white-on-black mask of *shape*, jittered in position, scale and rotation."""
    m = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(m)
    cx, cy = size * (0.5 + rng.uniform(-0.07, 0.07, 2))
    r = size * rng.uniform(0.30, 0.37)
    rot = rng.uniform(-0.3, 0.3)

    def poly(points):
        d.polygon([(cx + px * math.cos(rot) - py * math.sin(rot), cy + px * math.sin(rot) + py * math.cos(rot))
                   for px, py in points], fill=255)

    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif shape == "square":
        s = r * 0.85
        poly([(-s, -s), (s, -s), (s, s), (-s, s)])
    elif shape == "triangle":
        poly([(r * math.cos(t), r * math.sin(t)) for t in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)])
    elif shape == "star":
        pts = []
        for k in range(10):
            rr = r if k % 2 == 0 else r * 0.42
            t = -math.pi / 2 + k * math.pi / 5
            pts.append((rr * math.cos(t), rr * math.sin(t)))
        poly(pts)
    elif shape == "cross":
        w = r * 0.33
        poly([(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w), (-r, -w),
              (-w, -w)])
    elif shape == "crescent":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        o = r * 0.55
        d.ellipse([cx - r + o * math.cos(rot), cy - r + o * math.sin(rot) - r * 0.1,
                   cx + r + o * math.cos(rot), cy + r + o * math.sin(rot) - r * 0.1], fill=0)
    else:
        raise InvalidOption(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    return m


def _render(shape: str, texture: str, size: int, rng: np.random.Generator) -> Image.Image:
    dark, light = (np.array(c, dtype=float) for c in _PALETTES[texture])
    fg = _texture(texture, size, rng)[..., None]
    fg = dark + (light - dark) * fg
    # The background is the same hand, faint: a wash of the palette's light colour with the texture at low contrast.
    bg_t = _texture(texture, size, rng)[..., None]
    paper = np.array([245.0, 240.0, 228.0])
    bg = paper * 0.75 + (light * 0.8 + dark * 0.2) * 0.25 + (bg_t - 0.5) * 18
    m = np.asarray(_mask(shape, size, rng).filter(ImageFilter.GaussianBlur(size / 256)), dtype=float)[..., None] / 255
    out = bg * (1 - m) + fg * m
    out += rng.normal(0, 3.0, out.shape)  # canvas grain
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")


def make_demo(root: str | os.PathLike = "data/demo", *, shapes=SHAPES, textures=TEXTURES, variants: int = 3,
              size: int = 192, seed: int = 0) -> Path:
    """Write ``len(shapes) × len(textures) × variants`` PNG images and a ``metadata.csv`` into *root*.

    Files are ``<texture>/<shape>_<k>.png`` (texture folders, as a museum might file works by hand);
    ``metadata.csv`` has ``path``, ``shape`` (content) and ``texture`` (style). The result depends only on the
    arguments: the same seed gives the same pixels.

    Examples
    --------
    >>> import tempfile
    >>> root = make_demo(tempfile.mkdtemp(), shapes=("circle",), textures=("dots",), variants=1, size=64)
    >>> sorted(p.name for p in root.rglob("*.png"))
    ['circle_0.png']
    """
    root = Path(root)
    rows = []
    for ti, texture in enumerate(textures):
        (root / texture).mkdir(parents=True, exist_ok=True)
        for si, shape in enumerate(shapes):
            for k in range(variants):
                rng = np.random.default_rng([seed, ti, si, k])
                rel = f"{texture}/{shape}_{k}.png"
                image = _render(shape, texture, size, rng)
                atomic_write(root / rel, lambda p: image.save(p, format="PNG"))
                rows.append({"path": rel, "shape": shape, "texture": texture})
    def write_csv(p):
        with open(p, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["path", "shape", "texture"])
            w.writeheader()
            w.writerows(rows)

    atomic_write(root / "metadata.csv", write_csv)
    return root
