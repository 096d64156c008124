"""Audit the built site in headless Chromium: accessibility, phones, console, hosts, figures.

    python tools/site_audit.py [--site build/site] [--json report.json]

Every page of the site is opened at 1280 px and at 390 px wide (a phone: mobile
viewport, touch), served from 127.0.0.1, and checked for

- axe-core's violations (``axe-playwright-python``, which injects the axe-core
  it ships), every rule, the experimental ones too; serious and critical ones are
  failures. Colour contrast, by far the slowest rule, is checked at 1280 px only, and
  in the code cells' source (one Pygments style on every page) on the first page
  with code only (:func:`audit_site`);
- sideways scrolling: the document's ``scrollWidth`` against the viewport's width,
  with the elements that stick out, for the diagnosis;
- console warnings and errors, and uncaught page errors;
- requests to any host but 127.0.0.1 (aborted, and recorded);
- every figure (an ``img`` in the page's article): its alt text, the PNG's size
  and dpi, and the width it is shown at. ``effective_dpi`` = dpi x shown width /
  PNG width; 10-pt text shows at ``10 / 72 * effective_dpi`` CSS pixels, so 12 px
  needs an effective dpi of at least :data:`MIN_EFFECTIVE_DPI` (86.4).

The dpi is read from the PNG's ``pHYs`` chunk (Matplotlib writes it). A frame of a
precomputed slider view has none (its palette PNG is re-encoded by Pillow); it was
drawn at :data:`vaelib.teaching.views.slider_view.FRAME_DPI`.

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
PAGE_TIMEOUT_MS = 60_000

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
# MathJax typesets after the load event; its output changes widths.
MATHJAX_DONE_JS = """() => !window.MathJax || !window.MathJax.startup || !window.MathJax.startup.promise ||
    window.MathJax.startup.promise.then(() => true)"""


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
    """axe-core's runs on a page: ``[(context, options)]`` (axe's context: what to check).

    The first runs every rule but colour contrast, the experimental ones too (among them
    label-content-name-mismatch, WCAG 2.5.3 "Label in Name"). The second, if ``contrast`` is
    "all" or "prose", runs colour contrast alone, on the whole page or on all but the code cells'
    source ("prose"): the code's colours come from one Pygments style, the same on every page,
    and its many coloured spans make this rule the slowest by far.
    """
    page.evaluate(axe.axe_script)
    experimental = page.evaluate("() => axe.getRules(['experimental']).map(r => r.ruleId)")
    rules = {rule: {"enabled": True} for rule in experimental}
    rules["color-contrast"] = {"enabled": False}
    runs = [(None, {"resultTypes": ["violations"], "rules": rules})]
    if contrast:
        context = {"exclude": [["div.cell_input"]]} if contrast == "prose" else None
        runs.append((context, {"resultTypes": ["violations"], "runOnly": ["color-contrast"]}))
    return runs


def _count_transfer(audit, request):
    sizes = request.sizes()
    audit.requests += 1
    audit.transferred += sizes["responseBodySize"] + sizes["responseHeadersSize"]


def audit_page(browser, base_url, name, width, site, axe, contrast="all"):
    """Open page ``name`` at ``width`` in a fresh browser context (empty cache and storage, a first
    visit) and audit it; a :class:`PageAudit`. ``contrast``: where axe-core checks colour contrast,
    "all", "prose" (all but the code cells' source) or None (see :func:`_axe_runs`)."""
    audit = PageAudit(name, width)
    start = time.perf_counter()
    context = browser.new_context(**VIEWPORTS[width])
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    # What the page does is recorded until axe-core starts: axe fetches the stylesheets again to read
    # them, and resolves their @import against the page's address (the theme's "../basic.css" becomes
    # a 404 for /basic.css), which is the audit's own noise, not the site's.
    recording = [True]

    def note(text):
        if recording[0]:
            audit.console.append(text)

    page.on("console", lambda m: note(f"{m.type}: {m.text}") if m.type in ("warning", "error") else None)
    page.on("pageerror", lambda exc: note(f"pageerror: {exc}"))
    page.on("requestfinished", lambda request: _count_transfer(audit, request) if recording[0] else None)
    page.on("requestfailed", lambda request: note(f"request failed: {request.url}"))
    page.on("response", lambda r: note(f"http {r.status}: {r.url}") if r.status >= 400 else None)
    page.route(OUTSIDE, lambda route: (audit.outside_requests.append(route.request.url), route.abort()))
    try:
        page.goto(base_url + name, wait_until="load")
        page.wait_for_function(MATHJAX_DONE_JS)
        audit.ready_ms = page.evaluate("() => performance.now()")
        audit.load_ms = page.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd")
        page.wait_for_function("() => [...document.images].every(i => i.complete)")
        dims = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        audit.scroll_width, audit.client_width = dims
        if audit.scrolls_sideways:
            audit.overflowing = page.evaluate(OVERFLOW_JS)
        audit.figures = _figures(page, name, site)
        recording[0] = False
        for scope, options in _axe_runs(page, axe, contrast):
            result = axe.run(page, context=scope, options=options).response
            audit.violations += [{"id": v["id"], "impact": v["impact"], "nodes": len(v["nodes"]), "help": v["help"],
                                  "targets": [" ".join(map(str, n["target"])) for n in v["nodes"]][:5]}
                                 for v in result["violations"]]
        audit.code_contrast = contrast == "all" and page.locator("div.cell_input").count() > 0
    finally:
        context.close()
    audit.seconds = time.perf_counter() - start
    return audit


def audit_site(site, browser, widths=tuple(VIEWPORTS), pages=None, contrast_width=1280):
    """Audit every page of ``site`` at every width; a list of :class:`PageAudit`, by width then page.

    Colour contrast, axe-core's slowest rule, is checked at ``contrast_width`` only (the site's
    colours do not depend on the window's width), on every page; the code cells' source (one
    Pygments style throughout) on the first page that has code, and on every page whose name is
    in ``pages`` if given.
    """
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    audits, code_checked = [], False
    with serve(site) as base_url:
        for width in widths:
            for name in pages or site_pages(site):
                contrast = None
                if width == contrast_width:
                    contrast = "all" if pages or not code_checked else "prose"
                audit = audit_page(browser, base_url, name, width, site, axe, contrast)
                code_checked = code_checked or audit.code_contrast
                audits.append(audit)
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
        lines.append(f"{a.page} @ {a.width}px: width {a.scroll_width}/{a.client_width}; axe: {failing}; "
                     f"console: {len(a.console)}; outside: {len(a.outside_requests)}; first load "
                     f"{a.transferred / 1e3:.0f} kB in {a.requests} requests, load {a.load_ms:.0f} ms, "
                     f"typeset {a.ready_ms:.0f} ms; audit {a.seconds:.1f} s"
                     + ("; contrast of the code checked here" if a.code_contrast else ""))
        lines += [f"    sticks out to {o['right']}px: {o['what']}" for o in a.overflowing[:5]]
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
    failing = [a for a in audits if a.failing_violations() or a.console or a.outside_requests
               or (a.width == 390 and a.scrolls_sideways)]
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
