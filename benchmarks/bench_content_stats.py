"""What standardising content similarities costs (artspace.content_model.ContentStats): at publication, each work's
style group and the statistics; at a query, scoring the shortlist; for every work's neighbour list, each work's own
terms.

    python benchmarks/bench_content_stats.py --n 1000000 --groups 3 --groups 32
    # content queries ranked by the cosine and standardised, side by side on a catalog (style as a control)
    python benchmarks/bench_catalog.py --n 1000000 --keep /tmp/big && \
        python benchmarks/bench_content_stats.py --side-by-side /tmp/big/collection

The works are N synthetic unit content embeddings (512 numbers, drawn around as many centres as there are style
groups) and N style embeddings (384 numbers), written to ``.npy`` files and memory-mapped, as a catalog's are. The
steps are the ones ``artspace index`` and ``Catalog.similar`` run: :func:`artspace.content_model.nearest_centroids` over
every work, :meth:`ContentStats.fit` on its sample of at most 50,000 works, :meth:`ContentStats.score` of a
shortlist of 60 works for 200 queries, and :meth:`ContentStats.work_terms` of every work (what
``Catalog.neighbours`` computes once). Each figure is one run's wall time on this machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from artspace.content_model import ContentStats, nearest_centroids  # noqa: E402


def synthetic(folder: Path, n: int, groups: int, seed: int = 0, batch: int = 100_000):
    """Memory-mapped (content, style, centroids): unit content embeddings and style embeddings around *groups*
    centres, written in blocks so that a million works never sit twice in memory."""
    rng = np.random.default_rng(seed)
    content = np.lib.format.open_memmap(folder / "content.npy", "w+", np.float32, (n, 512))
    style = np.lib.format.open_memmap(folder / "l_style.npy", "w+", np.float32, (n, 384))
    centres_c, centroids = rng.normal(size=(groups, 512)), rng.normal(size=(groups, 384)) * 3
    for s in range(0, n, batch):
        m = min(batch, n - s)
        g = rng.integers(0, groups, m)
        c = centres_c[g] * 0.5 + rng.normal(size=(m, 512))
        content[s:s + m] = c / np.linalg.norm(c, axis=1, keepdims=True)
        style[s:s + m] = centroids[g] + rng.normal(size=(m, 384))
    content.flush(), style.flush()
    del content, style
    return (np.load(folder / "content.npy", mmap_mode="r"), np.load(folder / "l_style.npy", mmap_mode="r"),
            centroids.astype(np.float32))


def side_by_side(root: str, rounds: int = 5, queries: int = 100) -> None:
    """Interleaved rounds of the same queries: style, content ranked by the cosine, content standardised."""
    from artspace.catalog import Catalog

    cat = Catalog.open(root)
    ids = cat.works["id"].to_numpy()[:: max(1, len(cat.works) // queries)][:queries]
    variants = (("style (a control)", {"by": "style"}),
                ("content, ranked by the cosine (--no-standardise)", {"by": "content", "standardise": False}),
                ("content, standardised (the default)", {"by": "content"}))
    for _, opts in variants:
        cat.similar(int(ids[0]), k=10, **opts)
    times = {name: [] for name, _ in variants}
    for _ in range(rounds):
        for name, opts in variants:
            t = time.perf_counter()
            for w in ids:
                cat.similar(int(w), k=10, **opts)
            times[name].append((time.perf_counter() - t) / len(ids) * 1e3)
    for name, t in times.items():
        print(f"{name}: median {np.median(t):.2f} ms a query ({len(ids)} queries; rounds: "
              f"{', '.join(f'{x:.2f}' for x in t)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="works")
    ap.add_argument("--groups", type=int, action="append", default=[], help="style groups (repeatable; 3, 32)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--side-by-side", metavar="CATALOG", help="time content queries on this catalog instead")
    args = ap.parse_args()
    print(f"# python {' '.join(sys.argv)}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    if args.side_by_side:
        side_by_side(args.side_by_side)
        return
    print("| groups | works | style groups of every work (s) | statistics (s) | score 60 works, a query (ms) "
          "| every work's own terms (s) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for g in args.groups or [3, 32]:
        with tempfile.TemporaryDirectory() as tmp:
            content, style, centroids = synthetic(Path(tmp), args.n, g)
            t = time.perf_counter()
            groups = nearest_centroids(style, centroids)
            t_groups = time.perf_counter() - t
            t = time.perf_counter()
            stats = ContentStats.fit(content, groups, g)
            t_fit = time.perf_counter() - t
            rng = np.random.default_rng(1)
            rows = [np.sort(rng.choice(args.n, 61, replace=False)) for _ in range(args.queries)]
            stats.score(content[rows[0][0]], content[rows[0][1:]], groups[rows[0][1:]])  # float64 copies made once
            t = time.perf_counter()
            for r in rows:
                stats.score(np.asarray(content[r[0]], np.float64), content[r[1:]], groups[r[1:]])
            t_query = (time.perf_counter() - t) / args.queries * 1e3
            t = time.perf_counter()
            for s in range(0, args.n, 65_536):
                stats.work_terms(content[s:s + 65_536])
            t_terms = time.perf_counter() - t
            print(f"| {g} | {args.n:,} | {t_groups:.1f} | {t_fit:.1f} | {t_query:.2f} | {t_terms:.1f} |", flush=True)
            del content, style


if __name__ == "__main__":
    main()
