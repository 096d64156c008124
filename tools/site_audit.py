"""Audit the built site in headless Chromium: accessibility, phones, console, hosts, figures.

    python tools/site_audit.py [--site build/site] [--json report.json]

Every page of the site is opened at 1280 px and at 390 px wide (a phone: mobile
viewport, touch), served from 127.0.0.1, and checked for

- axe-core's violations (``axe-playwright-python``, which injects the axe-core
  it ships), every rule, the experimental ones too; serious and critical ones are
  failures. Colour contrast, by far the slowest rule, is checked at 1280 px only (the
  site's colours do not change with the width), and in the code cells' source (one
  Pygments style on every page) on the first page with code only (:func:`_axe_runs`);
- sideways scrolling: the document's ``scrollWidth`` against the viewport's width,
  with the elements that stick out, for the diagnosis;
- content cut off: an element of the article whose content is wider than its box while
  its overflow is ``hidden`` or ``clip`` (the theme clips inline maths so), and a formula
  wider than the column that no box of its own scrolls;
- console warnings and errors, and uncaught page errors;
- requests to any host but 127.0.0.1 (aborted, and recorded);
- every figure (an ``img`` in the page's article): its alt text, the PNG's size
  and dpi, and the width it is shown at. ``effective_dpi`` = dpi x shown width /
  PNG width; 10-pt text shows at ``10 / 72 * effective_dpi`` CSS pixels, so 12 px
  needs an effective dpi of at least :data:`MIN_EFFECTIVE_DPI` (86.4).

The dpi is read from the PNG's ``pHYs`` chunk (Matplotlib writes it, and so does
:func:`vaelib.teaching.views.slider_view.compressed_png` for a precomputed frame); a frame
without one is taken to be drawn at
:data:`vaelib.teaching.views.slider_view.FRAME_DPI`.

Pages are audited a few at a time (:data:`PAGES_AT_ONCE`) in one browser, each in a context
of its own (a first visit, empty cache): while one page is read or waited for, the others load
or run axe-core in their own renderer processes.

Needs Chromium (``/usr/bin/chromium``, or ``$VAELIB_CHROMIUM``; never ``playwright
install``), the ``playwright`` and ``axe-playwright-python`` packages. The test
``tests/test_site_audit.py`` runs the same audit and asserts on it.
"""

import argparse
import base64
import contextlib
import functools
import http.server
import json
import os
import re
import struct
import sys
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("VAELIB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: The two widths every page is audited at: a laptop, and a phone (390 x 844 CSS px, an iPhone 12-15).
VIEWPORTS = {
    1280: {"viewport": {"width": 1280, "height": 900}},
    390: {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
#: 10-pt text is at least 12 CSS px when the PNG's dpi times its display scale is at least 12 * 72 / 10.
MIN_EFFECTIVE_DPI = 12 * 72 / 10
#: axe-core impacts that fail the audit.
FAILING_IMPACTS = ("serious", "critical")
PAGE_TIMEOUT_MS = 120_000
#: Pages audited at the same time in the one browser: one per core of a 2-core machine. The audit's
#: 32 page loads took 115 s one at a time, 88 s two at a time, 95 s three at a time (benchmarks/README.md).
PAGES_AT_ONCE = 2

# In the page: the figures of the article, and the elements that reach past the viewport's right edge.
FIGURES_JS = """() => [...document.querySelectorAll('main img')].map((img, k) => ({
    index: k,
    src: img.getAttribute('src') || '',
    alt: img.getAttribute('alt'),
    natural_width: img.naturalWidth,
    natural_height: img.naturalHeight,
    shown_width: img.getBoundingClientRect().width,
    player: img.closest('.vaelib-static-view') !== null,
}))"""
OVERFLOW_JS = """() => {
    // The outermost elements that reach past the right edge: their parent does not, no ancestor scrolls or
    // clips them, and they are shown (not in a hidden or fixed-position drawer).
    const width = document.documentElement.clientWidth, found = [];
    const past = el => el.getBoundingClientRect().right > width + 0.5;
    for (const el of document.querySelectorAll('body *')) {
        if (!past(el) || el.getBoundingClientRect().width === 0) continue;
        if (el.parentElement && el.parentElement !== document.body && past(el.parentElement)) continue;
        let hidden = false;
        for (let p = el; p && p !== document.body; p = p.parentElement) {
            const style = getComputedStyle(p);
            if (style.position === 'fixed' || style.visibility === 'hidden' || style.display === 'none' ||
                (p !== el && /(auto|scroll|hidden|clip)/.test(style.overflowX))) { hidden = true; break; }
        }
        if (hidden) continue;
        const name = el.tagName.toLowerCase() + (typeof el.className === 'string' && el.className.trim() ?
            '.' + el.className.trim().split(/\\s+/).join('.') : '');
        found.push({right: Math.round(el.getBoundingClientRect().right),
                    what: name + ' "' + (el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 50) + '"'});
    }
    return found.slice(0, 12);
}"""
CLIPPED_JS = """() => {
    // Content that is cut off: (1) an element of the article whose content is wider than its box and whose
    // overflow is hidden or clip (shown, and not a visually hidden text for screen readers, which is clipped on
    // purpose); (2) a formula wider than the column with no box of its own, inside the column, that scrolls or
    // clips it (it sticks out of the column).
    const article = document.querySelector('main article') || document.body, found = [];
    const column = article.getBoundingClientRect().width;
    const unseen = el => {
        for (let p = el; p && p !== document.body; p = p.parentElement) {
            const style = getComputedStyle(p);
            if (style.display === 'none' || style.visibility === 'hidden' || (style.clip && style.clip !== 'auto')
                || (style.clipPath && style.clipPath !== 'none')) return true;
        }
        return false;
    };
    const name = el => el.tagName.toLowerCase() + (typeof el.className === 'string' && el.className.trim() ?
        '.' + el.className.trim().split(/\\s+/).join('.') : '');
    const text = el => {
        const mml = el.querySelector('mjx-assistive-mml');  // a formula: its text, not its glyphs' classes
        return ((mml || el).textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 60);
    };
    // What a reader sees of an element's content, left and right: its shown descendants and text (not what a
    // screen reader alone reads, such as MathJax's assistive MathML, which counts in scrollWidth).
    const shown = el => {
        let left = Infinity, right = -Infinity;
        const add = r => { if (r.width > 0) { left = Math.min(left, r.left); right = Math.max(right, r.right); } };
        const walk = node => {
            for (const child of node.childNodes) {
                if (child.nodeType === Node.TEXT_NODE) {
                    if (!child.textContent.trim()) continue;
                    const range = document.createRange();
                    range.selectNodeContents(child);
                    add(range.getBoundingClientRect());
                } else if (child.nodeType === Node.ELEMENT_NODE) {
                    const style = getComputedStyle(child);
                    if (style.display === 'none' || style.visibility === 'hidden' || (style.clip && style.clip !== 'auto')
                        || (style.clipPath && style.clipPath !== 'none')) continue;
                    add(child.getBoundingClientRect());
                    walk(child);
                }
            }
        };
        walk(el);
        return [left, right];
    };
    for (const el of article.querySelectorAll('*')) {
        const style = getComputedStyle(el);
        if (!/^(hidden|clip)$/.test(style.overflowX) || el.clientWidth < 2) continue;
        if (el.scrollWidth <= el.clientWidth + 1 || unseen(el)) continue;
        const box = el.getBoundingClientRect(), start = box.left + el.clientLeft, end = start + el.clientWidth;
        const [left, right] = shown(el);
        if (right <= end + 1 && left >= start - 1) continue;
        found.push({what: name(el), text: text(el), content: Math.round(Math.max(right, end) - Math.min(left, start)),
                    box: el.clientWidth});
    }
    for (const formula of article.querySelectorAll('mjx-container')) {
        const glyphs = formula.querySelector('mjx-math') || formula;  // the formula as drawn
        const width = glyphs.getBoundingClientRect().width;
        if (width <= column + 0.5 || unseen(formula)) continue;
        // the nearest box that scrolls or clips it: one that scrolls is right; one that clips is found above
        let boxed = false;
        for (let p = formula; p && p !== article; p = p.parentElement) {
            if (getComputedStyle(p).overflowX !== 'visible') {
                boxed = p.clientWidth <= column + 0.5;
                break;
            }
        }
        if (!boxed) found.push({what: name(formula), text: text(formula), content: Math.round(width),
                                   box: Math.round(column)});
    }
    return found;
}"""
# MathJax typesets after the load event; its output changes widths, and so do its fonts as they arrive.
MATHJAX_DONE_JS = """() => !window.MathJax || !window.MathJax.startup || !window.MathJax.startup.promise ||
    window.MathJax.startup.promise.then(() => true)"""
FONTS_DONE_JS = """() => document.fonts.ready.then(() => new Promise(done => requestAnimationFrame(() =>
    requestAnimationFrame(() => done(true)))))"""


def png_size(data):
    """``(width, height)`` of PNG bytes, from the IHDR chunk."""
    return struct.unpack(">II", data[16:24])


def png_dpi(data):
    """Dots per inch in a PNG's ``pHYs`` chunk (pixels per metre, unit 1), or None if it has none."""
    i = 8
    while i + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[i:i + 8])
        if kind == b"pHYs":
            x_per_unit, _, unit = struct.unpack(">IIB", data[i + 8:i + 17])
            return x_per_unit * 0.0254 if unit == 1 else None
        if kind == b"IDAT":  # pHYs comes before the image data
            return None
        i += 12 + length
    return None


@dataclass
class Figure:
    """One image of a page, as shown at one width."""

    page: str
    index: int  # among the page's images, in document order
    name: str  # the file name under _images/, or "player k" for a precomputed slider view's frame
    alt: str | None
    png_width: int
    png_height: int
    dpi: float | None
    shown_width: float

    @property
    def effective_dpi(self):
        """dpi times display scale: 10-pt text shows at ``10 / 72`` of this, in CSS pixels."""
        return None if not self.dpi or not self.png_width else self.dpi * self.shown_width / self.png_width

    @property
    def text_px(self):
        """CSS pixels of 10-pt text as shown."""
        return None if self.effective_dpi is None else self.effective_dpi * 10 / 72


@dataclass
class PageAudit:
    """What one page shows at one width."""

    page: str
    width: int
    scroll_width: int = 0
    client_width: int = 0
    overflowing: list = field(default_factory=list)  # elements past the right edge: {right, what}
    clipped: list = field(default_factory=list)  # content cut off: {what, text, content, box} (CSS px)
    violations: list = field(default_factory=list)  # axe-core: {id, impact, nodes, help, targets}
    console: list = field(default_factory=list)  # "warning: text", "error: text", "pageerror: text"
    outside_requests: list = field(default_factory=list)  # URLs not on 127.0.0.1
    figures: list = field(default_factory=list)  # Figure
    code_contrast: bool = False  # colour contrast checked on the code cells' source too
    seconds: float = 0.0  # the whole audit of the page
    load_ms: float = 0.0  # navigation start to the load event, empty cache
    ready_ms: float = 0.0  # navigation start to MathJax's typesetting done (the page as a reader sees it)
    requests: int = 0  # requests answered, empty cache
    transferred: int = 0  # bytes received (headers and bodies), empty cache

    @property
    def scrolls_sideways(self):
        return self.scroll_width > self.client_width

    def failing_violations(self):
        return [v for v in self.violations if v["impact"] in FAILING_IMPACTS]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder):
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port); yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def chromium(home):
    """Headless Debian Chromium through Playwright, its profile and caches under ``home``."""
    from playwright.sync_api import sync_playwright

    env = dict(os.environ, XDG_CONFIG_HOME=str(Path(home) / "config"), XDG_CACHE_HOME=str(Path(home) / "cache"))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, env=env)
        try:
            yield browser
        finally:
            browser.close()


def site_pages(site):
    """The HTML pages of a built site, front page first."""
    pages = sorted(p.name for p in Path(site).glob("*.html"))
    return sorted(pages, key=lambda name: name != "index.html")


#: Every URL but the site's own (127.0.0.1) and inline data: such requests are aborted and recorded.
OUTSIDE = re.compile(r"^(?!(https?|wss?)://127\.0\.0\.1[:/]|data:|blob:)")


def _png_of(src, site):
    """The PNG bytes behind an ``img``'s src: a data URI, or a file of the site."""
    if src.startswith("data:image/png;base64,"):
        return base64.b64decode(src.split(",", 1)[1])
    path = Path(site) / urllib.parse.unquote(urllib.parse.urlsplit(src).path)
    return path.read_bytes() if path.suffix.lower() == ".png" and path.is_file() else None


def _figures(page, name, site):
    from vaelib.teaching.views.slider_view import FRAME_DPI

    found, players = [], 0
    for shown in page.evaluate(FIGURES_JS):
        data = _png_of(shown["src"], site)
        if data is None:
            continue
        width, height = png_size(data)
        dpi = png_dpi(data)
        if shown["player"]:
            players += 1
            label, dpi = f"player {players}", dpi or FRAME_DPI
        else:
            label = Path(urllib.parse.urlsplit(shown["src"]).path).name
        found.append(Figure(name, shown["index"], label, shown["alt"], width, height, dpi, shown["shown_width"]))
    return found


def _axe_runs(page, axe, contrast):
    """axe-core's run on a page: ``[(context, options)]`` (axe's context: what to check).

    Every rule, the experimental ones too (among them label-content-name-mismatch, WCAG
    2.5.3 "Label in Name"), in one run, with colour contrast if ``contrast`` is "all" or
    "prose", without it if None. One run, not one for colour contrast and one for the rest:
    axe reads the whole page before any rule (1-3 s for a page of 20,000 elements), once.
    With "prose" the code cells' source is left out of the run: its colours come from one
    Pygments style, the same on every page, and its many coloured spans make colour contrast
    the slowest rule by far; it is checked with "all", on one page. The other rules still
    check the code cells on every page, at the other width (:func:`audit_site` asks for
    "prose" at 1280 px and None at 390 px): their markup is the same at both widths, and a
    code block that scrolls at 1280 px scrolls at 390 px too.
    """
    page.evaluate(axe.axe_script)
    experimental = page.evaluate("() => axe.getRules(['experimental']).map(r => r.ruleId)")
    rules = {rule: {"enabled": True} for rule in experimental}
    if not contrast:
        rules["color-contrast"] = {"enabled": False}
        return [(None, {"resultTypes": ["violations"], "rules": rules})]
    context = {"exclude": [["div.cell_input"]]} if contrast == "prose" else None
    return [(context, {"resultTypes": ["violations"], "rules": rules})]


def _count_transfer(audit, request):
    sizes = request.sizes()
    audit.requests += 1
    audit.transferred += sizes["responseBodySize"] + sizes["responseHeadersSize"]


# axe-core's runs, started in the page and left to run there while other pages are audited.
START_AXE_JS = """(runs) => {
    window.__vaelibAxe = (async () => {
        const found = [];
        for (const [context, options] of runs) {
            const result = await axe.run(context || document, options);
            for (const v of result.violations) {
                found.push({id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help,
                            targets: v.nodes.slice(0, 5).map(n => n.target.map(String).join(' '))});
            }
        }
        return found;
    })();
}"""


class _PageJob:
    """The audit of one page at one width, in steps that wait on the browser as late as they can:
    :meth:`open` (navigation started), :meth:`read` (the page loaded and typeset: measured, and
    axe-core started in it), :meth:`finish` (axe-core's result; the context closed)."""

    def __init__(self, browser, base_url, name, width, site, axe, contrast):
        self.base_url, self.name, self.width, self.site, self.axe, self.contrast = \
            base_url, name, width, site, axe, contrast
        self.browser = browser
        self.audit = PageAudit(name, width)
        self.recording = True  # what the page does is recorded until axe-core starts (see open)
        self.context = self.page = None
        self.started = 0.0

    def _note(self, text):
        if self.recording:
            self.audit.console.append(text)

    def open(self):
        audit = self.audit
        self.started = time.perf_counter()
        self.context = self.browser.new_context(**VIEWPORTS[self.width])
        page = self.page = self.context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        # axe fetches the stylesheets again to read them, and resolves their @import against the page's
        # address (the theme's "../basic.css" becomes a 404 for /basic.css): the audit's own noise, not the
        # site's, so nothing is recorded once axe-core starts.
        page.on("console", lambda m: self._note(f"{m.type}: {m.text}") if m.type in ("warning", "error") else None)
        page.on("pageerror", lambda exc: self._note(f"pageerror: {exc}"))
        page.on("requestfinished", lambda request: _count_transfer(audit, request) if self.recording else None)
        page.on("requestfailed", lambda request: self._note(f"request failed: {request.url}"))
        page.on("response", lambda r: self._note(f"http {r.status}: {r.url}") if r.status >= 400 else None)
        page.route(OUTSIDE, lambda route: (audit.outside_requests.append(route.request.url), route.abort()))
        page.goto(self.base_url + self.name, wait_until="commit")

    def read(self):
        audit, page = self.audit, self.page
        page.wait_for_load_state("load")
        page.wait_for_function(MATHJAX_DONE_JS)
        audit.ready_ms = page.evaluate("() => performance.now()")
        audit.load_ms = page.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd")
        page.wait_for_function("() => [...document.images].every(i => i.complete)")
        page.evaluate(FONTS_DONE_JS)
        dims = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        audit.scroll_width, audit.client_width = dims
        if audit.scrolls_sideways:
            audit.overflowing = page.evaluate(OVERFLOW_JS)
        audit.clipped = page.evaluate(CLIPPED_JS)
        audit.figures = _figures(page, self.name, self.site)
        audit.code_contrast = self.contrast == "all" and page.locator("div.cell_input").count() > 0
        self.recording = False
        page.evaluate(START_AXE_JS, _axe_runs(page, self.axe, self.contrast))

    def finish(self):
        try:
            self.audit.violations = self.page.evaluate("() => window.__vaelibAxe")
        finally:
            self.close()
        self.audit.seconds = time.perf_counter() - self.started
        return self.audit

    def close(self):
        if self.context is not None:
            self.context.close()
            self.context = None


def audit_page(browser, base_url, name, width, site, axe, contrast="all"):
    """Open page ``name`` at ``width`` in a fresh browser context (empty cache and storage, a first
    visit) and audit it; a :class:`PageAudit`. ``contrast``: where axe-core checks colour contrast,
    "all", "prose" (all but the code cells' source) or None (see :func:`_axe_runs`)."""
    job = _PageJob(browser, base_url, name, width, site, axe, contrast)
    try:
        job.open()
        job.read()
        return job.finish()
    finally:
        job.close()


def audit_site(site, browser, widths=tuple(VIEWPORTS), pages=None, contrast_width=1280, at_once=PAGES_AT_ONCE):
    """Audit every page of ``site`` at every width; a list of :class:`PageAudit`, by width then page.

    ``at_once`` pages are audited at the same time, each in its own context of ``browser``:
    while one is read, the others load, typeset or run axe-core in their own renderers.
    Colour contrast, axe-core's slowest rule, is checked at ``contrast_width`` only (the site's
    colours do not depend on the window's width), on every page; the code cells' source (one
    Pygments style throughout) on the first page that has code, and on every page whose name is
    in ``pages`` if given.
    """
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    names = pages or site_pages(site)
    code_page = next((n for n in names if 'class="cell_input' in (Path(site) / n).read_text(errors="replace")), None)
    order = [(width, name) for width in widths for name in names]
    jobs, audits = [], []
    with serve(site) as base_url:
        waiting = list(order)
        try:
            while waiting or jobs:
                while waiting and len(jobs) < max(1, at_once):
                    width, name = waiting.pop(0)
                    contrast = None
                    if width == contrast_width:
                        contrast = "all" if pages or name == code_page else "prose"
                    job = _PageJob(browser, base_url, name, width, site, axe, contrast)
                    job.open()
                    jobs.append(job)
                for job in jobs:  # every page that has loaded is measured, and its axe-core started
                    if job.recording:
                        job.read()
                audits.append(jobs.pop(0).finish())  # then the oldest one's result
        finally:
            for job in jobs:
                job.close()
    audits.sort(key=lambda a: order.index((a.width, a.page)))
    return audits


# ---------------------------------------------------------------- what a figure's alt text must be
#: Words that say nothing about a figure (MyST-NB and the player write some of these when nothing is given).
GENERIC_ALT = re.compile(r"^(image|figure|plot|graph|chart|output|the figure.*|no description.*)$", re.I)


def alt_problem(alt, shared_by=1):
    """Why an alt text is not a figure's own, meaningful description, or None if it is.

    Parameters
    ----------
    alt : str or None
        The ``alt`` attribute.
    shared_by : int
        How many figures of the site have this same text.
    """
    text = (alt or "").strip()
    if not text:
        return "no alt text"
    if re.search(r"\.(png|jpe?g|svg|gif)\b", text, re.I) or re.fullmatch(r"[0-9a-f]{16,}", text, re.I):
        return "a file name or a hash"
    if GENERIC_ALT.match(text):
        return "a generic word"
    if len(text.split()) < 4:
        return "fewer than four words"
    if shared_by > 1:
        return f"shared by {shared_by} figures"
    return None


def alt_problems(audits):
    """``{(page, figure name): problem}`` over the figures of ``audits`` (one width is enough)."""
    figures = [f for a in audits for f in a.figures]
    counts = {}
    for f in figures:
        counts[(f.alt or "").strip()] = counts.get((f.alt or "").strip(), 0) + 1
    problems = {}
    for f in figures:
        problem = alt_problem(f.alt, counts[(f.alt or "").strip()])
        if problem:
            problems[(f.page, f.name)] = problem
    return problems


# ---------------------------------------------------------------- the report
def load_summary(audits, width=1280):
    """One line: the first load of the pages at ``width`` (bytes, requests, load and typeset times)."""
    import statistics

    shown = [a for a in audits if a.width == width]
    if not shown:
        return ""

    def spread(values, unit, scale=1):
        values = sorted(v / scale for v in values)
        return f"median {statistics.median(values):.0f} {unit} ({values[0]:.0f}-{values[-1]:.0f})"

    return (f"first load at {width} px, empty cache, {len(shown)} pages: "
            f"{spread([a.transferred for a in shown], 'kB', 1e3)}, "
            f"{spread([a.requests for a in shown], 'requests')}, load event {spread([a.load_ms for a in shown], 'ms')}, "
            f"maths typeset {spread([a.ready_ms for a in shown], 'ms')}")


def report(audits):
    """A plain-text summary: per page and width, then every figure."""
    lines = [load_summary(audits)]
    for a in audits:
        failing = ", ".join(f"{v['id']} ({v['impact']}) x{v['nodes']}" for v in a.violations) or "none"
        lines.append(f"{a.page} @ {a.width}px: width {a.scroll_width}/{a.client_width}; cut off: {len(a.clipped)}; "
                     f"axe: {failing}; "
                     f"console: {len(a.console)}; outside: {len(a.outside_requests)}; first load "
                     f"{a.transferred / 1e3:.0f} kB in {a.requests} requests, load {a.load_ms:.0f} ms, "
                     f"typeset {a.ready_ms:.0f} ms; audit {a.seconds:.1f} s"
                     + ("; contrast of the code checked here" if a.code_contrast else ""))
        lines += [f"    sticks out to {o['right']}px: {o['what']}" for o in a.overflowing[:5]]
        lines += [f"    cut off, {c['content']} px in {c['box']}: {c['what']} {c['text']!r}" for c in a.clipped]
        lines += [f"    console {c[:200]}" for c in a.console]
        lines += [f"    outside request {u}" for u in a.outside_requests]
    by_width = {w: {(f.page, f.index): f for a in audits if a.width == w for f in a.figures} for w in VIEWPORTS}
    problems = alt_problems([a for a in audits if a.width == 1280])
    lines.append("")
    lines.append("page | figure | png (px) | dpi | shown at 1280 | 10 pt at 1280 | shown at 390 | 10 pt at 390 | alt")
    for (page, index), f in by_width.get(1280, {}).items():
        phone = by_width.get(390, {}).get((page, index))
        lines.append(
            f"{page} | {f.name[:16]} | {f.png_width}x{f.png_height} | {f.dpi or 0:.0f} | {f.shown_width:.0f} | "
            f"{f.text_px or 0:.1f} px | {phone.shown_width if phone else 0:.0f} | "
            f"{(phone.text_px if phone else 0) or 0:.1f} px | {(f.alt or '')[:60]!r}"
            + (f" ({problems[(page, f.name)]})" if (page, f.name) in problems else ""))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "build" / "site")
    parser.add_argument("--json", type=Path, help="write every page's audit here")
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vaelib-chromium-") as home, chromium(home) as browser:
        audits = audit_site(args.site, browser)
    files = [p for p in Path(args.site).rglob("*") if p.is_file()]
    print(f"site: {sum(p.stat().st_size for p in files) / 1e6:.1f} MB in {len(files)} files")
    print(report(audits))
    if args.json:
        args.json.write_text(json.dumps([dict(asdict(a), figures=[
            dict(asdict(f), effective_dpi=f.effective_dpi, text_px=f.text_px) for f in a.figures]) for a in audits],
            indent=1))
    failing = [a for a in audits if a.failing_violations() or a.console or a.outside_requests or a.clipped
               or (a.width == 390 and a.scrolls_sideways)]
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
