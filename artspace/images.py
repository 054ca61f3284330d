"""Reading images the way a museum's folders actually hold them.

Everything that turns a file into pixels lives here: the recursive walk, format quirks (EXIF orientation, CMYK,
16-bit, palette and alpha), huge scans, and the conversion to the float tensors the backbone takes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable, Iterator

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
    {".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".webp", ".bmp", ".dib", ".gif"}
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


#: A callback told about each file or folder that walk_images leaves out: ``on_skip(path, reason)``.
OnSkip = Callable[[Path, str], None]


def walk_images(root: str | os.PathLike, *, exclude: tuple[str, ...] = (".artspace",),
                on_skip: OnSkip | None = None) -> Iterator[Path]:
    """Yield the image files below *root*, recursively, in a stable order.

    Each folder's files come first, sorted by name, then its subfolders, likewise. Hidden names (``.x``) and the
    folders named in *exclude* are passed over silently, as are files without an image extension.

    Only regular files (or symbolic links to one) are yielded. Whatever else would have been an image — a broken
    link, a FIFO, socket or device with an image extension, a folder that cannot be read, a symbolic link to a
    folder (never followed: links can loop), a name that is not valid UTF-8 — is reported once through
    ``on_skip(path, reason)`` and left out; without *on_skip* it is left out silently.

    Parameters
    ----------
    root : path
        The collection's folder.
    exclude : tuple of str
        Folder names never entered, at any depth (the catalog folders).
    on_skip : callable, optional
        Called as ``on_skip(path, reason)`` with a :class:`~pathlib.Path` and a one-line reason saying the fix. A
        non-UTF-8 path holds lone surrogates and cannot be printed to a strict stream; its reason quotes its bytes.
    """
    skip = on_skip if on_skip is not None else (lambda path, reason: None)
    stack = [Path(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            skip(folder, f"cannot read folder ({e.strerror or e}); the images in it are left out: "
                         f"give read access (chmod u+rx) or move them elsewhere")
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = folder / entry.name
            try:
                kind = _classify(entry, exclude)
            except OSError as e:
                kind = f"cannot read ({e.strerror or e})"
            if kind == "folder":
                subfolders.append(path)
            elif kind == "image":
                yield path
            elif kind is not None:
                skip(path, kind)
        stack.extend(reversed(subfolders))  # popped in sorted order


def _classify(entry: os.DirEntry, exclude: tuple[str, ...]) -> str | None:
    """``"folder"`` to enter, ``"image"`` to yield, None to pass over silently, or the reason to report it."""
    name = entry.name
    if entry.is_dir(follow_symlinks=False):
        if name in exclude:
            return None
        return "folder" if _is_utf8(name) else _name_reason(name, "folder")
    if entry.is_symlink() and entry.is_dir():
        if name in exclude:
            return None
        return ("symbolic link to a folder, not followed (links can loop); "
                "index the target folder itself or move the folder here")
    if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
        return None
    if not _is_utf8(name):
        return _name_reason(name, "file")
    if entry.is_file():  # follows symbolic links: a link to a regular file is an image like any other
        return "image"
    return _not_regular_reason(entry.path)


def _is_utf8(name: str) -> bool:
    # os.scandir decodes undecodable bytes to lone surrogates (surrogateescape); those cannot be encoded back.
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _name_reason(name: str, what: str) -> str:
    return (f"{what} name {os.fsencode(name)!r} is not valid UTF-8; rename it to UTF-8, e.g. "
            f"`convmv -f latin1 -t utf8 --notest NAME` (latin1 being its likely encoding)")


def _not_regular_reason(path: str | os.PathLike) -> str:
    """Why *path* (which has an image extension) is not a regular file, with what to do about it."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return f"broken symbolic link (its target {os.readlink(path)!r} does not exist); remove or repair it"
        return "no such file (removed while reading?)"
    return f"{_kind(mode)}, not a regular file; remove it or rename it without an image extension"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return f"a special file ({stat.filemode(mode)})"


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
