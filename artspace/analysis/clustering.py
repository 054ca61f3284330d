"""Clusters of works in one space (``artspace cluster``), scored against a metadata column.

Clusters live on the space's stored embedding (see :mod:`artspace.analysis.source`): k-means minimises the
within-cluster sum of the embedding distance (for ``style`` the raw signature distance :math:`d_{sig}`, for
``l_style`` :math:`L_{style}`, for ``content`` 1 − cos, i.e. spherical k-means), Ward linkage the same criterion
greedily. They do not use ``similar``'s relative style ranking, which no centroid can represent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import ArtspaceError, InvalidOption
from ..spaces import DEFAULT_SPACE, space
from .files import check_out, csv_target, picture_target, save_picture, write_csv
from .source import MEASURE, check_seed, distance_scale, metadata_columns, read_source, work_thumbnail

__all__ = ["CLUSTER_METHODS", "ClusterResult", "agreement", "cluster"]

CLUSTER_METHODS = ("kmeans", "hdbscan", "agglomerative")


@dataclass
class ClusterResult:
    """What :func:`cluster` found.

    Attributes
    ----------
    labels : DataFrame
        ``id``, ``path`` (when known), ``cluster`` (0 = the largest cluster; −1 = noise, hdbscan only),
        ``distance`` (to the cluster's mean, in the space's embedding distance) and the metadata columns.
    by, method : str
    k : int
        Number of clusters (noise not counted).
    how : str
        How *k* was chosen, in words.
    column : str
        The works-table column holding the labels (written when the source is a catalog and ``save=True``).
    source : str
        The command that reproduces the labels, as the catalog records it (``cluster --by style -k 7 ...``).
    scores : DataFrame or None
        ``k``, ``silhouette`` of every candidate k when k was chosen automatically.
    label_column : str or None
    purity, nmi, ari : float or None
        Agreement with *label_column* (see :func:`agreement`).
    table : DataFrame or None
        The contingency table: works per cluster (rows) and label (columns), with *label_column*.
    files : list of Path
        Files written (CSV and contact sheets).
    """

    labels: pd.DataFrame
    by: str
    method: str
    k: int
    how: str
    column: str
    source: str = ""
    scores: pd.DataFrame | None = None
    label_column: str | None = None
    purity: float | None = None
    nmi: float | None = None
    ari: float | None = None
    table: pd.DataFrame | None = None
    files: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def sizes(self) -> pd.Series:
        """Works per cluster."""
        return self.labels["cluster"].value_counts().sort_index()

    def summary(self) -> str:
        """A few lines for people: k and how it was chosen, sizes, agreement with the label column."""
        noise = int((self.labels["cluster"] < 0).sum())
        lines = [f"{self.k} {self.by} clusters of {len(self.labels)} works ({self.method}, on the "
                 f"{MEASURE[self.by]}); {self.how}",
                 "sizes: " + ", ".join(f"{c}: {n}" for c, n in self.sizes.items() if c >= 0)
                 + (f"; noise: {noise}" if noise else "")]
        if self.label_column is not None:
            lines.append(f"against {self.label_column!r}: purity {self.purity:.3f}, NMI {self.nmi:.3f}, "
                         f"ARI {self.ari:.3f}" + (f" (over the {len(self.labels) - noise} clustered works; the "
                                                  f"{noise} noise works are in no cluster)" if noise else ""))
        return "\n".join(lines)


def agreement(labels, truth) -> dict:
    """Purity, NMI, ARI and the contingency table of cluster *labels* against reference labels *truth* (rows with no
    truth are ignored).

    Purity: the share of works whose cluster's most frequent label is their own. NMI: normalised mutual
    information (arithmetic mean normalisation; Strehl & Ghosh 2002), 0 = independent, 1 = the same partition. ARI:
    adjusted Rand index (Hubert & Arabie 1985). Works hdbscan calls noise (−1) belong to no cluster: the three
    figures are over the clustered works (``noise``: how many were left out), and the table keeps their row.

    Examples
    --------
    >>> r = agreement([0, 0, 1, 1], ["a", "a", "b", "b"])
    >>> r["purity"], round(r["nmi"], 3), int(r["table"].loc[1, "b"])
    (1.0, 1.0, 2)
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    lab = pd.Series(np.asarray(labels)).reset_index(drop=True)
    tru = pd.Series(np.asarray(truth, dtype=object)).reset_index(drop=True)
    ok = tru.notna().to_numpy()
    lab, tru = lab[ok], tru[ok].astype(str)
    if len(lab) == 0:
        raise ArtspaceError("no work has a value in the label column; nothing to compare the clusters with")
    table = pd.crosstab(lab.to_numpy(), tru.to_numpy(), rownames=["cluster"], colnames=["label"])
    clustered = (lab != -1).to_numpy()
    if not clustered.any():
        raise ArtspaceError("every labelled work is noise; no cluster to compare with the labels")
    lab, tru = lab[clustered], tru[clustered]
    scored = table.drop(index=-1, errors="ignore")
    purity = float(scored.max(axis=1).sum() / scored.to_numpy().sum())
    return {"purity": purity, "nmi": float(normalized_mutual_info_score(tru, lab)),
            "ari": float(adjusted_rand_score(tru, lab)), "table": table, "noise": int((~clustered).sum())}


def _check(method: str, k, label_column, src, min_cluster_size=None) -> None:
    if method not in CLUSTER_METHODS:
        raise InvalidOption(f"method must be one of {', '.join(CLUSTER_METHODS)}, not {method!r}")
    if min_cluster_size is not None:
        if method != "hdbscan":
            raise InvalidOption(f"min_cluster_size is hdbscan's; with method {method} give k instead (-k)")
        if isinstance(min_cluster_size, bool) or not isinstance(min_cluster_size, (int, np.integer)) \
                or min_cluster_size < 2:
            raise InvalidOption(f"min_cluster_size must be a whole number of at least 2, not {min_cluster_size!r}")
        if min_cluster_size > len(src.works):
            raise InvalidOption(f"min_cluster_size={min_cluster_size} is more than the {len(src.works)} works; give at "
                                f"most {len(src.works)} (--min-cluster-size)")
    if method == "hdbscan" and k is not None:
        raise InvalidOption(f"hdbscan finds the number of clusters itself, so k={k} cannot be used; leave k out, "
                            "or use method kmeans or agglomerative (--method) to fix it")
    if label_column is not None:
        src.column(label_column)
    if len(src.works) < 3:
        raise ArtspaceError(f"{len(src.works)} works are too few to cluster (at least 3 are needed)")


def cluster(source, *, by: str = DEFAULT_SPACE, k: int | None = None, method: str = "kmeans",
            label_column: str | None = None, column: str | None = None, k_range: tuple[int, int] = (2, 12),
            min_cluster_size: int | None = None, seed: int = 0, save: bool = True, out=None,
            sheet_size: int = 24, sample_size: int = 4000, max_fit: int = 20_000) -> ClusterResult:
    """Cluster the works in one space.

    Parameters
    ----------
    source : Catalog, (works, X) or Source
    by : {"style", "l_style", "content"}
        The space (:mod:`artspace.spaces`), clustered on its stored embedding: ``style`` on the signature
        embeddings (the raw signature distance :math:`d_{sig}`, not ``similar``'s relative ranking, which no
        cluster mean can represent), ``l_style`` on :math:`L_{style}`, ``content`` on 1 − cos.
    k : int, optional
        Number of clusters. When omitted (k-means and agglomerative), k is chosen in *k_range* by the highest mean
        silhouette (Rousseeuw 1987), on a sample of *sample_size* works; ``ClusterResult.how`` says so.
    method : {"kmeans", "hdbscan", "agglomerative"}
        ``kmeans`` minimises the within-cluster sum of the distance; ``agglomerative`` uses Ward linkage (the same
        criterion, greedily); ``hdbscan`` (Campello et al. 2013) finds dense groups itself (no k) on a
        32-dimensional PCA of the embeddings and may leave works out as noise (label −1). Above *max_fit* works,
        agglomerative and hdbscan are fitted on a random sample and every other work joins the nearest cluster mean.
    label_column : str, optional
        A works-table column (e.g. ``style``) to score the clusters against: purity, NMI, ARI, and the cluster ×
        label table (:attr:`ClusterResult.table`).
    column : str, optional
        Name of the works-table column to write (default ``cluster_<by>``), as nullable integers (works indexed
        later get no label, and the catalog reports the column stale).
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
    >>> r.k, r.purity, r.table.to_numpy().sum(axis=1).tolist()
    (2, 1.0, [5, 5])
    """
    t0 = time.perf_counter()
    space(by)
    src = read_source(source, by=by)
    _check(method, k, label_column, src, min_cluster_size)
    check_seed(seed)
    if column is not None and (not isinstance(column, str) or not column.strip()):
        raise InvalidOption(f"column (--column) must be a name for the works-table column, not {column!r}")
    out = check_out(src, out) if out is not None else None
    X = src.vectors(by)
    labels, k_used, how, scores = _fit(X, method, k, k_range, min_cluster_size, seed, sample_size, max_fit)
    labels = _renumber(np.asarray(labels))
    command = f"cluster --by {by}" + (f" -k {k_used}" if k is not None else "") + f" --method {method}" + \
        (f" --seed {seed}" if seed else "")
    result = ClusterResult(labels=_label_table(src, X, labels, by), by=by, method=method,
                           k=int(len(set(labels.tolist()) - {-1})), how=how, column=column or f"cluster_{space(by).key}",
                           source=command, scores=scores)
    if label_column is not None:
        a = agreement(labels, src.works[label_column].to_numpy())
        result.label_column = label_column
        result.purity, result.nmi, result.ari, result.table = a["purity"], a["nmi"], a["ari"], a["table"]
    # every file checked, then written, then the catalog: one that may not be replaced stops the run before any
    if out is not None:
        csv_target(result.labels, out / f"clusters-{space(by).key}.csv")
        if src.catalog is not None:
            for c in sorted(result.labels["cluster"].unique()):
                picture_target(out / _sheet_name(result.by, c))
        result.files.append(write_csv(result.labels, out / f"clusters-{space(by).key}.csv"))
        if src.catalog is not None:
            result.files += _cluster_sheets(src, result, out, sheet_size=sheet_size, caption=label_column)
    if save and src.catalog is not None:
        stored = pd.DataFrame({result.column: pd.array(labels, dtype="Int64")}, index=pd.Index(src.ids, name="id"))
        src.catalog.update_columns(stored, source=command)
    result.seconds = time.perf_counter() - t0
    return result


def _fit(X, method, k, k_range, min_cluster_size, seed, sample_size, max_fit):
    """``(labels, k, how, scores)``: the labels of every row of *X* and how their number was chosen."""
    n = len(X)
    if method == "hdbscan":
        labels, how = _hdbscan(X, min_cluster_size, seed, max_fit)
        return labels, None, how, None
    scores = None
    if k is None:
        lo, hi = k_range
        ks = range(max(2, int(lo)), min(int(hi), n - 1) + 1)
        if len(ks) == 0:
            raise ArtspaceError(f"{n} works are too few to choose k in {k_range}; pass k")
        k, scores, how = _choose_k(X, method, ks, seed, sample_size)
    else:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
            raise InvalidOption(f"k must be between 1 and the number of works ({n}), not {k}")
        k, how = int(k), f"k={k} as requested"
    if method == "kmeans":
        return _kmeans(X, k, seed), k, how, scores
    fit = np.sort(np.random.default_rng(seed).choice(n, size=min(n, max_fit), replace=False))
    lab = _agglomerative(X[fit], k)
    if len(fit) == n:
        return lab, k, how, scores
    how += f"; Ward linkage fitted on {len(fit)} of {n} works, the others joined the nearest cluster mean"
    return _nearest_centroid(X, lab, fit), k, how, scores


def _hdbscan(X, min_cluster_size, seed, max_fit) -> tuple[np.ndarray, str]:
    from sklearn.cluster import HDBSCAN
    from sklearn.decomposition import PCA

    n = len(X)
    fit = np.sort(np.random.default_rng(seed).choice(n, size=min(n, max_fit), replace=False))
    dims = min(32, X.shape[1], len(fit) - 1)
    Z = PCA(n_components=dims, random_state=seed).fit_transform(X[fit]) if X.shape[1] > dims else X[fit]
    mcs = int(min_cluster_size or max(3, min(50, len(fit) // 50)))
    lab = HDBSCAN(min_cluster_size=mcs, copy=True).fit_predict(Z)
    if (lab >= 0).sum() == 0:
        raise ArtspaceError(f"hdbscan found no cluster with min_cluster_size={mcs} (every work is noise); "
                            f"lower it (--min-cluster-size) or use method kmeans (--method kmeans)")
    labels = lab if len(fit) == n else _nearest_centroid(X, lab, fit)
    found = len(set(labels.tolist()) - {-1})
    how = (f"hdbscan found {found} dense clusters (min_cluster_size={mcs}, on a {dims}-d PCA"
           + (f"; fitted on {len(fit)} of {n} works, the others joined the nearest cluster mean)"
              if len(fit) < n else ")"))
    return labels, how


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


#: A mean silhouette below this finds "no substantial structure" (Kaufman & Rousseeuw 1990, ch. 2).
WEAK_SILHOUETTE = 0.25


def _choose_k(X: np.ndarray, method: str, ks: Sequence[int], seed: int, sample_size: int
              ) -> tuple[int, pd.DataFrame, str]:
    from sklearn.metrics import silhouette_score

    n = len(X)
    idx = np.sort(np.random.default_rng(seed).choice(n, size=min(n, sample_size), replace=False))
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
    # Kaufman & Rousseeuw's reading of the silhouette: below 0.25, no substantial structure was found
    if best["silhouette"] < WEAK_SILHOUETTE:
        how += (f"; a silhouette below {WEAK_SILHOUETTE} means the works form no clear clusters in this space "
                f"(Kaufman & Rousseeuw 1990): read the groups as a partition, not as found kinds")
    if int(best["k"]) == scores["k"].max() and len(scores) > 1:
        how += (f"; the best k is the largest tried ({int(best['k'])}): a larger k may score higher (give k, -k, "
                f"or a wider k_range)")
    return int(best["k"]), scores, how


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters by decreasing size (0 = largest); noise (−1) stays −1."""
    vals, counts = np.unique(labels[labels >= 0], return_counts=True)
    order = vals[np.lexsort((vals, -counts))]
    mapping = {int(v): i for i, v in enumerate(order)}
    return np.array([mapping.get(int(v), -1) for v in labels], np.int64)


def _label_table(src, X: np.ndarray, labels: np.ndarray, by: str) -> pd.DataFrame:
    """``id``, ``path``, ``cluster``, ``distance`` to the cluster's mean (in the space's distance), metadata."""
    dist = np.full(len(X), np.nan)
    for c in set(labels.tolist()) - {-1}:
        m = labels == c
        diff = X[m].astype(np.float64) - X[m].astype(np.float64).mean(0)
        dist[m] = np.einsum("ij,ij->i", diff, diff) * distance_scale(by)
    works = src.works
    keep = ["id"] + [c for c in ("path",) if c in works.columns]
    table = works[keep].copy()
    table["cluster"] = labels
    table["distance"] = dist
    # the metadata, not what analyses stored (a label column named by --column would change the header next run)
    meta = [c for c in metadata_columns(works) if c not in keep and c not in src.stored
            and not c.startswith(("cluster_", "map_"))]
    return pd.concat([table, works[meta]], axis=1)


def _cluster_sheets(src, result: ClusterResult, out: Path, *, sheet_size: int, caption: str | None) -> list:
    """One contact sheet per cluster: its *sheet_size* works nearest the cluster's mean."""
    from ..sheets import contact_sheet

    files = []
    table = result.labels
    for c in sorted(table["cluster"].unique()):
        members = table[table["cluster"] == c].sort_values("distance", na_position="last").head(sheet_size)
        items = [(work_thumbnail(src, row, 160), _caption(table.loc[row], caption)) for row in members.index]
        n_c = int((table["cluster"] == c).sum())
        title = (f"{result.by} cluster {c}: {n_c} works" if c >= 0 else f"noise: {n_c} works") + \
            (f" (the {len(members)} nearest its mean)" if c >= 0 and n_c > len(members) else "")
        sheet = contact_sheet(items, columns=6, thumb=128, title=title)
        files.append(save_picture(sheet, out / _sheet_name(result.by, c)))
    return files


def _sheet_name(by: str, cluster_id) -> str:
    return f"cluster-{space(by).key}-{'noise' if cluster_id < 0 else f'{int(cluster_id):02d}'}.png"


def _caption(row: pd.Series, extra: str | None) -> str:
    name = str(row["path"]).rsplit("/", 1)[-1] if "path" in row else str(row["id"])
    if extra and extra in row and pd.notna(row[extra]):
        return f"{name}\n{extra}: {row[extra]}"
    return name
