r"""Analyses of a catalogued collection: clusters, the style/content plane, group comparisons, neighbours, export.

Every function takes a *source*: either a :class:`~artspace.catalog.Catalog`, or a pair ``(works, X)`` of a works
table (one row per work, with an ``id`` column; metadata columns as you like) and an embedding matrix with one row per
work (or a dict ``{"style": Xs, "content": Xc}``). The pair form lets the same code run on synthetic embeddings at
scale, without images.

Which distance each analysis uses
---------------------------------
Both of the catalog's spaces are compared with a *squared Euclidean* distance, scaled:

* ``by="style"``: :math:`d(a,b)=\lVert s_a-s_b\rVert^2`, the catalog's estimate of the seeds' style distance
  :math:`L_{style}=\sum_l w_l E_l` (squared L2 between the compact style embeddings).
* ``by="content"``: :math:`d(a,b)=\tfrac12\lVert c_a-c_b\rVert^2 = 1-\cos(c_a,c_b)` between the unit content
  embeddings.

Because both are squared Euclidean distances, the mean distance between two groups has an exact closed form in the
groups' means and spreads (:func:`compare`), k-means minimises exactly the within-cluster sum of these distances
(:func:`cluster`), and nothing needs the :math:`n^2` matrix of pairs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .atomic import atomic_write
from .images import save_image
from .sheets import thumbnail
from .errors import ArtspaceError, InvalidOption, WorkNotFound
from .outputs import check_output, neutralise_formulas

__all__ = [
    "BY",
    "CLUSTER_METHODS",
    "DISTANCE_SCALE",
    "ClusterResult",
    "CompareResult",
    "PlaneResult",
    "cluster",
    "compare",
    "export",
    "neighbors",
    "plane",
    "works_and_vectors",
]

BY = ("style", "content")
#: Factor turning a squared Euclidean distance between embeddings into the analysis distance (see module doc).
DISTANCE_SCALE = {"style": 1.0, "content": 0.5}
CLUSTER_METHODS = ("kmeans", "hdbscan", "agglomerative")
#: Columns of the works table that are bookkeeping, not metadata worth showing or colouring by.
_BOOKKEEPING = ("size", "mtime_ns", "checksum")


# ---------------------------------------------------------------------------------------------------------------
# Shared helpers


def _check_by(by: str) -> str:
    if by not in BY:
        raise InvalidOption(f"by must be 'style' or 'content', not {by!r}")
    return by


def _is_catalog(source) -> bool:
    from .catalog import Catalog

    return isinstance(source, Catalog)


def works_and_vectors(source, *, by: str = "style") -> tuple[pd.DataFrame, np.ndarray]:
    """The works table and the embedding matrix of *source*, row-aligned.

    Parameters
    ----------
    source : Catalog or (DataFrame, ndarray or dict)
        A catalog, or a works table with one row per work (an ``id`` column is added if missing) and its
        embeddings: one matrix, or ``{"style": Xs, "content": Xc}``.
    by : {"style", "content"}

    Returns
    -------
    works : DataFrame
        One row per row of *X*, index ``0..n-1``.
    X : ndarray (n, d) float32

    Examples
    --------
    >>> works, X = works_and_vectors((pd.DataFrame({"g": ["a", "b"]}), np.eye(2)))
    >>> list(works["id"]), X.dtype
    ([0, 1], dtype('float32'))
    """
    _check_by(by)
    if _is_catalog(source):
        ids, X = source.embeddings(by)
        works = source.works
        pos = pd.Index(works["id"].to_numpy(np.int64)).get_indexer(ids)
        if (pos < 0).any():
            raise ArtspaceError(f"the catalog {source.dir} is inconsistent (embeddings of works missing from "
                                f"works.parquet); rebuild it with `artspace index --rebuild`")
        return works.iloc[pos].reset_index(drop=True), np.asarray(X, np.float32)
    if isinstance(source, tuple) and len(source) == 2:
        works, X = source
        if isinstance(X, dict):
            if by not in X:
                raise InvalidOption(f"no {by!r} embeddings in the source (it has {', '.join(X)})")
            X = X[by]
        X = np.ascontiguousarray(np.asarray(X, np.float32))
        if X.ndim != 2:
            raise InvalidOption(f"embeddings must be a 2-d matrix (works x dimensions), not shape {X.shape}")
        if not isinstance(works, pd.DataFrame):
            raise TypeError(f"the works table must be a pandas DataFrame, not {type(works).__name__}")
        if len(works) != len(X):
            raise InvalidOption(f"{len(works)} works but {len(X)} embedding rows; they must match row by row")
        works = works.reset_index(drop=True)
        if "id" not in works.columns:
            works = works.assign(id=np.arange(len(works), dtype=np.int64))
        return works, X
    raise TypeError("source must be a Catalog or a (works DataFrame, embedding matrix) pair, not "
                    f"{type(source).__name__}")


def write_csv(df: pd.DataFrame, path) -> Path:
    """Write *df* as CSV atomically, its text cells escaped so that no spreadsheet runs them as formulas.

    Metadata values and file names come from the collection, so a cell such as ``=HYPERLINK(...)`` is escaped to
    ``'=HYPERLINK(...)`` (see :func:`artspace.outputs.neutralise_formulas`); numbers are written as they are.
    """
    path = check_output(Path(path))  # never inside a catalog folder
    return atomic_write(path, lambda tmp: neutralise_formulas(df).to_csv(tmp, index=False))


def _check_out(source, out) -> Path:
    """The output folder (or file) *out* as a Path; :class:`~artspace.errors.OutputConflict` when it is or lies
    inside *source*'s catalog folder, whose files only artspace writes. Checked before any work is done."""
    return check_output(Path(out), protected_dirs=[source.dir] if _is_catalog(source) else [])


def _metadata_file(source) -> Path | None:
    """The metadata CSV a catalog joins on every ``artspace index`` (an input no export may overwrite)."""
    rel = source.manifest.get("metadata") if _is_catalog(source) else None
    return source.root / rel if rel else None


def save_figure(fig, path, *, dpi: int = 110) -> Path:
    """Save a matplotlib figure atomically (the format follows the suffix)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight"))


def _thumbnail(root: Path, rel: str, px: int):
    """A thumbnail (RGB, long side *px*) of the work at ``root/rel``; a grey square when it cannot be read."""
    from .sheets import thumbnail

    return thumbnail(Path(root) / rel, px)


def _caption(row: pd.Series, extra: str | None) -> str:
    name = str(row["path"]).rsplit("/", 1)[-1] if "path" in row else str(row["id"])
    if extra and extra in row and pd.notna(row[extra]):
        return f"{name}\n{extra}: {row[extra]}"
    return name


def _metadata_columns(works: pd.DataFrame) -> list[str]:
    return [c for c in works.columns if c not in ("id",) + _BOOKKEEPING]


def _sq_dists_to(X: np.ndarray, v: np.ndarray) -> np.ndarray:
    diff = X.astype(np.float64) - v.astype(np.float64)[None]
    return np.einsum("ij,ij->i", diff, diff)


def _rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------------------------
# Neighbours


def neighbors(source, *, by: str = "style", k: int = 8, exact_limit: int = 30_000, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    """Each work's *k* nearest other works by style or by content.

    Exact (faiss brute force) up to *exact_limit* works; above it, candidates are found on a 64-dimensional PCA of
    the embeddings with :func:`approximate_knn` and re-ranked with the exact distance (so a true neighbour can be
    missed, never misplaced).

    Parameters
    ----------
    source : Catalog or (works, X)
    by : {"style", "content"}
    k : int
        Neighbours per work (at most ``n - 1``).

    Returns
    -------
    rows : ndarray (n, k) int64
        Row positions (in :func:`works_and_vectors` order) of each work's neighbours, nearest first.
    distances : ndarray (n, k) float32
        Their distances (style: squared L2 ≈ L_style; content: 1 − cos).
    """
    import faiss

    works, X = works_and_vectors(source, by=by)
    n = len(X)
    k = int(k)
    if k < 1:
        raise InvalidOption(f"k must be at least 1, not {k}")
    k = min(k, n - 1)
    if k < 1:
        return np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32)
    scale = DISTANCE_SCALE[by]
    if n <= exact_limit:
        index = faiss.IndexFlatL2(X.shape[1])
        index.add(X)
        d, i = index.search(X, k + 1)
        rows, dist = _drop_self(i, d, k)
        return rows, (np.maximum(dist, 0) * scale).astype(np.float32)
    dim = min(64, X.shape[1])
    pca = faiss.PCAMatrix(X.shape[1], dim)
    sample = X[_rng(seed).choice(n, size=min(n, 20_000), replace=False)]
    pca.train(sample)
    Z = pca.apply(X)
    cand = min(n - 1, 4 * k) + 1
    _, I = approximate_knn(Z, cand, seed=seed)
    rows = np.empty((n, k), np.int64)
    dist = np.empty((n, k), np.float32)
    for start in range(0, n, 4096):
        stop = min(n, start + 4096)
        i = I[start:stop]
        diff = X[i] - X[start:stop, None, :]
        exact = np.einsum("ijk,ijk->ij", diff, diff)
        exact[i == np.arange(start, stop)[:, None]] = np.inf
        exact[i < 0] = np.inf
        order = np.argsort(exact, axis=1)[:, :k]
        rows[start:stop] = np.take_along_axis(i, order, 1)
        dist[start:stop] = np.take_along_axis(exact, order, 1) * scale
    return rows, dist


_neighbors = neighbors  # export's argument of the same name shadows it


def approximate_knn(Z: np.ndarray, k: int, *, seed: int = 0, nprobe: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Approximate *k* nearest neighbours (self included) of every row of *Z* under squared L2: a faiss inverted
    file of √n lists, searched in *nprobe* of them (recall@16 ≈ 0.96 on 100,000 50-d points).

    Returns
    -------
    distances, rows : ndarray (n, k)
        Squared L2 distances and row positions, nearest first (−1 where fewer were found).
    """
    import faiss

    Z = np.ascontiguousarray(Z, np.float32)
    n, d = Z.shape
    nlist = max(1, int(np.sqrt(n)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
    train = Z[_rng(seed).choice(n, size=min(n, 40 * nlist), replace=False)]
    index.cp.seed = int(seed)
    index.train(train)
    index.add(Z)
    index.nprobe = min(nlist, nprobe)
    return index.search(Z, k)


def _drop_self(i: np.ndarray, d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(i)
    rows = np.empty((n, k), np.int64)
    dist = np.empty((n, k), np.float32)
    for r in range(n):
        keep = i[r] != r
        ii, dd = i[r][keep][:k], d[r][keep][:k]
        rows[r], dist[r] = ii, dd
    return rows, dist


# ---------------------------------------------------------------------------------------------------------------
# Clusters


@dataclass
class ClusterResult:
    """What :func:`cluster` found.

    Attributes
    ----------
    labels : DataFrame
        ``id``, ``path`` (when known), ``cluster`` (0 = the largest cluster; −1 = noise, hdbscan only),
        ``distance`` (to the cluster's mean, in the analysis distance), and the metadata columns.
    by, method : str
    k : int
        Number of clusters (noise not counted).
    how : str
        How *k* was chosen, in words.
    column : str
        The works-table column holding the labels (written when the source is a catalog and ``save=True``).
    scores : DataFrame or None
        ``k``, ``silhouette`` of every candidate k when k was chosen automatically.
    label_column : str or None
    purity, nmi, ari : float or None
        Agreement with *label_column* (see :func:`cluster`).
    contingency : DataFrame or None
        Works per (cluster, label).
    files : list of Path
        Files written (CSV and contact sheets).
    """

    labels: pd.DataFrame
    by: str
    method: str
    k: int
    how: str
    column: str
    scores: pd.DataFrame | None = None
    label_column: str | None = None
    purity: float | None = None
    nmi: float | None = None
    ari: float | None = None
    contingency: pd.DataFrame | None = None
    files: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def sizes(self) -> pd.Series:
        """Works per cluster."""
        return self.labels["cluster"].value_counts().sort_index()

    def summary(self) -> str:
        """A few lines for people: k and how it was chosen, sizes, agreement with the label column."""
        noise = int((self.labels["cluster"] < 0).sum())
        lines = [f"{self.k} {self.by} clusters of {len(self.labels)} works ({self.method}); {self.how}",
                 "sizes: " + ", ".join(f"{c}: {n}" for c, n in self.sizes.items() if c >= 0)
                 + (f"; noise: {noise}" if noise else "")]
        if self.label_column is not None:
            lines.append(f"against {self.label_column!r}: purity {self.purity:.3f}, NMI {self.nmi:.3f}, "
                         f"ARI {self.ari:.3f}")
        return "\n".join(lines)


def _kmeans(X: np.ndarray, k: int, seed: int, n_init: int | None = None) -> np.ndarray:
    from sklearn.cluster import KMeans

    if n_init is None:
        n_init = 4 if len(X) <= 20_000 else 1
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(X)


def _agglomerative(X: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(X)


def _nearest_centroid(X: np.ndarray, labels: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """Labels for every row of *X*, given the labels of the rows *sample*: each row joins the nearest cluster mean."""
    import faiss

    ks = sorted(set(labels.tolist()) - {-1})
    cents = np.stack([X[sample[labels == c]].mean(0) for c in ks]).astype(np.float32)
    index = faiss.IndexFlatL2(X.shape[1])
    index.add(cents)
    out = np.empty(len(X), np.int64)
    for start in range(0, len(X), 65536):
        _, i = index.search(X[start:start + 65536], 1)
        out[start:start + 65536] = np.asarray(ks)[i[:, 0]]
    out[sample] = labels
    return out


def _choose_k(X: np.ndarray, method: str, ks: Sequence[int], seed: int, sample_size: int
              ) -> tuple[int, pd.DataFrame, str]:
    from sklearn.metrics import silhouette_score

    n = len(X)
    idx = np.sort(_rng(seed).choice(n, size=min(n, sample_size), replace=False))
    S = X[idx]
    rows = []
    for k in ks:
        if k >= len(S):
            break
        lab = _kmeans(S, k, seed, n_init=2) if method == "kmeans" else _agglomerative(S, k)
        score = silhouette_score(S, lab, metric="euclidean") if len(set(lab)) > 1 else -1.0
        rows.append({"k": int(k), "silhouette": float(score)})
    scores = pd.DataFrame(rows)
    best = scores.loc[scores["silhouette"].idxmax()]
    where = f"all {n} works" if len(S) == n else f"a random sample of {len(S)} of {n} works"
    how = (f"k={int(best['k'])} chosen automatically: the highest mean silhouette ({best['silhouette']:.3f}) among "
           f"k={scores['k'].min()}..{scores['k'].max()}, computed on {where}")
    return int(best["k"]), scores, how


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters by decreasing size (0 = largest); noise (−1) stays −1."""
    vals, counts = np.unique(labels[labels >= 0], return_counts=True)
    order = vals[np.lexsort((vals, -counts))]
    mapping = {int(v): i for i, v in enumerate(order)}
    return np.array([mapping.get(int(v), -1) for v in labels], np.int64)


def agreement(labels, truth) -> dict:
    """Purity, NMI and ARI of cluster *labels* against reference labels *truth* (rows with no truth are ignored).

    Purity: the share of works whose cluster's most frequent label is their own. NMI: normalised mutual
    information (arithmetic mean normalisation), 0 = independent, 1 = the same partition. ARI: adjusted Rand index.
    Noise (−1) counts as one more cluster.

    Examples
    --------
    >>> r = agreement([0, 0, 1, 1], ["a", "a", "b", "b"])
    >>> r["purity"], round(r["nmi"], 3)
    (1.0, 1.0)
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    lab = pd.Series(np.asarray(labels)).reset_index(drop=True)
    tru = pd.Series(np.asarray(truth, dtype=object)).reset_index(drop=True)
    ok = tru.notna().to_numpy()
    lab, tru = lab[ok], tru[ok].astype(str)
    if len(lab) == 0:
        raise ArtspaceError("no work has a value in the label column; nothing to compare the clusters with")
    table = pd.crosstab(lab.to_numpy(), tru.to_numpy(), rownames=["cluster"], colnames=["label"])
    purity = float(table.max(axis=1).sum() / table.to_numpy().sum())
    return {"purity": purity, "nmi": float(normalized_mutual_info_score(tru, lab)),
            "ari": float(adjusted_rand_score(tru, lab)), "contingency": table}


def cluster(source, *, by: str = "style", k: int | None = None, method: str = "kmeans",
            label_column: str | None = None, column: str | None = None, k_range: tuple[int, int] = (2, 12),
            min_cluster_size: int | None = None, seed: int = 0, save: bool = True, out=None,
            sheet_size: int = 24, sample_size: int = 4000, max_fit: int = 20_000) -> ClusterResult:
    """Cluster the works by style or by content.

    Parameters
    ----------
    source : Catalog or (works, X)
    by : {"style", "content"}
        Space and distance: style = squared L2 of the style embeddings (≈ L_style); content = 1 − cos.
    k : int, optional
        Number of clusters. When omitted (k-means and agglomerative), k is chosen in *k_range* by the highest mean
        silhouette, on a sample of *sample_size* works; ``ClusterResult.how`` says so.
    method : {"kmeans", "hdbscan", "agglomerative"}
        ``kmeans`` minimises the within-cluster sum of the analysis distance; ``agglomerative`` uses Ward linkage
        (the same criterion, greedily); ``hdbscan`` finds dense groups itself (no k) on a 32-dimensional PCA of the
        embeddings and may leave works out as noise (label −1). Above *max_fit* works, agglomerative and hdbscan
        are fitted on a random sample and every other work joins the nearest cluster mean.
    label_column : str, optional
        A works-table column (e.g. ``style``) to score the clusters against: purity, NMI, ARI.
    column : str, optional
        Name of the works-table column to write (default ``cluster_<by>``).
    save : bool
        Write the labels into the catalog's works table (catalog sources only).
    out : path, optional
        Folder for ``clusters-<by>.csv`` and one contact sheet per cluster, ``cluster-<by>-<c>.png`` (its
        *sheet_size* works nearest the cluster's mean; catalog sources only).

    Returns
    -------
    ClusterResult

    Examples
    --------
    >>> X = np.r_[np.zeros((5, 2)), np.ones((5, 2)) * 10]
    >>> r = cluster((pd.DataFrame({"g": list("aaaaabbbbb")}), X), k=2, label_column="g")
    >>> r.k, r.purity
    (2, 1.0)
    """
    t0 = time.perf_counter()
    _check_by(by)
    if method not in CLUSTER_METHODS:
        raise InvalidOption(f"method must be one of {', '.join(CLUSTER_METHODS)}, not {method!r}")
    if out is not None:
        out = _check_out(source, out)
    works, X = works_and_vectors(source, by=by)
    n = len(X)
    if label_column is not None and label_column not in works.columns:
        raise ArtspaceError(f"no column {label_column!r} in the works table; columns: "
                            f"{', '.join(_metadata_columns(works))}")
    if n < 3:
        raise ArtspaceError(f"{n} works are too few to cluster (at least 3 are needed)")
    column = column or f"cluster_{by}"
    scores = None
    if method == "hdbscan":
        if k is not None:
            raise InvalidOption(f"hdbscan finds the number of clusters itself, so k={k} cannot be used; leave k out, "
                                "or use method='kmeans' or 'agglomerative' to fix it")
        from sklearn.cluster import HDBSCAN
        from sklearn.decomposition import PCA

        fit = np.sort(_rng(seed).choice(n, size=min(n, max_fit), replace=False))
        dims = min(32, X.shape[1], len(fit) - 1)
        Z = PCA(n_components=dims, random_state=seed).fit_transform(X[fit]) if X.shape[1] > dims else X[fit]
        mcs = int(min_cluster_size or max(3, min(50, len(fit) // 50)))
        lab = HDBSCAN(min_cluster_size=mcs, copy=True).fit_predict(Z)
        if (lab >= 0).sum() == 0:
            raise ArtspaceError(f"hdbscan found no cluster with min_cluster_size={mcs} (every work is noise); "
                                f"lower min_cluster_size or use method='kmeans'")
        labels = lab if len(fit) == n else _nearest_centroid(X, lab, fit)
        k_found = len(set(labels.tolist()) - {-1})
        how = (f"hdbscan found {k_found} dense clusters (min_cluster_size={mcs}, on a {dims}-d PCA"
               + (f"; fitted on {len(fit)} of {n} works, the others joined the nearest cluster mean)"
                  if len(fit) < n else ")"))
    else:
        if k is None:
            lo, hi = k_range
            ks = range(max(2, int(lo)), min(int(hi), n - 1) + 1)
            if len(ks) == 0:
                raise ArtspaceError(f"{n} works are too few to choose k in {k_range}; pass k")
            k, scores, how = _choose_k(X, method, ks, seed, sample_size)
        else:
            k = int(k)
            if not 1 <= k <= n:
                raise InvalidOption(f"k must be between 1 and the number of works ({n}), not {k}")
            how = f"k={k} as requested"
        if method == "kmeans":
            labels = _kmeans(X, k, seed)
        else:
            fit = np.sort(_rng(seed).choice(n, size=min(n, max_fit), replace=False))
            lab = _agglomerative(X[fit], k)
            labels = lab if len(fit) == n else _nearest_centroid(X, lab, fit)
            if len(fit) < n:
                how += f"; Ward linkage fitted on {len(fit)} of {n} works, the others joined the nearest cluster mean"
    labels = _renumber(np.asarray(labels))
    k_final = int(len(set(labels.tolist()) - {-1}))

    # Distance of each work to its cluster's mean, in the analysis distance.
    dist = np.full(n, np.nan)
    for c in range(k_final):
        m = labels == c
        dist[m] = _sq_dists_to(X[m], X[m].mean(0)) * DISTANCE_SCALE[by]
    keep = ["id"] + [c for c in ("path",) if c in works.columns]
    table = works[keep].copy()
    table["cluster"] = labels
    table["distance"] = dist
    meta = [c for c in _metadata_columns(works) if c not in keep and not c.startswith(("cluster_", "map_"))]
    table = pd.concat([table, works[meta]], axis=1)
    result = ClusterResult(labels=table, by=by, method=method, k=k_final, how=how, column=column, scores=scores)
    if label_column is not None:
        a = agreement(labels, works[label_column].to_numpy())
        result.label_column = label_column
        result.purity, result.nmi, result.ari, result.contingency = a["purity"], a["nmi"], a["ari"], a["contingency"]
    if save and _is_catalog(source):
        source.update_columns(pd.DataFrame({column: labels}, index=pd.Index(table["id"].to_numpy(), name="id")))
    if out is not None:
        result.files.append(write_csv(table, out / f"clusters-{by}.csv"))
        if _is_catalog(source):
            result.files += _cluster_sheets(source, result, out, sheet_size=sheet_size, caption=label_column)
    result.seconds = time.perf_counter() - t0
    return result


def _cluster_sheets(cat, result: ClusterResult, out: Path, *, sheet_size: int, caption: str | None) -> list:
    from .sheets import contact_sheet

    files = []
    table = result.labels
    for c in sorted(table["cluster"].unique()):
        members = table[table["cluster"] == c]
        members = members.sort_values("distance", na_position="last").head(sheet_size)
        items = [(_thumbnail(cat.root, row["path"], 160), _caption(row, caption)) for _, row in members.iterrows()]
        name = "noise" if c < 0 else f"{c:02d}"
        n_c = int((table["cluster"] == c).sum())
        title = (f"{result.by} cluster {c}: {n_c} works" if c >= 0 else f"noise: {n_c} works") + \
            (f" (the {len(members)} nearest its mean)" if c >= 0 and n_c > len(members) else "")
        sheet = contact_sheet(items, columns=6, thumb=128, title=title)
        files.append(save_image(sheet, out / f"cluster-{result.by}-{name}.png"))
    return files


# ---------------------------------------------------------------------------------------------------------------
# The style/content plane (lecture notes, Figure 1)

#: Names of the four quadrants of the plane, by (style near?, content near?).
QUADRANTS = {
    (True, True): "same style, same subject",
    (True, False): "same style, other subject",
    (False, True): "same subject, other style",
    (False, False): "other style, other subject",
}


@dataclass
class PlaneResult:
    """The plane of :func:`plane`.

    Attributes
    ----------
    works : DataFrame
        Every work (but the query itself): ``id``, ``path``, ``content_distance`` (1 − cos), ``style_distance``
        (≈ L_style), their percentile ranks ``content_rank`` and ``style_rank`` (0 = nearest), ``quadrant``, and
        the metadata columns; sorted by style distance.
    query : str
    query_id : int or None
    thresholds : dict
        ``{"content": c, "style": s}``: the split between near and far on each axis.
    top : dict
        Quadrant name → DataFrame of its first works: in "same style, other subject" the works nearest in style
        (among those far in content), in "same subject, other style" the works nearest in content (among those far
        in style); the other two quadrants by style distance.
    figure : matplotlib Figure
    """

    works: pd.DataFrame
    query: str
    query_id: int | None
    thresholds: dict
    top: dict
    figure: object = None
    files: list = field(default_factory=list)

    def summary(self, n: int = 5) -> str:
        lines = [f"{len(self.works)} works placed around {self.query} (split: content distance "
                 f"{self.thresholds['content']:.4g}, style distance {self.thresholds['style']:.4g})"]
        for name in ("same style, other subject", "same subject, other style"):
            df = self.top[name]
            lines.append(f"{name} ({int((self.works['quadrant'] == name).sum())} works): " + (
                ", ".join(str(p) for p in df["path"].head(n)) if len(df) else "none"))
        return "\n".join(lines)


def plane(cat, query, *, split: float = 0.5, top: int = 5, color: str | None = None, thumbs: int = 3,
          out=None) -> PlaneResult:
    """Place every work by its content distance (x) and style distance (y) from *query*.

    The picture of the lecture notes' Figure 1 for a whole collection: works in the lower-right are painted in
    the query's manner but show something else ("same style, other subject"); works in the upper-left show the
    same subject in another manner ("same subject, other style").

    Parameters
    ----------
    cat : Catalog
        Or a pair ``(works, {"style": Xs, "content": Xc})`` with *query* a work id.
    query : path, id or relative path
        A catalogued work or any image file.
    split : float in (0, 1)
        Quantile of each axis that separates near from far (0.5: the median).
    top : int
        Works listed per named quadrant.
    color : str, optional
        Metadata column to colour the points by.
    thumbs : int
        Thumbnails drawn on the figure for each named quadrant (catalog sources only).
    out : path, optional
        Folder for ``plane.png`` and ``plane.csv``.

    Returns
    -------
    PlaneResult
    """
    if not 0 < split < 1:
        raise InvalidOption(f"split must be a quantile strictly between 0 and 1, not {split}")
    if out is not None:
        out = _check_out(cat, out)
    is_cat = _is_catalog(cat)
    works, Xc = works_and_vectors(cat, by="content")
    _, Xs = works_and_vectors(cat, by="style")
    if is_cat:
        vecs, qid = cat.query_vectors(query)
        vs, vc = vecs["style"], vecs["content"]
    else:
        hit = np.flatnonzero(works["id"].to_numpy() == int(query)) if str(query).lstrip("-").isdigit() else []
        if len(hit) == 0:
            raise WorkNotFound(f"{query!r} is not the id of a work of this table")
        qid = int(query)
        vs, vc = Xs[hit[0]], Xc[hit[0]]
    df = works[["id"] + [c for c in ("path",) if c in works.columns]].copy()
    df["content_distance"] = np.maximum(_sq_dists_to(Xc, vc) * DISTANCE_SCALE["content"], 0)
    df["style_distance"] = np.maximum(_sq_dists_to(Xs, vs) * DISTANCE_SCALE["style"], 0)
    meta = [c for c in _metadata_columns(works) if c not in df.columns and not c.startswith("map_")]
    df = pd.concat([df, works[meta]], axis=1)
    if qid is not None:
        df = df[df["id"] != qid]
    if len(df) < 2:
        raise ArtspaceError("the plane needs at least two works besides the query")
    df = df.reset_index(drop=True)
    df["content_rank"] = df["content_distance"].rank(pct=True, method="average")
    df["style_rank"] = df["style_distance"].rank(pct=True, method="average")
    tc = float(df["content_distance"].quantile(split))
    ts = float(df["style_distance"].quantile(split))
    near_s = (df["style_distance"] <= ts).to_numpy()
    near_c = (df["content_distance"] <= tc).to_numpy()
    df["quadrant"] = [QUADRANTS[(bool(s), bool(c))] for s, c in zip(near_s, near_c)]
    tops = {}
    for name, key in (("same style, other subject", "style_distance"),
                      ("same subject, other style", "content_distance"),
                      ("same style, same subject", "style_distance"),
                      ("other style, other subject", "style_distance")):
        q = df[df["quadrant"] == name]
        tops[name] = q.sort_values(key, kind="stable").head(top).reset_index(drop=True)
    df = df.sort_values("style_distance", kind="stable").reset_index(drop=True)
    label = str(query) if qid is None or "path" not in works.columns else \
        str(works.loc[works["id"] == qid, "path"].iloc[0])
    result = PlaneResult(works=df, query=label, query_id=qid, thresholds={"content": tc, "style": ts}, top=tops)
    result.figure = _plane_figure(cat if is_cat else None, result, color=color, thumbs=thumbs, query=query)
    if out is not None:
        result.files.append(write_csv(df, out / "plane.csv"))
        result.files.append(save_figure(result.figure, out / "plane.png"))
    return result


def _plane_figure(cat, result: PlaneResult, *, color: str | None, thumbs: int, query):
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    df = result.works
    fig = Figure(figsize=(8.5, 7))
    ax = fig.add_subplot()
    x, y = df["content_distance"].to_numpy(), df["style_distance"].to_numpy()
    if color is not None and color in df.columns:
        cats = df[color].astype(str).to_numpy()
        levels = sorted(set(cats))
        cmap = matplotlib.colormaps["tab20" if len(levels) > 10 else "tab10"]
        for j, lev in enumerate(levels):
            m = cats == lev
            ax.scatter(x[m], y[m], s=14, color=cmap(j % cmap.N), label=lev, alpha=0.8, linewidths=0)
        if len(levels) <= 20:
            ax.legend(title=color, fontsize=7, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    else:
        ax.scatter(x, y, s=12, color="0.45", alpha=0.7, linewidths=0)
    ax.scatter([0], [0], marker="*", s=220, color="crimson", zorder=5, label="query")
    tc, ts = result.thresholds["content"], result.thresholds["style"]
    ax.axvline(tc, color="0.6", lw=0.8, ls="--")
    ax.axhline(ts, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("content distance from the query (1 − cos)")
    ax.set_ylabel("style distance from the query (≈ L_style, squared L2)")
    ax.set_title(f"The style/content plane around {result.query}", fontsize=10)
    ax.set_xlim(left=min(0, x.min()) - 0.02 * (x.max() or 1))
    ax.set_ylim(bottom=min(0, y.min()) - 0.02 * (y.max() or 1))
    box = dict(boxstyle="round", fc="white", ec="0.7", alpha=0.85)
    ax.text(0.98, 0.02, "same style,\nother subject", transform=ax.transAxes, ha="right", va="bottom", fontsize=9,
            color="darkgreen", bbox=box)
    ax.text(0.02, 0.98, "same subject,\nother style", transform=ax.transAxes, ha="left", va="top", fontsize=9,
            color="darkblue", bbox=box)
    for name, col in (("same style, other subject", "darkgreen"), ("same subject, other style", "darkblue")):
        t = result.top[name]
        ax.scatter(t["content_distance"], t["style_distance"], s=40, facecolors="none", edgecolors=col, lw=1.2,
                   zorder=4)
        if cat is not None and thumbs > 0 and "path" in t.columns:
            for _, row in t.head(thumbs).iterrows():
                im = np.asarray(_thumbnail(cat.root, row["path"], 48))
                ab = AnnotationBbox(OffsetImage(im, zoom=0.8), (row["content_distance"], row["style_distance"]),
                                    frameon=True, bboxprops=dict(ec=col, lw=1), pad=0.1)
                ax.add_artist(ab)
    if cat is not None:
        try:
            im = np.asarray(thumbnail(cat.image_path(query), 56))
            ax.add_artist(AnnotationBbox(OffsetImage(im, zoom=0.9), (0, 0), xybox=(40, 40), boxcoords="offset points",
                                         frameon=True, bboxprops=dict(ec="crimson", lw=1.5), pad=0.1,
                                         arrowprops=dict(arrowstyle="-", color="crimson")))
        except (ValueError, OSError, WorkNotFound):
            pass
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Group comparisons


@dataclass
class CompareResult:
    """Mean distances within and between groups, and a permutation test.

    Attributes
    ----------
    matrix : DataFrame (G × G)
        Mean distance between a work of the row group and a work of the column group; on the diagonal, the mean
        distance between two different works of the same group.
    groups : DataFrame
        ``group``, ``n``, ``within`` (mean within-group distance), ``spread`` (mean distance to the group mean),
        ``nearest_group`` and ``nearest_distance`` (the other group whose mean is nearest).
    test : dict
        The global permutation test (PERMANOVA on the analysis distance): ``statistic`` (pseudo-F),
        ``r2`` (share of the total sum of distances explained by the groups), ``p_value``, ``permutations``.
    pairs : DataFrame
        One row per pair of groups: ``a``, ``b``, ``between``, ``separation`` (distance between the two groups'
        means = between − (within_a + within_b)/2, approximately), ``statistic`` (pseudo-F of the two groups),
        ``p_value`` (permutations within the two groups), ``p_adjusted`` (Holm).
    """

    matrix: pd.DataFrame
    groups: pd.DataFrame
    test: dict
    pairs: pd.DataFrame
    by: str
    group_by: str
    notes: list = field(default_factory=list)
    files: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        t = self.test
        lines = [f"{len(self.groups)} groups of {self.group_by!r}, {int(self.groups['n'].sum())} works, by {self.by}: "
                 f"pseudo-F {t['statistic']:.4g}, R² {t['r2']:.3f}, p = {t['p_value']:.4g} "
                 f"({t['permutations']} permutations)"]
        if len(self.pairs):
            sig = self.pairs[self.pairs["p_adjusted"] < 0.05]
            lines.append(f"{len(sig)} of {len(self.pairs)} pairs of groups differ at p < 0.05 (Holm-adjusted)")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def heatmap(self):
        """A heat map of :attr:`matrix` (a matplotlib Figure)."""
        from matplotlib.figure import Figure

        m = self.matrix
        g = len(m)
        size = min(14, 3 + 0.45 * g)
        fig = Figure(figsize=(size + 1.5, size))
        ax = fig.add_subplot()
        im = ax.imshow(m.to_numpy(), cmap="viridis")
        ax.set_xticks(range(g), [str(c) for c in m.columns], rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(g), [str(c) for c in m.index], fontsize=8)
        if g <= 16:
            vals = m.to_numpy()
            hi = np.nanmax(vals)
            for i in range(g):
                for j in range(g):
                    if np.isfinite(vals[i, j]):
                        ax.text(j, i, f"{vals[i, j]:.3g}", ha="center", va="center", fontsize=7,
                                color="black" if vals[i, j] > 0.6 * hi else "white")
        cb = fig.colorbar(im, ax=ax, shrink=0.8)
        cb.set_label("mean style distance (≈ L_style)" if self.by == "style" else "mean content distance (1 − cos)")
        ax.set_title(f"Mean {self.by} distance within (diagonal) and between groups of {self.group_by!r}\n"
                     f"permutation test: p = {self.test['p_value']:.3g}, R² = {self.test['r2']:.3f}", fontsize=9)
        fig.tight_layout()
        return fig

    def dendrogram(self):
        """A dendrogram of the groups, joined by average linkage on the distance between group means."""
        from matplotlib.figure import Figure
        from scipy.cluster.hierarchy import dendrogram, linkage
        from scipy.spatial.distance import squareform

        names = list(self.matrix.index)
        fig = Figure(figsize=(min(14, 4 + 0.35 * len(names)), 4.5))
        ax = fig.add_subplot()
        if len(names) < 2:
            ax.text(0.5, 0.5, "one group: nothing to join", ha="center")
            return fig
        sep = self._separation()
        Z = linkage(squareform(sep, checks=False), method="average")
        dendrogram(Z, labels=[str(n) for n in names], ax=ax, leaf_rotation=60, leaf_font_size=8)
        ax.set_ylabel(f"distance between group means ({self.by})")
        ax.set_title(f"Groups of {self.group_by!r} by {self.by}", fontsize=10)
        fig.tight_layout()
        return fig

    def _separation(self) -> np.ndarray:
        names = list(self.matrix.index)
        sep = np.zeros((len(names), len(names)))
        lookup = {(a, b): s for a, b, s in self.pairs[["a", "b", "separation"]].itertuples(index=False)}
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                if i != j:
                    sep[i, j] = lookup.get((a, b), lookup.get((b, a), 0.0))
        return np.maximum(sep, 0)


class _GroupStats:
    """Sufficient statistics of groups for squared Euclidean distances: counts, sums, sums of squared norms."""

    def __init__(self, X: np.ndarray, codes: np.ndarray, G: int):
        self.n = np.bincount(codes, minlength=G).astype(np.float64)
        self.S = np.zeros((G, X.shape[1]), np.float64)
        np.add.at(self.S, codes, X)
        sq = np.einsum("ij,ij->i", X, X)
        self.Q = np.bincount(codes, weights=sq, minlength=G)
        self.mean = self.S / self.n[:, None]
        # Mean squared distance of a group's works to the group mean.
        self.var = self.Q / self.n - np.einsum("ij,ij->i", self.mean, self.mean)


def _pseudo_f(ss_total: float, sum_sq_norm_over_n: np.ndarray | float, S_total_sq_over_n: float, n: int, G: int):
    """PERMANOVA pseudo-F from Σ_g ‖S_g‖²/n_g (between sum of squares = that − ‖S‖²/n)."""
    ssb = sum_sq_norm_over_n - S_total_sq_over_n
    ssw = ss_total - ssb
    return (ssb / (G - 1)) / (np.maximum(ssw, 1e-300) / (n - G)), ssb


def compare(source, *, group_by: str, by: str = "style", permutations: int = 999, pairwise: bool | None = None,
            min_size: int = 2, max_groups: int = 60, pair_max: int = 1000, seed: int = 0, out=None
            ) -> CompareResult:
    r"""Mean distances within and between groups of works (artists, decades, movements) and whether they differ.

    Everything is exact and linear in the number of works: for the squared Euclidean analysis distance
    (module doc), the mean distance between a work of group *A* and one of group *B* is

    .. math:: \bar d(A,B) = s\,(\lVert\mu_A-\mu_B\rVert^2 + v_A + v_B)

    with :math:`\mu` a group's mean embedding, :math:`v` the mean squared distance of its works to that mean, and
    :math:`s` the distance scale (1 for style, ½ for content); within a group of :math:`n` works,
    :math:`\bar d(A,A)=2 s\,v_A\,n/(n-1)` over pairs of different works.

    The test is a PERMANOVA (Anderson 2001) on the same distance: pseudo-F = (between-groups sum of squares /
    (G−1)) / (within-groups sum of squares / (n−G)), its p-value the share of *permutations* random relabellings
    (group sizes kept) with a pseudo-F at least as large, counting the observed one: :math:`(1+\#)/(1+P)`.
    With *pairwise*, each pair of groups is tested the same way, relabelling only the works of those two groups
    (at most *pair_max* randomly drawn works of each), and the p-values are Holm-adjusted.

    Parameters
    ----------
    source : Catalog or (works, X)
    group_by : str
        A works-table column; works with no value are left out, and so are groups smaller than *min_size*.
    by : {"style", "content"}
    permutations : int
        Random relabellings for the p-values (0: no test).
    pairwise : bool, optional
        Also test every pair of groups; default: when there are at most 20 groups (190 pairs).
    pair_max : int
        Works drawn from each group for a pair's test (all when fewer); mean distances always use every work.
    max_groups : int
        Refuse more groups than this (a column of titles is not a grouping).
    out : path, optional
        Folder for ``compare-<by>-matrix.csv``, ``compare-<by>-groups.csv``, ``compare-<by>-pairs.csv``,
        ``compare-<by>-heatmap.png`` and ``compare-<by>-dendrogram.png``.

    Returns
    -------
    CompareResult

    Examples
    --------
    >>> X = np.r_[np.zeros((6, 2)), np.ones((6, 2))] + np.tile([[0, .1], [.1, 0]], (6, 1))
    >>> r = compare((pd.DataFrame({"g": list("aaaaaabbbbbb")}), X), group_by="g", permutations=199)
    >>> float(round(r.matrix.loc["a", "b"], 2)), bool(r.test["p_value"] < 0.05)
    (2.01, True)
    """
    t0 = time.perf_counter()
    _check_by(by)
    if permutations < 0:
        raise InvalidOption(f"permutations must be 0 or more, not {permutations}")
    if out is not None:
        out = _check_out(source, out)
    works, X = works_and_vectors(source, by=by)
    if group_by not in works.columns:
        raise ArtspaceError(f"no column {group_by!r} in the works table; columns: "
                            f"{', '.join(_metadata_columns(works))}")
    notes = []
    values = works[group_by]
    present = values.notna().to_numpy()
    if (~present).any():
        notes.append(f"{int((~present).sum())} works with no {group_by!r} left out")
    values = values[present].astype(str).to_numpy()
    X = X[present]
    counts = pd.Series(values).value_counts()
    small = counts[counts < min_size]
    if len(small):
        notes.append(f"{len(small)} groups with fewer than {min_size} works left out "
                     f"({int(small.sum())} works): {', '.join(map(str, small.index[:10]))}"
                     + ("…" if len(small) > 10 else ""))
    names = sorted(counts[counts >= min_size].index)
    if len(names) < 2:
        raise ArtspaceError(f"{group_by!r} has {len(names)} group(s) of at least {min_size} works; "
                            f"a comparison needs two or more")
    if len(names) > max_groups:
        raise ArtspaceError(f"{group_by!r} has {len(names)} groups (more than max_groups={max_groups}); "
                            f"group by a coarser column or raise max_groups")
    keep = np.isin(values, names)
    values, X = values[keep], X[keep].astype(np.float64)
    codes = pd.Categorical(values, categories=names).codes.astype(np.int64)
    G, n = len(names), len(X)
    X = X - X.mean(0)  # centring changes no distance and keeps the sums well conditioned
    st = _GroupStats(X, codes, G)
    s = DISTANCE_SCALE[by]

    # Closed-form mean distances.
    mm = np.einsum("ij,ij->i", st.mean, st.mean)
    cross = mm[:, None] + mm[None, :] - 2 * st.mean @ st.mean.T
    np.fill_diagonal(cross, 0)
    between = s * (np.maximum(cross, 0) + st.var[:, None] + st.var[None, :])
    within = np.where(st.n > 1, 2 * s * st.var * st.n / np.maximum(st.n - 1, 1), np.nan)
    matrix = between.copy()
    np.fill_diagonal(matrix, within)
    matrix = pd.DataFrame(matrix, index=pd.Index(names, name=group_by), columns=pd.Index(names, name=group_by))
    sep = s * np.maximum(cross, 0)
    np.fill_diagonal(sep, np.inf)
    nearest = sep.argmin(1)
    groups = pd.DataFrame({"group": names, "n": st.n.astype(int), "within": within, "spread": s * st.var,
                           "nearest_group": [names[j] for j in nearest],
                           "nearest_distance": sep[np.arange(G), nearest]})

    # Global PERMANOVA, from the sufficient statistics: SS_total = Σ‖x‖² (X centred), SS_between = Σ ‖S_g‖²/n_g.
    ss_total = float(st.Q.sum())
    f_obs, ssb = _pseudo_f(ss_total, float((np.einsum("ij,ij->i", st.S, st.S) / st.n).sum()), 0.0, n, G)
    test = {"statistic": float(f_obs), "r2": float(ssb / ss_total) if ss_total > 0 else 0.0,
            "p_value": float("nan"), "permutations": int(permutations), "works": n, "groups": G}
    rng = _rng(seed)
    if permutations:
        null = _permuted_ssb(X, codes, st.n, permutations, rng)
        f_null, _ = _pseudo_f(ss_total, null, 0.0, n, G)
        test["p_value"] = float((1 + np.sum(f_null >= f_obs * (1 - 1e-12))) / (1 + permutations))

    rows = []
    if pairwise is None:
        pairwise = G <= 20
        if not pairwise:
            notes.append(f"{G} groups: pairwise tests skipped ({G * (G - 1) // 2} pairs); ask for them with "
                         f"pairwise=True (--pairwise)")
    if pairwise and permutations and (st.n > pair_max).any():
        notes.append(f"pairwise tests use at most {pair_max} random works of each group")
    if pairwise:
        for i in range(G):
            for j in range(i + 1, G):
                rows.append(_pair_test(X, codes, i, j, names, st, s, permutations, rng, pair_max))
    pairs = pd.DataFrame(rows, columns=["a", "b", "between", "separation", "statistic", "p_value"])
    pairs["p_adjusted"] = _holm(pairs["p_value"].to_numpy()) if len(pairs) else []
    result = CompareResult(matrix=matrix, groups=groups, test=test, pairs=pairs, by=by, group_by=group_by,
                           notes=notes)
    if out is not None:
        result.files.append(write_csv(matrix.reset_index(), out / f"compare-{by}-matrix.csv"))
        result.files.append(write_csv(groups, out / f"compare-{by}-groups.csv"))
        result.files.append(write_csv(pairs, out / f"compare-{by}-pairs.csv"))
        result.files.append(save_figure(result.heatmap(), out / f"compare-{by}-heatmap.png"))
        result.files.append(save_figure(result.dendrogram(), out / f"compare-{by}-dendrogram.png"))
    result.seconds = time.perf_counter() - t0
    return result


def _permuted_ssb(X: np.ndarray, codes: np.ndarray, sizes: np.ndarray, permutations: int,
                  rng: np.random.Generator, batch: int | None = None) -> np.ndarray:
    """Σ_g ‖S_g‖²/n_g under *permutations* random relabellings (X centred, so this is the between sum of squares).

    Each batch of permutations is one sparse (batch·G × n) indicator matrix times X: O(n·d) per permutation.
    """
    from scipy import sparse

    n, G = len(X), len(sizes)
    if batch is None:
        batch = max(1, min(permutations, int(2e7 // max(n, 1))))
    out = np.empty(permutations)
    X32 = X.astype(np.float32) if n * X.shape[1] > 5e6 else X
    done = 0
    while done < permutations:
        b = min(batch, permutations - done)
        rows = np.empty(b * n, np.int64)
        for t in range(b):
            rows[t * n:(t + 1) * n] = t * G + codes[rng.permutation(n)]
        M = sparse.csr_matrix((np.ones(b * n, X32.dtype), (rows, np.tile(np.arange(n), b))), shape=(b * G, n))
        S = np.asarray(M @ X32, np.float64)
        out[done:done + b] = (np.einsum("ij,ij->i", S, S).reshape(b, G) / sizes[None]).sum(1)
        done += b
    return out


def _pair_test(X, codes, i, j, names, st: _GroupStats, s: float, permutations: int, rng, pair_max: int) -> dict:
    ia, ib = np.flatnonzero(codes == i), np.flatnonzero(codes == j)
    if len(ia) > pair_max:
        ia = np.sort(rng.choice(ia, pair_max, replace=False))
    if len(ib) > pair_max:
        ib = np.sort(rng.choice(ib, pair_max, replace=False))
    Xp = np.concatenate([X[ia], X[ib]])
    Xp = Xp - Xp.mean(0)
    na, nb, m = len(ia), len(ib), len(ia) + len(ib)
    ss_total = float(np.einsum("ij,ij->", Xp, Xp))
    Sa = Xp[:na].sum(0)
    # Xp is centred, so S_b = -S_a and the between sum of squares is ‖S_a‖² (1/n_a + 1/n_b).
    f_obs, _ = _pseudo_f(ss_total, float(Sa @ Sa) * (1 / na + 1 / nb), 0.0, m, 2)
    p = float("nan")
    if permutations:
        # Each relabelling draws n_a of the m works for group a: one dense 0/1 matrix per batch, one GEMM.
        X32 = Xp.astype(np.float32)
        count, done, batch = 0, 0, max(1, min(permutations, int(4e7 // (m * 4))))
        while done < permutations:
            b = min(batch, permutations - done)
            pick = np.argpartition(rng.random((b, m)), na - 1, axis=1)[:, :na]
            B = np.zeros((b, m), np.float32)
            np.put_along_axis(B, pick, 1.0, axis=1)
            S = (B @ X32).astype(np.float64)
            f_null, _ = _pseudo_f(ss_total, np.einsum("ij,ij->i", S, S) * (1 / na + 1 / nb), 0.0, m, 2)
            count += int(np.sum(f_null >= f_obs * (1 - 1e-6)))  # float32 sums: ties within 1e-6
            done += b
        p = float((1 + count) / (1 + permutations))
    d = st.mean[i] - st.mean[j]
    sep = float(d @ d)
    return {"a": names[i], "b": names[j], "between": s * (sep + st.var[i] + st.var[j]), "separation": s * sep,
            "statistic": float(f_obs), "p_value": p}


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN)."""
    p = np.asarray(p, float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if len(ok) == 0:
        return out
    order = ok[np.argsort(p[ok])]
    m = len(order)
    adj = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out[order] = adj
    return out


# ---------------------------------------------------------------------------------------------------------------
# Export


def export(cat, path, *, neighbors: int = 5, by: Sequence[str] = BY) -> pd.DataFrame:
    """Write the works table, with cluster labels, map coordinates and each work's nearest neighbours.

    A CSV is safe to open in a spreadsheet: a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return (a title such as ``=HYPERLINK(...)`` in the collection's metadata) is written with a leading
    ``'``, so that Excel, LibreOffice or Google Sheets shows it as text instead of running it as a formula
    (:func:`artspace.outputs.neutralise_formulas`); numbers are written as they are. Parquet keeps the raw values.

    Parameters
    ----------
    cat : Catalog or (works, {"style": Xs, "content": Xc})
    path : path
        ``.csv`` or ``.parquet`` (written atomically); neither inside the catalog folder nor over the metadata CSV
        the catalog joins (:class:`~artspace.errors.OutputConflict`).
    neighbors : int
        Neighbours per work and per space (0: none).
    by : sequence of {"style", "content"}
        Spaces whose neighbours are listed: columns ``<by>_neighbors`` (ids, nearest first) and
        ``<by>_neighbor_distances`` — lists in Parquet, ``;``-separated in CSV.

    Returns
    -------
    DataFrame
        The table written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InvalidOption(f"{path}: export writes .csv or .parquet, not {path.suffix or 'a file without suffix'!r}")
    check_output(path, inputs=[_metadata_file(cat)], protected_dirs=[cat.dir] if _is_catalog(cat) else [])
    if int(neighbors) < 0:
        raise InvalidOption(f"neighbors must be 0 (none) or more, not {neighbors}")
    by = [by] if isinstance(by, str) else list(by)
    for b in by:
        _check_by(b)
    works, _ = works_and_vectors(cat, by=by[0] if by else "style")
    table = works.copy()
    if _is_catalog(cat):
        table.insert(2, "file", [str(cat.root / p) for p in table["path"]])
    ids = table["id"].to_numpy(np.int64)
    for b in by if neighbors > 0 else []:
        rows, dist = _neighbors(cat, by=b, k=neighbors)
        nid = ids[rows]
        if suffix == ".csv":
            table[f"{b}_neighbors"] = [";".join(map(str, r)) for r in nid]
            table[f"{b}_neighbor_distances"] = [";".join(f"{v:.6g}" for v in r) for r in dist]
        else:
            table[f"{b}_neighbors"] = list(nid)
            table[f"{b}_neighbor_distances"] = list(dist.astype(np.float64))
    if suffix == ".csv":
        write_csv(table, path)
    else:
        atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))
    return table
