"""Maps of a collection (``artspace map``): a 2-d layout of one space, as a picture and as an offline web page.

* :func:`layout` places every work on a plane so that works near in the space's stored embedding land near each
  other (UMAP, McInnes et al. 2018; or PCA), and stores the coordinates in the catalog's works table
  (``map_<by>_x``, ``map_<by>_y``). For ``style`` that is the raw signature distance, not ``similar``'s relative
  ranking, which no embedding reproduces (see :mod:`artspace.analysis.source`).
* :func:`map_figure` draws the layout with thumbnails of the works spread over it (a matplotlib Figure).
* :func:`map_html` writes one self-contained HTML file (:mod:`.map_page`): a canvas that draws every point (100,000
  stay fluid), zoom and pan, hover for metadata, colour by any metadata column, click a work for its nearest works
  exactly as ``similar`` lists them and a link to its original image.
* :func:`map_collection` does all three, as ``artspace map`` does, reading the works and embeddings once.
"""

from __future__ import annotations

import base64
import io
import os
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_write
from ..errors import ArtspaceError, InvalidOption
from ..outputs import check_output, made_by_artspace, marker, replaceable
from ..spaces import DEFAULT_SPACE, space
from . import map_page
from .files import check_out, csv_target, figure_target, save_figure, write_csv
from .neighbours import nearest
from .source import BOOKKEEPING, MEASURE, check_seed, read_source, work_thumbnail

__all__ = ["LAYOUT_METHODS", "THUMBS", "MapResult", "layout", "map_collection", "map_figure", "map_html",
           "stored_layout"]

LAYOUT_METHODS = ("umap", "pca")
THUMBS = ("auto", "embed", "beside", "none")
#: ``thumbs="auto"`` embeds the thumbnails in the page up to this many works, and writes them beside it above.
EMBED_LIMIT = 3000


def _coord_columns(by: str) -> tuple[str, str]:
    key = space(by).key  # taught:movement -> taught_movement: a column name the filters can read
    return f"map_{key}_x", f"map_{key}_y"


def layout(source, *, by: str = DEFAULT_SPACE, method: str = "umap", n_neighbors: int = 15, min_dist: float = 0.1,
           pca: int | None = 50, n_epochs: int | None = None, seed: int | None = 0, save: bool = True,
           large: int = 20_000) -> pd.DataFrame:
    """A 2-d layout of the works in one space.

    Parameters
    ----------
    source : Catalog, (works, X) or Source
    by : {"style", "l_style", "content"}
        The space, laid out by the Euclidean distance of its stored embedding: ``style`` keeps the neighbours of the
        signature distance :math:`d_{sig}`, ``l_style`` those of :math:`L_{style}`, ``content`` those of 1 − cos.
    method : {"umap", "pca"}
        ``pca`` (the first two principal components) is instant and linear; ``umap`` keeps neighbourhoods.
    n_neighbors, min_dist, n_epochs
        UMAP's parameters (``n_neighbors`` is capped at ``n - 1``).
    pca : int or None
        Reduce to this many principal components before UMAP (faster at scale; None: no reduction).
    seed : int or None
        Random seed; None lets UMAP use every core (faster, not reproducible).
    large : int
        Above this many works, UMAP gets its neighbour graph from a faiss inverted-file search, a PCA initialisation
        and 100 epochs unless *n_epochs* says otherwise: minutes instead of tens of minutes at 100,000 works.
    save : bool
        Store the coordinates in the catalog's works table as ``map_<by>_x`` and ``map_<by>_y``.

    Returns
    -------
    DataFrame with ``id``, ``x``, ``y``.

    Examples
    --------
    >>> xy = layout((pd.DataFrame({"g": list("aabb")}), np.eye(4)), method="pca")
    >>> list(xy.columns)
    ['id', 'x', 'y']
    """
    space(by)
    if method not in LAYOUT_METHODS:
        raise InvalidOption(f"method must be one of {', '.join(LAYOUT_METHODS)}, not {method!r}")
    check_seed(seed, none=True)
    src = read_source(source, by=by)
    X = src.vectors(by)
    n = len(X)
    if n < 2:
        raise ArtspaceError(f"{n} work(s) cannot be mapped; a map needs at least 2")
    Xc = X - X.mean(0)
    Z = _pca2(Xc) if method == "pca" or n < 5 else _umap(Xc, n_neighbors, min_dist, pca, n_epochs, seed, large)
    xy = pd.DataFrame({"id": src.ids, "x": Z[:, 0].astype(float), "y": Z[:, 1].astype(float)})
    if save:
        _store_layout(src, by, xy, method, seed)
    return xy


def _store_layout(src, by: str, xy: pd.DataFrame, method: str, seed) -> None:
    """Keep a layout in the catalog (``map_<by>_x``, ``map_<by>_y``), with the command that made it."""
    if src.catalog is not None:
        cx, cy = _coord_columns(by)
        src.catalog.update_columns(pd.DataFrame({cx: xy["x"].to_numpy(), cy: xy["y"].to_numpy()},
                                                index=pd.Index(src.ids, name="id")),
                                   source=f"map --by {by} --method {method}" + (f" --seed {seed}" if seed else ""))


def _pca2(Xc: np.ndarray) -> np.ndarray:
    from sklearn.decomposition import PCA

    n = len(Xc)
    Z = PCA(n_components=min(2, n, Xc.shape[1]), random_state=0).fit_transform(Xc)
    return Z if Z.shape[1] == 2 else np.c_[Z, np.zeros(n)]


def _umap(Xc, n_neighbors, min_dist, pca, n_epochs, seed, large) -> np.ndarray:
    import warnings

    import umap
    from sklearn.decomposition import PCA

    n = len(Xc)
    if pca and Xc.shape[1] > pca and n > pca:
        Xc = PCA(n_components=pca, random_state=0 if seed is None else seed).fit_transform(Xc)
    nn = max(2, min(int(n_neighbors), n - 1))
    options = dict(init="spectral" if n > 20 else "random", low_memory=True)
    if n > large:
        # At scale: faiss finds the neighbour graph (instead of NN-descent), PCA initialises the layout (instead of
        # a sparse eigensolver) and fewer epochs suffice for a picture.
        d, i = _approximate_graph(Xc, nn, seed=0 if seed is None else seed)
        i = np.where(i < 0, np.arange(n)[:, None], i)
        options = dict(init="pca", low_memory=False,
                       precomputed_knn=(i.astype(np.int64), np.sqrt(np.maximum(d, 0)), None))
        n_epochs = n_epochs or 100
    reducer = umap.UMAP(n_components=2, n_neighbors=nn, min_dist=min_dist, metric="euclidean", n_epochs=n_epochs,
                        random_state=seed, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs overridden by random_state; tiny-graph notices
        return reducer.fit_transform(Xc)


def _approximate_graph(Z: np.ndarray, k: int, *, seed: int = 0, nprobe: int = 10):
    """UMAP's neighbour graph at scale: squared L2 distances and rows of the *k* nearest rows (self included) from a
    faiss inverted file of √n lists searched in *nprobe* (recall@16 ≈ 0.96 on 100,000 50-d points). Only the
    layout uses it; neighbour lists shown to people come from :func:`artspace.analysis.neighbours.nearest`."""
    import faiss

    Z = np.ascontiguousarray(Z, np.float32)
    n, d = Z.shape
    nlist = max(1, int(np.sqrt(n)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
    index.cp.seed = int(seed)
    index.train(Z[np.random.default_rng(seed).choice(n, size=min(n, 40 * nlist), replace=False)])
    index.add(Z)
    index.nprobe = min(nlist, nprobe)
    return index.search(Z, k)


def stored_layout(source, *, by: str = DEFAULT_SPACE) -> pd.DataFrame | None:
    """The layout :func:`layout` saved in the works table (``id``, ``x``, ``y``), or None when some work has none or
    the works changed since it was computed (the catalog reports the columns stale)."""
    src = read_source(source)
    cx, cy = _coord_columns(by)
    works = src.works
    if cx not in works.columns or cy not in works.columns or works[[cx, cy]].isna().any().any() \
            or cx in src.stale or cy in src.stale:
        return None
    return pd.DataFrame({"id": src.ids, "x": works[cx].to_numpy(float), "y": works[cy].to_numpy(float)})


def _positions(src, by: str, coords: pd.DataFrame | None) -> np.ndarray:
    """(n, 2) map positions of the works in row order: *coords* if given, else the stored layout, else a new one."""
    if coords is None:
        coords = stored_layout(src, by=by)
        if coords is None:
            coords = layout(src, by=by)
    pos = pd.Index(coords["id"].to_numpy()).get_indexer(src.ids)
    if (pos < 0).any():
        raise ArtspaceError(f"{int((pos < 0).sum())} works have no map coordinates; compute the layout again "
                            f"(artspace map --recompute)")
    return np.c_[coords["x"].to_numpy(float)[pos], coords["y"].to_numpy(float)[pos]]


def _categorical(values: pd.Series) -> bool:
    """Whether a column is coloured by category: text and booleans, and whole numbers that look like codes (at
    most 20 values, close together: cluster labels 0..k-1), not measurements (a few image widths 300-512 px)."""
    if values.dtype == bool or not pd.api.types.is_numeric_dtype(values):
        return True
    if not pd.api.types.is_integer_dtype(values):
        return False
    distinct = values.dropna()
    n = distinct.nunique()
    return n <= 20 and (n == 0 or int(distinct.max()) - int(distinct.min()) < 2 * n)


# ---- the picture ----------------------------------------------------------------------------------------------


def map_figure(source, *, by: str = DEFAULT_SPACE, coords: pd.DataFrame | None = None, color: str | None = None,
               thumbs: int = 14, thumb_px: int = 48, title: str | None = None):
    """The layout as a picture: every work a dot (coloured by *color*), thumbnails spread over the map.

    Parameters
    ----------
    source : Catalog, (works, X) or Source
    coords : DataFrame, optional
        ``id``, ``x``, ``y``; default the stored layout (computed when missing).
    color : str, optional
        A works-table column to colour the dots by.
    thumbs : int
        The map is cut into ``thumbs × thumbs`` cells and each non-empty cell shows the work nearest its centre
        (catalog sources only; 0: dots only).

    Returns
    -------
    matplotlib Figure
    """
    from matplotlib.figure import Figure

    src = read_source(source, by=by)
    P = _positions(src, by, coords)
    fig = Figure(figsize=(10, 9))
    ax = fig.add_subplot()
    size = float(np.clip(3000 / max(len(P), 1), 0.3, 30))
    frame = _dots(fig, ax, P, src.column(color) if color is not None else None, color, size)
    if thumbs and src.catalog is not None:
        _spread_thumbnails(ax, src, P, frame, thumbs, thumb_px)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"{len(P)} works mapped by {by} ({MEASURE[by]}; UMAP or PCA of the stored embedding)",
                 fontsize=11)
    fig.tight_layout()
    return fig


def _dots(fig, ax, P: np.ndarray, v: pd.Series | None, name: str | None, s: float) -> np.ndarray:
    """Draw the points; returns each point's colour (thumbnail frames take the colour of their dot)."""
    import matplotlib

    n = len(P)
    frame = np.array(["0.5"] * n, dtype=object)
    if v is None:
        ax.scatter(P[:, 0], P[:, 1], s=s, color="0.35", alpha=0.7, linewidths=0)
        return frame
    if not _categorical(v):
        sc = ax.scatter(P[:, 0], P[:, 1], s=s, c=v.to_numpy(float), cmap="viridis", alpha=0.85, linewidths=0)
        fig.colorbar(sc, ax=ax, shrink=0.7, label=name)
        return frame
    cats = v.astype(str).where(v.notna(), "(none)").to_numpy()
    levels, counts = np.unique(cats, return_counts=True)
    levels = levels[np.argsort(-counts, kind="stable")]
    cmap = matplotlib.colormaps["tab20" if len(levels) > 10 else "tab10"]
    for j, lev in enumerate(levels):
        m = cats == lev
        col = cmap(j % cmap.N) if j < 20 else "0.6"
        ax.scatter(P[m, 0], P[m, 1], s=s, color=col, label=lev if j < 20 else None, alpha=0.85, linewidths=0)
        frame[np.flatnonzero(m)] = [col] * int(m.sum())
    ax.legend(title=name, fontsize=8, title_fontsize=9, markerscale=max(1, 6 / s ** 0.5), loc="upper left",
              bbox_to_anchor=(1.01, 1), frameon=False)
    return frame


def _spread_thumbnails(ax, src, P: np.ndarray, frame: np.ndarray, thumbs: int, px: int) -> None:
    """One thumbnail per cell of a ``thumbs × thumbs`` grid: the work nearest the cell's centre."""
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    lo, hi = P.min(0), P.max(0)
    span = np.where(hi - lo > 0, hi - lo, 1)
    cell = np.floor((P - lo) / span * thumbs * 0.9999).astype(int)
    d = ((P - (lo + (cell + 0.5) * span / thumbs)) ** 2).sum(1)
    key = cell[:, 0] * thumbs + cell[:, 1]
    order = np.lexsort((d, key))
    first = order[np.r_[True, key[order][1:] != key[order][:-1]]]
    zoom = 1.0 if len(first) < 60 else 0.75
    for i in first:
        im = np.asarray(work_thumbnail(src, i, px))
        ax.add_artist(AnnotationBbox(OffsetImage(im, zoom=zoom), (P[i, 0], P[i, 1]), frameon=True, pad=0.12,
                                     bboxprops=dict(ec=frame[i], fc=frame[i], lw=1.5)))


# ---- the web page ---------------------------------------------------------------------------------------------


def _open(source, by: str, out, thumbs: str, color: str | None, *, folder: bool):
    """The source read once and the output (a *folder*, or the page's file) checked, after the options:
    ``(source, out)``."""
    if thumbs not in THUMBS:
        raise InvalidOption(f"thumbs must be auto, embed, beside or none, not {thumbs!r}")
    src = read_source(source, by=by)
    out = check_out(src, out, folder=folder)
    if color is not None:
        src.column(color)  # an unknown column fails here, before any work
    return src, out


def map_html(source, path, *, by: str = DEFAULT_SPACE, coords: pd.DataFrame | None = None, color: str | None = None,
             neighbors_k: int = 8, thumbs: str = "auto", thumb_px: int = 96, embed_limit: int = EMBED_LIMIT,
             title: str | None = None) -> Path:
    """Write the interactive map as one self-contained HTML file that works offline.

    Parameters
    ----------
    source : Catalog, (works, X) or Source
    path : path
        The ``.html`` file to write (atomically).
    coords : DataFrame, optional
        ``id``, ``x``, ``y``; default the stored layout (computed when missing).
    color : str, optional
        The column the page colours by when it opens (any other can be chosen in the page).
    neighbors_k : int
        Neighbours listed when a work is clicked: for a catalog exactly those ``similar --by BY`` returns (for
        ``style`` ranked by the relative signature distance), with their distances and percentiles; the panel says
        which space (:attr:`artspace.spaces.Space.label`).
    thumbs : {"auto", "embed", "beside", "none"}
        Thumbnails inside the file (base64) or as JPEG files in ``<name>_thumbs/`` beside it; ``auto`` embeds up
        to *embed_limit* works. Catalog sources only.

    Returns
    -------
    Path of the file written. For a catalog, each work's panel links to its original image by a path relative to
    the page's folder, so the page keeps working offline (and when the collection and the page move together).
    """
    src, path = _open(source, by, path, thumbs, color, folder=False)
    replaceable(path, map_page.made_here)  # an earlier map is replaced, never someone's own page
    P = _positions(src, by, coords)
    lo = P.min(0)
    Q = (P - lo) / float(max((P.max(0) - lo).max(), 1e-12))
    data = {"title": title or f"{len(P)} works mapped by {by} ({MEASURE[by]})", "n": len(P),
            "x": np.round(Q[:, 0], 5).tolist(), "y": np.round(Q[:, 1], 5).tolist(), **_columns_payload(src, color),
            **_neighbours_payload(src, by, neighbors_k), "thumbs": _thumbs(src, path, thumbs, thumb_px, embed_limit),
            "links": _links(src, path)}
    page = map_page.render(data["title"], data)
    atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return path


def _columns_payload(src, color: str | None) -> dict:
    works = src.works
    skip = set(BOOKKEEPING) | {"id", "path"}
    cols = [c for c in works.columns if c not in skip and not str(c).startswith("map_")]
    return {"ids": works["id"].astype(np.int64).tolist(),
            "paths": works["path"].astype(str).tolist() if "path" in works.columns else None,
            "columns": {str(c): _column_payload(works[c]) for c in cols},
            "color": color if color in cols else (cols[0] if cols else None)}


def _column_payload(v: pd.Series) -> dict:
    if _categorical(v):
        s = v.astype(str).where(v.notna(), None)
        codes, levels = pd.factorize(s.to_numpy(object), use_na_sentinel=True)
        return {"kind": "cat", "levels": [str(x) for x in levels], "codes": codes.astype(int).tolist()}
    vals = v.to_numpy(float, na_value=np.nan)
    return {"kind": "num", "values": [None if not np.isfinite(x) else float(f"{x:.6g}") for x in vals]}


def _neighbours_payload(src, by: str, k: int) -> dict:
    """Each work's neighbours as row numbers of the page's arrays, their distances and (catalog) percentiles."""
    n = len(src.works)
    ids, dist = nearest(src, by=by, k=k) if k > 0 and n > 1 else (np.zeros((n, 0), np.int64), np.zeros((n, 0)))
    rows = pd.Index(src.ids).get_indexer(ids.ravel()).reshape(ids.shape)
    out = {"k": int(rows.shape[1]), "nbr": rows.astype(np.int64).ravel().tolist(),
           "nbrDist": [float(f"{d:.4g}") for d in dist.ravel()],
           "nearest": f"nearest by {space(by).label}" if src.catalog is not None else f"nearest by {MEASURE[by]}",
           "nbrPct": None}
    if src.catalog is not None and dist.size:
        out["nbrPct"] = [float(f"{p:.3g}") for p in src.catalog.percentile(by, dist.ravel())]
    return out


def _thumb_bytes(src, row: int, px: int) -> bytes:
    buf = io.BytesIO()
    work_thumbnail(src, row, px).save(buf, format="JPEG", quality=80, comment=marker().encode())
    return buf.getvalue()


def _thumb_mode(src, thumbs: str, embed_limit: int) -> str:
    """``embed``, ``beside`` or ``none``: where the page's thumbnails go (only a catalog's works have images)."""
    mode = ("embed" if len(src.works) <= embed_limit else "beside") if thumbs == "auto" else thumbs
    return "none" if src.catalog is None else mode


def _thumb_targets(src, path: Path) -> list[Path]:
    """The thumbnail files of the page *path* in ``<name>_thumbs/``, each checked: it may be written there (no
    file in the way of the folder, and an existing thumbnail only one artspace made)."""
    folder = path.parent / f"{path.stem}_thumbs"
    if folder.exists() and not folder.is_dir():
        raise InvalidOption(f"{folder} is a file, where the map's thumbnails go; move it, or pass --thumbs embed")
    return [replaceable(folder / f"{int(wid)}.jpg", made_by_artspace) for wid in src.ids]


def _thumbs(src, path: Path, thumbs: str, px: int, embed_limit: int) -> list | None:
    mode = _thumb_mode(src, thumbs, embed_limit)
    if mode == "none":
        return None
    if mode == "embed":
        return ["data:image/jpeg;base64," + base64.b64encode(_thumb_bytes(src, r, px)).decode()
                for r in range(len(src.works))]
    targets = _thumb_targets(src, path)
    (path.parent / f"{path.stem}_thumbs").mkdir(parents=True, exist_ok=True)
    names = []
    for r, target in enumerate(targets):
        data = _thumb_bytes(src, r, px)
        atomic_write(target, lambda tmp, data=data: tmp.write_bytes(data))
        names.append(f"{target.parent.name}/{target.name}")
    return names


def _links(src, path: Path) -> list | None:
    """Each work's image as a URL relative to the page's folder (percent-encoded, ``/``-separated, so that it
    resolves against the page's ``file:`` URL); an absolute ``file:`` URL where no relative path exists."""
    if src.catalog is None:
        return None
    here = Path(os.path.abspath(path.parent)).resolve()
    links = []
    for rel in src.works["path"].astype(str):
        image = src.root / rel
        try:
            links.append(urllib.parse.quote(Path(os.path.relpath(image, here)).as_posix()))
        except ValueError:  # another drive (Windows): no relative path
            links.append(image.as_uri())
    return links


# ---- everything ``artspace map`` makes -------------------------------------------------------------------------


@dataclass
class MapResult:
    """What :func:`map_collection` made: the layout and the files."""

    coords: pd.DataFrame
    by: str
    figure: object = None
    files: list = field(default_factory=list)
    computed: bool = True
    seconds: float = 0.0


def map_collection(source, out, *, by: str = DEFAULT_SPACE, color: str | None = None, recompute: bool = False,
                   method: str = "umap", neighbors_k: int = 8, thumbs: str = "auto", seed: int | None = 0,
                   picture: bool = True) -> MapResult:
    """Everything ``artspace map`` makes: the layout (saved in the catalog), ``map-<by>.png``, ``map-<by>.html`` and
    ``map-<by>.csv`` in the folder *out*.

    The works table and the embeddings are read once. The layout stored in the catalog is reused unless
    *recompute*, or some work has none, or the works changed since it was computed.

    Returns
    -------
    MapResult
    """
    t0 = time.perf_counter()
    space(by)
    if method not in LAYOUT_METHODS:  # checked even when a stored layout makes it unused
        raise InvalidOption(f"method must be one of {', '.join(LAYOUT_METHODS)}, not {method!r}")
    check_seed(seed, none=True)
    if isinstance(neighbors_k, bool) or not isinstance(neighbors_k, (int, np.integer)) or neighbors_k < 0:
        raise InvalidOption(f"neighbors_k (--neighbors) must be a whole number of at least 0 (0: no lists), not "
                            f"{neighbors_k!r}")
    src, out = _open(source, by, out, thumbs, color, folder=True)
    table = src.works[["id"] + [c for c in ("path",) if c in src.works.columns]].copy()
    _check_targets(src, out, by, table, thumbs=thumbs, picture=picture)
    coords = None if recompute else stored_layout(src, by=by)
    computed = coords is None
    if computed:
        coords = layout(src, by=by, method=method, seed=seed, save=False)
    result = MapResult(coords=coords, by=by, computed=computed)
    table[["x", "y"]] = _positions(src, by, coords)
    result.files.append(write_csv(table, out / f"map-{space(by).key}.csv"))
    if picture:
        result.figure = map_figure(src, by=by, coords=coords, color=color)
        result.files.append(save_figure(result.figure, out / f"map-{space(by).key}.png"))
    result.files.append(map_html(src, out / f"map-{space(by).key}.html", by=by, coords=coords, color=color,
                                 neighbors_k=neighbors_k, thumbs=thumbs))
    if computed:  # after the files: one that may not be replaced stops the run before the catalog changes
        _store_layout(src, by, coords, method, seed)
    result.seconds = time.perf_counter() - t0
    return result


def _check_targets(src, out: Path, by: str, table: pd.DataFrame, *, thumbs: str, picture: bool,
                   embed_limit: int = EMBED_LIMIT) -> None:
    """Refuse the run before any file is written or the layout computed when one of the files it would write may
    not be (a file of the user's in the way): a refused map leaves nothing half made."""
    key = space(by).key
    csv_target(table.assign(x=0.0, y=0.0).head(0), out / f"map-{key}.csv")
    if picture:
        figure_target(out / f"map-{key}.png")
    page = check_output(out / f"map-{key}.html")
    replaceable(page, map_page.made_here)
    if _thumb_mode(src, thumbs, embed_limit) == "beside":
        _thumb_targets(src, page)
