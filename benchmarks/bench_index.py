"""Benchmarks of indexing and search: quality, agreement with the exact L_style, speed, memory.

    python benchmarks/bench_index.py quality --data ../shared/data/pacs-dev --style-label domain --content-label class
    python benchmarks/bench_index.py speed --data ../shared/data/pacs-dev --n 96
    python benchmarks/bench_index.py memory --n 100000
    python benchmarks/bench_index.py winograd
    python benchmarks/bench_index.py precision --data ../shared/data/pacs-dev --style-label domain --content-label class
    python benchmarks/bench_index.py ray --data ../shared/data/wikiart-dev --n 96

Each prints its figures; docs/benchmarks.md records them with the machine they ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import torch


def _machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def _precision(labels: np.ndarray, neighbours: np.ndarray) -> float:
    return float((labels[neighbours] == labels[:, None]).mean())


def quality(args) -> None:
    from artspace.catalog import Catalog, index
    from artspace.search import CONTEXT_K

    cdir = Path(args.catalog or tempfile.mkdtemp(prefix="artspace-bench-"))
    if not ((cdir / "CURRENT").is_file() or (cdir / "manifest.json").is_file()):
        t = time.time()
        index(args.data, catalog=cdir, metadata=Path(args.data) / "metadata.csv", quiet=True)
        print(f"indexed {args.data} in {time.time() - t:.0f} s")
    cat = Catalog.open(cdir)
    works = cat.works
    k = args.k
    pos = {wid: i for i, wid in enumerate(works["id"])}
    compact = {}
    for by, label in (("style", args.style_label), ("l_style", args.style_label), ("content", args.content_label)):
        if not label:
            continue
        ids, found, _ = cat.neighbours(by, k)  # what `similar --by BY` returns, for every work at once
        nn = np.vectorize(pos.get)(found)
        labels = works.set_index("id").loc[ids, label].to_numpy()
        compact[by] = nn
        print(f"similar --by {by}: precision@{k} for the same {label!r}: {_precision(labels, nn):.3f}")
        if by == "style":
            ids, x = cat.embeddings("style")
            flat = faiss.IndexFlatL2(x.shape[1])
            flat.add(np.ascontiguousarray(x))
            _, raw = flat.search(np.ascontiguousarray(x), k + 1)
            raw = np.array([[j for j in row if j != i][:k] for i, row in enumerate(raw)])
            compact["signature"] = raw
            print(f"  ranked by the signature distance alone: {_precision(labels, raw):.3f}")
            for name, lists in (("relative", nn), ("signature alone", raw)):
                counts = np.bincount(lists.ravel(), minlength=len(ids))
                print(f"  hubs ({name}): most frequent work in {counts.max()} of {len(ids)} top-{k} lists, "
                      f"{np.mean(counts == 0):.1%} of works in none")
    if args.exact:
        # Exact distances: full style vectors (305,888 numbers, L_style) and signatures (262,656), exhaustive.
        ex = cat.extractor
        full = {"style": [], "signature": []}
        for i in range(0, len(works), 8):
            out = ex.encode(torch.stack([ex.load(cat.root / p) for p in works["path"].iloc[i:i + 8]]))
            for space in full:
                full[space].append(out[space].numpy())
        labels = works[args.style_label].to_numpy() if args.style_label else None
        for space, name in (("style", "L_style"), ("signature", "signature distance")):
            vecs = np.ascontiguousarray(np.concatenate(full[space]))
            flat = faiss.IndexFlatL2(vecs.shape[1])
            flat.add(vecs)
            _, exact = flat.search(vecs, k + 1)
            exact = np.array([[j for j in row if j != i][:k] for i, row in enumerate(exact)])
            mine = compact.get("l_style" if space == "style" else "signature")
            if mine is not None:
                recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(mine, exact)])
                print(f"compact {space} index recall@{k} against the exact {name}: {recall:.3f}")
            if labels is not None:
                print(f"exact {name} precision@{k} for the same {args.style_label!r}: {_precision(labels, exact):.3f}")
            if space == "signature" and labels is not None:
                # The same relative ranking as `similar --by style`, on the exact signatures: d / sqrt(rho_q rho_y).
                gram = vecs.astype(np.float64) @ vecs.T.astype(np.float64)
                sq = np.diag(gram)
                d2 = np.maximum(sq[:, None] + sq[None] - 2 * gram, 0)
                np.fill_diagonal(d2, np.inf)
                rho = np.sort(d2, axis=1)[:, :CONTEXT_K].mean(1)
                rel = np.argsort(d2 / np.sqrt(rho[:, None] * rho[None]), axis=1, kind="stable")[:, :k]
                print(f"exact relative signature distance precision@{k} for the same {args.style_label!r}: "
                      f"{_precision(labels, rel):.3f}")
    sp = cat.manifest["spaces"]
    dims = sp["l_style"]["dim"], sp["style"]["dim"]
    print(f"embeddings: L_style {dims[0]} + signature {dims[1]} float32 = {4 * sum(dims)} bytes/work; variance kept "
          f"{sp['l_style']['variance_kept']:.4f} / {sp['style']['variance_kept']:.4f}; content "
          f"groups {sp['content']['groups']}")
    print(f"machine: {_machine()}")


def _sample_copy(data, n: int, prefix: str) -> tuple[Path, Path, int]:
    """The first *n* images of *data* copied into a fresh temporary folder: ``(tmp, tmp/images, count)``."""
    from artspace.images import walk_images

    files = list(walk_images(data))[:n]
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    sub = tmp / "images"
    sub.mkdir()
    for i, f in enumerate(files):
        shutil.copy(f, sub / f"{i:05d}{f.suffix}")
    return tmp, sub, len(files)


def speed(args) -> None:
    """A plain loop (PIL decode, one forward per batch of 8 to relu5_1) against `artspace index`, in one run."""
    from PIL import Image

    from artspace.backbone import VGG19
    from artspace.catalog import index
    from artspace.images import to_tensor

    tmp, sub, count = _sample_copy(args.data, args.n, "artspace-speed-")
    try:
        net = VGG19(last_layer="relu5_1")
        layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]

        def plain():
            t = time.time()
            paths = sorted(sub.iterdir())
            with torch.no_grad():
                for i in range(0, len(paths), 8):
                    x = torch.stack([to_tensor(Image.open(p).convert("RGB").resize((224, 224))) for p in paths[i:i + 8]])
                    net(x, layers)
            return len(paths) / (time.time() - t)

        def ours(round_, precision):
            t = time.time()
            index(sub, catalog=tmp / f"cat{round_}-{precision}", quiet=True, precision=precision)
            return count / (time.time() - t)

        plain()  # warm-up (weights into cache, oneDNN kernels chosen)
        rows = []
        for r in range(args.rounds):
            row = {"round": r, "plain img/s": plain()}
            for p in args.precisions.split(","):
                row[f"index {p} img/s"] = ours(r, p)
            rows.append(row)
        df = pd.DataFrame(rows)
        print(df.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        med = df.median()
        base = med["plain img/s"]
        print(f"median: plain float32 loop {base:.2f} img/s; " + "; ".join(
            f"{c.removesuffix(' img/s')} {med[c]:.2f} img/s ({med[c] / base:.2f}x)" for c in df.columns
            if c.startswith("index")) + f"; {count} images at 224 px")
        print(f"machine: {_machine()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _bootstrap(hits: np.ndarray, n: int = 5000, seed: int = 0) -> tuple[float, float]:
    """95 % interval of the mean of per-query precisions *hits*, resampling the queries."""
    rng = np.random.default_rng(seed)
    means = hits[rng.integers(0, len(hits), (n, len(hits)))].mean(1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def precision(args) -> None:
    """The same collection indexed in float32 and in bfloat16: agreement of the neighbours and the precisions."""
    from artspace.catalog import Catalog, index

    cats = {}
    for p in ("float32", "bfloat16"):
        cdir = Path(args.work) / f"{Path(args.data).name}-{p}"
        if not (cdir / "CURRENT").is_file():
            t = time.time()
            index(args.data, catalog=cdir, metadata=Path(args.data) / "metadata.csv", quiet=True, precision=p)
            print(f"indexed {args.data} in {p} in {time.time() - t:.0f} s")
        cats[p] = Catalog.open(cdir)
    k = args.k
    works = cats["float32"].works
    pos = {wid: i for i, wid in enumerate(works["id"])}
    for by, label in (("style", args.style_label), ("l_style", args.style_label), ("content", args.content_label)):
        found = {}
        for p, cat in cats.items():
            ids, nbr, _ = cat.neighbours(by, k)
            found[p] = np.vectorize(pos.get)(nbr)
        recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(found["float32"], found["bfloat16"])])
        line = f"--by {by}: bfloat16 top-{k} recall against float32 {recall:.3f}"
        if label:
            labels = works[label].to_numpy()
            for p in cats:
                hits = (labels[found[p]] == labels[:, None]).mean(1)
                lo, hi = _bootstrap(hits)
                line += f"; {p} precision@{k} same {label!r} {hits.mean():.3f} [{lo:.3f}, {hi:.3f}]"
        print(line)
    # (the compact embeddings themselves are not compared: each catalog fits its own projection, whose axes may
    # differ in sign and order; the neighbours they give are what matters)
    print(f"machine: {_machine()}")


def ray_engine(args) -> None:
    """The same images indexed by the local engine and by the Ray engine on a local Ray instance, in one run."""
    import ray

    from artspace.catalog import Catalog, index

    tmp, sub, count = _sample_copy(args.data, args.n, "artspace-ray-")
    try:
        t = time.time()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        t_init = time.time() - t
        rows = []
        for r in range(args.rounds):
            for engine in ("local", "ray"):
                t = time.time()
                index(sub, catalog=tmp / f"{engine}{r}", quiet=True, engine=engine, precision="float32")
                rows.append({"round": r, "engine": engine, "seconds": time.time() - t})
        df = pd.DataFrame(rows)
        print(df.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
        med = df.groupby("engine")["seconds"].median()
        print(f"median: local {med['local']:.1f} s, ray {med['ray']:.1f} s ({count} images at 224 px, float32); "
              f"ray.init {t_init:.1f} s once")
        a, b = Catalog.open(tmp / "local0"), Catalog.open(tmp / "ray0")
        same = (a.works["path"].tolist() == b.works["path"].tolist()
                and np.allclose(np.asarray(a.embeddings("style")[1]), np.asarray(b.embeddings("style")[1]),
                                atol=1e-5))
        print(f"same works and style embeddings (within 1e-5): {same}")
        print(f"machine: {_machine()}")
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory(args) -> None:
    """Resident memory of the three search indexes for N works (synthetic embeddings of the real dimensions)."""
    from artspace.search import NeighbourLists, VectorIndex, relative_search

    rng = np.random.default_rng(0)
    base = _rss_mb()
    ids = np.arange(args.n, dtype=np.int64)
    t = time.time()
    style = VectorIndex.build(ids, rng.standard_normal((args.n, 384), dtype=np.float32), metric="l2")
    signature = VectorIndex.build(ids, np.random.default_rng(1).standard_normal((args.n, 128), dtype=np.float32),
                                  metric="l2")
    content = rng.standard_normal((args.n, 512), dtype=np.float32)
    content /= np.linalg.norm(content, axis=1, keepdims=True)
    content_index = VectorIndex.build(ids, content, metric="ip")
    del content
    built = time.time() - t
    used = _rss_mb() - base
    q = rng.standard_normal((100, 128), dtype=np.float32)
    t = time.time()
    for row in q:
        signature.search(row[None], 10)
    per_query = (time.time() - t) / 100
    # What index adds at the end of every run, and what `similar --by style` does per query
    sig = np.random.default_rng(1).standard_normal((args.n, 128), dtype=np.float32)  # the indexed vectors again
    t = time.time()
    lists, _ = NeighbourLists.build(signature, ids, sig)
    scaling = time.time() - t
    scales = lists.scales
    # A later run that adds 100 works: the lists are updated, not recomputed
    more = np.concatenate([sig, rng.standard_normal((100, 128), dtype=np.float32)])
    more_ids = np.arange(len(more), dtype=np.int64)
    bigger = VectorIndex.build(more_ids, more, metric="l2")
    t = time.time()
    _, searched = NeighbourLists.build(bigger, more_ids, more, previous=lists)
    rescaling = time.time() - t
    del sig, more, bigger, lists
    t = time.time()
    for row in q:
        relative_search(signature, row, 10, query_scale=float(np.median(scales)), scales=lambda f: scales[f],
                        max_scale=float(scales.max()))
    per_relative = (time.time() - t) / 100
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.n} works: L_style index {style.kind}, signature index {signature.kind}, content index "
          f"{content_index.kind}; resident memory of the three indexes {used:.0f} MB (process peak {peak:.0f} MB); "
          f"built in {built:.1f} s; neighbourhood scales of all works in {scaling:.1f} s, updated for 100 more "
          f"works in {rescaling:.1f} s ({searched} searched in full); signature query "
          f"{per_query * 1e3:.1f} ms raw, {per_relative * 1e3:.1f} ms relative (similar --by style)")
    print(f"machine: {_machine()}")


def winograd(args) -> None:
    """Each VGG-19 convolution at 224 px, batch 8: oneDNN's direct convolution against Winograd F(2x2) and F(4x4).

    Times are medians of --rounds, one intra-op thread (what each of the indexer's two CPU streams gets); the
    deviation is from a float64 convolution, as a fraction of the layer's largest output.
    """
    import torch.nn.functional as F

    from artspace.backbone import CHANNELS, CONV_LAYERS
    from artspace.winograd import MIN_FILTERS, conv3x3_winograd, tile_size, winograd_weights

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    g = torch.Generator().manual_seed(0)

    def median_ms(fn):
        fn()
        times = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return 1e3 * float(np.median(times))

    rows, in_ch, size = [], 3, 224
    for name in CONV_LAYERS:
        out_ch = CHANNELS[name]
        w = torch.randn(out_ch, in_ch, 3, 3, generator=g) * (2 / (9 * in_ch)) ** 0.5
        b = torch.randn(out_ch, generator=g) * 0.1
        x = torch.randn(8, in_ch, size, size, generator=g).relu_().contiguous(memory_format=torch.channels_last)
        wcl = w.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            ref = F.conv2d(x.double(), w.double(), b.double(), padding=1)
            scale = float(ref.abs().max())
            row = {"layer": name, "in": in_ch, "out": out_ch, "px": size,
                   "direct ms": median_ms(lambda: F.conv2d(x, wcl, b, padding=1)),
                   "direct dev": float((F.conv2d(x, wcl, b, padding=1).double() - ref).abs().max()) / scale}
            for m in (2, 4):
                u = winograd_weights(w, m)
                row[f"F({m}x{m}) ms"] = median_ms(lambda: conv3x3_winograd(x, u, b))
                row[f"F({m}x{m}) dev"] = float((conv3x3_winograd(x, u, b).double() - ref).abs().max()) / scale
            row["artspace uses"] = f"F({tile_size(size, size)}x{tile_size(size, size)})" if out_ch >= MIN_FILTERS else "direct"
        rows.append(row)
        in_ch = out_ch
        if name in ("conv1_2", "conv2_2", "conv3_4", "conv4_4"):
            size //= 2
    df = pd.DataFrame(rows)
    print(df.to_string(index=False, formatters={c: (lambda v: f"{v:.1e}") for c in df.columns if c.endswith("dev")},
                       float_format=lambda v: f"{v:.1f}"))
    used = [r["direct ms"] if r["artspace uses"] == "direct" else r[r["artspace uses"] + " ms"] for r in rows]
    print(f"sum over the layers: direct {df['direct ms'].sum():.0f} ms, as artspace runs them {sum(used):.0f} ms "
          f"({df['direct ms'].sum() / sum(used):.2f}x); {args.threads} thread(s), batch 8")
    print(f"machine: {_machine()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--data", required=True)
    q.add_argument("--catalog")
    q.add_argument("--style-label")
    q.add_argument("--content-label")
    q.add_argument("-k", type=int, default=10)
    q.add_argument("--exact", action="store_true", help="also compare with the exact distances (slow: full vectors)")
    s = sub.add_parser("speed")
    s.add_argument("--data", required=True)
    s.add_argument("--n", type=int, default=96)
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--precisions", default="float32,bfloat16", help="index runs compared with the plain loop")
    ry = sub.add_parser("ray")
    ry.add_argument("--data", required=True)
    ry.add_argument("--n", type=int, default=96)
    ry.add_argument("--rounds", type=int, default=2)
    pr = sub.add_parser("precision")
    pr.add_argument("--data", required=True)
    pr.add_argument("--style-label")
    pr.add_argument("--content-label")
    pr.add_argument("-k", type=int, default=10)
    pr.add_argument("--work", default="/tmp/artspace-precision")
    m = sub.add_parser("memory")
    m.add_argument("--n", type=int, default=100_000)
    w = sub.add_parser("winograd")
    w.add_argument("--rounds", type=int, default=3)
    w.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    {"quality": quality, "speed": speed, "memory": memory, "winograd": winograd,
     "precision": precision, "ray": ray_engine}[args.what](args)


if __name__ == "__main__":
    main()
