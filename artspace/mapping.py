r"""Maps of a collection: a 2-d UMAP layout of the style or content space, as a picture and as an offline web page.

* :func:`layout` places every work on a plane so that works near in style (squared L2 ≈ L_style) or in content
  (1 − cos) land near each other, and stores the coordinates in the catalog's works table (``map_<by>_x``,
  ``map_<by>_y``).
* :func:`map_figure` draws the layout with thumbnails of the works spread over it (a matplotlib Figure).
* :func:`map_html` writes one self-contained HTML file: a canvas that draws every point (100,000 stay fluid), zoom
  and pan, hover for metadata, colour by any metadata column, click a work for its nearest neighbours. It makes no
  network request: data and code are inline, thumbnails are embedded (or files beside it for large collections), and
  a Content-Security-Policy forbids anything else.
* :func:`map_collection` does all three, as ``artspace map`` does.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write
from .analysis import (
    _BOOKKEEPING,
    _check_by,
    _check_out,
    _is_catalog,
    _thumbnail,
    neighbors,
    save_figure,
    works_and_vectors,
    write_csv,
)
from .errors import ArtspaceError, InvalidOption

__all__ = ["LAYOUT_METHODS", "MapResult", "layout", "map_collection", "map_figure", "map_html"]

LAYOUT_METHODS = ("umap", "pca")


def _coord_columns(by: str) -> tuple[str, str]:
    return f"map_{by}_x", f"map_{by}_y"


def layout(source, *, by: str = "style", method: str = "umap", n_neighbors: int = 15, min_dist: float = 0.1,
           pca: int | None = 50, n_epochs: int | None = None, seed: int | None = 0, save: bool = True,
           large: int = 20_000) -> pd.DataFrame:
    """A 2-d layout of the works by style or by content.

    Parameters
    ----------
    source : Catalog or (works, X)
    by : {"style", "content"}
        Style: Euclidean UMAP of the style embeddings (the same neighbours as squared L2 ≈ L_style). Content:
        Euclidean UMAP of the unit content embeddings (the same neighbours as 1 − cos).
    method : {"umap", "pca"}
        ``pca`` (the first two principal components) is instant and linear; ``umap`` keeps neighbourhoods.
    n_neighbors, min_dist, n_epochs
        UMAP's parameters (``n_neighbors`` is capped at ``n - 1``).
    pca : int or None
        Reduce to this many principal components before UMAP (faster at scale; None: no reduction).
    seed : int or None
        Random seed; None lets UMAP use every core (faster, not reproducible).
    large : int
        Above this many works, UMAP gets its neighbour graph from faiss (:func:`artspace.analysis.approximate_knn`),
        a PCA initialisation and 100 epochs unless *n_epochs* says otherwise: minutes instead of tens of minutes at
        100,000 works on two cores.
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
    _check_by(by)
    if method not in LAYOUT_METHODS:
        raise InvalidOption(f"method must be one of {', '.join(LAYOUT_METHODS)}, not {method!r}")
    works, X = works_and_vectors(source, by=by)
    n = len(X)
    if n < 2:
        raise ArtspaceError(f"{n} work(s) cannot be mapped; a map needs at least 2")
    from sklearn.decomposition import PCA

    Xc = X - X.mean(0)
    if method == "pca" or n < 5:
        Z = PCA(n_components=min(2, n, X.shape[1]), random_state=0).fit_transform(Xc)
        if Z.shape[1] < 2:
            Z = np.c_[Z, np.zeros(n)]
    else:
        import warnings

        import umap

        if pca and X.shape[1] > pca and n > pca:
            Xc = PCA(n_components=pca, random_state=0 if seed is None else seed).fit_transform(Xc)
        nn = max(2, min(int(n_neighbors), n - 1))
        options = dict(init="spectral" if n > 20 else "random", low_memory=True)
        if n > large:
            # At scale: faiss finds the neighbour graph (instead of NN-descent), PCA initialises the layout
            # (instead of a sparse eigensolver) and fewer epochs suffice for a picture.
            from .analysis import approximate_knn

            d, i = approximate_knn(Xc, nn, seed=0 if seed is None else seed)
            i = np.where(i < 0, np.arange(n)[:, None], i)
            options = dict(init="pca", low_memory=False,
                           precomputed_knn=(i.astype(np.int64), np.sqrt(np.maximum(d, 0)), None))
            n_epochs = n_epochs or 100
        reducer = umap.UMAP(n_components=2, n_neighbors=nn, min_dist=min_dist, metric="euclidean",
                            n_epochs=n_epochs, random_state=seed, **options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # n_jobs overridden by random_state; tiny-graph notices
            Z = reducer.fit_transform(Xc)
    xy = pd.DataFrame({"id": works["id"].to_numpy(), "x": Z[:, 0].astype(float), "y": Z[:, 1].astype(float)})
    if save and _is_catalog(source):
        cx, cy = _coord_columns(by)
        source.update_columns(pd.DataFrame({cx: xy["x"].to_numpy(), cy: xy["y"].to_numpy()},
                                           index=pd.Index(xy["id"].to_numpy(), name="id")))
    return xy


def stored_layout(source, *, by: str = "style") -> pd.DataFrame | None:
    """The layout saved in the works table by :func:`layout` (``id``, ``x``, ``y``), or None if any work lacks one."""
    works, _ = works_and_vectors(source, by=by)
    cx, cy = _coord_columns(by)
    if cx not in works.columns or cy not in works.columns or works[[cx, cy]].isna().any().any():
        return None
    return pd.DataFrame({"id": works["id"].to_numpy(), "x": works[cx].to_numpy(float),
                         "y": works[cy].to_numpy(float)})


def _aligned(works: pd.DataFrame, coords: pd.DataFrame) -> np.ndarray:
    pos = pd.Index(coords["id"].to_numpy()).get_indexer(works["id"].to_numpy())
    if (pos < 0).any():
        raise ArtspaceError(f"{int((pos < 0).sum())} works have no map coordinates; compute the layout again")
    return np.c_[coords["x"].to_numpy(float)[pos], coords["y"].to_numpy(float)[pos]]


# ---------------------------------------------------------------------------------------------------------------
# The picture


def _categorical(values: pd.Series) -> bool:
    if values.dtype == bool or not pd.api.types.is_numeric_dtype(values):
        return True
    return pd.api.types.is_integer_dtype(values) and values.nunique(dropna=True) <= 20


def _works_and_layout(source, *, by: str, coords):
    """The works table and its 2-D layout rows: *coords* if given, else the stored layout, else a new one."""
    works, _ = works_and_vectors(source, by=by)
    if coords is None:
        coords = stored_layout(source, by=by)
        if coords is None:
            coords = layout(source, by=by)
    return works, _aligned(works, coords)


def map_figure(source, *, by: str = "style", coords: pd.DataFrame | None = None, color: str | None = None,
               thumbs: int = 14, thumb_px: int = 48, title: str | None = None):
    """The layout as a picture: every work a dot (coloured by *color*), thumbnails spread over the map.

    Parameters
    ----------
    source : Catalog or (works, X)
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
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    works, P = _works_and_layout(source, by=by, coords=coords)
    fig = Figure(figsize=(10, 9))
    ax = fig.add_subplot()
    n = len(P)
    s = float(np.clip(3000 / max(n, 1), 0.3, 30))
    frame = np.array(["0.5"] * n, dtype=object)  # thumbnail frames take the colour of their dot
    if color is not None:
        if color not in works.columns:
            raise ArtspaceError(f"no column {color!r} in the works table; columns: {', '.join(works.columns)}")
        v = works[color]
        if _categorical(v):
            cats = v.astype(str).where(v.notna(), "(none)").to_numpy()
            levels, counts = np.unique(cats, return_counts=True)
            levels = levels[np.argsort(-counts, kind="stable")]
            cmap = matplotlib.colormaps["tab20" if len(levels) > 10 else "tab10"]
            for j, lev in enumerate(levels):
                m = cats == lev
                col = cmap(j % cmap.N) if j < 20 else "0.6"
                ax.scatter(P[m, 0], P[m, 1], s=s, color=col, label=lev if j < 20 else None, alpha=0.85,
                           linewidths=0)
                frame[np.flatnonzero(m)] = [col] * int(m.sum())
            ax.legend(title=color, fontsize=8, title_fontsize=9, markerscale=max(1, 6 / s ** 0.5), loc="upper left",
                      bbox_to_anchor=(1.01, 1), frameon=False)
        else:
            sc = ax.scatter(P[:, 0], P[:, 1], s=s, c=v.to_numpy(float), cmap="viridis", alpha=0.85, linewidths=0)
            fig.colorbar(sc, ax=ax, shrink=0.7, label=color)
    else:
        ax.scatter(P[:, 0], P[:, 1], s=s, color="0.35", alpha=0.7, linewidths=0)
    if thumbs and _is_catalog(source) and "path" in works.columns:
        lo, hi = P.min(0), P.max(0)
        span = np.where(hi - lo > 0, hi - lo, 1)
        cell = np.floor((P - lo) / span * thumbs * 0.9999).astype(int)
        centre = lo + (cell + 0.5) * span / thumbs
        d = ((P - centre) ** 2).sum(1)
        key = cell[:, 0] * thumbs + cell[:, 1]
        order = np.lexsort((d, key))
        first = order[np.r_[True, key[order][1:] != key[order][:-1]]]
        zoom = 1.0 if len(first) < 60 else 0.75
        for i in first:
            im = np.asarray(_thumbnail(source.root, works.at[i, "path"], thumb_px))
            ax.add_artist(AnnotationBbox(OffsetImage(im, zoom=zoom), (P[i, 0], P[i, 1]), frameon=True, pad=0.12,
                                         bboxprops=dict(ec=frame[i], fc=frame[i], lw=1.5)))
    ax.set_xticks([])
    ax.set_yticks([])
    what = "style (squared L2 ≈ L_style)" if by == "style" else "content (1 − cos)"
    ax.set_title(title or f"{n} works mapped by {what}", fontsize=11)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------------
# The web page


def _thumb_bytes(root: Path, rel: str, px: int) -> bytes:
    im = _thumbnail(root, rel, px)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def _column_payload(v: pd.Series) -> dict:
    if _categorical(v):
        s = v.astype(str).where(v.notna(), None)
        codes, levels = pd.factorize(s.to_numpy(object), use_na_sentinel=True)
        return {"kind": "cat", "levels": [str(x) for x in levels], "codes": codes.astype(int).tolist()}
    vals = v.to_numpy(float)
    return {"kind": "num", "values": [None if not np.isfinite(x) else float(f"{x:.6g}") for x in vals]}


def map_html(source, path, *, by: str = "style", coords: pd.DataFrame | None = None, color: str | None = None,
             neighbors_k: int = 8, thumbs: str = "auto", thumb_px: int = 96, embed_limit: int = 3000,
             title: str | None = None) -> Path:
    """Write the interactive map as one self-contained HTML file that works offline.

    Parameters
    ----------
    source : Catalog or (works, X)
    path : path
        The ``.html`` file to write (atomically).
    coords : DataFrame, optional
        ``id``, ``x``, ``y``; default the stored layout (computed when missing).
    color : str, optional
        The column the page colours by when it opens (any other can be chosen in the page).
    neighbors_k : int
        Neighbours listed when a work is clicked (in the embedding space, not on the map).
    thumbs : {"auto", "embed", "beside", "none"}
        Thumbnails inside the file (base64) or as JPEG files in ``<name>_thumbs/`` beside it; ``auto`` embeds up
        to *embed_limit* works. Catalog sources only.

    Returns
    -------
    Path of the file written.
    """
    if thumbs not in ("auto", "embed", "beside", "none"):
        raise InvalidOption(f"thumbs must be auto, embed, beside or none, not {thumbs!r}")
    path = _check_out(source, path)
    works, P = _works_and_layout(source, by=by, coords=coords)
    n = len(works)
    lo, hi = P.min(0), P.max(0)
    span = float(max((hi - lo).max(), 1e-12))
    Q = (P - lo) / span
    rows, dist = neighbors(source, by=by, k=neighbors_k) if neighbors_k > 0 else (np.zeros((n, 0), int),
                                                                                     np.zeros((n, 0)))
    skip = set(_BOOKKEEPING) | {"id", "path"}
    cols = [c for c in works.columns if c not in skip and not str(c).startswith("map_")]
    if color is not None and color not in works.columns:
        raise ArtspaceError(f"no column {color!r} in the works table; columns: {', '.join(cols)}")
    thumb_list = None
    mode = thumbs
    if thumbs == "auto":
        mode = "embed" if n <= embed_limit else "beside"
    if not _is_catalog(source) or "path" not in works.columns:
        mode = "none"
    if mode == "embed":
        thumb_list = ["data:image/jpeg;base64," + base64.b64encode(_thumb_bytes(source.root, r, thumb_px)).decode()
                      for r in works["path"]]
    elif mode == "beside":
        folder = path.parent / f"{path.stem}_thumbs"
        folder.mkdir(parents=True, exist_ok=True)
        thumb_list = []
        for wid, rel in zip(works["id"], works["path"]):
            f = folder / f"{int(wid)}.jpg"
            data = _thumb_bytes(source.root, rel, thumb_px)
            atomic_write(f, lambda tmp, data=data: tmp.write_bytes(data))
            thumb_list.append(f"{folder.name}/{int(wid)}.jpg")
    what = {"style": "style (squared L2 ≈ L_style)", "content": "content (1 − cos)"}[by]
    data = {
        "title": title or f"{n} works by {what}",
        "by": by,
        "distance": "L_style" if by == "style" else "1 - cos",
        "n": n,
        "x": np.round(Q[:, 0], 5).tolist(),
        "y": np.round(Q[:, 1], 5).tolist(),
        "ids": works["id"].astype(np.int64).tolist(),
        "paths": works["path"].astype(str).tolist() if "path" in works.columns else None,
        "columns": {str(c): _column_payload(works[c]) for c in cols},
        "color": color if color in cols else (cols[0] if cols else None),
        "k": int(rows.shape[1]),
        "nbr": rows.astype(np.int64).ravel().tolist(),
        "nbrDist": [float(f"{d:.4g}") for d in np.asarray(dist, float).ravel()],
        "thumbs": thumb_list,
    }
    payload = _script_json(data)
    # one pass, so that a title containing "__DATA__" (or data containing "__TITLE__") stays as it is
    fill = {"__TITLE__": html.escape(data["title"]), "__DATA__": payload}
    page = re.sub("__TITLE__|__DATA__", lambda m: fill[m.group(0)], _PAGE)
    atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return path


#: Characters escaped in the JSON embedded in the page. Inside <script>, the HTML parser looks for "</script" and,
#: after "<!--", for "<script" (a metadata value "<!--<script>" swallows the rest of the page); with no "<" left
#: it finds neither. ">" and "&" go too, so that no "-->" or entity is left for any parser to misread, and
#: U+2028/U+2029, which older JavaScript engines take for line ends. Each becomes a JSON \u escape inside a JSON
#: string (the only place these characters can occur), so JSON.parse gives back the original text.
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _script_json(data) -> str:
    """*data* as JSON text safe to place inside ``<script type="application/json">`` (see _SCRIPT_ESCAPES)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.translate(str.maketrans(_SCRIPT_ESCAPES))


@dataclass
class MapResult:
    """What :func:`map_collection` made: the layout and the files."""

    coords: pd.DataFrame
    by: str
    figure: object = None
    files: list = field(default_factory=list)
    computed: bool = True
    seconds: float = 0.0


def map_collection(source, out, *, by: str = "style", color: str | None = None, recompute: bool = False,
                   method: str = "umap", neighbors_k: int = 8, thumbs: str = "auto", seed: int | None = 0,
                   picture: bool = True) -> MapResult:
    """Everything ``artspace map`` makes: the layout (saved in the catalog), ``map-<by>.png``, ``map-<by>.html`` and
    ``map-<by>.csv`` in the folder *out*.

    The layout stored in the catalog is reused unless *recompute* (or unless some work has none).

    Returns
    -------
    MapResult
    """
    t0 = time.perf_counter()
    out = _check_out(source, out)
    coords = None if recompute else stored_layout(source, by=by)
    computed = coords is None
    if computed:
        coords = layout(source, by=by, method=method, seed=seed)
    result = MapResult(coords=coords, by=by, computed=computed)
    works, _ = works_and_vectors(source, by=by)
    table = works[["id"] + [c for c in ("path",) if c in works.columns]].copy()
    table[["x", "y"]] = _aligned(works, coords)
    result.files.append(write_csv(table, out / f"map-{by}.csv"))
    if picture:
        result.figure = map_figure(source, by=by, coords=coords, color=color)
        result.files.append(save_figure(result.figure, out / f"map-{by}.png"))
    result.files.append(map_html(source, out / f"map-{by}.html", by=by, coords=coords, color=color,
                                 neighbors_k=neighbors_k, thumbs=thumbs))
    result.seconds = time.perf_counter() - t0
    return result


# The page: inline CSS and JS only, no external resource. The CSP forbids any connection.
_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; img-src 'self' data: file:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
html,body{margin:0;height:100%;font:13px/1.35 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#222}
#bar{position:absolute;left:0;right:0;top:0;height:38px;display:flex;gap:12px;align-items:center;padding:0 10px;
 background:#f6f5f2;border-bottom:1px solid #ddd;z-index:2}
#bar h1{font-size:14px;margin:0;font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
#bar .sp{flex:1}
#wrap{position:absolute;left:0;right:0;top:39px;bottom:0}
#wrap.open{right:320px}
canvas{display:block;width:100%;height:100%;cursor:crosshair;background:#fff}
#tip{position:absolute;pointer-events:none;background:rgba(255,255,255,.96);border:1px solid #bbb;border-radius:4px;
 padding:6px;max-width:260px;display:none;z-index:3;box-shadow:0 2px 6px rgba(0,0,0,.15)}
#tip img{max-width:120px;max-height:120px;display:block;margin-bottom:4px}
#panel{position:absolute;right:0;top:39px;bottom:0;width:320px;overflow:auto;border-left:1px solid #ddd;
 background:#fbfbfa;display:none;padding:10px;box-sizing:border-box}
#panel.open{display:block}
#panel img.main{max-width:100%;max-height:260px;display:block;margin:0 auto 6px}
table.meta{border-collapse:collapse;width:100%;margin-bottom:8px}
table.meta td{border-top:1px solid #eee;padding:2px 4px;vertical-align:top;word-break:break-word}
.nb{display:flex;gap:8px;align-items:center;padding:4px;border-radius:4px;cursor:pointer}
.nb:hover{background:#eef}
.nb img{width:56px;height:56px;object-fit:cover;flex:none}
#legend{position:absolute;left:10px;bottom:10px;background:rgba(255,255,255,.9);border:1px solid #ddd;
 border-radius:4px;padding:6px 8px;max-height:45%;overflow:auto;font-size:12px}
.sw{display:inline-block;width:10px;height:10px;margin-right:5px;border-radius:2px;vertical-align:middle}
button,select{font:inherit}
.k{color:#666}
</style></head>
<body>
<div id="bar"><h1 id="title"></h1><span class="sp"></span>
<label>colour by <select id="colorby"></select></label>
<button id="reset" title="Fit every work in view (double-click does the same)">reset view</button>
<span class="k" id="count"></span></div>
<div id="wrap"><canvas id="map"></canvas><div id="legend"></div></div>
<div id="tip"></div>
<div id="panel"></div>
<script type="application/json" id="artspace-data">__DATA__</script>
<script>
"use strict";
(function(){
const D = JSON.parse(document.getElementById("artspace-data").textContent);
const N = D.n, X = Float32Array.from(D.x), Y = Float32Array.from(D.y), K = D.k;
const canvas = document.getElementById("map"), ctx = canvas.getContext("2d", {alpha: false});
const wrap = document.getElementById("wrap"), tip = document.getElementById("tip"), panel = document.getElementById("panel");
const API = window.artspaceMap = {ready: false, n: N, drawn: 0, draws: 0, drawMs: 0, selected: -1, color: null};
document.getElementById("title").textContent = D.title;
const PALETTE = ["#1f77b4","#ff7f0e","#2ca02c","#d62728","#9467bd","#8c564b","#e377c2","#17becf","#bcbd22","#7f7f7f",
  "#aec7e8","#ffbb78","#98df8a","#ff9896","#c5b0d5","#c49c94","#f7b6d2","#9edae5","#dbdb8d","#393b79"];
const OTHER = "#c8c8c8";
const VIRIDIS = ["#440154","#482173","#433e85","#38598c","#2d708e","#25858e","#1e9b8a","#2ab07f","#52c569","#86d549",
  "#c2df23","#fde725"];
// ---- view: data space is [0,1]^2, y up
let W = 0, H = 0, dpr = 1, scale = 1, cx = 0.5, cy = 0.5;
function resize(){
  const r = wrap.getBoundingClientRect(); dpr = window.devicePixelRatio || 1;
  W = Math.max(1, r.width); H = Math.max(1, r.height);
  canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
  schedule();
}
function fit(){ scale = 0.92 * Math.min(W, H); cx = 0.5; cy = 0.5; schedule(); }
const sx = i => (X[i] - cx) * scale + W / 2, sy = i => (cy - Y[i]) * scale + H / 2;
const toData = (px, py) => [(px - W / 2) / scale + cx, cy - (py - H / 2) / scale];
// ---- colours: each point gets a palette slot; points are kept grouped by slot for fast drawing
let slot = new Uint16Array(N), colors = [OTHER], order = new Uint32Array(N), starts = [0, N];
function setColor(name){
  const col = name ? D.columns[name] : null; API.color = name || null;
  const legend = document.getElementById("legend"); legend.innerHTML = "";
  if (!col){ slot.fill(0); colors = ["#3b6ea8"]; legend.style.display = "none"; }
  else if (col.kind === "cat"){
    const L = col.levels.length, cnt = new Array(L).fill(0);
    for (let i = 0; i < N; i++) if (col.codes[i] >= 0) cnt[col.codes[i]]++;
    const rank = cnt.map((c, j) => j).sort((a, b) => cnt[b] - cnt[a] || a - b), pos = new Array(L);
    rank.forEach((j, r) => pos[j] = r);
    const shown = Math.min(L, L > PALETTE.length ? PALETTE.length - 1 : PALETTE.length);
    colors = PALETTE.slice(0, shown).concat([OTHER]);
    for (let i = 0; i < N; i++){ const c = col.codes[i]; slot[i] = (c >= 0 && pos[c] < shown) ? pos[c] : shown; }
    legend.style.display = "block";
    rank.slice(0, shown).forEach((j, r) => addKey(colors[r], col.levels[j], cnt[j]));
    const rest = N - rank.slice(0, shown).reduce((s, j) => s + cnt[j], 0);
    if (rest > 0) addKey(OTHER, L > shown ? "other / none" : "none", rest);
  } else {
    let lo = Infinity, hi = -Infinity;
    for (const v of col.values) if (v !== null){ if (v < lo) lo = v; if (v > hi) hi = v; }
    const span = hi > lo ? hi - lo : 1;
    colors = VIRIDIS.concat([OTHER]);
    for (let i = 0; i < N; i++){ const v = col.values[i];
      slot[i] = v === null ? VIRIDIS.length : Math.min(VIRIDIS.length - 1, Math.floor((v - lo) / span * VIRIDIS.length)); }
    legend.style.display = "block";
    addKey(VIRIDIS[0], "min " + fmt(lo)); addKey(VIRIDIS[VIRIDIS.length - 1], "max " + fmt(hi));
  }
  // counting sort of points by slot
  const S = colors.length, c = new Uint32Array(S + 1);
  for (let i = 0; i < N; i++) c[slot[i] + 1]++;
  for (let s = 0; s < S; s++) c[s + 1] += c[s];
  starts = Array.from(c); const fill = c.slice(0, S);
  for (let i = 0; i < N; i++) order[fill[slot[i]]++] = i;
  schedule();
  function addKey(color, label, count){
    const d = document.createElement("div"), s = document.createElement("span");
    s.className = "sw"; s.style.background = color; d.appendChild(s);
    d.appendChild(document.createTextNode(label + (count !== undefined ? " (" + count + ")" : "")));
    legend.appendChild(d);
  }
}
const fmt = v => (typeof v === "number") ? (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3)
  : String(Math.round(v * 1e4) / 1e4)) : String(v);
// ---- drawing
let pending = false;
function schedule(){ if (!pending){ pending = true; requestAnimationFrame(draw); } }
function draw(){
  pending = false; const t0 = performance.now();
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
  const zoom = scale / (0.92 * Math.min(W, H));
  const r = Math.max(1.5, Math.min(12, (N > 20000 ? 1.6 : N > 2000 ? 3 : 6) * Math.sqrt(zoom)));
  let drawn = 0; const x0 = cx - W / 2 / scale - 0.01, x1 = cx + W / 2 / scale + 0.01;
  const y0 = cy - H / 2 / scale - 0.01, y1 = cy + H / 2 / scale + 0.01;
  ctx.globalAlpha = N > 20000 ? 0.75 : 0.9;
  for (let s = 0; s < colors.length; s++){
    ctx.fillStyle = colors[s];
    for (let k = starts[s]; k < starts[s + 1]; k++){
      const i = order[k], x = X[i], y = Y[i];
      if (x < x0 || x > x1 || y < y0 || y > y1) continue;
      ctx.fillRect((x - cx) * scale + W / 2 - r / 2, (cy - y) * scale + H / 2 - r / 2, r, r); drawn++;
    }
  }
  ctx.globalAlpha = 1;
  const sel = API.selected;
  if (sel >= 0){
    ctx.strokeStyle = "rgba(200,30,30,.55)"; ctx.lineWidth = 1;
    for (let j = 0; j < K; j++){ const nb = D.nbr[sel * K + j];
      ctx.beginPath(); ctx.moveTo(sx(sel), sy(sel)); ctx.lineTo(sx(nb), sy(nb)); ctx.stroke();
      ctx.beginPath(); ctx.arc(sx(nb), sy(nb), r + 3, 0, 2 * Math.PI); ctx.stroke(); }
    ctx.strokeStyle = "#c00"; ctx.lineWidth = 2.5;
    ctx.beginPath(); ctx.arc(sx(sel), sy(sel), r + 6, 0, 2 * Math.PI); ctx.stroke();
  }
  if (hover >= 0){ ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5; ctx.beginPath();
    ctx.arc(sx(hover), sy(hover), r + 3, 0, 2 * Math.PI); ctx.stroke(); }
  API.drawn = drawn; API.draws++; API.drawMs = performance.now() - t0;
  document.getElementById("count").textContent = drawn + " of " + N + " works in view";
}
// ---- spatial grid for picking
const G = Math.max(8, Math.min(512, Math.round(Math.sqrt(N / 4))));
const cellStart = new Uint32Array(G * G + 1), cellItems = new Uint32Array(N);
(function(){
  const cell = new Uint32Array(N);
  for (let i = 0; i < N; i++){
    const gx = Math.min(G - 1, Math.max(0, Math.floor(X[i] * G))), gy = Math.min(G - 1, Math.max(0, Math.floor(Y[i] * G)));
    cell[i] = gy * G + gx; cellStart[cell[i] + 1]++; }
  for (let c = 0; c < G * G; c++) cellStart[c + 1] += cellStart[c];
  const fill = cellStart.slice(0, G * G);
  for (let i = 0; i < N; i++) cellItems[fill[cell[i]]++] = i;
})();
function pick(px, py, radius){
  const [x, y] = toData(px, py), rd = radius / scale;
  const gx0 = Math.max(0, Math.floor((x - rd) * G)), gx1 = Math.min(G - 1, Math.floor((x + rd) * G));
  const gy0 = Math.max(0, Math.floor((y - rd) * G)), gy1 = Math.min(G - 1, Math.floor((y + rd) * G));
  let best = -1, bd = rd * rd;
  for (let gy = gy0; gy <= gy1; gy++) for (let gx = gx0; gx <= gx1; gx++){
    const c = gy * G + gx;
    for (let k = cellStart[c]; k < cellStart[c + 1]; k++){
      const i = cellItems[k], dx = X[i] - x, dy = Y[i] - y, d = dx * dx + dy * dy;
      if (d <= bd){ bd = d; best = i; } } }
  return best;
}
// ---- text of a work
function valueOf(name, i){ const c = D.columns[name];
  if (c.kind === "cat") return c.codes[i] >= 0 ? c.levels[c.codes[i]] : "";
  return c.values[i] === null ? "" : fmt(c.values[i]); }
const label = i => D.paths ? D.paths[i] : "work " + D.ids[i];
function el(tag, attrs, text){ const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; return e; }
function metaTable(i){ const t = el("table", {class: "meta"});
  const add = (k, v) => { const tr = el("tr"); tr.appendChild(el("td", {class: "k"}, k)); tr.appendChild(el("td", {}, v)); t.appendChild(tr); };
  add("id", String(D.ids[i])); if (D.paths) add("path", D.paths[i]);
  for (const name in D.columns){ const v = valueOf(name, i); if (v !== "") add(name, v); }
  return t; }
// ---- hover
let hover = -1;
function showTip(i, px, py){
  tip.innerHTML = "";
  if (D.thumbs) tip.appendChild(el("img", {src: D.thumbs[i], alt: ""}));
  tip.appendChild(el("b", {}, label(i)));
  const names = Object.keys(D.columns).slice(0, 8);
  for (const n of names){ const v = valueOf(n, i); if (v !== "") tip.appendChild(el("div", {}, n + ": " + v)); }
  tip.style.display = "block";
  const r = wrap.getBoundingClientRect();
  tip.style.left = Math.min(r.left + px + 14, window.innerWidth - 280) + "px";
  tip.style.top = Math.min(r.top + py + 14, window.innerHeight - 200) + "px";
}
// ---- selection: the work, its metadata, its nearest neighbours in the embedding
function select(i){
  API.selected = i; panel.innerHTML = "";
  if (i < 0){ panel.classList.remove("open"); wrap.classList.remove("open"); resize(); return; }
  panel.classList.add("open"); wrap.classList.add("open");
  const close = el("button", {style: "float:right"}, "close"); close.onclick = () => select(-1); panel.appendChild(close);
  panel.appendChild(el("h3", {style: "margin:4px 0 8px;word-break:break-all"}, label(i)));
  if (D.thumbs) panel.appendChild(el("img", {class: "main", src: D.thumbs[i], alt: label(i)}));
  panel.appendChild(metaTable(i));
  panel.appendChild(el("h4", {style: "margin:8px 0 4px"}, "nearest by " + D.by + " (" + D.distance + ")"));
  for (let j = 0; j < K; j++){
    const nb = D.nbr[i * K + j], row = el("div", {class: "nb", "data-row": String(nb)});
    if (D.thumbs) row.appendChild(el("img", {src: D.thumbs[nb], alt: ""}));
    const txt = el("div"); txt.appendChild(el("div", {}, label(nb)));
    txt.appendChild(el("div", {class: "k"}, "distance " + fmt(D.nbrDist[i * K + j])));
    row.appendChild(txt); row.onclick = () => { select(nb); centreOn(nb); }; panel.appendChild(row);
  }
  resize();
}
function centreOn(i){ cx = X[i]; cy = Y[i]; schedule(); }
// ---- interaction: wheel zoom at the cursor, drag to pan, click to select, double-click to reset
let drag = null;
canvas.addEventListener("wheel", e => { e.preventDefault();
  const r = canvas.getBoundingClientRect(), px = e.clientX - r.left, py = e.clientY - r.top;
  const [x, y] = toData(px, py), f = Math.exp(-e.deltaY * 0.0015);
  scale = Math.max(0.05 * Math.min(W, H), Math.min(scale * f, 5e4 * Math.min(W, H)));
  cx = x - (px - W / 2) / scale; cy = y + (py - H / 2) / scale; schedule(); }, {passive: false});
canvas.addEventListener("mousedown", e => { drag = {x: e.clientX, y: e.clientY, cx, cy, moved: false}; });
window.addEventListener("mouseup", e => {
  if (drag && !drag.moved){ const r = canvas.getBoundingClientRect();
    const i = pick(e.clientX - r.left, e.clientY - r.top, 8); if (i >= 0 || e.target === canvas) select(i); }
  drag = null; });
window.addEventListener("mousemove", e => {
  const r = canvas.getBoundingClientRect(), px = e.clientX - r.left, py = e.clientY - r.top;
  if (drag){ const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    cx = drag.cx - dx / scale; cy = drag.cy + dy / scale; tip.style.display = "none"; schedule(); return; }
  if (e.target !== canvas){ if (hover >= 0){ hover = -1; tip.style.display = "none"; schedule(); } return; }
  const i = pick(px, py, 8);
  if (i !== hover){ hover = i; schedule(); }
  if (i >= 0) showTip(i, px, py); else tip.style.display = "none";
});
canvas.addEventListener("dblclick", fit);
document.getElementById("reset").onclick = fit;
window.addEventListener("resize", resize);
window.addEventListener("keydown", e => {
  if (e.key === "+" || e.key === "=") { scale *= 1.25; schedule(); }
  else if (e.key === "-") { scale /= 1.25; schedule(); }
  else if (e.key === "Escape") select(-1); });
const sel = document.getElementById("colorby");
sel.appendChild(el("option", {value: ""}, "(none)"));
for (const name in D.columns) sel.appendChild(el("option", {value: name}, name));
sel.value = D.color || ""; sel.onchange = () => setColor(sel.value);
// ---- test hooks
Object.assign(API, {setColor, select, pick: (px, py) => pick(px, py, 8), fit, redraw: draw,
  screenOf: i => [sx(i), sy(i)], view: () => ({scale, cx, cy, W, H})});
resize(); fit(); setColor(D.color); draw(); API.ready = true;
})();
</script>
</body></html>
"""
