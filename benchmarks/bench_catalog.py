"""What publishing catalog generations costs at scale, and how fast a query on catalogued works answers.

    python benchmarks/bench_catalog.py --n 100000          # publish 100,000 works, add 1,000, re-run unchanged
    python benchmarks/bench_catalog.py --n 500 --cli       # and `artspace similar WORK` wall time in a shell loop
    python benchmarks/bench_catalog.py --n 1000000 --progress   # a million works, with index's status lines
    python benchmarks/bench_catalog.py --n 1000000 --keep /tmp/big   # ... and keep the collection, then:
    python benchmarks/bench_catalog.py --republish /tmp/big --rounds 2   # add 1,000 works to it, publish, again
    ARTSPACE_CHECKOUT=/tmp/before python benchmarks/bench_catalog.py --republish /tmp/big   # another commit's artspace

No image is decoded: the collection is N empty files, and the extraction log is synthetic shards (100,000 works
each) holding N works' compact embeddings in the real dimensions (384 + 128 floats, a 1,536-float content
descriptor, and 1,024 float16 moments), drawn from clusters whose spectra have the effective dimension measured on
real catalogs (:func:`realistic`), with projections of the real shapes. `index` then finds every file already
extracted and does exactly what it does after extraction: read the log, fit or update the content model, build the
three faiss indexes and the neighbour lists, sample the pair distances, write the generation and publish it. Each
figure is one run's wall time; peak memory is the resident high-water mark (``ru_maxrss`` of this process, ``VmHWM``
of the fresh query process).

``--republish`` times the publication after adding works on a kept collection, in a fresh process that holds no
synthetic arrays, so that two commits can be timed in turns on the same catalog (``ARTSPACE_CHECKOUT`` names the
checkout whose artspace runs). Each round adds ``--add`` works: the content model and statistics are kept until the
collection has changed by a tenth (100 rounds of 1,000 at a million works). The kept log starts with 11 shards and
each round adds one; the round that takes it past 16 compacts it, and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(os.environ.get("ARTSPACE_CHECKOUT") or Path(__file__).resolve().parents[1]).resolve()
sys.path.insert(0, str(REPO))

from artspace.catalog import Catalog, index  # noqa: E402
from artspace.catalog.shards import Log, write_npz  # noqa: E402
from artspace.catalog.generation import write_log_state  # noqa: E402
from artspace.projection import SKETCH_DIM, StyleProjection  # noqa: E402
from artspace.spec import FeatureSpec  # noqa: E402


class SyntheticDescriptors:
    """Content descriptors shaped like the default ones (maxima of relu5_2, relu5_3, relu5_4: 1,536 non-negative
    numbers, each layer of unit length): a subject part, clusters whose spectrum has the effective dimension measured
    on real catalogs, plus a hand part, each work's style moving it along a few shared directions. Pastiche groups
    (one subject in several hands) are drawn the same way, to fit the learnt content projection on, as the shipped
    one was fitted on pastiches of photographs like a collection's. A projection fitted on real pastiches would turn
    these synthetic clusters into noise (effective dimension 126 against 40-65 on real catalogs) and misstate the
    content index."""

    def __init__(self, rng, dim: int = 1536, subjects: int = 256, hands: int = 32, hand_dim: int = 16):
        self.scale = _spectrum(dim, 70)
        self.subjects = rng.normal(size=(subjects, dim)) * self.scale + 1.0
        basis, _ = np.linalg.qr(rng.normal(size=(dim, hand_dim)))
        self.hands = (rng.normal(size=(hands, hand_dim)) * 2.0 * self.scale[:hand_dim]) @ basis.T

    def _finish(self, x: np.ndarray) -> np.ndarray:
        x = np.abs(x).astype(np.float32)
        for s in range(0, x.shape[1], 512):
            x[:, s:s + 512] /= np.linalg.norm(x[:, s:s + 512], axis=1, keepdims=True)
        return x / np.sqrt(x.shape[1] // 512)

    def draw(self, n: int, rng, block: int = 50_000) -> np.ndarray:
        out = np.empty((n, self.subjects.shape[1]), np.float32)
        for s in range(0, n, block):
            m = min(block, n - s)
            x = (self.subjects[rng.integers(0, len(self.subjects), m)] + self.hands[rng.integers(0, len(self.hands), m)]
                 + 0.5 * rng.normal(size=(m, self.subjects.shape[1])) * self.scale)
            out[s:s + m] = self._finish(x)
        return out

    def pastiche_groups(self, photos: int, per_photo: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """*photos* subjects each in *per_photo* + 1 hands: the descriptors and each one's group."""
        photo = (self.subjects[rng.integers(0, len(self.subjects), photos)]
                 + 0.5 * rng.normal(size=(photos, self.subjects.shape[1])) * self.scale)
        x = np.repeat(photo, per_photo + 1, axis=0) + self.hands[rng.integers(0, len(self.hands),
                                                                            photos * (per_photo + 1))]
        return self._finish(x), np.repeat(np.arange(photos), per_photo + 1)


DESCRIPTORS: SyntheticDescriptors


def synthetic_content_projection(path: Path, rng) -> None:
    """A content projection fitted, as the shipped one, on 244 pastiche groups of 7, drawn like the collection."""
    from artspace.content import DIM, SHRINKAGE
    from artspace.discriminant import fisher

    x, groups = DESCRIPTORS.pastiche_groups(244, 6, rng)
    p = fisher(x, groups, dim=DIM, shrinkage=SHRINKAGE)
    spec = FeatureSpec()
    p.info.update({"descriptor_layers": list(spec.descriptor_layers), "weights": spec.weights, "size": spec.size})
    p.save(path)


def add_works(root: Path, cdir: Path, first: int, n: int, number: int, rng, *, shard_rows: int = 100_000) -> None:
    """*n* empty files and shards of at most *shard_rows* works recording them as extracted, with clustered random
    embeddings (a million works' arrays at once would not fit in 24 GB)."""
    folder = root / f"part{number:03d}"
    folder.mkdir(parents=True)
    for k, start in enumerate(range(first, first + n, shard_rows)):
        m = min(shard_rows, first + n - start)
        rels, mtimes = [], []
        for i in range(start, start + m):
            p = folder / f"{i:07d}.png"
            p.touch()
            rels.append(p.relative_to(root).as_posix())
            mtimes.append(p.stat().st_mtime_ns)
        desc = DESCRIPTORS.draw(m, rng)
        write_npz(Log(cdir).shards / f"part-{number * 1000 + k:06d}.npz",
                  id=np.arange(start, start + m, dtype=np.int64), path=np.array(rels, dtype=str),
                  size=np.zeros(m, np.int64), mtime_ns=np.array(mtimes, np.int64),
                  checksum=np.array(["0" * 64] * m, dtype=str), width=np.full(m, 224, np.int32),
                  height=np.full(m, 224, np.int32), style=realistic(m, 384, 6, rng),
                  signature=realistic(m, 128, 15, rng) * 0.05, descriptor=desc,
                  moments=np.abs(rng.normal(size=(m, 1024))).astype(np.float16),
                  skip_path=np.array([], dtype=str), skip_size=np.zeros(0, np.int64),
                  skip_mtime_ns=np.zeros(0, np.int64), skip_reason=np.array([], dtype=str))


def _spectrum(dim: int, participation: float) -> np.ndarray:
    """Standard deviations σ_i ∝ i^(−a/2) whose participation ratio (Σσ²)²/Σσ⁴ is *participation*."""
    i = np.arange(1, dim + 1, dtype=np.float64)
    lo, hi = 0.0, 8.0
    for _ in range(60):
        a = (lo + hi) / 2
        v = i ** -a
        lo, hi = (a, hi) if v.sum() ** 2 / (v ** 2).sum() > participation else (lo, a)
    return i ** (-a / 2)


def realistic(n: int, dim: int, participation: float, rng, *, groups: int = 256, offset: float = 0.0,
              block: int = 100_000) -> np.ndarray:
    """*n* float32 vectors shaped like real catalog embeddings: a mixture of *groups* clusters whose centres and
    spreads follow a power-law spectrum with the participation ratio (effective dimension) measured on real
    catalogs (pacs-dev and wikiart-dev: style 7–23, l_style 5–7, content 62–75). Isotropic noise in every
    dimension would make nearest neighbours far harder to find than in any real collection."""
    scale = _spectrum(dim, participation)
    centres = rng.normal(size=(groups, dim)) * scale + offset
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, block):
        m = min(block, n - s)
        out[s:s + m] = centres[rng.integers(0, groups, m)] + 0.5 * rng.normal(size=(m, dim)) * scale
    return out


def synthetic_log(cdir: Path, rng) -> None:
    log = Log(cdir)
    log.create()
    spec = FeatureSpec()
    for path, k in ((log.projection, 384), (log.signature_projection, 128)):
        q, _ = np.linalg.qr(rng.normal(size=(SKETCH_DIM, k)).astype(np.float32))
        StyleProjection(mean=np.zeros(SKETCH_DIM, np.float32), components=q.T.copy(), explained=1.0, n_fit=2048,
                        seed=1508_06576).save(path)
    write_log_state(log, spec, 0, "float32")


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def query_wall_times(root: Path, rounds: int = 7) -> list[float]:
    """Wall time of `artspace similar WORK` as a shell loop runs it: a fresh process each time."""
    times = []
    for i in range(rounds):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "artspace.cli", "similar", str(i), "-k", "10", "-c", str(root),
                        "--format", "csv"], check=True, capture_output=True, cwd=REPO)
        times.append(time.perf_counter() - t)
    return times


_RSS_SNIPPET = """
import resource, sys, time
from artspace.catalog import Catalog
cat = Catalog.open(sys.argv[1])
ids = cat.works["id"].to_numpy()[:: max(1, len(cat.works) // 100)][:100]
t = time.perf_counter()
cat.similar(int(ids[-1]), by="style", k=10)
print(f"opening the catalog and a first query: {time.perf_counter() - t:.2f} s")
for by in ("style", "l_style", "content"):
    cat.similar(int(ids[0]), by=by, k=10)
    t = time.perf_counter()
    for wid in ids:
        cat.similar(int(wid), by=by, k=10)
    print(f"{by}: {1000 * (time.perf_counter() - t) / len(ids):.2f} ms a query")
status = open("/proc/self/status").read()  # ru_maxrss would carry the parent's peak across exec
print(f"peak resident memory: {int(status.split('VmHWM:')[1].split()[0]) / 2**10:.0f} MiB")
"""


def recall_against_exact(cat, by: str, queries: int = 100, k: int = 10) -> float:
    """Recall@k of the catalog's index search against exhaustive search on the stored vectors, for works drawn
    from the collection (the raw index search, before any re-ranking by neighbourhood scales)."""
    import faiss

    ids, x = cat.embeddings(by)
    x = np.ascontiguousarray(x, np.float32)
    rows = np.random.default_rng(1).choice(len(ids), size=min(queries, len(ids)), replace=False)
    metric = faiss.METRIC_L2 if cat.manifest["spaces"][by]["metric"] == "l2" else faiss.METRIC_INNER_PRODUCT
    _, truth = faiss.knn(x[rows], x, k, metric=metric)
    _, found = cat._index(by).search(x[rows], k)
    return float(np.mean([len(set(np.asarray(ids)[t]) & set(f)) / k for t, f in zip(truth, found)]))


def relative_recall(cat, queries: int = 100, k: int = 10) -> float:
    """Recall@k of `similar --by style` (the ranking relative to neighbourhood scales, as users see it) against the
    same ranking computed exhaustively over every work's stored signature and scale."""
    ids, x = cat.embeddings("style")
    scales = np.asarray(cat._embeddings()["style_scale"])
    rows = np.random.default_rng(2).choice(len(ids), size=min(queries, len(ids)), replace=False)
    hits = 0
    for r in rows:
        d = ((x - x[r]) ** 2).sum(1) / np.sqrt(scales[r] * scales)
        d[r] = np.inf
        truth = set(ids[np.argpartition(d, k)[:k]])
        hits += len(truth & set(cat.similar(int(ids[r]), by="style", k=k)["id"]))
    return hits / (k * len(rows))


def republish(kept: Path, add: int, rounds: int, profile: bool) -> None:
    """Add *add* works to the collection kept in *kept* (``--keep``) and time its publication, *rounds* times."""
    from artspace.catalog.generation import MAX_SHARDS
    from artspace.catalog.shards import ShardLog

    global DESCRIPTORS
    root = kept / "collection"
    cdir = root / ".artspace"
    if not (cdir / "CURRENT").is_file():
        raise SystemExit(f"{kept} holds no kept collection; make one with --keep {kept}")
    DESCRIPTORS = SyntheticDescriptors(np.random.default_rng(0))  # the subjects and hands the collection was drawn with
    for _ in range(rounds):
        log = ShardLog(Log(cdir).shards)
        first = max(int(Catalog.open(root).manifest["next_id"]), log.max_id + 1)  # as index numbers new works
        number = 1 + max(int(p.name[4:]) for p in root.glob("part[0-9][0-9][0-9]"))
        add_works(root, cdir, first, add, number, np.random.default_rng(number))
        compacts = len(log.shards) + 1 > MAX_SHARDS
        if profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            report, t = timed(lambda: profiler.runcall(index, root, quiet=True))
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        else:
            report, t = timed(lambda: index(root, quiet=True))
        print(f"| {REPO} | publishing after adding {add:,} works | {report.works:,} | {t:.1f} s |"
              + (" the log was compacted |" if compacts else ""), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="works in the catalog")
    ap.add_argument("--add", type=int, default=1_000, help="works added for the second publication")
    ap.add_argument("--cli", action="store_true", help="also time `artspace similar WORK` in fresh processes")
    ap.add_argument("--progress", action="store_true", help="print index's status lines (to stderr)")
    ap.add_argument("--keep", help="build the collection in this folder and keep it (default: a temporary one)")
    ap.add_argument("--profile", action="store_true", help="print where the publication after adding spends its time")
    ap.add_argument("--republish", type=Path, metavar="KEPT",
                    help="add --add works to the collection kept in KEPT and time the publication (see above)")
    ap.add_argument("--rounds", type=int, default=1, help="with --republish: how many times")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"# python {' '.join(sys.argv)}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    if args.republish is not None:
        republish(args.republish, args.add, args.rounds, args.profile)
        return
    with (contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory()) as tmp:
        root = Path(tmp) / "collection"
        cdir = root / ".artspace"
        root.mkdir()
        global DESCRIPTORS
        DESCRIPTORS = SyntheticDescriptors(rng)
        synthetic_log(cdir, rng)
        projection = Path(tmp) / "content_projection.npz"
        synthetic_content_projection(projection, rng)
        add_works(root, cdir, 0, args.n, 1, rng)
        quiet = not args.progress
        first, t_first = timed(lambda: index(root, quiet=quiet, content_projection=projection))
        add_works(root, cdir, args.n, args.add, 2, rng)
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            added, t_added = timed(lambda: profiler.runcall(index, root, quiet=quiet))
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        else:
            added, t_added = timed(lambda: index(root, quiet=quiet))
        same, t_same = timed(lambda: index(root, quiet=quiet))
        cat = Catalog.open(root)
        _, t_query = timed(lambda: [cat.similar(i, by="style", k=10) for i in range(100)])
        rows = [
            ("first publication", args.n, t_first, first.neighbours_searched),
            (f"after adding {args.add}", added.works, t_added, added.neighbours_searched),
            ("unchanged re-run (publishes nothing)", same.works, t_same, 0),
        ]
        print("| step | works | seconds | works searched for neighbour lists |")
        print("| --- | ---: | ---: | ---: |")
        for name, n, t, searched in rows:
            print(f"| {name} | {n:,} | {t:.1f} | {searched:,} |")
        print(f"\nsimilar --by style in the API: {1000 * t_query / 100:.1f} ms a query (mean of 100)")
        sizes = {p.name: p.stat().st_size for p in cat.files.iterdir()}
        print(f"generation on disk: {sum(sizes.values()) / 2**20:.0f} MiB "
              f"({json.dumps({k: round(v / 2**20, 1) for k, v in sorted(sizes.items())})} MiB)")
        print(f"peak resident memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f}"
              f" MiB")
        for by in ("style", "l_style", "content"):
            sp = cat.manifest["spaces"][by]
            print(f"{by}: index {sp['index']}, calibration {sp.get('index_calibration', 'exact')}, recall@10 of 100 "
                  f"other works against exhaustive search {recall_against_exact(cat, by):.3f}")
        print(f"style as `similar` ranks it (relative to neighbourhood scales): recall@10 of 100 works against the "
              f"exhaustive ranking {relative_recall(cat):.3f}")
        fresh = subprocess.run([sys.executable, "-c", _RSS_SNIPPET, str(root)], capture_output=True, text=True,
                               cwd=REPO, check=True)
        print("a fresh query process (API, 100 queries per space):", fresh.stdout.strip().replace("\n", "; "))
        if args.cli:
            times = query_wall_times(root)
            print(f"`artspace similar WORK -c ROOT` wall time, fresh process: median {statistics.median(times):.2f} s "
                  f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} runs)")


if __name__ == "__main__":
    main()
