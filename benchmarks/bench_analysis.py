"""Benchmarks of the analyses: quality on the shared sets, time and memory at 100,000 works.

Quality (catalogs of the shared sets, built with ``artspace index``)::

    python benchmarks/bench_analysis.py quality --wikiart /tmp/cats/wikiart --pacs /tmp/cats/pacs

Scale (synthetic embeddings: 512-d style, more than a catalog's 128-d signatures and 384-d L_style embeddings, and
1024-d unit content; each step in its own process so that its peak memory is its own)::

    python benchmarks/bench_analysis.py scale --n 100000

Results are printed as Markdown and written as JSON under ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"


def quality(args) -> list[dict]:
    from artspace.analysis import cluster, compare
    from artspace.catalog import Catalog

    rows = []
    plan = []
    # every space the CLI offers: style (the signature embeddings), l_style (Gatys et al.'s L_style), content
    if args.wikiart:
        plan += [(args.wikiart, "style", "style", 7), (args.wikiart, "l_style", "style", 7)]
    if args.pacs:
        plan += [(args.pacs, "style", "domain", None), (args.pacs, "l_style", "domain", None),
                 (args.pacs, "content", "class", None)]
    for path, by, column, k in plan:
        cat = Catalog.open(path)
        k = k or int(cat.works[column].nunique())
        for method in ("kmeans", "agglomerative"):
            t0 = time.perf_counter()
            r = cluster(cat, by=by, k=k, method=method, label_column=column, save=False, seed=args.seed)
            rows.append({"set": Path(path).name, "by": by, "against": column, "method": method, "k": k,
                         "works": len(cat.works), "nmi": round(r.nmi, 3), "purity": round(r.purity, 3),
                         "ari": round(r.ari, 3), "seconds": round(time.perf_counter() - t0, 2)})
        c = compare(cat, group_by=column, by=by, permutations=999, pairwise=False, seed=args.seed)
        rows.append({"set": Path(path).name, "by": by, "against": column, "method": "compare (PERMANOVA)",
                     "k": c.test["groups"], "works": c.test["works"], "r2": round(c.test["r2"], 3),
                     "p_value": c.test["p_value"], "seconds": round(c.seconds, 2)})
    return rows


def _synthetic(n: int, seed: int = 0):
    """Works in 40 'movements' of unequal size; style 512-d, content 1024-d unit vectors, each with group structure."""
    rng = np.random.default_rng(seed)
    g = rng.choice(40, size=n, p=rng.dirichlet(np.ones(40) * 2))
    style = (rng.normal(size=(40, 512)) * 0.6)[g] + rng.normal(size=(n, 512)) * np.linspace(2, 0.2, 512)
    content = (rng.normal(size=(40, 1024)) * 0.4)[g] + rng.normal(size=(n, 1024))
    content /= np.linalg.norm(content, axis=1, keepdims=True)
    works = pd.DataFrame({"movement": [f"m{v:02d}" for v in g], "decade": 1400 + 10 * rng.integers(0, 55, n),
                          "path": [f"synthetic/{i:06d}.jpg" for i in range(n)]})
    return works, {"style": style.astype(np.float32), "content": content.astype(np.float32)}


def _step(name: str, n: int, out: Path) -> dict:
    """One scale step, run in this process; returns seconds and peak RSS."""
    works, X = _synthetic(n)
    t0 = time.perf_counter()
    info = {}
    if name == "cluster":
        from artspace.analysis import cluster

        r = cluster((works, X), by="style", label_column="movement")  # k chosen automatically
        info = {"k": r.k, "how": r.how, "nmi": round(r.nmi, 3)}
    elif name == "cluster-k40":
        from artspace.analysis import cluster

        r = cluster((works, X), by="style", k=40, label_column="movement")
        info = {"k": r.k, "nmi": round(r.nmi, 3)}
    elif name == "map":
        from artspace.analysis import layout, map_figure, map_html

        xy = layout((works, X), by="style", seed=None)
        t1 = time.perf_counter()
        map_html((works, X), out / "map-100k.html", by="style", coords=xy, color="movement")
        t2 = time.perf_counter()
        map_figure((works, X), by="style", coords=xy, color="movement")
        info = {"layout_s": round(t1 - t0, 1), "html_s": round(t2 - t1, 1),
                "html_mb": round((out / "map-100k.html").stat().st_size / 1e6, 1)}
    elif name == "compare":
        from artspace.analysis import compare

        r = compare((works, X), group_by="movement", by="style", permutations=999)
        info = {"groups": int(r.test["groups"]), "p_value": r.test["p_value"], "pairs": len(r.pairs)}
    elif name == "compare-pairs":
        from artspace.analysis import compare

        works["movement"] = works["movement"].str[-1]  # 10 groups of ~10,000 works: 45 pair tests
        r = compare((works, X), group_by="movement", by="style", permutations=999, pairwise=True)
        info = {"groups": int(r.test["groups"]), "p_value": r.test["p_value"], "pairs": len(r.pairs),
                "pairs_p<0.05": int((r.pairs["p_adjusted"] < 0.05).sum())}
    elif name == "compare-content":
        from artspace.analysis import compare

        r = compare((works, X), group_by="movement", by="content", permutations=999, pairwise=False)
        info = {"groups": int(r.test["groups"]), "p_value": r.test["p_value"]}
    else:
        raise SystemExit(f"unknown step {name}")
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    return {"step": name, "works": n, "seconds": round(seconds, 1), "peak_rss_mib": round(peak), **info}


def scale(args) -> list[dict]:
    rows = []
    for name in args.steps:
        p = subprocess.run([sys.executable, __file__, "_step", name, "--n", str(args.n)], capture_output=True,
                           text=True)
        if p.returncode != 0:
            rows.append({"step": name, "works": args.n, "error": p.stderr.strip().splitlines()[-1:]})
        else:
            rows.append(json.loads(p.stdout.strip().splitlines()[-1]))
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    df = pd.DataFrame(rows).astype(object).fillna("")
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--wikiart")
    q.add_argument("--pacs")
    q.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("scale")
    s.add_argument("--n", type=int, default=100_000)
    s.add_argument("--steps", nargs="+", default=["cluster", "map", "compare", "compare-content"])
    st = sub.add_parser("_step")
    st.add_argument("name")
    st.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.cmd == "_step":
        print(json.dumps(_step(args.name, args.n, RESULTS)))
        return
    rows = quality(args) if args.cmd == "quality" else scale(args)
    meta = {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {__import__('os').cpu_count()} cores",
            "python": platform.python_version(), "when": time.strftime("%Y-%m-%d %H:%M")}
    (RESULTS / f"analysis-{args.cmd}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(markdown(rows))


if __name__ == "__main__":
    main()
