"""Does content search follow what is depicted rather than the hand? Before and after, on pastiches nobody fitted
on, on pacs-dev and on the demo grid; and what style search with ``ignore_subject`` finds there and on wikiart-dev
(labelled by movement alone).

    # 1. two pastiche sets (AdaIN, artspace's own): 'fit' to fit the projection on, 'dev' to measure on; they share
    #    no photograph and no painting
    python benchmarks/bench_content.py make --photos ../shared/data/photos-train \\
        --paintings ../shared/data/paintings-train --out /tmp/content
    # 2. the mean channel statistics of photographs the descriptor's maps are restyled to
    #    (artspace/data/photo_statistics.npz)
    python benchmarks/bench_content.py statistics --photos ../shared/data/photos-train \\
        --save artspace/data/photo_statistics.npz
    # 3. index the 'fit' set and fit the shipped projection on it (artspace/data/content_projection.npz)
    python benchmarks/bench_content.py index --out /tmp/content --variant after
    python benchmarks/bench_content.py fit --out /tmp/content --save artspace/data/content_projection.npz
    # 4. index every set twice: 'before' with the previous content descriptor (no restyling, with the projection
    #    shipped for it), 'after' with the defaults
    python benchmarks/bench_content.py index --out /tmp/content --set dev=/tmp/content/dev \\
        --set pacs=../shared/data/pacs-dev --set demo=/tmp/demo --set wikiart=../shared/data/wikiart-dev \\
        --before-projection OLD.npz
    # 5. measure: precision@10 of every work as a query (pastiches only on 'dev'), 95 % bootstrap intervals
    python benchmarks/bench_content.py measure --out /tmp/content --ignore-subject 0.25 --ignore-subject 0.5
    # 6. how the content model's style groups follow each set's hand (NMI), k-means against Ward's clustering
    python benchmarks/bench_content.py groups --out /tmp/content

The learnt projection is read from the package when the 'after' catalogs are published, so step 3 comes before
their last publication: ``index`` re-publishes without reading an image again when asked to
(``--content-projection``). Every figure is what ``Catalog.similar(..., by=...)`` returns on these catalogs
(exact indexes below 200,000 works), each work a query, its own hit left out: content with the query alone
(``expand=0``) on both catalogs, then the query expanded with its nearest works, then as ``similar`` searches it by
default, the expanded query's cosines standardised (``standardise``).
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
from artspace.spec import FeatureSpec  # noqa: E402

#: The content and style labels of each set: (content column, style column)
LABELS = {"dev": ("subject", "painting"), "pacs": ("class", "domain"), "demo": ("shape", "texture"),
          "wikiart": (None, "style")}
#: 'before': the default descriptor until the eighteenth session, on maps as they are (no restyling; measured with
#: the projection shipped then, ``--before-projection``). Earlier tables' 'before' rows were relu5_4 alone.
BEFORE = FeatureSpec(descriptor_norm=None)


def make(args) -> None:
    from artspace.pastiches import pastiche_set

    out = Path(args.out)
    # fit: 244 photographs × 6 paintings of the even-numbered half; dev: 120 other photographs × 4 of 48 paintings
    # of the odd-numbered half (each dev painting styles about ten photographs, so "same painting" is measurable)
    for name, skip, n, per, share, paintings_n in (("dev", 300, 120, 4, (1, 2), 48), ("fit", 0, 244, 6, (0, 2), None)):
        t = time.perf_counter()
        table = pastiche_set(args.photos, args.paintings, out / name, photos_n=n, per_photo=per, skip_photos=skip,
                             painting_share=share, paintings_n=paintings_n, seed=0)
        print(f"{name}: {len(table)} images ({n} photographs × {per} paintings, and the photographs) in "
              f"{time.perf_counter() - t:.0f} s", flush=True)


def index_sets(args) -> None:
    out = Path(args.out)
    sets = dict(s.split("=", 1) for s in args.set)
    sets.setdefault("fit", str(out / "fit"))
    for name, folder in sets.items():
        for variant, spec in (("before", BEFORE), ("after", None)):
            if (name == "fit" and variant == "before") or variant not in (args.variant or ("before", "after")):
                continue
            md = Path(folder) / "metadata.csv"
            t = time.perf_counter()
            projection = args.before_projection if variant == "before" else None
            rep = index(folder, catalog=out / "catalogs" / f"{name}-{variant}", metadata=md if md.is_file() else None,
                        spec=spec, include_outputs=True, quiet=True, content_projection=projection,
                        precision=args.precision)
            print(f"{name} {variant}: {rep.works} works in {time.perf_counter() - t:.0f} s", flush=True)


def statistics(args) -> None:
    from artspace.content import fit_photo_statistics

    t = time.perf_counter()
    stats = fit_photo_statistics(args.photos, args.save)
    print(f"measured the channel statistics of {int(stats['photographs'])} photographs in "
          f"{time.perf_counter() - t:.0f} s; wrote {args.save}")


def fit(args) -> None:
    from artspace.analysis.content_fit import fit_content
    from artspace.content import SHRINKAGE

    cat = Catalog.open(Path(args.out) / "catalogs" / "fit-after")
    t = time.perf_counter()
    p = fit_content(cat, "photo", shrinkage=SHRINKAGE)
    p.info["catalog"] = "pastiche set 'fit' of benchmarks/bench_content.py (photos-train × paintings-train)"
    p.save(args.save)
    print(f"fitted {p.dim} directions on {p.info['works']} works in {p.info['groups']} groups in "
          f"{time.perf_counter() - t:.1f} s; wrote {args.save}")


def precision_at(cat: Catalog, by: str, labels: np.ndarray, rows: np.ndarray, k: int = 10, seed: int = 0, **options):
    """Mean precision@k of *labels* over the query *rows* through ``Catalog.similar``, and its 95 % bootstrap
    interval over the queries."""
    ids = cat.works["id"].to_numpy()
    label_of = dict(zip(ids, labels))
    hits = []
    for r in rows:
        found = cat.similar(int(ids[r]), by=by, k=k, **options)
        got = [label_of[i] for i in found["id"]]
        hits.append(np.mean([g == labels[r] for g in got]))
    hits = np.asarray(hits)
    rng = np.random.default_rng(seed)
    boot = [hits[rng.integers(0, len(hits), len(hits))].mean() for _ in range(1000)]
    return float(hits.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def fmt(p) -> str:
    return f"{p[0]:.3f} [{p[1]:.2f}, {p[2]:.2f}]"


def measure(args) -> None:
    cats = Path(args.out) / "catalogs"
    for name, (content_col, style_col) in LABELS.items():
        if not (cats / f"{name}-after").exists() or (args.only and name not in args.only):
            continue
        print(f"\n### {name}\n")
        if content_col is None:  # a set labelled by style alone (wikiart-dev: the movement)
            print(f"| catalog | style: same {style_col} ↑ |\n| --- | --- |")
        else:
            print(f"| catalog | content: same {content_col} ↑ | content: same {style_col} ↓ "
                  f"| style: same {style_col} ↑ | style: same {content_col} ↓ |")
            print("| --- | --- | --- | --- | --- |")
        opened = {}
        for variant in ("before", "after"):
            if not (cats / f"{name}-{variant}").exists():
                continue
            cat = opened[variant] = Catalog.open(cats / f"{name}-{variant}")
            w = cat.works
            rows = np.flatnonzero(w["kind"].to_numpy() == "pastiche") if "kind" in w.columns else np.arange(len(w))
            s = w[style_col].to_numpy(object)
            if content_col is None:
                cells = [precision_at(cat, "style", s, rows)]
            else:
                c = w[content_col].to_numpy(object)
                # the query alone, as both catalogs searched content before query expansion
                cells = [precision_at(cat, "content", c, rows, expand=0, standardise=False),
                         precision_at(cat, "content", s, rows, expand=0, standardise=False),
                         precision_at(cat, "style", s, rows), precision_at(cat, "style", c, rows)]
            print(f"| {variant} | " + " | ".join(fmt(x) for x in cells) + " |", flush=True)
        if content_col is not None:  # each catalog as similar(..., by="content") searches it now
            from artspace.catalog.queries import EXPAND

            for variant, cat in opened.items():
                w = cat.works
                rows = np.flatnonzero(w["kind"].to_numpy() == "pastiche") if "kind" in w.columns else np.arange(len(w))
                s, c = w[style_col].to_numpy(object), w[content_col].to_numpy(object)
                for label, options in ((f"{variant}, content query expanded with its {EXPAND} nearest works",
                                        {"standardise": False}),
                                       (f"{variant}, expanded, each cosine standardised (the default)", {})):
                    cells = [precision_at(cat, "content", c, rows, **options),
                             precision_at(cat, "content", s, rows, **options)]
                    print(f"| {label} | " + " | ".join(fmt(x) for x in cells) + " | | |", flush=True)
        # the 'after' catalog, style searched with similar(..., ignore_subject=γ)
        for gamma in args.ignore_subject:
            cells = [precision_at(cat, "style", s, rows, ignore_subject=gamma)]
            if content_col is not None:
                cells.append(precision_at(cat, "style", c, rows, ignore_subject=gamma))
            blank = "" if content_col is None else " | |"
            print(f"| after, style with ignore_subject={gamma}{blank} | " + " | ".join(fmt(x) for x in cells) + " |",
                  flush=True)


def groups(args) -> None:
    """NMI with each set's hand (and its subject) of the style groups made by k-means and by Ward's clustering, on the
    'after' catalogs' L_style embeddings, at the number of groups the catalog chose and at 4 and 8; then the counts of
    each hand in the catalog's own groups."""
    from sklearn.cluster import AgglomerativeClustering, KMeans
    from sklearn.metrics import normalized_mutual_info_score as nmi

    from artspace.content_model import choose_groups

    cats = Path(args.out) / "catalogs"
    for name, (content_col, style_col) in LABELS.items():
        if not (cats / f"{name}-after").exists() or (args.only and name not in args.only):
            continue
        cat = Catalog.open(cats / f"{name}-after")
        ids, style = cat.embeddings("l_style")
        w = cat.works.set_index("id").loc[ids]
        hand = w[style_col].fillna("(photograph)").astype(str).to_numpy()
        subject = w[content_col].astype(str).to_numpy() if content_col else None
        x = np.asarray(style, np.float64)
        subject_name = content_col or "(no subject labels)"
        print(f"\n### {name}\n\n| k | k-means: NMI with the {style_col} | Ward "
              f"| k-means: NMI with the {subject_name} | Ward |\n| --- | --- | --- | --- | --- |")
        chosen = choose_groups(np.asarray(style, np.float32))
        for k in sorted({chosen, 4, 8}):
            km = KMeans(k, n_init=4, random_state=0).fit_predict(x)
            ward = AgglomerativeClustering(k, linkage="ward").fit_predict(x)
            cells = [f"{nmi(hand, km):.2f}", f"{nmi(hand, ward):.2f}"]
            cells += [f"{nmi(subject, km):.2f}", f"{nmi(subject, ward):.2f}"] if subject is not None else ["", ""]
            print(f"| {k}{' (chosen)' if k == chosen else ''} | " + " | ".join(cells) + " |")
        own = cat._content_stats().groups
        if len(set(hand)) <= 12:
            print(f"\nthe catalog's own {len(set(own))} groups against the {style_col}:\n")
            print(pd.crosstab(own, hand).to_string())
        else:  # too many hands for a table: each group's size and how many hands it holds
            print(f"\nthe catalog's own {len(set(own))} groups: " + ", ".join(
                f"{int((own == g).sum())} works of {len(set(hand[own == g]))} {style_col}s" for g in np.unique(own)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--photos", required=True)
    m.add_argument("--paintings", required=True)
    m.add_argument("--out", required=True)
    i = sub.add_parser("index")
    i.add_argument("--out", required=True)
    i.add_argument("--set", action="append", default=[], help="NAME=FOLDER (dev, pacs, demo)")
    i.add_argument("--variant", action="append", default=[], help="before, after (repeatable; default both)")
    i.add_argument("--before-projection", help="the content projection the 'before' catalogs use (the one shipped "
                   "with the previous descriptor; default: none)")
    i.add_argument("--precision", default="auto", help="float32, bfloat16 or auto (the indexer's default)")
    st = sub.add_parser("statistics")
    st.add_argument("--photos", required=True)
    st.add_argument("--save", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--out", required=True)
    f.add_argument("--save", required=True)
    e = sub.add_parser("measure")
    e.add_argument("--out", required=True)
    e.add_argument("--ignore-subject", type=float, action="append", default=[],
                   help="also measure style search with similar(..., ignore_subject=G) (repeatable)")
    e.add_argument("--only", action="append", default=[], help="measure only this set (repeatable)")
    g = sub.add_parser("groups")
    g.add_argument("--out", required=True)
    g.add_argument("--only", action="append", default=[], help="only this set (repeatable)")
    args = ap.parse_args()
    print(f"# python {' '.join(sys.argv)}")
    {"make": make, "index": index_sets, "statistics": statistics, "fit": fit, "measure": measure,
     "groups": groups}[args.cmd](args)


if __name__ == "__main__":
    main()
