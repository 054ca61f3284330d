"""How well a catalog places images from outside it: compact distances against the exact sketch distances.

    python benchmarks/bench_outside.py --catalog /tmp/wk150 --outside ../shared/data/wikiart-dev \
        --outside ../shared/data/transfer/content --limit 60

A compact embedding keeps a work's coordinates on the collection's principal axes; an image from outside the
catalog may lie off them (artspace.Catalog._offsets). For every image of each --outside folder that the catalog does
not hold (at most --limit a folder), this prints, per style space, how far the distances to every catalogued work
are from the exact distances of the full sketches (the relative error: median and 90th percentile of its size) and
how many of the exact 10 nearest works each estimate finds (recall@10), for three estimates:

* ``on axes``: the distance of the compact embeddings alone (what artspace printed before it kept each work's part
  off the axes);
* ``orthogonal``: plus both parts off the axes, as if they were orthogonal;
* ``artspace``: what ``Catalog.similar`` and ``Catalog.distance`` print (``Catalog._measure``).

A last group, ``copies``, are byte copies of the first --limit catalogued works, saved outside the collection: the
distance each gets to its own work (0 exactly) is listed as its largest value.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from artspace import Catalog  # noqa: E402
from artspace.catalog.generation import OFF_AXES  # noqa: E402
from artspace.catalog.queries import COPY_POWER  # noqa: E402
from artspace.images import walk_images  # noqa: E402
from artspace.spaces import measure  # noqa: E402


def sketches(cat: Catalog, paths: list, batch: int = 8) -> dict[str, torch.Tensor]:
    """The full style sketches of *paths* as the catalog computes them (float64)."""
    ex, pipe = cat.extractor, cat._pipeline()
    out: dict[str, list] = {by: [] for by in OFF_AXES}
    for i in range(0, len(paths), batch):
        for by, v in pipe.sketch(ex.encode(ex.batch(paths[i:i + batch]))).items():
            out[by].append(v.double())
    return {by: torch.cat(v) for by, v in out.items()}


def recall(exact: np.ndarray, estimate: np.ndarray, k: int = 10) -> float:
    top, got = np.argsort(exact, 1)[:, :k], np.argsort(estimate, 1)[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top, got)]))


def report(name: str, cat: Catalog, paths: list, works: dict, copies: bool = False) -> None:
    ids = cat.works["id"].to_numpy()
    sk = sketches(cat, paths)
    pipe = cat._pipeline()
    placed = [cat.query_vectors(q)[0] for q in paths]  # one forward pass each (the catalog keeps only 16)
    for by in OFF_AXES:
        exact = (torch.cdist(sk[by], works[by]) ** 2).numpy()
        on_axes = np.stack([measure(by, v[by][None], cat._embeddings()[by][None])[0] for v in placed])
        rq2 = pipe.projections[by].off_axes(sk[by]).astype(np.float64)
        rx2 = np.asarray(cat._stored_off_axes()[:, OFF_AXES.index(by)], np.float64)
        orthogonal = on_axes + rq2[:, None] + rx2[None]
        shipped = np.stack([cat._measure(by, v, None, ids)[1] for v in placed])
        eq = np.stack([v[by] for v in placed]).astype(np.float64)
        ey = np.asarray(cat._embeddings()[by], np.float64)
        cos = (eq / np.linalg.norm(eq, axis=1, keepdims=True)) @ (ey / np.linalg.norm(ey, axis=1, keepdims=True)).T
        if copies:
            cos[np.arange(len(paths)), np.arange(len(paths))] = np.nan  # a copy's own work: cosine 1
        print(f"| {name} | {by} | largest cos(e_q, e_y)^{COPY_POWER} to another work: "
              f"{np.nanmax(np.clip(cos, 0, 1)) ** COPY_POWER:.3g} | | |")
        for label, est in (("on axes", on_axes), ("orthogonal", orthogonal), ("artspace", shipped)):
            if copies:
                own = est[np.arange(len(paths)), np.arange(len(paths))]
                print(f"| {name} | {by} | {label} | largest distance to its own work {own.max():.3g} "
                      f"(its nearest other work: median {np.median(np.sort(exact, 1)[:, 1]):.3g}) | "
                      f"{recall(exact, est):.3f} |")
                continue
            err = est / exact - 1.0
            print(f"| {name} | {by} | {label} | median {np.median(err):+.3f}, 90th pct of size "
                  f"{np.quantile(np.abs(err), 0.9):.3f} | {recall(exact, est):.3f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", required=True, help="an indexed collection (or its .artspace folder)")
    ap.add_argument("--outside", action="append", default=[], help="a folder of images (repeatable)")
    ap.add_argument("--limit", type=int, default=60, help="images taken from each folder (default 60)")
    args = ap.parse_args()
    cat = Catalog.open(args.catalog)
    if cat._stored_off_axes() is None:
        sys.exit(f"{args.catalog} was indexed before artspace kept each work's part off the axes: "
                 f"run `artspace index --rebuild` on it first")
    held = set(cat.works["checksum"])
    works = sketches(cat, [cat.image_path(int(w)) for w in cat.works["id"]])
    print(f"{len(cat.works)} works; variance kept by the axes: "
          + ", ".join(f"{by} {cat.manifest['spaces'][by]['variance_kept']:.3f}" for by in OFF_AXES))
    print("\n| images | space | estimate | relative error to the exact distance | recall@10 |\n| --- | --- | --- | --- | --- |")
    from artspace.images import file_sha256

    for folder in args.outside:
        paths = [p for p in walk_images(Path(folder)) if file_sha256(p) not in held][:args.limit]
        report(f"{Path(folder).name} ({len(paths)})", cat, paths, works)
    with tempfile.TemporaryDirectory() as tmp:
        rows = range(min(args.limit, len(cat.works)))
        paths = []
        for r in rows:
            src = cat.image_path(int(cat.works["id"].iloc[r]))
            paths.append(Path(tmp) / f"{r}{src.suffix}")
            shutil.copyfile(src, paths[-1])
        report(f"copies ({len(paths)})", cat, paths, works, copies=True)  # copy r is of the work in row r


if __name__ == "__main__":
    main()
