"""The offline HTML map's page: one template of inline CSS and JavaScript, and the safe way to fill it.

:func:`render` places a title and a JSON payload into :data:`PAGE`. The page makes no network request: its
Content-Security-Policy (``default-src 'none'``) allows only inline style and script and images from the page's own
folder, ``data:`` and ``file:`` URLs; a work's link to its original image is a plain ``<a href>``, a navigation the
user starts, which the policy does not govern.
"""

from __future__ import annotations

import html
import json
import re

__all__ = ["GENERATOR", "PAGE", "made_here", "render", "script_json"]

#: Characters escaped in the JSON embedded in the page. Inside <script>, the HTML parser looks for "</script" and,
#: after "<!--", for "<script" (a metadata value "<!--<script>" swallows the rest of the page); with no "<" left
#: it finds neither. ">" and "&" go too, so that no "-->" or entity is left for any parser to misread, and
#: U+2028/U+2029, which older JavaScript engines take for line ends. Each becomes a JSON \u escape inside a JSON
#: string (the only place these characters can occur), so JSON.parse gives back the original text.
SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(data) -> str:
    """*data* as JSON text safe to place inside ``<script type="application/json">`` (see SCRIPT_ESCAPES)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.translate(str.maketrans(SCRIPT_ESCAPES))


#: The line by which :func:`made_here` knows a page this module wrote (and may replace).
GENERATOR = b'<meta name="generator" content="artspace">'


def made_here(path) -> bool:
    """Whether the file *path* is a page :func:`render` made (its head names artspace as the generator)."""
    try:
        with open(path, "rb") as f:
            return GENERATOR in f.read(512)
    except OSError:
        return False


def render(title: str, data: dict) -> str:
    """The page with *title* (HTML-escaped) and *data* (as :func:`script_json`) in place, filled in one pass so
    that a title containing ``__DATA__`` (or data containing ``__TITLE__``) stays as it is."""
    fill = {"__TITLE__": html.escape(title), "__DATA__": script_json(data)}
    return re.sub("__TITLE__|__DATA__", lambda m: fill[m.group(0)], PAGE)


# The page: inline CSS and JS only, no external resource. The CSP forbids any connection.
PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="generator" content="artspace">
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
#panel a.orig{display:block;margin:0 0 6px}
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
  if (D.links) panel.appendChild(el("a", {class: "orig", href: D.links[i], target: "_blank", rel: "noopener"},
    "open the original image"));
  panel.appendChild(metaTable(i));
  panel.appendChild(el("h4", {style: "margin:8px 0 4px"}, D.nearest));
  for (let j = 0; j < K; j++){
    const nb = D.nbr[i * K + j], row = el("div", {class: "nb", "data-row": String(nb)});
    if (D.thumbs) row.appendChild(el("img", {src: D.thumbs[nb], alt: ""}));
    const txt = el("div"); txt.appendChild(el("div", {}, label(nb)));
    txt.appendChild(el("div", {class: "k"}, "distance " + fmt(D.nbrDist[i * K + j]) +
      (D.nbrPct ? " · " + fmt(D.nbrPct[i * K + j]) + " % of pairs nearer" : "")));
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
