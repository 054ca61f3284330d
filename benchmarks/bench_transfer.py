"""artspace transfer vs pastiche 1.6.0, side by side on one machine, both scored by one loss function.

Each tool runs as a command (whole run: start-up, weight loading, image loading, optimisation, saving), in
alternation so that both see the same machine load. The outputs are then scored by ONE function: artspace's loss
code configured as *pastiche's own objective* (same layers, same weights), so neither tool is scored on a loss it
did not optimise. With the weights of pastiche (content: 0.01 · mean (F−P)², style layer l: 10/N_l² · mean over
the N_l² entries of (Ĝ−Â)²), that objective is, in the seeds' terms,

    α = 0.02 / (N_c M_c) on ½Σ(F−P)² at relu4_2,   β w_l = 40 / N_l² on E_l at relu1_1 … relu5_1.

artspace runs with exactly these weights (``--content-weight``, ``--style-layer-weights``) and with the style image
at pastiche's size (same pixel count as the content), so both minimise the same function of the same targets.

Usage::

    python benchmarks/bench_transfer.py --pairs tubingen:starry_night --out /tmp/bench   # ~20-40 min on 2 cores

Prints a Markdown table and writes results.json in --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(os.environ.get("ARTSPACE_TRANSFER_DATA", "/work/shared/data/transfer"))
ROOT = Path(__file__).resolve().parents[1]
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512, "relu5_1": 512}


def pastiche_geometry(content: Path, style: Path, size: int):
    """Output (w, h) and style long side as pastiche 1.6.0 computes them (style pixels = content pixels)."""
    from PIL import Image

    w, h = Image.open(content).size
    if w > h:
        cw, ch = size, int(round(size / w * h))
    elif w < h:
        cw, ch = int(round(size / h * w)), size
    else:
        cw = ch = size
    sw, sh = Image.open(style).size
    pixels = cw * ch
    sh_ = int(round(math.sqrt(pixels * sh / sw)))
    sw_ = int(round(sw / sh * sh_))
    return (cw, ch), max(sw_, sh_)


def objective_weights(out_hw):
    """pastiche's objective as artspace weights: (content_weight, style_weight, style_layer_weights)."""
    h, w = out_hw
    m_c = (h // 8) * (w // 8)  # relu4_2 positions after three 2x2 poolings
    return 0.02 / (512 * m_c), 1.0, [40.0 / CHANNELS[n] ** 2 for n in STYLE_LAYERS]


def score(image_path: Path, content: Path, style: Path, style_side: int) -> dict:
    """The one loss function: artspace's losses with pastiche's weights, on the saved 8-bit image."""
    import torch
    from PIL import Image

    from artspace.backbone import VGG19
    from artspace.images import open_image, to_tensor
    from artspace.losses import ContentLoss, StyleLoss

    im = Image.open(image_path).convert("RGB")
    w, h = im.size
    x = to_tensor(im).unsqueeze(0)
    c = to_tensor(open_image(content).resize((w, h), Image.BILINEAR)).unsqueeze(0)
    s_im = open_image(style)
    sw, sh = s_im.size
    k = style_side / max(sw, sh)
    s = to_tensor(s_im.resize((round(sw * k), round(sh * k)), Image.BILINEAR)).unsqueeze(0)
    alpha, beta, wl = objective_weights((h, w))
    net = VGG19("original", last_layer="relu5_1")
    cl, sl = ContentLoss(["relu4_2"]), StyleLoss(STYLE_LAYERS, wl)
    with torch.no_grad():
        cl.set_target(net(c, ["relu4_2"]))
        sl.set_target(net(s, STYLE_LAYERS))
        f = net(x, ["relu4_2"] + STYLE_LAYERS)
        lc = float(sum(cl(f).values()))
        ls = float(sum(sl(f).values()))
    return {"total": alpha * lc + beta * ls, "content": alpha * lc, "style": beta * ls}


def run(cmd: list[str], env=None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default="tubingen:starry_night", help="content:style names, comma-separated")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path("/tmp/artspace-bench"))
    ap.add_argument("--scales-runs", default="2:150,100;3:100,100,80",
                    help="artspace pyramid runs scales:iterations, ';'-separated")
    ap.add_argument("--repeat", type=int, default=1, help="repeat the 100-iteration pair this many times")
    ap.add_argument("--no-300", action="store_true", help="skip pastiche's 300-step run and the pyramid runs")
    ap.add_argument("--precision-runs", default="",
                    help="extra artspace runs precision:iterations,..., ';'-separated, e.g. "
                         "'bfloat16:30,50,70;float32:30,50,70': which count reaches pastiche's 100-step loss first")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    py = sys.executable
    pastiche = [str(Path(py).with_name("pastiche"))]
    results = {"machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
                           "load_at_start": os.getloadavg()[0]}, "runs": []}
    for pair in args.pairs.split(","):
        cname, sname = pair.split(":")
        content0, style0 = DATA / "content" / f"{cname}.jpg", DATA / "style" / f"{sname}.jpg"
        (cw, ch), style_side = pastiche_geometry(content0, style0, args.size)
        # Both tools get the same pixels: the inputs resized once, as pastiche resizes them (Pillow bilinear), and
        # saved losslessly. Resampling alone (Lanczos vs bilinear, JPEG draft decoding) changes the style targets
        # enough that each tool's output scores ~4x worse on the other's targets (measured at 128 px).
        content, style = args.out / f"{cname}-{args.size}.png", args.out / f"{sname}-{style_side}.png"
        _pastiche_resize(content0, args.size).save(content)
        _pastiche_resize(style0, style_side).save(style)
        alpha, beta, wl = objective_weights((ch, cw))
        ours_common = [py, "-m", "artspace.cli", "transfer", str(content), str(style), "--size", str(args.size),
                       "--style-scale", repr(style_side / args.size), "--content-weight", repr(alpha),
                       "--style-weight", repr(beta), "--style-layer-weights", ",".join(map(repr, wl)),
                       "--seed", "0", "--tolerance", "0", "--quiet"]

        def ours(tag, extra):
            out = args.out / f"{cname}-{sname}-artspace-{tag}.png"
            return out, ours_common + ["-o", str(out)] + extra

        def theirs(steps):
            out = args.out / f"{cname}-{sname}-pastiche-{steps}.png"
            return out, pastiche + ["--device", "cpu", "--size", str(args.size), "--num-steps", str(steps),
                                    "-c", str(content), "-s", str(style), "-o", str(out), "--seed", "0",
                                    "--no-verbose"]

        plan = []
        for r in range(args.repeat):
            plan += [("pastiche", "100", theirs(100)), ("artspace", "100", ours(f"100-{r}", ["--iterations", "100"]))]
        if not args.no_300:
            plan.append(("pastiche", "300", theirs(300)))
        for spec in filter(None, "" if args.no_300 else args.scales_runs.split(";")):
            sc, its = spec.split(":")
            plan.append(("artspace", f"scales{sc}:{its}",
                         ours(f"scales{sc}", ["--scales", sc, "--iterations", its])))
        for spec in filter(None, args.precision_runs.split(";")):
            precision, counts = spec.split(":")
            for n in counts.split(","):
                plan.append(("artspace", f"{precision}:{n}",
                             ours(f"{precision}-{n}", ["--iterations", n, "--precision", precision])))
        for tool, tag, (out, cmd) in plan:
            load = os.getloadavg()[0]
            seconds = run(cmd, env)
            sc = score(out, content, style, style_side)
            row = {"pair": pair, "tool": tool, "run": tag, "seconds": round(seconds, 2), "load_before": load,
                   "loss": sc["total"], "content": sc["content"], "style": sc["style"], "output": str(out),
                   "command": " ".join(cmd)}
            results["runs"].append(row)
            print(json.dumps(row), flush=True)
            (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print("\n| pair | tool | run | whole run (s) | loss (pastiche's objective) |\n|---|---|---|---|---|")
    for r in results["runs"]:
        print(f"| {r['pair']} | {r['tool']} | {r['run']} | {r['seconds']:.1f} | {r['loss']:.5g} |")


def _pastiche_resize(path: Path, long_side: int):
    from PIL import Image

    im = Image.open(path).convert("RGB")
    (w, h), _ = pastiche_geometry(path, path, long_side)
    return im.resize((w, h), Image.BILINEAR)


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
