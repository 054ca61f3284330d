"""Feed-forward pastiches: speed, quality against Gatys L-BFGS, and the comparisons of docs/transfer.md.

Usage::

    python benchmarks/bench_feedforward.py speed --model starry.pt            # ~2 min on 2 CPU cores
    python benchmarks/bench_feedforward.py quality --model starry.pt --style starry_night   # ~10 min
    python benchmarks/bench_feedforward.py adain-quality                      # the 20 shared pairs, ~25 min
    python benchmarks/bench_feedforward.py compare --steps 200 --size 128     # 9 short trainings, ~20 min
    python benchmarks/bench_feedforward.py schedule --steps 300 --size 128    # 2 short trainings, ~10 min
    python benchmarks/bench_feedforward.py refine --model a.pt --model b.pt   # ~3 min a photograph and network
    python benchmarks/bench_feedforward.py capacity --steps 1500 --every 250  # one photograph, ~40 min

``speed``: seconds per image of a style network at 512 and 1024 px and of AdaIN between two catalogued works at
512 px (the works' stored relu4_1 moments, the content's image read), float32 and bfloat16 side by side, the median
of --repeats runs after one warm-up. ``quality``: artspace's Gatys objective (α = 1, β = 10², no TV, the defaults of
``artspace transfer``) of the network's pastiche of each held-out photograph, and the first L-BFGS evaluation (from
the content image, 256 px) whose loss is at least as low. ``adain-quality``: the same for the shipped AdaIN decoder
on the 20 content × style pairs of ../shared/data/transfer, plus the gallery beside Gatys's. ``compare``: trains
the thesis's variants (instance vs batch norm, L1 vs L2, four TV weights, four style/content ratios) and makes the
strips of docs/images/feedforward/. ``schedule``: the same network trained with a constant and with a cosine
learning rate (``--lr-schedule``), each scored like ``quality`` on the held-out photographs. ``refine``: Gatys
L-BFGS started from each network's pastiche (``artspace transfer --init PASTICHE``) instead of from the photograph,
and the first of its evaluations whose loss is at least as low as 50 evaluations from the photograph reach.
``capacity``: a network trained on the one photograph it is scored on, scored every --every steps: whether the
architecture can reach L-BFGS's loss at all.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from artspace.feedforward import adain_transfer, stylise, train_style  # noqa: E402
from artspace.feedforward.inference import default_decoder  # noqa: E402
from artspace.transfer import synthesise  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from transfer_pictures import CONTENTS, STYLES, C, S, strip  # noqa: E402

DATA = Path(os.environ.get("ARTSPACE_DATA", "/work/shared/data"))
PICTURES = ROOT / "docs" / "images" / "feedforward"


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up: weights loaded, kernels chosen
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def speed(model: Path, repeats: int) -> None:
    from artspace.catalog import Catalog, index

    photo = Image.open(C("tubingen")).convert("RGB")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores")
    print("| what | precision | 512 px s | 1024 px s |")
    print("|---|---|---:|---:|")
    for precision in ("float32", "bfloat16"):
        row = []
        for side in (512, 1024):
            im = photo.resize((side, round(side * photo.height / photo.width)), Image.LANCZOS)
            row.append(_timed(lambda: stylise(model, im, device="cpu", precision=precision), repeats))
        print(f"| style network (stylise) | {precision} | {row[0]:.3f} | {row[1]:.3f} |", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        coll = Path(tmp) / "works"
        coll.mkdir()
        for name in CONTENTS:
            shutil.copy(C(name), coll / f"{name}.jpg")
        for name in STYLES:
            shutil.copy(S(name), coll / f"{name}.jpg")
        index(coll, quiet=True)
        with Catalog.open(coll) as cat:
            assert cat.moments("starry_night.jpg") is not None
            for precision in ("float32", "bfloat16"):
                t = _timed(lambda: cat.transfer("tubingen.jpg", "starry_night.jpg", method="adain", size=512,
                                                device="cpu", precision=precision), repeats)
                print(f"| AdaIN, two catalogued works (Catalog.transfer) | {precision} | {t:.3f} | |", flush=True)


def _gatys_curve(content: Path, style: Path, work: Path, name: str, n: int, init: str = "content") -> list[float]:
    r = synthesise(content, style, size=256, iterations=n, tolerance=0, seed=0, init=init,
                   output=work / f"{name}-gatys-{init}.png", progress=False)
    return list(r.history)


def _held_out(cname: str) -> Image.Image:
    """The held-out photograph *cname* with its long side at 256 px (Lanczos), as the networks are scored."""
    photo = Image.open(C(cname)).convert("RGB")
    return photo.resize((256, round(256 * photo.height / photo.width)) if photo.width >= photo.height
                        else (round(256 * photo.width / photo.height), 256), Image.LANCZOS)


def _loss_of(image: Image.Image, content: Path, style: Path, work: Path, name: str) -> float:
    """Artspace's Gatys objective of *image*: the first evaluation of a transfer that starts from it."""
    path = work / f"{name}-start.png"
    image.save(path)
    r = synthesise(content, style, size=256, iterations=1, init=path, seed=0, progress=False)
    return float(r.history[0])


def _matches(curve: list[float], loss: float) -> str:
    for k, value in enumerate(curve, start=1):
        if value <= loss:
            return str(k)
    return f"> {len(curve)}"


def quality(model: Path, style_name: str, iterations: int, work: Path, init: str = "content") -> None:
    """*init*: where the reference L-BFGS starts, ``content`` (the photograph: what ``artspace transfer`` does, and
    the issue's target) or ``noise`` (white noise, seed 0: Gatys et al. 2016's start)."""
    work.mkdir(parents=True, exist_ok=True)
    print(f"L-BFGS from {init}")
    print("| photograph | network loss | L-BFGS loss at 50 | L-BFGS evaluation it matches | network s |")
    print("|---|---:|---:|---:|---:|")
    rows = []
    for cname in CONTENTS:
        content, style = C(cname), S(style_name)
        r = stylise(model, _held_out(cname), device="cpu")[0]
        loss = _loss_of(r.image, content, style, work, cname)
        curve = _gatys_curve(content, style, work, cname, iterations, init)
        at50 = curve[49] if len(curve) >= 50 else float("nan")
        rows.append({"content": cname, "init": init, "network": loss, "gatys50": at50,
                     "matches": _matches(curve, loss)})
        print(f"| {cname} | {loss:.4g} | {at50:.4g} | {rows[-1]['matches']} | {r.elapsed_s:.3f} |", flush=True)
        r.image.save(work / f"{cname}-network.png")
    (work / f"quality-{init}.json").write_text(json.dumps(rows, indent=1))


def adain_quality(iterations: int, work: Path, decoder: Path | None) -> None:
    work.mkdir(parents=True, exist_ok=True)
    print("| pair | AdaIN loss | L-BFGS evaluation it matches | AdaIN s |")
    print("|---|---:|---:|---:|")
    rows = []
    for cname in CONTENTS:
        panels = [(Image.open(C(cname)), cname)]
        for sname in STYLES:
            r = adain_transfer(C(cname), S(sname), size=256, decoder=decoder, device="cpu")
            name = f"{cname}-{sname}"
            loss = _loss_of(r.image, C(cname), S(sname), work, name)
            curve = _gatys_curve(C(cname), S(sname), work, name, iterations)
            rows.append({"pair": name, "adain": loss, "matches": _matches(curve, loss), "seconds": r.elapsed_s})
            print(f"| {cname} × {sname} | {loss:.4g} | {rows[-1]['matches']} | {r.elapsed_s:.3f} |", flush=True)
            panels.append((r.image, sname))
        strip(panels, PICTURES / f"adain-{cname}.jpg", height=160)
    (work / "adain_quality.json").write_text(json.dumps(rows, indent=1))


def refine(models: list[Path], style_name: str, iterations: int, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    print("| photograph | network | L-BFGS loss at 50 from the photograph | network loss | evaluations from the "
          "pastiche to reach it | their seconds | 50 from the photograph, seconds |")
    print("|---|---|---:|---:|---:|---:|---:|")
    rows = []
    for cname in CONTENTS:
        content, style = C(cname), S(style_name)
        base = synthesise(content, style, size=256, iterations=50, tolerance=0, seed=0, progress=False)
        target = float(base.history[-1])
        for model in models:
            start = work / f"{cname}-{model.stem}-start.png"
            stylise(model, _held_out(cname), device="cpu")[0].image.save(start)
            r = synthesise(content, style, size=256, iterations=iterations, tolerance=0, init=start, seed=0,
                           progress=False)
            hist = [float(v) for v in r.history]
            k = next((i for i, v in enumerate(hist, start=1) if v <= target), None)
            # the loop's time to evaluation k, at the run's own pace
            secs = r.elapsed_s * k / len(hist) if k else float("nan")
            rows.append({"content": cname, "model": model.name, "target": target, "start": hist[0],
                         "evaluations": k, "seconds": secs, "base_seconds": base.elapsed_s})
            print(f"| {cname} | {model.name} | {target:.4g} | {hist[0]:.4g} | {k or f'> {len(hist)}'} | "
                  f"{secs:.1f} | {base.elapsed_s:.1f} |", flush=True)
    (work / "refine.json").write_text(json.dumps(rows, indent=1))


VARIANTS = {
    # name: (options, caption); the default network is instance norm, L2 terms, λ = 1e4, β = 1e2
    "default": ({}, "instance, l2, tv 1e4, beta 1e2"),
    "batch": ({"norm": "batch"}, "--norm batch"),
    "l1": ({"content_loss": "l1", "style_loss": "l1", "style_weight": 10.0}, "l1 terms, beta 10"),
    "tv0": ({"tv_weight": 0.0}, "--tv-weight 0"),
    "tv1e3": ({"tv_weight": 1e3}, "1e3"),
    "tv1e5": ({"tv_weight": 1e5}, "1e5"),
    "beta1e1": ({"style_weight": 1e1}, "--style-weight 1e1"),
    "beta1e3": ({"style_weight": 1e3}, "1e3"),
    "beta1e4": ({"style_weight": 1e4}, "1e4"),
}


def compare(steps: int, size: int, batch_size: int, work: Path, style_name: str) -> None:
    work.mkdir(parents=True, exist_ok=True)
    photo = Image.open(C("tubingen")).convert("RGB")
    photo = photo.resize((384, round(384 * photo.height / photo.width)), Image.LANCZOS)
    out = {}
    print("| variant | final loss terms (mean of last 50 steps) | minutes |")
    print("|---|---|---:|")
    for name, (options, caption) in VARIANTS.items():
        model = work / f"{name}.pt"
        if not model.exists():
            r = train_style([S(style_name)], DATA / "photos-train", model, steps=steps, size=size,
                            batch_size=batch_size, seed=0, progress=False, **options)
            print(f"| {caption} | " + ", ".join(f"{k} {v:.3g}" for k, v in r.losses.items())
                  + f" | {r.elapsed_s / 60:.1f} |", flush=True)
        out[name] = (stylise(model, photo, device="cpu")[0].image, caption)
    style = (Image.open(S(style_name)), style_name)
    strip([(photo, "content"), style, out["default"], out["batch"]], PICTURES / "norm.jpg", height=160)
    strip([out["default"], out["l1"]], PICTURES / "loss.jpg", height=160)
    strip([out["tv0"], out["tv1e3"], out["default"], out["tv1e5"]], PICTURES / "tv.jpg", height=160)
    strip([out["beta1e1"], out["default"], out["beta1e3"], out["beta1e4"]], PICTURES / "ratio.jpg", height=160)


def schedule(steps: int, size: int, batch_size: int, work: Path, style_name: str) -> None:
    """The same network trained with a constant learning rate and with the cosine decay, scored on the four
    held-out photographs by the Gatys objective of ``quality``."""
    work.mkdir(parents=True, exist_ok=True)
    print(f"| --lr-schedule | {' | '.join(CONTENTS)} | mean | training minutes |")
    print("|---|" + "---:|" * (len(CONTENTS) + 2))
    for name in ("constant", "cosine"):
        model = work / f"{name}-{steps}-{size}.pt"
        minutes = "(trained before)"
        if not model.exists():
            r = train_style([S(style_name)], DATA / "photos-train", model, steps=steps, size=size,
                            style_size=size, batch_size=batch_size, seed=0, lr_schedule=name, progress=False)
            minutes = f"{r.elapsed_s / 60:.1f}"
        scores = []
        for cname in CONTENTS:
            pastiche = stylise(model, _held_out(cname), device="cpu")[0].image
            scores.append(_loss_of(pastiche, C(cname), S(style_name), work, f"{name}-{cname}"))
        print(f"| {name} | " + " | ".join(f"{v:.3g}" for v in scores)
              + f" | {statistics.mean(scores):.3g} | {minutes} |", flush=True)


def capacity(steps: int, every: int, lr: float, work: Path, style_name: str, photo_name: str = "tubingen",
             bounded: bool = False, width: float = 1.0, skip: bool = False) -> None:
    """Whether the network can reach L-BFGS's loss at all: a TransformNet trained on the one photograph it is
    scored on (*photo_name* at 256 px, batch 1, float32, the training objective of ``train_style``), its Gatys loss
    every *every* steps against the L-BFGS curve on the same pair. A network that cannot match 50 evaluations even
    here is held back by what it can represent, not by its training data or budget. The pastiche scored is the
    output clipped to [0, 1], as ``stylise`` writes it (L-BFGS too keeps its image there); *bounded* trains on that
    clipped output (no gradient beyond the bounds) rather than on the raw one, as ``train_style`` does. *width*
    multiplies every layer's channels (1: the network of ``train_style``)."""
    from artspace import losses
    from artspace.backbone import VGG19
    from artspace.feedforward import TransformNet
    from artspace.feedforward.training import DEFAULT_STYLE_NET_WEIGHTS, style_net_terms
    from artspace.images import open_image, to_pil, to_tensor
    from artspace.spec import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS

    work.mkdir(parents=True, exist_ok=True)
    content, style = C(photo_name), S(style_name)
    curve = _gatys_curve(content, style, work, photo_name, 100)
    print(f"L-BFGS from the photograph: {curve[9]:.4g} after 10, {curve[49]:.4g} after 50, {curve[99]:.4g} after 100 "
          "evaluations", flush=True)
    torch.manual_seed(0)
    x = to_tensor(_held_out(photo_name))[None]
    vgg = VGG19(last_layer="relu5_1")
    layers = [DEFAULT_CONTENT_LAYER, *DEFAULT_STYLE_LAYERS]
    content_loss, style_loss = losses.ContentLoss([DEFAULT_CONTENT_LAYER]), losses.StyleLoss(DEFAULT_STYLE_LAYERS)
    with torch.no_grad():
        content_loss.set_target(vgg(x, [DEFAULT_CONTENT_LAYER]))
        style_loss.set_target(vgg(to_tensor(open_image(style, max_side=256))[None], DEFAULT_STYLE_LAYERS))
    net = TransformNet(width=width, skip=skip)
    print(f"network: {sum(t.numel() for t in net.parameters()):,} parameters (width {width:g}, skip {skip})",
          flush=True)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    print("| step | training loss | loss of the output before clipping | Gatys loss of the network's pastiche | "
          "L-BFGS evaluation it matches | s a step |")
    print("|---:|---:|---:|---:|---:|---:|")
    t = time.perf_counter()
    for step in range(1, steps + 1):
        y = net(x).clamp(0, 1) if bounded else net(x)
        total = sum(style_net_terms(y, vgg(y, layers), content_loss, style_loss, DEFAULT_STYLE_NET_WEIGHTS).values())
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if step % every == 0 or step == steps:
            pace = (time.perf_counter() - t) / step
            with torch.no_grad():
                out = net(x)
                terms = style_net_terms(out, vgg(out, layers), content_loss, style_loss, DEFAULT_STYLE_NET_WEIGHTS)
                raw = terms["content"] + terms["style"]
                image = to_pil(out.clamp(0, 1)[0])
            loss = _loss_of(image, content, style, work, f"{photo_name}-capacity-{step}")
            print(f"| {step} | {total.item():.4g} | {raw.item():.4g} | {loss:.4g} | {_matches(curve, loss)} | "
                  f"{pace:.2f} |", flush=True)
            image.save(work / f"{photo_name}-capacity-{step}.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["speed", "quality", "adain-quality", "compare", "schedule", "refine",
                                     "capacity"])
    ap.add_argument("--model", type=Path, action="append", help="a style network (speed, quality; refine takes "
                    "several)")
    ap.add_argument("--decoder", type=Path, default=None, help="AdaIN decoder (default: the shipped one)")
    ap.add_argument("--style", default="starry_night", help="the network's style (quality, compare)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=100, help="L-BFGS evaluations of the reference curve")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--every", type=int, default=250, help="capacity: score the network every N steps")
    ap.add_argument("--lr", type=float, default=1e-3, help="capacity: Adam's learning rate")
    ap.add_argument("--bounded", action="store_true", help="capacity: train on the output clipped to [0, 1]")
    ap.add_argument("--width", type=float, default=1.0, help="capacity: times the network's channels")
    ap.add_argument("--skip", action="store_true", help="capacity: add the photograph to the network's output")
    ap.add_argument("--work", type=Path, default=Path("/tmp/artspace-feedforward"))
    ap.add_argument("--init", choices=["content", "noise"], default="content",
                    help="quality: start the reference L-BFGS from the photograph (default) or from white noise")
    a = ap.parse_args()
    if a.what in ("speed", "quality", "refine") and not a.model:
        ap.error(f"{a.what} needs --model")
    print(f"decoder: {a.decoder or default_decoder()}")
    model = a.model[-1] if a.model else None
    if a.what == "speed":
        speed(model, a.repeats)
    elif a.what == "quality":
        quality(model, a.style, a.iterations, a.work / "quality", a.init)
    elif a.what == "refine":
        refine(a.model, a.style, a.iterations, a.work / "refine")
    elif a.what == "adain-quality":
        adain_quality(a.iterations, a.work / "adain", a.decoder)
    elif a.what == "schedule":
        schedule(a.steps, a.size, a.batch_size, a.work / "schedule", a.style)
    elif a.what == "capacity":
        capacity(a.steps, a.every, a.lr, a.work / ("capacity-bounded" if a.bounded else "capacity"), a.style,
                 bounded=a.bounded, width=a.width, skip=a.skip)
    else:
        compare(a.steps, a.size, a.batch_size, a.work / "compare", a.style)


if __name__ == "__main__":
    main()
