"""The style/content plane around one work (``artspace plane``), after Gatys et al. 2016.

Gatys et al. (2016, Fig. 3) show that style and content can be matched separately and traded against each other. The
plane makes that separation a tool for a collection: every work is placed by how far its content lies from a query's
(x) and how far its style does (y), so that works *in the query's manner but of another subject* gather in one
quadrant and works *of the same subject in another manner* in the opposite one.

Both axes are the distances ``artspace similar`` prints (:meth:`Catalog.distances
<artspace.catalog.Catalog.distances>`): for ``by="style"`` the relative signature distance, for ``l_style``
:math:`L_{style}`; content is 1 − cos. Distances in a space spread over orders of magnitude (:math:`L_{style}` runs
to 1e11), so the plot shows each work's *rank* from the query — the share of the other works that lie nearer — and
the tick labels give the distance at that rank; the CSV keeps the distances themselves, their ranks, and (for a
catalog) their percentile among the collection's pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..catalog.metadata import PLANE_COLUMNS, make_room
from ..errors import ArtspaceError, InvalidOption, WorkNotFound
from ..spaces import DEFAULT_SPACE, SPACES, space
from .files import check_out, csv_target, figure_target, save_figure, write_csv
from .source import distance_scale, metadata_columns, read_source, work_thumbnail

__all__ = ["PlaneResult", "QUADRANTS", "plane"]

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
        Every work but the query: ``id``, ``path``, ``style_distance`` and ``content_distance`` (as ``similar
        --by BY`` and ``similar --by content`` print them), ``style_rank`` and ``content_rank`` (the share, in %, of
        the other works nearer to the query, half of the work itself and of ties counted: the nearest of n at
        50/n), for a catalog ``style_percentile`` and
        ``content_percentile`` (the share of the collection's pairs nearer), ``quadrant``, and the metadata columns;
        sorted by style distance.
    query : str
    query_id : int or None
    by : str
        The space of the style axis (``style`` or ``l_style``).
    thresholds : dict
        ``{"content": c, "style": s}``: the largest distance on each axis still counted near.
    top : dict
        Quadrant name → DataFrame of its first works: in "same style, other subject" the works nearest in style
        (among those far in content), in "same subject, other style" the works nearest in content (among those far
        in style); the other two quadrants by style distance.
    figure : matplotlib Figure
    """

    works: pd.DataFrame
    query: str
    query_id: int | None
    by: str
    thresholds: dict
    top: dict
    figure: object = None
    files: list = field(default_factory=list)

    def summary(self, n: int = 5) -> str:
        """A few lines: how many works, where the axes split, the first works of the two named quadrants."""
        lines = [f"{len(self.works)} works placed around {self.query} by {space(self.by).label} and "
                 f"{SPACES['content'].label} (near: up to {self.thresholds['style']:.4g} in style, "
                 f"{self.thresholds['content']:.4g} in content)"]
        if self.thresholds["content"] >= 1.0:  # 1 - cos >= 1: a cosine at or below 0
            lines.append(f"note: 'same subject' reaches works whose content cosine to {self.query} is at or below "
                         f"0 (1 - cos up to {self.thresholds['content']:.4g}): here it means only nearer than the "
                         f"other half, not a shared subject; a larger collection or a smaller split narrows it")
        for name in ("same style, other subject", "same subject, other style"):
            df = self.top[name]
            lines.append(f"{name} ({int((self.works['quadrant'] == name).sum())} works): " + (
                ", ".join(str(p) for p in df.get("path", df["id"]).head(n)) if len(df) else "none"))
        return "\n".join(lines)


def plane(source, query, *, by: str = DEFAULT_SPACE, split: float = 0.5, top: int = 5, color: str | None = None,
          thumbs: int = 3, out=None) -> PlaneResult:
    """Place every work by its content distance (x) and style distance (y) from *query*.

    Works in the lower right are painted in the query's manner but show something else ("same style, other
    subject"); works in the upper left show the same subject in another manner ("same subject, other style").

    Parameters
    ----------
    source : Catalog, (works, X) or Source
        For a pair, *X* is ``{BY: Xs, "content": Xc}`` and *query* a work id; its distances are the spaces'
        distances on the embeddings (no neighbourhood scaling).
    query : path, id, relative path or file name
        A catalogued work or any image file.
    by : {"style", "l_style"}
        The space of the style axis: ``style`` = the relative signature distance ``similar`` ranks by,
        ``l_style`` = Gatys et al.'s :math:`L_{style}`.
    split : float in (0, 1)
        Share of the works counted near on each axis (0.5: the nearer half).
    top : int
        Works listed per quadrant.
    color : str, optional
        Metadata column to colour the points by.
    thumbs : int
        Thumbnails drawn on the figure for each named quadrant (catalog sources only).
    out : path, optional
        Folder for ``plane-<by>.png`` and ``plane-<by>.csv`` (``plane-style.csv``, ``plane-l_style.csv``: the
        style axis's space in the name, as for every analysis).

    Returns
    -------
    PlaneResult
    """
    if space(by).name == "content":
        raise InvalidOption("by is the style axis of the plane (content is its other axis): give style or "
                            "l_style, not 'content'")
    if not 0 < split < 1:
        raise InvalidOption(f"split must be a share strictly between 0 and 1, not {split}")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise InvalidOption(f"top must be a whole number of at least 1, not {top!r}")
    src = read_source(source, by=by)
    if color is not None:
        src.column(color)
    out = check_out(src, out) if out is not None else None
    df, qid = _placed(src, query, by)
    df["quadrant"] = [QUADRANTS[(bool(s), bool(c))] for s, c in
                      zip(df["style_rank"] <= 100 * split, df["content_rank"] <= 100 * split)]
    # the largest distance counted near on each axis (NaN when the split leaves no work near)
    thresholds = {axis: float(df.loc[df[f"{axis}_rank"] <= 100 * split, f"{axis}_distance"].max())
                  for axis in ("style", "content")}
    tops = {name: df[df["quadrant"] == name].sort_values(key, kind="stable").head(top).reset_index(drop=True)
            for name, key in (("same style, other subject", "style_distance"),
                              ("same subject, other style", "content_distance"),
                              ("same style, same subject", "style_distance"),
                              ("other style, other subject", "style_distance"))}
    df = df.sort_values("style_distance", kind="stable").reset_index(drop=True)
    label = str(query) if qid is None or "path" not in src.works.columns else \
        str(src.works.loc[src.ids == qid, "path"].iloc[0])
    result = PlaneResult(works=df, query=label, query_id=qid, by=by, thresholds=thresholds, top=tops)
    result.figure = plane_figure(result, src, split=split, color=color, thumbs=thumbs, query=query)
    if out is not None:  # both checked before either is written: a refused figure leaves no CSV behind
        key = space(by).key
        csv_target(df, out / f"plane-{key}.csv")
        figure_target(out / f"plane-{key}.png")
        result.files.append(write_csv(df, out / f"plane-{key}.csv"))
        result.files.append(save_figure(result.figure, out / f"plane-{key}.png"))
    return result


def _placed(src, query, by: str) -> tuple[pd.DataFrame, int | None]:
    """Every work but the query with its two distances, their ranks and (catalog) percentiles; the query's id."""
    if src.catalog is not None:
        cat = src.catalog
        ids, dc = cat.distances(query, "content")
        _, ds = cat.distances(query, by)
        qid = cat.lookup(query)
        pos = pd.Index(ids).get_indexer(src.ids)
        ds, dc = ds[pos], dc[pos]
        pct = {"style": cat.percentile(by, ds), "content": cat.percentile("content", dc)}
    else:
        qid, ds, dc = _pair_distances(src, query, by)
        pct = None
    df = src.works[["id"] + [c for c in ("path",) if c in src.works.columns]].copy()
    for axis, d in (("style", ds), ("content", dc)):
        df[f"{axis}_distance"] = np.asarray(d, np.float64)
        if pct is not None:
            df[f"{axis}_percentile"] = pct[axis]
    meta = [c for c in metadata_columns(src.works) if c not in ("id", "path") and not c.startswith("map_")]
    # a metadata column named like one the plane computes ('quadrant', 'style_distance') is kept as 'meta_...'
    df = pd.concat([df, make_room(src.works[meta], PLANE_COLUMNS)], axis=1)
    if qid is not None:
        df = df[df["id"] != qid]
    if len(df) < 2:
        raise ArtspaceError(f"the plane needs at least two works besides the query; the source has {len(df)}")
    df = df.reset_index(drop=True)
    for axis in ("style", "content"):
        # the share of the other works nearer, ties split: 0 < rank < 100, the nearest first
        df.insert(df.columns.get_loc(f"{axis}_distance") + 1, f"{axis}_rank",
                  100 * (df[f"{axis}_distance"].rank(method="average") - 0.5) / len(df))
    return df, qid


def _pair_distances(src, query, by: str):
    """The query's id and its distances to every work of a ``(works, X)`` pair, on the embeddings."""
    hit = np.flatnonzero(src.ids == int(query)) if str(query).lstrip("-").isdigit() else []
    if len(hit) == 0:
        raise WorkNotFound(f"{query!r} is not the id of a work of this table (ids run from {src.ids.min()} to "
                           f"{src.ids.max()})")
    out = []
    for b in (by, "content"):
        X = src.vectors(b).astype(np.float64)
        diff = X - X[hit[0]]
        out.append(distance_scale(b) * np.einsum("ij,ij->i", diff, diff))
    return int(query), out[0], out[1]


def plane_figure(result: PlaneResult, src=None, *, split: float = 0.5, color: str | None = None, thumbs: int = 3,
                 query=None):
    """The plane as a picture: works at their (content rank, style rank) from the query, the query at the origin,
    the split lines, the two named quadrants, thumbnails of their first works (catalog sources only)."""
    from matplotlib.figure import Figure

    df = result.works
    fig = Figure(figsize=(8.5, 7.5))
    ax = fig.add_subplot()
    _scatter(ax, df, color)
    ax.scatter([0], [0], marker="*", s=220, color="crimson", zorder=5, label="query")
    ax.axvline(100 * split, color="0.6", lw=0.8, ls="--")
    ax.axhline(100 * split, color="0.6", lw=0.8, ls="--")
    ax.set_xlim(-3, 103)
    ax.set_ylim(-3, 103)
    _rank_axis(ax.xaxis, df["content_distance"])
    _rank_axis(ax.yaxis, df["style_distance"])
    ax.set_xlabel(f"{SPACES['content'].label} from the query: rank, % of the other works nearer (distance below)")
    ax.set_ylabel(f"{space(result.by).label} from the query:\nrank, % of the other works nearer (distance below)")
    ax.set_title(f"The style/content plane around {result.query} (after Gatys et al. 2016)", fontsize=10)
    box = dict(boxstyle="round", fc="white", ec="0.7", alpha=0.85)
    ax.text(0.98, 0.02, "same style,\nother subject", transform=ax.transAxes, ha="right", va="bottom", fontsize=9,
            color="darkgreen", bbox=box)
    ax.text(0.02, 0.98, "same subject,\nother style", transform=ax.transAxes, ha="left", va="top", fontsize=9,
            color="darkblue", bbox=box)
    for name, col in (("same style, other subject", "darkgreen"), ("same subject, other style", "darkblue")):
        _mark_top(ax, result.top[name], src, col, thumbs)
    if src is not None and src.catalog is not None and query is not None:
        _query_thumbnail(ax, src.catalog, query)
    fig.tight_layout()
    return fig


def _scatter(ax, df: pd.DataFrame, color: str | None) -> None:
    import matplotlib

    x, y = df["content_rank"].to_numpy(), df["style_rank"].to_numpy()
    if color is None or color not in df.columns:
        ax.scatter(x, y, s=12, color="0.45", alpha=0.7, linewidths=0)
        return
    v = df[color]
    cats = v.astype(str).where(v.notna(), "(none)").to_numpy()
    levels = sorted(set(cats))
    cmap = matplotlib.colormaps["tab20" if len(levels) > 10 else "tab10"]
    for j, lev in enumerate(levels):
        m = cats == lev
        ax.scatter(x[m], y[m], s=14, color=cmap(j % cmap.N), label=lev, alpha=0.8, linewidths=0)
    if len(levels) <= 20:
        ax.legend(title=color, fontsize=7, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))


def _rank_axis(axis, distances: pd.Series) -> None:
    """Ticks at 0, 25, 50, 75 and 100 % rank, each labelled with the distance found at that rank."""
    ranks = np.array([0, 25, 50, 75, 100])
    values = np.quantile(distances.to_numpy(np.float64), ranks / 100)
    axis.set_ticks(ranks, [f"{r} %\n{v:.3g}" for r, v in zip(ranks, values)], fontsize=8)


def _mark_top(ax, top: pd.DataFrame, src, col: str, thumbs: int) -> None:
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    ax.scatter(top["content_rank"], top["style_rank"], s=40, facecolors="none", edgecolors=col, lw=1.2, zorder=4)
    if src is None or src.catalog is None or thumbs <= 0 or "path" not in top.columns:
        return
    rows = pd.Index(src.ids).get_indexer(top["id"].head(thumbs))
    for r, (_, w) in zip(rows, top.head(thumbs).iterrows()):
        im = np.asarray(work_thumbnail(src, r, 48))
        ax.add_artist(AnnotationBbox(OffsetImage(im, zoom=0.8), (w["content_rank"], w["style_rank"]), frameon=True,
                                     bboxprops=dict(ec=col, lw=1), pad=0.1))


def _query_thumbnail(ax, cat, query) -> None:
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    from ..sheets import thumbnail

    try:
        im = np.asarray(thumbnail(cat.image_path(query), 56))
    except (ValueError, OSError, WorkNotFound):
        return
    ax.add_artist(AnnotationBbox(OffsetImage(im, zoom=0.9), (0, 0), xybox=(40, 40), boxcoords="offset points",
                                 frameon=True, bboxprops=dict(ec="crimson", lw=1.5), pad=0.1,
                                 arrowprops=dict(arrowstyle="-", color="crimson")))
