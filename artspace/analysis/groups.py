r"""Do groups of works differ? Mean distances within and between groups, and a PERMANOVA (``artspace compare``).

Groups (artists, decades, movements) are compared on the space's stored embedding (see
:mod:`artspace.analysis.source`): for ``style`` the raw signature distance :math:`d_{sig}`, for ``l_style``
:math:`L_{style}`, for ``content`` 1 − cos. Each is a squared Euclidean distance of the embedding (times ½ for
content), so the mean distance between two groups has an exact closed form in the groups' means and spreads, and
the permutation test needs no :math:`n^2` matrix of pairs. ``similar``'s relative style ranking divides each pair by
its own factor and has no such form, which is why it is not used here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ArtspaceError, InvalidOption
from ..spaces import DEFAULT_SPACE, space
from .files import check_out, save_figure, write_csv
from .source import MEASURE, check_seed, distance_scale, read_source

__all__ = ["CompareResult", "compare", "holm"]


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
        ``nearest_group`` (the other group whose mean is nearest) and ``nearest_separation`` (the distance between
        the two groups' means, the separation; ``matrix`` holds the mean distance between their works, which adds
        both groups' spreads).
    test : dict
        The global permutation test (PERMANOVA, Anderson 2001, on the same distance): ``statistic`` (pseudo-F),
        ``r2`` (share of the total sum of distances explained by the groups), ``p_value``, ``permutations``.
    pairs : DataFrame
        One row per pair of groups: ``a``, ``b``, ``between``, ``separation`` (distance between the two groups'
        means = between − (within_a + within_b)/2, approximately), ``statistic`` (pseudo-F of the two groups),
        ``p_value`` (permutations within the two groups), ``p_adjusted`` (Holm).
    separation : DataFrame (G × G)
        The distance between the groups' mean embeddings (what the dendrogram joins), in the same units.
    notes : list of str
        What was left out, and why.
    """

    matrix: pd.DataFrame
    groups: pd.DataFrame
    test: dict
    pairs: pd.DataFrame
    by: str
    group_by: str
    separation: pd.DataFrame | None = None
    notes: list = field(default_factory=list)
    files: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        t = self.test
        lines = [f"{len(self.groups)} groups of {self.group_by!r}, {int(self.groups['n'].sum())} works, by {self.by} "
                 f"({MEASURE[self.by]}): "
                 f"pseudo-F {t['statistic']:.4g}, R² {t['r2']:.3f}, p = {t['p_value']:.4g} "
                 f"({t['permutations']} permutations)"]
        if len(self.pairs) and t["permutations"]:
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
        cb.set_label(f"mean {MEASURE[self.by]}")
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
        sep = np.maximum(self.separation.to_numpy(), 0)
        Z = linkage(squareform(sep, checks=False), method="average")
        dendrogram(Z, labels=[str(n) for n in names], ax=ax, leaf_rotation=60, leaf_font_size=8)
        ax.set_ylabel(f"{MEASURE[self.by]} between group means")
        ax.set_title(f"Groups of {self.group_by!r} by {self.by}", fontsize=10)
        fig.tight_layout()
        return fig


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


#: The most permutations :func:`compare` runs: p-values resolve down to 1/(1 + this); more would take hours for
#: nothing (10⁸ took minutes without a word on a 20-work collection).
MAX_PERMUTATIONS = 1_000_000


def compare(source, *, group_by: str, by: str = DEFAULT_SPACE, permutations: int = 999,
            pairwise: bool | None = None, min_size: int = 2, max_groups: int = 60, pair_max: int = 1000,
            seed: int = 0, out=None) -> CompareResult:
    r"""Mean distances within and between groups of works (artists, decades, movements) and whether they differ.

    Everything is exact and linear in the number of works: for a squared Euclidean distance (module doc), the mean
    distance between a work of group *A* and one of group *B* is

    .. math:: \bar d(A,B) = s\,(\lVert\mu_A-\mu_B\rVert^2 + v_A + v_B)

    with :math:`\mu` a group's mean embedding, :math:`v` the mean squared distance of its works to that mean, and
    :math:`s` the distance scale (½ for content, 1 otherwise); within a group of :math:`n` works,
    :math:`\bar d(A,A)=2 s\,v_A\,n/(n-1)` over pairs of different works.

    The test is a PERMANOVA (Anderson 2001) on the same distance: pseudo-F = (between-groups sum of squares /
    (G−1)) / (within-groups sum of squares / (n−G)), its p-value the share of *permutations* random relabellings
    (group sizes kept) with a pseudo-F at least as large, counting the observed one: :math:`(1+\#)/(1+P)`.
    With *pairwise*, each pair of groups is tested the same way, relabelling only the works of those two groups
    (at most *pair_max* randomly drawn works of each), and the p-values are Holm-adjusted (Holm 1979).

    Parameters
    ----------
    source : Catalog, (works, X) or Source
    group_by : str
        A works-table column; works with no value are left out, and so are groups smaller than *min_size*.
    by : {"style", "l_style", "content"}
        The space, compared on its stored embedding: ``style`` by the raw signature distance :math:`d_{sig}`,
        ``l_style`` by :math:`L_{style}`, ``content`` by 1 − cos.
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
    >>> r = compare((pd.DataFrame({"g": list("aaaaaabbbbbb")}), X), group_by="g", by="l_style", permutations=199)
    >>> float(round(r.matrix.loc["a", "b"], 2)), bool(r.test["p_value"] < 0.05)
    (2.01, True)
    """
    t0 = time.perf_counter()
    space(by)
    if isinstance(permutations, bool) or not isinstance(permutations, (int, np.integer)) or permutations < 0 \
            or permutations > MAX_PERMUTATIONS:
        raise InvalidOption(f"permutations (--permutations) must be a whole number from 0 to {MAX_PERMUTATIONS:,} "
                            f"(p-values down to 1e-6; 20 × the pairs of groups let every pair pass Holm's "
                            f"adjustment), not {permutations}")
    check_seed(seed)
    src = read_source(source, by=by)
    out = check_out(src, out) if out is not None else None
    names, codes, X, notes = _groups(src, by, group_by, min_size, max_groups)
    X = X - X.mean(0)  # centring changes no distance and keeps the sums well conditioned
    st = _GroupStats(X, codes, len(names))
    s = distance_scale(by)
    matrix, groups, sep = _mean_distances(st, names, group_by, s)
    rng = np.random.default_rng(seed)
    test = _global_test(X, codes, st, permutations, rng)
    if pairwise is None:
        pairwise = len(names) <= 20
        if not pairwise:
            notes.append(f"{len(names)} groups: pairwise tests skipped ({len(names) * (len(names) - 1) // 2} "
                         f"pairs); ask for them with pairwise=True (--pairwise)")
    if pairwise and permutations and (st.n > pair_max).any():
        notes.append(f"pairwise tests use at most {pair_max} random works of each group")
    rows = [_pair_test(X, codes, i, j, names, st, s, permutations, rng, pair_max)
            for i in range(len(names)) for j in range(i + 1, len(names))] if pairwise else []
    pairs = pd.DataFrame(rows, columns=["a", "b", "between", "separation", "statistic", "p_value"])
    pairs["p_adjusted"] = holm(pairs["p_value"].to_numpy()) if len(pairs) else []
    floor = len(pairs) / (1 + permutations) if permutations else 0.0
    if len(pairs) and floor >= 0.05:  # Holm multiplies the least p, at best 1/(1+P), by the number of pairs
        notes.append(f"with {permutations} permutations no pair of the {len(pairs)} can reach p < 0.05 after Holm's "
                     f"adjustment (the least possible is {floor:.3g}); ask for at least {20 * len(pairs)} permutations "
                     f"(--permutations) to test the pairs")
    result = CompareResult(matrix=matrix, groups=groups, test=test, pairs=pairs, by=by, group_by=group_by,
                           separation=pd.DataFrame(sep, index=matrix.index, columns=matrix.columns), notes=notes)
    if out is not None:
        result.files = _write(result, out)
    result.seconds = time.perf_counter() - t0
    return result


def _groups(src, by: str, group_by: str, min_size: int, max_groups: int):
    """``(names, codes, X, notes)``: the groups kept, each work's group index, their embeddings (float64) and what
    was left out, in words."""
    values = src.column(group_by)
    notes = []
    present = values.notna().to_numpy()
    if (~present).any():
        notes.append(f"{int((~present).sum())} works with no {group_by!r} left out")
    values = values[present].astype(str).to_numpy()
    X = src.vectors(by)[present]
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
    codes = pd.Categorical(values[keep], categories=names).codes.astype(np.int64)
    return names, codes, X[keep].astype(np.float64), notes


def _mean_distances(st: "_GroupStats", names: list, group_by: str, s: float):
    """The closed-form matrix of mean distances, the per-group table, and the distances between group means."""
    G = len(names)
    mm = np.einsum("ij,ij->i", st.mean, st.mean)
    cross = np.maximum(mm[:, None] + mm[None, :] - 2 * st.mean @ st.mean.T, 0)
    np.fill_diagonal(cross, 0)
    matrix = s * (cross + st.var[:, None] + st.var[None, :])
    within = np.where(st.n > 1, 2 * s * st.var * st.n / np.maximum(st.n - 1, 1), np.nan)
    np.fill_diagonal(matrix, within)
    index = pd.Index(names, name=group_by)
    matrix = pd.DataFrame(matrix, index=index, columns=index.copy())
    sep = s * cross
    others = sep + np.diag(np.full(G, np.inf))  # a group is not its own nearest
    nearest = others.argmin(1)
    groups = pd.DataFrame({"group": names, "n": st.n.astype(int), "within": within, "spread": s * st.var,
                           "nearest_group": [names[j] for j in nearest],
                           "nearest_separation": sep[np.arange(G), nearest]})
    return matrix, groups, sep


def _global_test(X, codes, st: "_GroupStats", permutations: int, rng) -> dict:
    """The PERMANOVA of every group at once, from sufficient statistics: with X centred, SS_total = Σ‖x‖² and
    SS_between = Σ_g ‖S_g‖²/n_g."""
    n, G = len(X), len(st.n)
    ss_total = float(st.Q.sum())
    f_obs, ssb = _pseudo_f(ss_total, float((np.einsum("ij,ij->i", st.S, st.S) / st.n).sum()), 0.0, n, G)
    test = {"statistic": float(f_obs), "r2": float(ssb / ss_total) if ss_total > 0 else 0.0,
            "p_value": float("nan"), "permutations": int(permutations), "works": n, "groups": G}
    if permutations:
        f_null, _ = _pseudo_f(ss_total, _permuted_ssb(X, codes, st.n, permutations, rng), 0.0, n, G)
        test["p_value"] = float((1 + np.sum(f_null >= f_obs * (1 - 1e-12))) / (1 + permutations))
    return test


def _write(result: CompareResult, out) -> list:
    by = result.by
    return [write_csv(result.matrix.reset_index(), out / f"compare-{space(by).key}-matrix.csv"),
            write_csv(result.groups, out / f"compare-{space(by).key}-groups.csv"),
            write_csv(result.pairs, out / f"compare-{space(by).key}-pairs.csv"),
            save_figure(result.heatmap(), out / f"compare-{space(by).key}-heatmap.png"),
            save_figure(result.dendrogram(), out / f"compare-{space(by).key}-dendrogram.png")]


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


def holm(p) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (Holm 1979; NaN stays NaN).

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
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

