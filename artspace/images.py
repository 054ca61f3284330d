"""Reading images the way a museum's folders actually hold them.

Everything that turns a file into pixels lives here: the recursive walk, format quirks (EXIF orientation, CMYK,
16-bit, palette and alpha), huge scans, and the conversion to the float tensors the backbone takes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps

from .atomic import atomic_write
from .errors import UnreadableImage

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "walk_images",
    "open_image",
    "to_tensor",
    "to_pil",
    "resize_long_side",
    "image_format",
    "save_image",
]

#: File extensions treated as images (lower case). Anything else in a folder is ignored.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".webp", ".bmp", ".dib"}
)

#: Largest image (in pixels) artspace agrees to decode: 1.5 gigapixels, enough for the largest museum scans,
#: which are reduced while decoding. Pillow's own guard (89 Mpx) would refuse ordinary high-resolution scans;
#: above this limit the file is refused with a message instead of exhausting memory.
MAX_PIXELS = 1_500_000_000

# Truncated files must fail loudly, not decode half-grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow's decompression-bomb guard (89 Mpx warning, 179 Mpx error) refuses ordinary museum scans. artspace replaces
# it with its own explicit limit, checked on the header before any pixel is decoded (see open_image).
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def walk_images(root: str | os.PathLike, *, exclude: tuple[str, ...] = (".artspace",)) -> Iterator[Path]:
    """Yield image files below *root*, recursively, in a stable (sorted) order.

    Hidden folders and the catalog folders named in *exclude* are skipped; files without an image extension are
    ignored.
    """
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in exclude)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                yield Path(dirpath) / name


def open_image(path: str | os.PathLike, *, max_side: int | None = None) -> Image.Image:
    """Decode *path* into an 8-bit RGB :class:`PIL.Image.Image`.

    EXIF orientation is applied; CMYK, 16-bit, palette, greyscale and alpha images become RGB (alpha over white).
    With *max_side*, the image is reduced so that its long side is at most *max_side* pixels — JPEGs are reduced
    while decoding (``draft``), so huge scans never occupy full-resolution memory.

    Raises
    ------
    UnreadableImage
        With the file and the reason: missing, empty, not an image, truncated, or larger than :data:`MAX_PIXELS`.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise UnreadableImage(path, f"cannot read file ({e.strerror or e})") from None
    if size == 0:
        raise UnreadableImage(path, "file is empty (0 bytes)")
    try:
        im = Image.open(path)
        w, h = im.size
        if w * h > MAX_PIXELS:
            raise UnreadableImage(
                path,
                f"{w}x{h} is {w * h / 1e6:.0f} megapixels, above artspace's limit of "
                f"{MAX_PIXELS / 1e6:.0f}; downscale it first (e.g. `vips resize`)",
            )
        if max_side and im.format == "JPEG" and max(w, h) > 2 * max_side:
            # Decode at 1/2, 1/4 or 1/8 scale directly: fast and memory-light for huge scans.
            scale = max(w, h) / max_side
            im.draft("RGB", (int(w / scale) + 1, int(h / scale) + 1))
        im.load()
        im = ImageOps.exif_transpose(im)
        im = _to_rgb(im)
    except UnreadableImage:
        raise
    except Image.DecompressionBombError as e:
        raise UnreadableImage(path, f"image too large to decode safely ({e})") from None
    except Image.UnidentifiedImageError:
        raise UnreadableImage(path, "not an image Pillow can decode (wrong extension or corrupt header)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise UnreadableImage(path, f"cannot decode image: {e}") from None
    if max_side and max(im.size) > max_side:
        im = resize_long_side(im, max_side)
    return im


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, scaling 16-bit and float data to the full 0-255 range."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        if mode.startswith("I;16"):
            a = a / 65535.0
        else:
            lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
            a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        a = np.clip(np.nan_to_num(a) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(a, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    if mode in ("RGB;16", "RGBA;16", "RGBX"):
        return im.convert("RGB")
    # CMYK (JPEG and TIFF), YCbCr, LAB, L, 1, P: Pillow's own conversions.
    return im.convert("RGB")


def resize_long_side(im: Image.Image, long_side: int) -> Image.Image:
    """Resize so that the longer side is *long_side* pixels, keeping the aspect ratio (Lanczos)."""
    w, h = im.size
    s = long_side / max(w, h)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return im if size == im.size else im.resize(size, Image.LANCZOS, reducing_gap=3.0)


def to_tensor(im: Image.Image) -> torch.Tensor:
    """An RGB image as a float tensor of shape (3, H, W) with values in [0, 1]."""
    a = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(a.copy()).permute(2, 0, 1).float().div_(255.0)


def to_pil(x: torch.Tensor) -> Image.Image:
    """A (3, H, W) or (1, 3, H, W) tensor in [0, 1] as an 8-bit RGB image (values are clipped)."""
    if x.dim() == 4:
        x = x[0]
    a = x.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(a, "RGB")


def image_format(path: str | os.PathLike) -> str:
    """Pillow's format name for *path*'s suffix (``.jpg`` → ``JPEG``); ``ValueError`` naming the file otherwise."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"output {path}: unknown image extension {path.suffix!r}; use .png, .jpg, .tif or .webp")
    return fmt


def save_image(im: Image.Image, path: str | os.PathLike, *, quality: int = 95) -> Path:
    """Save *im* atomically; the format follows the suffix (JPEG at *quality*)."""
    fmt = image_format(path)
    return atomic_write(path, lambda p: im.save(p, format=fmt, **({"quality": quality} if fmt == "JPEG" else {})))
