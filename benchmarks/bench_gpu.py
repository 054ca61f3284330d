"""The GPU figures of docs/scaling.md and docs/transfer.md, in one run on a machine with a CUDA GPU (and Ray for the
last one).

    python benchmarks/bench_gpu.py --out /tmp/gpu           # ~5 minutes on one H100
    python benchmarks/bench_gpu.py --stages feedforward,transfer --device cpu --n 16   # the same code on a CPU

Needs no data: it writes its own JPEGs (noise and shapes, so that decoding costs what a photograph's does). Prints:

1. ``artspace index`` images/s end to end from JPEG files at 224 and 512 px (bfloat16, batch size from free
   memory), against the plain float32 loop on the same GPU;
2. ``artspace transfer`` 500 L-BFGS evaluations at 512 px: seconds (float32);
3. ``stylise`` and AdaIN milliseconds per image at 512 and 1024 px;
4. ``index --engine ray`` with one GPU actor (skipped without Ray).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_jpegs(folder: Path, n: int, side: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        a = (rng.normal(128, 40, (side, side, 3)).clip(0, 255)).astype(np.uint8)
        im = Image.fromarray(a)
        d = ImageDraw.Draw(im)
        for _ in range(6):
            x, y = rng.integers(0, side, 2)
            d.ellipse([x, y, x + side // 4, y + side // 5], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        im.save(folder / f"{i:05d}.jpg", quality=90)


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def index_speed(out: Path, n: int, device: str, compiled_too: bool, sides=(224, 512)) -> None:
    from artspace.backbone import VGG19
    from artspace.catalog import index
    from artspace.features import FeatureSpec
    from artspace.images import open_image, to_tensor

    for side in sides:
        folder = out / f"jpegs{side}"
        if not folder.exists():
            make_jpegs(folder, n, side)
        paths = sorted(folder.iterdir())
        net = VGG19(last_layer="relu5_1").to(device, memory_format=torch.channels_last)
        layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
        t = time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(paths), 64):
                x = torch.stack([to_tensor(open_image(p).resize((side, side))) for p in paths[i:i + 64]])
                net(x.to(device).contiguous(memory_format=torch.channels_last), layers)
        sync()
        plain = len(paths) / (time.perf_counter() - t)
        runs = (("float32", False), ("bfloat16", False)) + ((("bfloat16", True),) if compiled_too else ())
        for precision, compiled in runs:
            t = time.perf_counter()
            index(folder, catalog=out / f"cat{side}-{precision}-{compiled}", spec=FeatureSpec(size=side),
                  quiet=True, device=device, precision=precision, workers=8, compile=compiled)
            rate = len(paths) / (time.perf_counter() - t)
            print(f"index {side} px {precision}{' torch.compile (compilation included)' if compiled else ''}: "
                  f"{rate:.0f} img/s end to end (plain float32 loop {plain:.0f} img/s)", flush=True)


def transfer_speed(out: Path, device: str, iterations: int) -> None:
    from artspace.transfer import synthesise

    make_jpegs(out / "pair", 2, 512)
    c, s = sorted((out / "pair").iterdir())
    t = time.perf_counter()
    r = synthesise(c, s, size=512, iterations=iterations, tolerance=0, seed=0, device=device, precision="float32",
                   progress=False)
    print(f"transfer 512 px, {iterations} evaluations: {time.perf_counter() - t:.1f} s ({r.evaluations} evaluations, "
          "float32)", flush=True)


def feedforward_speed(out: Path, device: str) -> None:
    from artspace.feedforward import TransformNet, adain_transfer, stylise
    from artspace.feedforward.models import save_model

    model = save_model(out / "net.pt", "style", TransformNet(), {"architecture": {"norm": "instance"}})
    for side in (512, 1024):
        im = Image.fromarray(np.random.default_rng(0).integers(0, 255, (side, side, 3), dtype=np.uint8))
        for precision in ("float32", "bfloat16"):
            stylise(model, im, device=device, precision=precision)
            times = []
            for _ in range(10):
                sync()
                t = time.perf_counter()
                stylise(model, im, device=device, precision=precision)
                sync()
                times.append(time.perf_counter() - t)
            ada = []
            for _ in range(10):
                t = time.perf_counter()
                adain_transfer(im, im, size=side, device=device, precision=precision)
                ada.append(time.perf_counter() - t)
            print(f"{side} px {precision}: stylise {1000 * statistics.median(times):.1f} ms, AdaIN "
                  f"{1000 * statistics.median(ada[1:]):.1f} ms per image", flush=True)


def ray_speed(out: Path, n: int) -> None:
    """``index --engine ray`` on the 224 px JPEGs of the index stage (made here if that stage did not run), with the
    actors Ray gives this machine; its style neighbours and distances against the local bfloat16 catalog's."""
    try:
        import ray
    except ImportError:
        print("ray: not installed, skipped")
        return
    from artspace.catalog import Catalog, index

    folder = out / "jpegs224"
    if not folder.exists():
        make_jpegs(folder, n, 224)
    ray.init(include_dashboard=False, log_to_driver=False)
    resources = ray.cluster_resources()
    print(f"ray {ray.__version__}: {resources.get('GPU', 0):.0f} GPU(s), {resources.get('CPU', 0):.0f} CPU(s)",
          flush=True)
    t = time.perf_counter()
    index(folder, catalog=out / "cat-ray", quiet=True, engine="ray", precision="bfloat16")
    count = sum(1 for _ in folder.iterdir())
    print(f"index --engine ray, 224 px bfloat16: {count / (time.perf_counter() - t):.0f} img/s end to end "
          f"({count} JPEGs)", flush=True)
    local = out / "cat224-bfloat16-False"
    if local.exists():  # the index stage's local catalog of the same JPEGs: the same neighbours?
        d = []
        for path in (out / "cat-ray", local):
            ids, v = Catalog.open(path).embeddings()
            v = v[np.argsort(ids)].astype(np.float64)
            d.append(((v[:, None] - v[None]) ** 2).sum(-1) + np.diag(np.full(len(v), np.inf)))
        near = [np.argsort(x, 1)[:, :10] for x in d]
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(*near)])
        finite = np.isfinite(d[0])
        print(f"ray vs local catalog (style): recall@10 {recall:.3f}, correlation of the distances "
              f"{np.corrcoef(d[0][finite], d[1][finite])[0, 1]:.6f}", flush=True)


STAGES = ("index", "transfer", "feedforward", "ray")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("/tmp/artspace-gpu"))
    ap.add_argument("--n", type=int, default=4096, help="JPEGs per size for the indexing figures")
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    ap.add_argument("--iterations", type=int, default=500, help="L-BFGS evaluations of the transfer figure")
    ap.add_argument("--sizes", default="224,512", help="image sides of the indexing figures, comma-separated")
    ap.add_argument("--no-compile", action="store_true", help="leave out the torch.compile indexing run")
    ap.add_argument("--device", default="cuda", help="cuda (the point of it), or cpu to check the script itself")
    a = ap.parse_args()
    stages = [s.strip() for s in a.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        sys.exit(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no CUDA GPU: this benchmark measures the GPU paths (--device cpu checks the script itself)")
    print(torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "CPU", torch.__version__, flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    if "feedforward" in stages:
        feedforward_speed(a.out, a.device)
    if "transfer" in stages:
        transfer_speed(a.out, a.device, a.iterations)
    if "index" in stages:
        index_speed(a.out, a.n, a.device, not a.no_compile, tuple(int(s) for s in a.sizes.split(",")))
    if "ray" in stages:
        ray_speed(a.out, a.n)


if __name__ == "__main__":
    main()
