"""What teaching a style space buys on real collections, and what it costs at scale.

    python benchmarks/bench_teach.py quality CATALOG --column style --seeds 10 --figure docs/images/x.png
    python benchmarks/bench_teach.py scale --n 100000 --labels 10000
    python benchmarks/bench_teach.py reference --data ../shared/data/paintings-train --column style \
        --name "WikiArt movements" --save artspace/data/movement_axes.npz

``quality`` copies an indexed catalog (it is never written), then for each seed labels a random half of the works
with their *column* and hides the other half's, teaches ``taught:half`` on the labelled half
(:meth:`Catalog.teach <artspace.catalog.Catalog.teach>`, learner and settings chosen by its own cross-validation)
and measures on the unlabelled half, against their hidden labels: the same-label precision@10 of each work's 10
nearest works searching the whole collection (both halves), in the taught space and in the raw style space as
``similar --by style`` ranks it; and the top-1 accuracy of :meth:`Catalog.attribute`, with the reliability of its
probabilities. Intervals are bootstrap 95 % intervals over the unlabelled works of every seed pooled (2,000
resamples); ``sd`` is the spread of the per-seed means.

``scale`` builds a synthetic catalog of N works with the real embedding dimensions (as ``bench_catalog.py`` does:
no image is decoded), labels L of them with 20 labels that follow the style embedding, then times ``teach`` in a
fresh process and reads its peak resident memory (``VmHWM``).

``reference`` fits the reference axes that ``teach`` offers its learners (:mod:`artspace.reference`): it computes
the style-signature sketch of every image listed in DATA/metadata.csv (the default feature spec, the precision that
``artspace index`` uses by default) and fits Fisher's discriminant of *column* on their principal components, the
components and shrinkage chosen by 5-fold cross-validation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from artspace.catalog import Catalog  # noqa: E402


def _ci(values: np.ndarray, rng, n: int = 2000) -> tuple[float, float]:
    means = values[rng.integers(0, len(values), (n, len(values)))].mean(1)
    return tuple(float(v) for v in np.percentile(means, [2.5, 97.5]))


def _precision(cat: Catalog, by: str, queries: np.ndarray, truth: pd.Series) -> np.ndarray:
    _, nbr, _ = cat.neighbours(by, k=10, ids=queries)
    return (truth.reindex(nbr.ravel()).to_numpy().reshape(nbr.shape) == truth.loc[queries].to_numpy()[:, None]) \
        .mean(1)


def _reference_alone(cat: Catalog, truth: pd.Series) -> pd.Series | None:
    """Each work's same-label precision@10 searching the whole collection by its coordinates on the shipped
    reference axes alone (no label of the collection used), or None where the axes do not apply."""
    from artspace.analysis.teaching import _neighbours, _reference

    axes, _, _ = _reference(cat, True)
    if axes is None:
        return None
    emb = cat._embeddings()
    z = np.asarray(emb["style"], np.float64) @ axes
    ids = np.asarray(emb["ids"])
    y = truth.reindex(ids).to_numpy()
    nbr = _neighbours(z, np.arange(len(z)), 10)
    return pd.Series((y[nbr] == y[:, None]).mean(1), index=ids)


def quality(args) -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "catalog"
        shutil.copytree(args.catalog, work)
        cat = Catalog.open(work)
        truth = cat.works.set_index("id")[args.column].astype(str)
        ids = truth.index.to_numpy()
        per_seed, taught_p, raw_p, right, conf, methods, tried, ref_p = [], [], [], [], [], [], [], []
        reference = False if args.no_reference else True
        ref = _reference_alone(cat, truth) if reference else None
        for seed in range(args.seeds):
            perm = np.random.default_rng(seed).permutation(len(ids))
            hidden = np.sort(ids[perm[len(ids) // 2:]])
            half = truth.copy().astype(object)
            half.loc[hidden] = None
            cat.update_columns(pd.DataFrame({"half": half}), source=f"bench_teach seed {seed}")
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = cat.teach("half", seed=seed, reference=reference)
            seconds = time.perf_counter() - t
            tp = _precision(cat, "taught:half", hidden, truth)
            rp = _precision(cat, "style", hidden, truth)
            table = cat.attribute("half").set_index("id").loc[hidden]
            ok = (table["label_1"].to_numpy() == truth.loc[hidden].to_numpy())
            taught_p.append(tp)
            raw_p.append(rp)
            if ref is not None:
                ref_p.append(ref.loc[hidden].to_numpy())
            right.append(ok)
            conf.append(table["p_1"].to_numpy())
            methods.append(f"{result.method} {json.dumps(result.settings)}")
            best = result.candidates.groupby("method")["precision_at_10"].max()
            tried.append(best)
            per_seed.append((seed, tp.mean(), rp.mean(), ok.mean(), seconds, methods[-1]))
            print(f"seed {seed}: taught {tp.mean():.3f}, raw {rp.mean():.3f}, top-1 {ok.mean():.3f} "
                  f"({seconds:.1f} s, {methods[-1]})", flush=True)
    T, R, A, C = (np.concatenate(v) for v in (taught_p, raw_p, right, conf))
    seeds = np.array([s[1:4] for s in per_seed])
    print(f"\n# python {' '.join(sys.argv)}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {len(ids)} works, half labelled, {args.seeds} seeds")
    print(f"# reference axes offered: {'no' if args.no_reference else 'yes'}")
    print("| measured on the unlabelled half | mean | 95 % interval | sd over seeds |")
    print("| --- | ---: | ---: | ---: |")
    if ref_p:
        v = np.concatenate(ref_p)
        lo, hi = _ci(v, rng)
        print(f"| same-label precision@10, reference axes alone (no label used) | {v.mean():.3f} | [{lo:.3f}, "
              f"{hi:.3f}] | {np.std([r.mean() for r in ref_p]):.3f} |")
    for name, v, j in (("same-label precision@10, taught space", T, 0), ("same-label precision@10, raw style", R, 1),
                       ("top-1 attribution accuracy", A.astype(float), 2)):
        lo, hi = _ci(v, rng)
        print(f"| {name} | {v.mean():.3f} | [{lo:.3f}, {hi:.3f}] | {seeds[:, j].std():.3f} |")
    lo, hi = _ci(T - R, rng)
    print(f"| gain (taught − raw), paired | {np.mean(T - R):+.3f} | [{lo:+.3f}, {hi:+.3f}] | "
          f"{(seeds[:, 0] - seeds[:, 1]).std():.3f} |")
    print("\nlearner kept per seed:", "; ".join(methods))
    tried = pd.DataFrame(tried)
    print("best cross-validated precision@10 on the labelled half, per learner (mean over seeds):",
          ", ".join(f"{m} {v:.3f}" for m, v in tried.mean().items()))
    from artspace.analysis.teaching import calibration_table, reliability_figure

    # calibration_table bins the largest probability and checks its label: column 0 is the top label's probability,
    # and the truth is column 0 where the attribution was right
    cal = calibration_table(np.c_[C, np.zeros_like(C)], np.where(A, 0, 1))
    print("\ncalibration of the top label (unlabelled half, every seed):")
    print(cal.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    ece = np.nansum(cal["works"] * (cal["confidence"] - cal["accuracy"]).abs()) / cal["works"].sum()
    print(f"expected calibration error {ece:.3f}")
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        fig = reliability_figure(cal, title=f"{Path(args.catalog).name}: attributions of the unlabelled half "
                                            f"({args.seeds} seeds)")
        fig.savefig(args.figure, dpi=110)
        print(f"wrote {args.figure}")


_TEACH = """
import json, sys, time
sys.path.insert(0, {repo!r})
from artspace.catalog import Catalog
cat = Catalog.open({root!r})
t = time.perf_counter()
r = cat.teach("label")
seconds = time.perf_counter() - t
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({{"seconds": seconds, "vmhwm_mib": int(hwm) / 1024, "method": r.method, "settings": r.settings,
                  "candidates": len(r.candidates), "precision": float(r.figures.iloc[-1]["taught_precision"]),
                  "raw": float(r.figures.iloc[-1]["raw_precision"])}}))
"""


def scale(args) -> None:
    from bench_catalog import add_works, synthetic_log

    from artspace.catalog import index

    rng = np.random.default_rng(0)
    with (contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory()) as tmp:
        root = Path(tmp) / "collection"
        cdir = root / ".artspace"
        if not (cdir / "CURRENT").is_file():  # --keep: a catalog built by an earlier run is used again
            root.mkdir(parents=True)
            synthetic_log(cdir, rng)
            add_works(root, cdir, 0, args.n, 1, rng)
            t = time.perf_counter()
            index(root, quiet=True)
            print(f"# synthetic catalog of {args.n:,} works indexed in {time.perf_counter() - t:.0f} s (not counted)")
        cat = Catalog.open(root)
        ids, x = cat.embeddings("style")
        centres = x[rng.choice(len(x), 20, replace=False)]
        near = np.argmin(((x[:, None, :] - centres[None]) ** 2).sum(-1) if len(x) < 20_000 else
                         np.concatenate([((x[s:s + 20_000, None] - centres[None]) ** 2).sum(-1)
                                         for s in range(0, len(x), 20_000)]), axis=1)
        labels = pd.Series([f"label{i:02d}" for i in near], index=pd.Index(ids, name="id"), dtype=object)
        labels.iloc[rng.permutation(len(ids))[args.labels:]] = None
        cat.update_columns(pd.DataFrame({"label": labels}), source="bench_teach labels")
        out = subprocess.run([sys.executable, "-c", _TEACH.format(repo=str(REPO), root=str(root))],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"# python {' '.join(sys.argv)}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    print(f"teach: {args.n:,} works, {args.labels:,} labelled in 20 labels: {r['seconds']:.1f} s, peak resident "
          f"memory (VmHWM) {r['vmhwm_mib']:.0f} MiB; kept {r['method']} {r['settings']} among {r['candidates']} "
          f"settings; cross-validated precision@10 {r['precision']:.3f} (raw {r['raw']:.3f})")


def reference(args) -> None:
    from artspace.catalog.generation import Embedder
    from artspace.features import Extractor
    from artspace.reference import fit_reference, sketch_images, sketch_info
    from artspace.spec import FeatureSpec

    root = Path(args.data)
    meta = pd.read_csv(root / "metadata.csv")
    ex = Extractor(FeatureSpec(), precision=args.precision)
    sketch = Embedder(ex.spec, {}).sketches["style"]  # the sketch every catalog of the default spec makes
    t = time.perf_counter()
    x = sketch_images([root / p for p in meta["path"]], ex, sketch)
    print(f"{len(x)} sketches in {time.perf_counter() - t:.0f} s ({ex.precision})", flush=True)
    t = time.perf_counter()
    axes = fit_reference(x, meta[args.column], name=args.name, notify=print,
                         info={**sketch_info(ex, sketch), "column": args.column,
                               "fitted_on": f"{root.name}: {len(x)} images of {root}",
                               "command": "python " + " ".join(sys.argv)})
    print(f"fitted in {time.perf_counter() - t:.0f} s: {axes.info['pca']} components, shrinkage "
          f"{axes.info['shrinkage']}, cross-validated precision@10 {axes.info['cv_precision_at_10']:.3f}")
    print("grid (components/shrinkage: precision@10):", json.dumps(axes.info["cv_grid"]))
    axes.save(args.save)
    print(f"wrote {args.save} ({os.path.getsize(args.save) / 1e6:.2f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality", help="taught against raw on an indexed catalog, half its works labelled")
    q.add_argument("catalog")
    q.add_argument("--column", required=True)
    q.add_argument("--seeds", type=int, default=10)
    q.add_argument("--figure", help="write the reliability diagram here")
    q.add_argument("--no-reference", action="store_true", help="teach without reference axes")
    s = sub.add_parser("scale", help="time and memory of teach on a synthetic catalog")
    s.add_argument("--n", type=int, default=100_000)
    s.add_argument("--labels", type=int, default=10_000)
    s.add_argument("--keep", help="build the catalog in this folder and keep it (used again by the next run)")
    r = sub.add_parser("reference", help="fit the reference axes teach offers its learners")
    r.add_argument("--data", required=True, help="a folder with metadata.csv (path, label columns)")
    r.add_argument("--column", required=True)
    r.add_argument("--name", required=True, help="what the axes separate, in words")
    r.add_argument("--save", required=True)
    r.add_argument("--precision", default="auto")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    {"quality": quality, "scale": scale, "reference": reference}[args.what](args)


if __name__ == "__main__":
    main()
