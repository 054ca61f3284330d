"""The HTML map in a real headless Chromium: it loads offline, draws every point, hovers, selects, zooms; no console
error and no network request. Chromium is driven through chromedriver by a minimal W3C WebDriver client (below),
so nothing beyond Debian's ``chromium`` and ``chromium-driver`` packages is needed.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from artspace.analysis import layout, map_collection, map_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Chromium and chromedriver (apt-get install -y chromium chromium-driver); "
           f"found chromium={CHROMIUM}, chromedriver={CHROMEDRIVER}")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1200,900"]


class WebDriver:
    """Just enough of the W3C WebDriver protocol: open a page, run a script, read the browser's logs."""

    def __init__(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.profile = tempfile.mkdtemp(prefix="artspace-chromium-")
        self.proc = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                self._req("GET", "/status")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": FLAGS + [f"--user-data-dir={self.profile}"]},
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"}}}}
        self.sid = self._req("POST", "/session", caps)["value"]["sessionId"]

    def _req(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=180) as f:
            return json.loads(f.read())

    def cmd(self, method, path, body=None):
        return self._req(method, f"/session/{self.sid}{path}", body)["value"]

    def get(self, url):
        return self.cmd("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def logs(self, kind):
        return self.cmd("POST", "/se/log", {"type": kind})

    def close(self):
        try:
            self._req("DELETE", f"/session/{self.sid}")
        finally:
            self.proc.terminate()
            self.proc.wait(10)
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    wd = WebDriver()
    yield wd
    wd.close()


def open_map(browser, path):
    browser.logs("browser")  # drain earlier messages
    browser.logs("performance")
    browser.get(path.resolve().as_uri())
    for _ in range(600):
        if browser.js("return !!(window.artspaceMap && window.artspaceMap.ready)"):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the map never became ready; console: {browser.logs('browser')}")


#: URL schemes of the browser's own pages. Chromium loads some of them by itself, whatever page it shows (Debian's
#: Chromium 150 fetches chrome-untrusted://new-tab-page/one-google-bar for the new tab it opens first); neither such
#: a page nor what it fetches is the map's doing.
BROWSER_SCHEMES = ("chrome:", "chrome-untrusted:", "chrome-search:", "chrome-extension:", "devtools:", "about:")
#: What the map itself may load: its own file, the thumbnails beside it, and inline data.
LOCAL_SCHEMES = ("file:", "data:", "blob:")


def problems(browser):
    """Console errors and warnings, and every request the map page made that left the file system."""
    console = [e for e in browser.logs("browser") if e["level"] in ("SEVERE", "WARNING")]
    requests = []
    for e in browser.logs("performance"):
        msg = json.loads(e["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            url = msg["params"]["request"]["url"]
            page = msg["params"].get("documentURL", "")  # the document that made the request
            if page.startswith(BROWSER_SCHEMES) or url.startswith(BROWSER_SCHEMES):
                continue
            if not url.startswith(LOCAL_SCHEMES):
                requests.append(url)
    return console, requests


MOUSE = """
const [type, i, dx] = arguments; const c = document.getElementById('map'), r = c.getBoundingClientRect();
const [x, y] = window.artspaceMap.screenOf(i);
c.dispatchEvent(new MouseEvent(type, {clientX: r.left + x + (dx || 0), clientY: r.top + y, bubbles: true}));
"""


def test_demo_map_loads_draws_hovers_and_selects(browser, analysis_catalog, tmp_path):
    n = len(analysis_catalog.works)
    map_collection(analysis_catalog, tmp_path, by="style", color="texture", method="pca", recompute=True,
                   picture=False, neighbors_k=4)
    open_map(browser, tmp_path / "map-style.html")
    state = browser.js("const m = window.artspaceMap; return {n: m.n, drawn: m.drawn, color: m.color}")
    assert state == {"n": n, "drawn": n, "color": "texture"}
    legend = browser.js("return document.getElementById('legend').innerText")
    assert all(t in legend for t in ("stripes", "dots", "checker"))
    # hover: a tooltip with the work's path and metadata
    browser.js(MOUSE, "mousemove", 2, 1)
    tip = browser.js("const t = document.getElementById('tip'); return [t.style.display, t.innerText]")
    path = analysis_catalog.works.sort_values("id")["path"].iloc[2]
    assert tip[0] == "block" and path in tip[1] and "texture:" in tip[1]
    # click: the side panel lists the work's neighbours, with thumbnails
    browser.js(MOUSE, "mousedown", 2)
    browser.js(MOUSE, "mouseup", 2)
    panel = browser.js("const p = document.getElementById('panel'); return [p.className, "
                       "p.querySelectorAll('.nb').length, p.querySelectorAll('img').length, "
                       "window.artspaceMap.selected, p.querySelector('h4').textContent]")
    assert panel == ["open", 4, 5, 2, "nearest by style (relative signature distance)"]
    nb = browser.js("return [...document.querySelectorAll('#panel .nb')].map(e => +e.dataset.row)")
    works = analysis_catalog.works.sort_values("id").reset_index(drop=True)
    hits = analysis_catalog.similar(int(works["id"].iloc[2]), by="style", k=4)
    assert works["id"].to_numpy()[nb].tolist() == hits["id"].tolist()
    # the work's original image: a relative link that the browser resolves to the file itself
    href = browser.js("return document.querySelector('#panel a.orig').href")
    assert href == (analysis_catalog.root / works["path"].iloc[2]).resolve().as_uri()
    # zoom with the wheel, then colour by another column
    before = browser.js("return window.artspaceMap.view().scale")
    browser.js("const c = document.getElementById('map'), r = c.getBoundingClientRect();"
               "c.dispatchEvent(new WheelEvent('wheel', {deltaY: -400, clientX: r.left + 100, clientY: r.top + 100,"
               " bubbles: true, cancelable: true}))")
    time.sleep(0.1)
    assert browser.js("return window.artspaceMap.view().scale") > 1.5 * before
    browser.js("const s = document.getElementById('colorby'); s.value = 'shape';"
               "s.dispatchEvent(new Event('change'))")
    assert browser.js("return window.artspaceMap.color") == "shape"
    console, requests = problems(browser)
    assert console == [] and requests == []


def test_thumbnails_beside_the_page_load_from_files(browser, analysis_catalog, tmp_path):
    map_collection(analysis_catalog, tmp_path, by="content", method="pca", recompute=True, picture=False,
                   thumbs="beside")
    assert len(list((tmp_path / "map-content_thumbs").glob("*.jpg"))) == len(analysis_catalog.works)
    open_map(browser, tmp_path / "map-content.html")
    browser.js(MOUSE, "mousemove", 0, 1)
    for _ in range(100):
        done = browser.js("const i = document.querySelector('#tip img'); return !!i && i.complete && "
                          "i.naturalWidth > 0")
        if done:
            break
        time.sleep(0.05)
    assert done
    console, requests = problems(browser)
    assert console == [] and requests == []


@pytest.mark.slow
def test_hundred_thousand_points_stay_responsive(browser, tmp_path):
    n = 100_000
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(n, 8)) + 4 * rng.normal(size=(20, 8))[rng.integers(0, 20, n)]).astype(np.float32)
    works = pd.DataFrame({"group": rng.integers(0, 20, n).astype(str), "year": rng.integers(1400, 1950, n),
                          "path": [f"synthetic/{i}.jpg" for i in range(n)]})
    coords = layout((works, X), method="pca")
    out = map_html((works, X), tmp_path / "big.html", coords=coords, color="group", neighbors_k=5)
    t0 = time.perf_counter()
    open_map(browser, out)
    load = time.perf_counter() - t0
    m = browser.js("const m = window.artspaceMap; return {n: m.n, drawn: m.drawn, ms: m.drawMs}")
    assert m["n"] == n and m["drawn"] == n
    # a redraw (what every zoom or pan step costs) stays interactive
    times = browser.js("const m = window.artspaceMap, t = []; for (let k = 0; k < 5; k++){ m.redraw(); "
                       "t.push(m.drawMs); } return t")
    assert min(times) < 250, times
    hit = browser.js("const m = window.artspaceMap, [x, y] = m.screenOf(12345); return m.pick(x, y)")
    assert hit >= 0
    console, requests = problems(browser)
    assert console == [] and requests == []
    print(f"100k points: page ready in {load:.1f} s, redraw {min(times):.0f} ms")
