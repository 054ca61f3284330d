"""Contact sheets: a grid of thumbnails with captions, the way a print room lays out photographs of works."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from .errors import UnreadableImage
from .images import open_image

__all__ = ["contact_sheet", "thumbnail"]

#: A contact sheet's caption is drawn on at most this many lines (wrapped to the cell's width).
MAX_CAPTION_LINES = 6


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
                  title: str | None = None, max_lines: int = MAX_CAPTION_LINES) -> Image.Image:
    """Lay out ``(image, caption)`` pairs in a grid; each thumbnail keeps its aspect ratio inside a square cell.

    Every line of a caption is drawn, wrapped at spaces to the cell's width (a word wider than the cell is broken);
    the captions' row is as tall as the longest caption, up to *max_lines* lines, past which the last is ended
    with "…". So the figures a caption carries (a distance, its percentile, a label) are printed whole.

    Examples
    --------
    >>> sheet = contact_sheet([(Image.new("RGB", (40, 20), "red"), "a red work")], thumb=64)
    >>> sheet.size[0] >= 64
    True
    """
    columns = max(1, min(columns, len(items) or 1))
    rows = (len(items) + columns - 1) // columns
    font = _font(11)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength
    lines = [_wrap(str(caption), thumb, lambda t: measure(t, font=font), max_lines) for _, caption in items]
    pad, line_h = 8, 13
    cap = 4 + line_h * max((len(ls) for ls in lines), default=0)
    top = 28 if title else 0
    sheet = Image.new("RGB", (pad + columns * (thumb + pad), top + pad + rows * (thumb + cap + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, 6), title, fill="black", font=_font(14))
    for k, ((im, _), caption_lines) in enumerate(zip(items, lines)):
        r, c = divmod(k, columns)
        x0, y0 = pad + c * (thumb + pad), top + pad + r * (thumb + cap + pad)
        t = im.copy()
        t.thumbnail((thumb, thumb), Image.LANCZOS)
        sheet.paste(t, (x0 + (thumb - t.width) // 2, y0 + (thumb - t.height) // 2))
        for j, line in enumerate(caption_lines):
            draw.text((x0, y0 + thumb + 3 + line_h * j), line, fill="black", font=font)
    return sheet


def _wrap(caption: str, width: float, length, max_lines: int) -> list[str]:
    """*caption*'s lines wrapped at spaces so that each is at most *width* long by *length* (pixels); a word
    longer than a line is broken; more than *max_lines* lines end with "…".

    >>> _wrap("ab cd\\nefghij", 3, len, 6)
    ['ab', 'cd', 'efg', 'hij']
    >>> _wrap("ab cd ef", 2, len, 2)
    ['ab', 'c…']
    """
    out: list[str] = []
    for raw in caption.split("\n"):
        line = ""
        for word in raw.split(" "):
            candidate = f"{line} {word}" if line else word
            if length(candidate) <= width:
                line = candidate
                continue
            if line:
                out.append(line)
            while length(word) > width and len(word) > 1:  # a word wider than the cell: broken where it must
                cut = max(1, max(i for i in range(1, len(word) + 1) if i == 1 or length(word[:i]) <= width))
                out.append(word[:cut])
                word = word[cut:]
            line = word
        out.append(line)
    if len(out) > max_lines:
        last = out[max_lines - 1]
        while last and length(last + "…") > width:
            last = last[:-1]
        out = out[:max_lines - 1] + [last + "…"]
    return out


def thumbnail(path: str | os.PathLike, side: int) -> Image.Image:
    """The image at *path* with its long side at most *side*; a grey square when it cannot be read."""
    try:
        return open_image(path, max_side=side)
    except UnreadableImage:
        return Image.new("RGB", (side, side), (200, 200, 200))
