"""Contact sheets: a grid of thumbnails with captions, the way a print room lays out photographs of works."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from .errors import UnreadableImage
from .images import open_image

__all__ = ["contact_sheet", "thumbnail"]


def _font(size: int):
    """DejaVu Sans (shipped with matplotlib), whose glyphs cover accented and most non-Latin titles ("Café été");
    Pillow's own font, which draws boxes for them, only where matplotlib's font cannot be found."""
    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        pass
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def contact_sheet(items: Sequence[tuple[Image.Image, str]], *, columns: int = 6, thumb: int = 160,
                  title: str | None = None) -> Image.Image:
    """Lay out ``(image, caption)`` pairs in a grid; each thumbnail keeps its aspect ratio inside a square cell.

    Examples
    --------
    >>> sheet = contact_sheet([(Image.new("RGB", (40, 20), "red"), "a red work")], thumb=64)
    >>> sheet.size[0] >= 64
    True
    """
    columns = max(1, min(columns, len(items) or 1))
    rows = (len(items) + columns - 1) // columns
    pad, cap = 8, 30
    top = 28 if title else 0
    sheet = Image.new("RGB", (pad + columns * (thumb + pad), top + pad + rows * (thumb + cap + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font(11)
    if title:
        draw.text((pad, 6), title, fill="black", font=_font(14))
    for k, (im, caption) in enumerate(items):
        r, c = divmod(k, columns)
        x0, y0 = pad + c * (thumb + pad), top + pad + r * (thumb + cap + pad)
        t = im.copy()
        t.thumbnail((thumb, thumb), Image.LANCZOS)
        sheet.paste(t, (x0 + (thumb - t.width) // 2, y0 + (thumb - t.height) // 2))
        for j, line in enumerate(str(caption).split("\n")[:2]):
            text = line if draw.textlength(line, font=font) <= thumb else line[: max(1, thumb // 7)] + "…"
            draw.text((x0, y0 + thumb + 3 + 13 * j), text, fill="black", font=font)
    return sheet


def thumbnail(path: str | os.PathLike, side: int) -> Image.Image:
    """The image at *path* with its long side at most *side*; a grey square when it cannot be read."""
    try:
        return open_image(path, max_side=side)
    except UnreadableImage:
        return Image.new("RGB", (side, side), (200, 200, 200))
