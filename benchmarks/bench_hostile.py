"""Peak memory of reading hostile files: a decompression bomb, an image at the pixel limit, a whole `index` run.

    python benchmarks/bench_hostile.py            # the bomb and an at-limit image through open_image
    python benchmarks/bench_hostile.py --index    # and `python -m artspace.cli index FOLDER -q` on the bomb's folder

The bomb is a real, valid PNG whose header says 30000x30000 RGB (900 megapixels, 2.7 GB decoded, 3.6 GB in
Pillow's 4-bytes-a-pixel layout) but which takes 2.7 MB on disk: zero rows, zlib-compressed as they are streamed,
never held in memory. Each figure is the peak resident set of one subprocess (``ru_maxrss`` of the child, read
with ``os.wait4`` so that one measurement never carries over into the next).
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

# This checkout's artspace, here and in every subprocess, whatever the current folder or installed copy.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

# PNG bit depth, colour type and bytes a row for the modes written here.
_PNG_LAYOUT = {"1": (1, 0, lambda w: (w + 7) // 8), "L": (8, 0, lambda w: w), "RGB": (8, 2, lambda w: 3 * w),
               "RGBA": (8, 6, lambda w: 4 * w), "I;16": (16, 0, lambda w: 2 * w)}


def write_png(path: Path, width: int, height: int, mode: str = "RGB") -> Path:
    """Write a black *width* x *height* PNG by streaming compressed zero rows (memory: one batch of rows)."""
    depth, colour, row_bytes = _PNG_LAYOUT[mode]
    row = bytes(1 + row_bytes(width))  # filter type 0, then zero samples
    rows_per_write = max(1, (1 << 22) // len(row))
    z = zlib.compressobj(9)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        _chunk(f, b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
        for start in range(0, height, rows_per_write):
            _chunk(f, b"IDAT", z.compress(row * min(rows_per_write, height - start)))
        _chunk(f, b"IDAT", z.flush())
        _chunk(f, b"IEND", b"")
    return path


def _chunk(f, kind: bytes, data: bytes) -> None:
    if data or kind == b"IEND":
        f.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)))


def peak_mib(cmd: list[str]) -> tuple[float, float, int, str]:
    """Run *cmd*; return its peak resident memory (MiB), wall time (s), exit status and last line of output."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
    out = p.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in out.splitlines() if line.strip()]
    return usage.ru_maxrss / 1024, time.perf_counter() - t, p.returncode, (lines[-1] if lines else "")


def _open_cmd(path: Path, max_side: int | None) -> list[str]:
    cmd = [sys.executable, "-W", "always", str(Path(__file__).resolve()), "--open", str(path)]
    return cmd + (["--max-side", str(max_side)] if max_side else [])


def _open_one(path: str, max_side: int | None) -> None:
    """The measured child: open_image at default settings, saying what happened (warnings shown: -W always)."""
    from artspace.errors import UnreadableImage
    from artspace.images import open_image

    try:
        print("decoded", open_image(path, max_side=max_side).size)
    except UnreadableImage as e:
        print("refused:", e)


def _small_images(folder: Path) -> None:
    from PIL import Image

    for i, colour in enumerate(["red", "green", "blue", "white"]):
        Image.new("RGB", (300 + 40 * i, 240), colour).save(folder / f"small-{i}.{'png' if i % 2 else 'jpg'}")


def _report(label: str, cmd: list[str], figures: tuple[float, float, int, str], baseline: float = 0.0) -> float:
    mib, wall, rc, last = figures
    extra = f" ({mib - baseline:+,.0f} MiB over the baseline)" if baseline else ""
    print(f"{label}\n  $ {shlex.join(cmd)}\n  peak RSS {mib:,.0f} MiB{extra}, {wall:.1f} s, exit {rc}: {last[:400]}")
    return mib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=30000, help="side of the square bomb PNG (default 30000)")
    ap.add_argument("--index", action="store_true", help="also time a full `artspace index` run over the folder")
    ap.add_argument("--all-modes", action="store_true", help="also at-limit RGBA and 16-bit grey images")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--open", metavar="PATH", help=argparse.SUPPRESS)  # the child that one measurement runs
    ap.add_argument("--max-side", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.open:
        return _open_one(args.open, args.max_side)

    from artspace.images import MAX_PIXELS

    tmp = Path(tempfile.mkdtemp(prefix="artspace-hostile-"))
    folder, limit_dir = tmp / "collection", tmp / "at-limit"
    folder.mkdir()
    limit_dir.mkdir()
    t = time.perf_counter()
    bomb = write_png(folder / "bomb.png", args.side, args.side, "RGB")
    _small_images(folder)
    print(f"wrote {bomb} ({bomb.stat().st_size / 2**20:.1f} MiB on disk, {args.side}x{args.side} RGB) in "
          f"{time.perf_counter() - t:.1f} s; MAX_PIXELS = {MAX_PIXELS:,}")

    baseline = [sys.executable, "-c", "import artspace.images"]
    base = _report("baseline: import artspace.images (torch, numpy, Pillow)", baseline, peak_mib(baseline))
    _report("bomb, open_image at default settings", _open_cmd(bomb, None), peak_mib(_open_cmd(bomb, None)), base)
    side = math.isqrt(MAX_PIXELS)  # the largest square the default limit lets through
    for mode in ["RGB", "RGBA", "I;16"] if args.all_modes else ["RGB"]:
        at_limit = write_png(limit_dir / f"at-limit-{mode.replace(';', '')}.png", side, side, mode)
        for max_side, how in [(448, "max_side=448, as index reads it"), (None, "full size")]:
            cmd = _open_cmd(at_limit, max_side)
            _report(f"{side}x{side} {mode} image at the limit, open_image {how}", cmd, peak_mib(cmd), base)
        at_limit.unlink()
    if args.index:
        cmd = [sys.executable, "-m", "artspace.cli", "index", str(folder), "-q"]
        _report("full index of the bomb's folder", cmd, peak_mib(cmd))
    if not args.keep:
        import shutil

        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
