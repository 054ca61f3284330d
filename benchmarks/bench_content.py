"""Does content search follow what is depicted rather than the hand? Pastiche sets made with artspace's own AdaIN,
and the content projection fitted on them, measured on held-aside pastiches, pacs-dev and the demo grid.

    python benchmarks/bench_content.py make --photos ../shared/data/photos-train \\
        --paintings ../shared/data/paintings-train --out /tmp/content          # fit and dev pastiche sets, indexed
    python benchmarks/bench_content.py measure --sets /tmp/content \\
        --pacs /tmp/cats/pacs --demo /tmp/cats/demo                          # before / after, bootstrap intervals

The fit set and the development set share no photograph and no painting. Every figure is precision@10 of an
exhaustive cosine search over the whole set (what `similar --by content` returns on an exact index), each work
a query, with a 95 % bootstrap interval over the queries.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from artspace.catalog import Catalog, index  # noqa: E402
from artspace.invariance import fit, pastiche_set  # noqa: E402


def descriptors(cat: Catalog) -> np.ndarray:
    """The works' raw content descriptors (pooled relu5_4), in id order, from the catalog's extraction log."""
    ids = np.asarray(cat.embeddings("content")[0])
    out = np.full((len(ids), 512), np.nan, np.float32)
    for shard in sorted((cat.dir / "log" / "shards").glob("part-*.npz")):
        with np.load(shard) as z:
            at = np.searchsorted(ids, z["id"])
            ok = (at < len(ids)) & (ids[np.minimum(at, len(ids) - 1)] == z["id"])
            out[at[ok]] = z["descriptor"][ok]
    assert np.isfinite(out).all()
    return out


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def precision(emb: np.ndarray, labels: np.ndarray, k: int = 10, rows=None, seed: int = 0):
    """Mean precision@k of *labels* (queries *rows*, default all) and its 95 % bootstrap interval."""
    e = unit(np.asarray(emb, np.float64))
    rows = np.arange(len(e)) if rows is None else np.asarray(rows)
    sims = e[rows] @ e.T
    sims[np.arange(len(rows)), rows] = -np.inf
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    valid = pd.notna(labels[rows])
    hits = (labels[top] == labels[rows][:, None]).mean(1)[valid]
    rng = np.random.default_rng(seed)
    boot = [hits[rng.integers(0, len(hits), len(hits))].mean() for _ in range(1000)]
    return float(hits.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def fmt(p) -> str:
    return f"{p[0]:.3f} [{p[1]:.3f}, {p[2]:.3f}]"


def make(args) -> None:
    out = Path(args.out)
    for name, skip, n, per, share in (("fit", 0, args.fit_photos, args.per_photo, (0, 2)),
                                      ("dev", args.fit_photos, args.dev_photos, args.dev_per_photo, (1, 2))):
        t = time.perf_counter()
        table = pastiche_set(args.photos, args.paintings, out / name, photos_n=n, per_photo=per,
                             skip_photos=skip, painting_share=share, seed=0)
        print(f"{name}: {len(table)} images ({n} photographs × {per} paintings + the photographs) in "
              f"{time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        rep = index(out / name, metadata=out / name / "metadata.csv", include_outputs=True, quiet=True)
        print(f"{name}: indexed {rep.works} works in {time.perf_counter() - t:.0f} s")


def spaces(cat: Catalog, projections: dict) -> dict:
    """The content embeddings to compare: the catalog's own and each projection's (with and without the
    catalog's style-group means removed after projecting)."""
    desc = descriptors(cat)
    out = {"raw descriptor (pooled relu5_4)": desc, "catalog content (style-group means removed)":
           np.asarray(cat.embeddings("content")[1])}
    from artspace.search import ContentModel

    model = ContentModel.load(cat.files / "content_model.npz")
    groups = model.groups(np.asarray(cat.embeddings("l_style")[1]))
    for name, proj in projections.items():
        z = unit(proj.transform(desc))
        out[f"{name}"] = z
        means = np.stack([z[groups == g].mean(0) if (groups == g).any() else np.zeros(z.shape[1])
                          for g in range(len(model.centroids))])
        out[f"{name} + group means removed"] = z - means[groups]
    return out


def measure(args) -> None:
    sets = Path(args.sets)
    fit_cat = Catalog.open(sets / "fit")
    works = fit_cat.works
    desc = descriptors(fit_cat)
    projections = {}
    for dim in args.dims:
        for shrink in args.shrinkage:
            t = time.perf_counter()
            projections[f"fisher d={dim} s={shrink}"] = fit(desc, works["photo"].to_numpy(), dim=dim,
                                                            shrinkage=shrink)
            print(f"fitted d={dim} s={shrink} on {len(desc)} images in {time.perf_counter() - t:.1f} s")
    dev = Catalog.open(sets / "dev")
    w = dev.works
    pastiche = np.flatnonzero(w["kind"].to_numpy() == "pastiche")
    print(f"\n## development pastiches ({len(w)} images, {len(pastiche)} pastiches as queries)\n")
    print("| content embedding | same subject ↑ | same photograph ↑ | same painting ↓ |")
    print("| --- | --- | --- | --- |")
    for name, emb in spaces(dev, projections).items():
        print(f"| {name} | {fmt(precision(emb, w['subject'].to_numpy(), rows=pastiche))} | "
              f"{fmt(precision(emb, w['photo'].to_numpy(), rows=pastiche))} | "
              f"{fmt(precision(emb, w['painting'].to_numpy(object), rows=pastiche))} |")
    style = np.asarray(dev.embeddings("style")[1])
    print(f"| style space, for comparison: same painting | {fmt(precision(-style, w['painting'].to_numpy(object), rows=pastiche))} | | |")
    for label, path, content_col, style_col in (("pacs-dev", args.pacs, "class", "domain"),
                                                ("demo grid", args.demo, "shape", "texture")):
        if not path:
            continue
        cat = Catalog.open(path)
        w = cat.works
        print(f"\n## {label} ({len(w)} works)\n")
        print(f"| content embedding | same {content_col} ↑ | same {style_col} ↓ |")
        print("| --- | --- | --- |")
        for name, emb in spaces(cat, projections).items():
            print(f"| {name} | {fmt(precision(emb, w[content_col].to_numpy()))} | "
                  f"{fmt(precision(emb, w[style_col].to_numpy()))} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--photos", required=True)
    m.add_argument("--paintings", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--fit-photos", type=int, default=300)
    m.add_argument("--per-photo", type=int, default=6)
    m.add_argument("--dev-photos", type=int, default=100)
    m.add_argument("--dev-per-photo", type=int, default=4)
    e = sub.add_parser("measure")
    e.add_argument("--sets", required=True)
    e.add_argument("--pacs")
    e.add_argument("--demo")
    e.add_argument("--dims", type=int, nargs="+", default=[64, 128])
    e.add_argument("--shrinkage", type=float, nargs="+", default=[0.1, 0.5])
    args = ap.parse_args()
    print(f"# python {' '.join(sys.argv)}")
    make(args) if args.cmd == "make" else measure(args)


if __name__ == "__main__":
    main()
