"""Make the pictures of docs/transfer.md: one strip per option, and the gallery of the shared transfer pairs.

Usage::

    python benchmarks/transfer_pictures.py options   # docs/images/transfer/opt-*.jpg   (~20 min on 2 CPU cores)
    python benchmarks/transfer_pictures.py gallery --jobs 2  # docs/images/transfer/gallery-*.jpg (~1 h on 2 cores)

Every picture is made with the public API (:func:`artspace.transfer.synthesise`), the settings of each panel are in
its caption, and each run's sidecar JSON is kept in --work (default /tmp/artspace-pictures).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from artspace.transfer import reconstruct, synthesise  # noqa: E402

DATA = Path(os.environ.get("ARTSPACE_TRANSFER_DATA", "/work/shared/data/transfer"))
OUT = ROOT / "docs" / "images" / "transfer"
CONTENTS = ("tubingen", "golden_gate", "chicago", "hoovertowernight")
STYLES = ("starry_night", "the_scream", "wave", "composition_vii", "shipwreck")


def C(name):
    return DATA / "content" / f"{name}.jpg"


def S(name):
    return DATA / "style" / f"{name}.jpg"


def strip(panels: list[tuple[Image.Image, str]], path: Path, height: int = 128) -> None:
    """Panels side by side, each captioned underneath; saved as a small JPEG."""
    ims = [im.resize((round(im.width * height / im.height), height), Image.LANCZOS) for im, _ in panels]
    cap = 14
    W = sum(im.width for im in ims) + 4 * (len(ims) - 1)
    sheet = Image.new("RGB", (W, height + cap), "white")
    d = ImageDraw.Draw(sheet)
    x = 0
    for im, (_, text) in zip(ims, panels):
        sheet.paste(im, (x, 0))
        d.text((x + 2, height + 1), text[: max(8, im.width // 6)], fill=(0, 0, 0))
        x += im.width + 4
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=85, optimize=True)
    print(f"{path} {path.stat().st_size // 1024} KB", flush=True)


def run(work: Path, name: str, content, style, **kw):
    out = work / f"{name}.png"
    if out.exists() and not kw.get("save_every"):  # resume an interrupted batch
        return Image.open(out).convert("RGB")
    t = time.perf_counter()
    r = synthesise(content, style, seed=kw.pop("seed", 0), output=out, **kw)
    print(f"  {name}: {r.evaluations} evals, {time.perf_counter() - t:.0f} s, loss {r.losses.get('total', 0):.4g}",
          flush=True)
    return r.image


def options(work: Path, size: int, n: int) -> None:
    base = dict(size=size, iterations=n)
    c, s = C("tubingen"), S("starry_night")
    ref = run(work, "default", c, s, **base)
    orig = Image.open(c)
    strip([(orig, "content"), (Image.open(s), "style"), (ref, "defaults")], OUT / "opt-inputs.jpg")
    strip([(run(work, "sw1", c, s, style_weight=1, **base), "--style-weight 1"),
           (run(work, "sw10", c, s, style_weight=10, **base), "10"), (ref, "1e2 (default)"),
           (run(work, "sw1e3", c, s, style_weight=1e3, **base), "1e3")],
          OUT / "opt-style-weight.jpg")
    strip([(run(work, "cl22", c, s, content_layers=["relu2_2"], **base), "--content-layers relu2_2"),
           (ref, "relu4_2 (default)"),
           (run(work, "cl52", c, s, content_layers=["relu5_2"], **base), "relu5_2")], OUT / "opt-content-layers.jpg")
    strip([(run(work, "sl1", c, s, style_layers=["relu1_1"], **base), "relu1_1"),
           (run(work, "sl3", c, s, style_layers=["relu1_1", "relu2_1", "relu3_1"], **base), "relu1_1..3_1"),
           (ref, "relu1_1..5_1 (default)")], OUT / "opt-style-layers.jpg")
    strip([(ref, "w_l = 1/5 (default)"),
           (run(work, "slw", c, s, style_layer_weights=[100, 10, 1, 0.2, 0.2], **base), "100,10,1,.2,.2")],
          OUT / "opt-style-layer-weights.jpg")
    strip([(ref, "--tv-weight 0"), (run(work, "tv1", c, s, tv_weight=1e6, **base), "1e6"),
           (run(work, "tv2", c, s, tv_weight=1e7, **base), "1e7")], OUT / "opt-tv-weight.jpg")
    strip([(ref, "--loss l2"), (run(work, "l1", c, s, loss="l1", style_weight=1, **base), "l1, beta 1"),
           (run(work, "l1b", c, s, loss="l1", style_weight=10, **base), "l1, beta 10")], OUT / "opt-loss.jpg")
    strip([(ref, "lbfgs"), (run(work, "adam", c, s, optimizer="adam", **base), "adam lr .02"),
           (run(work, "adam2", c, s, optimizer="adam", lr=0.05, **base), "adam lr .05")], OUT / "opt-optimizer.jpg")
    run(work, "steps", c, s, save_every=max(1, n // 4), **base)
    frames = sorted(work.glob("steps-s1-*.png"))
    strip([(Image.open(f), f"eval {int(f.stem.split('-')[-1])}") for f in frames], OUT / "opt-iterations.jpg")
    strip([(ref, "--init content"), (run(work, "noise0", c, s, init="noise", **base), "noise, seed 0"),
           (run(work, "noise1", c, s, init="noise", seed=1, **base), "noise, seed 1"),
           (run(work, "istyle", c, s, init="style", **base), "style")], OUT / "opt-init.jpg")
    strip([(run(work, "ss05", c, s, style_scale=0.5, **base), "--style-scale 0.5"), (ref, "1 (default)"),
           (run(work, "ss2", c, s, style_scale=2.0, **base), "2")], OUT / "opt-style-scale.jpg")
    s2 = S("the_scream")
    strip([(ref, "starry night"),
           (run(work, "blend", c, [s, s2], style_blend=[0.5, 0.5], **base), "--style-blend .5,.5"),
           (run(work, "scream", c, s2, **base), "the scream")], OUT / "opt-style-blend.jpg")
    strip([(ref, "default"), (run(work, "pc", c, s, preserve_colors=True, **base), "--preserve-colors"),
           (run(work, "mh", c, s, match_histogram=True, **base), "--match-histogram")], OUT / "opt-colors.jpg")
    strip([(ref, f"1 level, {n} evals"),
           (run(work, "sc3", c, s, scales=3, iterations=[n, n // 2, n // 4], size=size), f"--scales 3 -n {n},{n//2},{n//4}")],
          OUT / "opt-scales.jpg")
    strip([(run(work, "big", c, s, size=2 * size, iterations=n), f"{2 * size} px whole"),
           (run(work, "tiled", c, s, size=2 * size, iterations=n // 2, scales=2, tile=size, tile_overlap=size // 4),
            f"--scales 2 --tile {size}")], OUT / "opt-tile.jpg", height=2 * size * 3 // 4)
    rec_c = [(reconstruct(c, only="content", layers=[l], size=size, iterations=n, seed=0).image, l)
             for l in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")]
    strip(rec_c, OUT / "reconstruct-content.jpg")
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    rec_s = [(reconstruct(s, only="style", layers=layers[: i + 1], size=size, iterations=n, seed=0).image,
              f"up to {layers[i]}") for i in range(5)]
    strip(rec_s, OUT / "reconstruct-style.jpg")


def _gallery_pair(work: Path, cname: str, sname: str, kw: dict, threads: int) -> str:
    import torch

    torch.set_num_threads(threads)
    run(work, f"g-{cname}-{sname}", C(cname), S(sname), **kw)
    return f"{cname} x {sname}"


def gallery(work: Path, size: int | None, n: int | None, jobs: int = 1) -> None:
    kw = {}
    if size:
        kw["size"] = size
    if n:
        kw["iterations"] = n
    if jobs > 1:
        # pairs in `jobs` processes side by side, the cores shared out (on 2 cores two one-thread runs outpace one
        # two-thread run); each result is saved as it finishes, so the strips below only read them back
        from concurrent.futures import ProcessPoolExecutor

        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for done in pool.map(_gallery_pair, *zip(*[(work, c, s, kw, threads) for c in CONTENTS for s in STYLES])):
                print(f"  done: {done}", flush=True)
    rows = []
    for cname in CONTENTS:
        panels = [(Image.open(C(cname)), cname)]
        for sname in STYLES:
            panels.append((run(work, f"g-{cname}-{sname}", C(cname), S(sname), **kw), sname))
        strip(panels, OUT / f"gallery-{cname}.jpg", height=160)
        rows.append(cname)
    strip([(Image.open(S(s)), s) for s in STYLES], OUT / "gallery-styles.jpg", height=160)
    (work / "gallery.json").write_text(json.dumps({"settings": kw, "rows": rows}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["options", "gallery"])
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--work", type=Path, default=Path("/tmp/artspace-pictures"))
    ap.add_argument("--jobs", type=int, default=1, help="gallery: pairs run side by side in this many processes")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    if a.what == "options":
        options(a.work, a.size or 128, a.iterations or 60)
    else:
        gallery(a.work, a.size, a.iterations, a.jobs)
