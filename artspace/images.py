"""Reading images the way a museum's folders actually hold them.

Everything that turns a file into pixels lives here: the recursive walk, format quirks (EXIF orientation, CMYK,
16-bit, palette and alpha), huge scans, and the conversion to the float tensors the backbone takes.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps

from .atomic import atomic_write
from .errors import InvalidOption, UnreadableImage
from .outputs import _EXIF_SOFTWARE, _made_by_artspace, made_by_artspace, marker, replaceable

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "walk_images",
    "open_image",
    "to_tensor",
    "to_pil",
    "resize_long_side",
    "check_sides",
    "MIN_NETWORK_SIDE",
    "image_format",
    "image_name",
    "image_output",
    "save_image",
    "made_by_artspace",
    "marker",
]

#: File extensions treated as images (lower case). Anything else in a folder is ignored.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".webp", ".bmp", ".dib", ".gif"}
)

#: Largest image, in decoded pixels, that :func:`open_image` agrees to decode unless told otherwise (``max_pixels=``,
#: ``--max-pixels``): 100 megapixels, a 10000 x 10000 scan, above Pillow's own 89 Mpx warning. Pillow holds 8-bit
#: RGB at 4 bytes a pixel, so one decode at this limit adds, measured with max_side=448 as index reads: 390 MiB for
#: RGB, 590 MiB for 16-bit grey, 800 MiB with alpha (benchmarks/bench_hostile.py). With the 1.5-1.8 GB the rest of
#: `artspace index` takes, an RGB image at the limit keeps it near 2 GB; a small file whose header claims more (a
#: decompression bomb) is refused before a pixel is decoded, at no cost. JPEGs count at the reduced scale they are
#: decoded at (``max_side``), so huge JPEG scans still pass.
MAX_PIXELS = 100_000_000

# Truncated files must fail loudly, not decode half-grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow's decompression-bomb guard (a warning on stderr above 89 Mpx, an error above 179 Mpx) is switched off:
# open_image checks every header against its own, per-call limit before a pixel is decoded, and says what to do.
Image.MAX_IMAGE_PIXELS = None

#: A callback told about each file or folder that walk_images leaves out: ``on_skip(path, reason)``.
OnSkip = Callable[[Path, str], None]


def walk_images(root: str | os.PathLike, *, exclude: tuple[str, ...] = (".artspace",),
                on_skip: OnSkip | None = None, as_strings: bool = False) -> Iterator[Path]:
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
    as_strings : bool
        Yield the paths as strings (what a million-file listing needs: no :class:`~pathlib.Path` per file).
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
            try:
                kind = _classify(entry, exclude)
            except OSError as e:
                kind = f"cannot read ({e.strerror or e})"
            if kind == "folder":
                subfolders.append(folder / entry.name)
            elif kind == "image":
                yield entry.path if as_strings else folder / entry.name
            elif kind is not None:
                skip(folder / entry.name, kind)
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
    dot = name.rfind(".")  # os.path.splitext's suffix for the names that reach here (hidden ones do not)
    if dot <= 0 or name[dot:].lower() not in IMAGE_EXTENSIONS:
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


def open_image(path: str | os.PathLike, *, max_side: int | None = None,
               max_pixels: int | None = None) -> Image.Image:
    """Decode *path* into an 8-bit RGB :class:`PIL.Image.Image`, refusing anything unsafe before decoding it.

    EXIF orientation is applied; CMYK, 16-bit, palette, greyscale and alpha images become RGB (alpha over white).
    Animated images (GIF, APNG, animated WebP) give their first frame. With *max_side*, the image is reduced so that
    its long side is at most *max_side* pixels — JPEGs are reduced while decoding (``draft``: 1/2, 1/4 or 1/8
    scale), so huge scans never occupy full-resolution memory. The result's ``info["source_size"]`` is the file's
    own (width, height) as displayed, after EXIF orientation and before any reduction, and
    ``info["made_by_artspace"]`` whether :func:`save_image` wrote it: what a catalog records, without opening the
    file a second time.

    Only regular files are opened (checked with ``stat`` first, so a FIFO never blocks), and the size in the header
    is checked against the pixel budget before any pixel is decoded, so a small file claiming a huge image costs
    nothing.

    Parameters
    ----------
    path : path
        The image file.
    max_side : int, optional
        Longest side of the result, in pixels.
    max_pixels : int, optional
        Largest image decoded, in pixels (default :data:`MAX_PIXELS`); for a JPEG, the pixels decoded after the
        reduction that *max_side* allows.

    Raises
    ------
    UnreadableImage
        With the file and the reason: missing, not a regular file, empty, not an image, truncated, or above the
        pixel budget (with the fix).
    InvalidOption
        If *max_pixels* is not a positive number.
    """
    path = Path(path)
    limit = _pixel_limit(max_pixels)
    with _open_regular(path) as f:
        return _decode(f, path, max_side, limit)


def probe_image(path: str | os.PathLike) -> tuple[int, int]:
    """The (width, height) an image file's header gives, without decoding a pixel: what :func:`open_image` refuses
    for the file itself (missing, not a regular file, empty, not an image Pillow knows) it refuses here too, as
    :class:`UnreadableImage`. A file whose header reads but whose pixels are damaged passes; decoding finds it."""
    path = Path(path)
    with _open_regular(path) as f:
        try:
            with Image.open(f) as im:
                return im.size
        except Image.UnidentifiedImageError:
            raise UnreadableImage(path, "not an image Pillow can decode (wrong extension or corrupt header)") from None
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise UnreadableImage(path, f"cannot decode image: {e}") from None


def decode_image_bytes(data: bytes, name: str, *, max_side: int | None = None,
                       max_pixels: int | None = None) -> Image.Image:
    """:func:`open_image` for an image's bytes (read from an object store); *name* is what errors say."""
    if not data:
        raise UnreadableImage(name, "file is empty (0 bytes)")
    return _decode(io.BytesIO(data), name, max_side, _pixel_limit(max_pixels))


def _decode(f, path, max_side: int | None, limit: int) -> Image.Image:
    """Decode the open image file *f* (*path* names it in errors): the checks and conversions of :func:`open_image`."""
    try:
        im = Image.open(f)
        im.seek(0)  # animated images: the first frame, whichever frame a plugin opened on
        made = _made_by_artspace(im)  # from the header, before decoding changes what info holds
        size = im.size
        if max_side and im.format == "JPEG" and max(size) > 2 * max_side:
            # Decode at 1/2, 1/4 or 1/8 scale directly: fast and memory-light for huge scans.
            scale = max(size) / max_side
            im.draft("RGB", (int(size[0] / scale) + 1, int(size[1] / scale) + 1))
        _check_budget(path, size, im.size, limit)
        im.load()
        decoded = im.size
        ImageOps.exif_transpose(im, in_place=True)  # in place: a copy would double the peak memory
        source_size = size if im.size == decoded else size[::-1]  # a quarter turn swaps the sides
        im = _to_rgb(im)
    except UnreadableImage:
        raise
    except Image.DecompressionBombError as e:  # only if someone switched Pillow's guard back on
        raise UnreadableImage(path, f"image too large to decode safely ({e})") from None
    except Image.UnidentifiedImageError:
        raise UnreadableImage(path, "not an image Pillow can decode (wrong extension or corrupt header)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise UnreadableImage(path, f"cannot decode image: {e}") from None
    if max_side and max(im.size) > max_side:
        im = resize_long_side(im, max_side)
    im.info["source_size"] = source_size
    im.info["made_by_artspace"] = made
    return im


def _pixel_limit(max_pixels: int | None) -> int:
    if max_pixels is None:
        return MAX_PIXELS  # read at call time, so that changing images.MAX_PIXELS takes effect
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, float)) or max_pixels < 1:
        raise InvalidOption(f"max_pixels must be a positive number of pixels, not {max_pixels!r}")
    return int(max_pixels)


def _open_regular(path: Path):
    """Open *path* for reading if it is a regular file with data; :class:`UnreadableImage` saying what it is if not.

    ``stat`` comes first, so a FIFO or device is never opened at all (opening a FIFO blocks until a writer comes).
    The file is then opened non-blocking and checked again, in case it was swapped for a FIFO in between.
    """
    try:
        _require_regular(path, os.stat(path))
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError as e:
        reason = _not_regular_reason(path) if os.path.islink(path) else f"cannot read file ({e.strerror})"
        raise UnreadableImage(path, reason) from None
    except OSError as e:
        raise UnreadableImage(path, f"cannot read file ({e.strerror or e})") from None
    try:
        _require_regular(path, os.fstat(fd))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _require_regular(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableImage(path, f"{_kind(st.st_mode)}, not a regular file; artspace only reads image files")
    if st.st_size == 0:
        raise UnreadableImage(path, "file is empty (0 bytes)")


def _check_budget(path: Path, size: tuple[int, int], decoded: tuple[int, int], limit: int) -> None:
    """Refuse, before decoding, an image whose *decoded* size is above *limit* pixels, saying how to proceed."""
    w, h = decoded
    if w * h <= limit:
        return
    what = f"{w}x{h}" if decoded == size else f"{size[0]}x{size[1]}, even read at reduced scale as {w}x{h},"
    raise UnreadableImage(
        path,
        f"{what} is {_megapixels(w * h)} megapixels, above the limit of {_megapixels(limit)} megapixels decoded at once; "
        f"downscale it first (e.g. `vips resize FILE smaller.tif 0.5`) or raise the limit with --max-pixels "
        f"(max_pixels= in Python) if the memory is there",
    )


def _megapixels(n: int) -> str:
    return f"{n / 1e6:,.0f}" if n >= 10_000_000 else f"{n / 1e6:.2g}"


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, scaling 16-bit and float data to the full 0-255 range.

    Conversions go a band of rows at a time into one RGB image, so that the peak memory is the input plus the
    output (4 bytes a pixel), not the three or four full-size intermediates that compositing alpha would take: at
    the pixel budget each full-size copy is hundreds of megabytes. Every conversion is per pixel, so banding
    changes no value.
    """
    if im.mode == "RGB":
        return im
    if im.mode in ("I", "F"):
        return _scaled_to_rgb(im)
    w, h = im.size
    out = Image.new("RGB", im.size)
    rows = max(1, _BAND_BYTES // (4 * w))
    for y in range(0, h, rows):
        out.paste(_band_to_rgb(im.crop((0, y, w, min(h, y + rows)))), (0, y))
    return out


#: Size of the RGB bands _to_rgb converts at a time: small next to any image worth banding, large enough that the
#: per-band overhead does not show.
_BAND_BYTES = 8 << 20


def _band_to_rgb(im: Image.Image) -> Image.Image:
    """One band of :func:`_to_rgb` (crop keeps the palette and transparency)."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return Image.fromarray(_sixteen_to_eight(np.asarray(im)), "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        if mode != "RGBA":
            im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, im).convert("RGB")  # alpha over white paper
    # CMYK (JPEG and TIFF), YCbCr, LAB, RGBX, L, 1, P: Pillow's own conversions.
    return im.convert("RGB")


def _scaled_to_rgb(im: Image.Image) -> Image.Image:
    """32-bit integer or float samples stretched from their own minimum and maximum to 0-255 (rare: whole image)."""
    a = np.asarray(im, dtype=np.float64)
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    a = np.clip(np.nan_to_num(a) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(a, "L").convert("RGB")


def _sixteen_to_eight(a: np.ndarray) -> np.ndarray:
    """round(v / 65535 * 255) = round(v / 257) for 16-bit samples, in integers: 4 bytes a pixel, not float64's 8+.

    257 is odd, so v / 257 is never halfway between two integers and no rounding tie can arise.
    """
    out = a.astype(np.uint32)
    out += 128
    out //= 257
    return out.astype(np.uint8)


def resize_long_side(im: Image.Image, long_side: int) -> Image.Image:
    """Resize so that the longer side is *long_side* pixels, keeping the aspect ratio (Lanczos)."""
    w, h = im.size
    s = long_side / max(w, h)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return im if size == im.size else im.resize(size, Image.LANCZOS, reducing_gap=3.0)


#: The smallest side an image may have when it reaches VGG-19 (or a network built on it): four poolings leave one
#: pixel at relu5_1.
MIN_NETWORK_SIDE = 16


def aspect_ratio(source, opened: Image.Image | None = None) -> float:
    """The long-to-short ratio of the image file *source* as its header gives it (a copy opened at a smaller size
    is rounded), or of *opened* when *source* is no file."""
    w, h = probe_image(source) if isinstance(source, (str, os.PathLike)) else opened.size
    return max(w, h) / max(1, min(w, h))


def check_sides(hw: tuple[int, int], source, long_side: int | None = None, minimum: int = MIN_NETWORK_SIDE,
                per_size: float = 1.0, aspect: float | None = None, flag: str = "--size") -> None:
    """:class:`~artspace.errors.UnreadableImage` naming *source* when an image of *hw* (height, width) pixels, as
    it reaches the network, has a side shorter than *minimum* (a panorama at a small ``--size``). *per_size* is
    the image's long side for each pixel of ``--size`` (a style image at ``--style-scale``, a pyramid's first
    level), so that the advice names the ``--size`` (*flag*) that works; *aspect* is the file's own long-to-short
    ratio, when *hw* comes from an already shrunk copy whose rounded short side would understate it (a 20 × 2000
    panorama read at 64 px is 1 × 64: its ratio is 100, not 64).

    >>> try:
    ...     check_sides((1, 64), "pano.png", 64, 16, aspect=100.0)
    ... except UnreadableImage as e:
    ...     print(str(e).split("; ")[1])
    give --size 1600 or more, or crop it
    """
    h, w = hw
    if min(h, w) < minimum:
        at = f" at a long side of {long_side} px" if long_side and max(h, w) >= long_side else ""
        ratio = aspect if aspect else (max(h, w) / min(h, w) if min(h, w) > 0 else None)
        if long_side and max(h, w) < long_side:  # never enlarged to the size asked for: a larger one won't help
            need = "; the image itself is that small: use a larger one"
        elif long_side and ratio:
            need = f"; give {flag} {int(np.ceil(minimum * ratio / per_size))} or more, or crop it"
        else:
            need = "; crop or enlarge it"
        raise UnreadableImage(source, f"{w}x{h} px{at} is too small for the network, which needs at least "
                                      f"{minimum} px on each side{need}")


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


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, as hex, read 1 MiB at a time (the catalog's ``checksum``, a model's records)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def command_line() -> str | None:
    """The ``artspace`` command this process runs, quoted for a shell (for a sidecar), or None when artspace was
    called from Python (a notebook's settings are the record then)."""
    import shlex
    import sys

    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    via_module = argv0.name == "__main__.py" and (argv0.parent.name == "artspace" or
                                                  argv0.parent.parts[-2:] == ("artspace", "cli"))
    if argv0.name != "artspace" and not via_module:  # pytest, a notebook, a script of the user's
        return None
    return shlex.join(["artspace", *sys.argv[1:]])


def input_record(source) -> dict | None:
    """``{"path": absolute path, "sha256": …}`` of an input file, for a sidecar: what a pastiche was made from,
    checkable later; None for an image given in memory."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    return {"path": os.path.abspath(source), "sha256": file_sha256(source)}


def image_format(path: str | os.PathLike) -> str:
    """Pillow's format name for *path*'s suffix (``.jpg`` → ``JPEG``); ``ValueError`` naming the file otherwise."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt not in _MARKED_FORMATS:  # the formats whose header can say that artspace made the file
        raise ValueError(f"output {path}: unknown image extension {path.suffix!r}; use .png, .jpg, .tif or .webp")
    return fmt


def image_name(path: str | os.PathLike) -> Path:
    """*path* if it can name an image :func:`save_image` writes: a suffix it writes and not a folder
    (:class:`~artspace.errors.InvalidOption` otherwise)."""
    path = Path(path)
    if path.is_dir():  # before the suffix: a folder has none, and "unknown extension ''" would not say why
        raise InvalidOption(f"output {path} is a folder; give a file name such as {path / 'picture.png'}")
    try:
        image_format(path)
    except ValueError as e:
        raise InvalidOption(str(e)) from None
    return path


def image_output(path: str | os.PathLike) -> Path:
    """*path* if an image may be written there, checked before any work: :func:`image_name`, and no existing file
    but one artspace made (:class:`~artspace.errors.OutputConflict`)."""
    return replaceable(image_name(path), made_by_artspace)


def save_image(im: Image.Image, path: str | os.PathLike, *, quality: int = 95) -> Path:
    """Save *im* atomically; the format follows the suffix (JPEG at *quality*; WebP lossless, as PNG and TIFF are,
    so that a pastiche keeps every pixel the run computed: Pillow's default WebP is lossy).

    The file says it was made by artspace (PNG ``Software`` text, JPEG comment, EXIF ``Software`` tag in WebP and
    TIFF), so that ``artspace index`` never catalogues a pastiche or a contact sheet as a work unless asked to
    (:func:`made_by_artspace`), and so that a later run may replace it: an existing file without that mark (a
    painting, a photograph of the user's) is never written over (:class:`~artspace.errors.OutputConflict`).
    """
    fmt = image_format(path)
    replaceable(path, made_by_artspace)  # an earlier output is replaced; someone's own image never
    options: dict = {"quality": quality} if fmt == "JPEG" else {}
    if fmt == "PNG":
        from PIL import PngImagePlugin

        options["pnginfo"] = PngImagePlugin.PngInfo()
        options["pnginfo"].add_text("Software", marker())
    elif fmt == "JPEG":
        options["comment"] = marker().encode()
    elif fmt in ("WEBP", "TIFF"):
        exif = Image.Exif()
        exif[_EXIF_SOFTWARE] = marker()
        options["exif"] = exif
        if fmt == "WEBP":
            options["lossless"] = True
    return atomic_write(path, lambda p: im.save(p, format=fmt, **options))


#: The image formats :func:`save_image` writes: those whose header carries :func:`~artspace.outputs.marker`.
_MARKED_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF")
