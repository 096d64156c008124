"""End to end: every slider of the collection works in a real browser.

Three servers on 127.0.0.1, each on a free port, each on a temporary copy:

- JupyterLab from this virtual environment (a token; temporary config, data,
  runtime, settings and workspace directories; root dir a copy of ``notebooks/``
  and of the fixtures in ``tests/browser/``);
- the app (``make app``): Voila on a copy of ``app/``;
- the static site (``make site``), the one ``tests/test_site.py`` checks
  (``tests/site_fixture.py``, built from another copy of the notebooks: JupyterLab
  saves its copies as it runs them), served by Python's ``http.server``.

The app's server and the site build start with the first test and run beside
the notebook tests.

Headless Chromium, driven by Playwright, opens every notebook that shows a slider
view (found in ``notebooks/*.ipynb``, not listed here), runs its cells up to its
last slider view, and then moves every slider of every view, once with the
keyboard and once by dragging its handle. After each move it checks that

1. the figure (its image) changes,
2. the readout printed under the sliders equals what the library computes for
   the new setting: the test process runs the same notebook cells itself (with
   ``SliderView.show`` recording the views instead of displaying them) and asks
   its own copy of each view for the readout of the slider values read from the
   page (:meth:`SliderView.readout_at`), and
3. no cell shows an error (a traceback or a widget error).

The app's views are checked the same way (the test process builds them with
``app/app_views.py``, from the model cache). On the site, one precomputed slider
per page that has one is moved with the keyboard and by a drag; the image and
readout must become the stored frame of the new setting (read by the test from
the page's HTML, not from the browser), and no request may leave 127.0.0.1.

The time from each keyboard move to the changed image is measured in the page
(and from each drag's press to the final image, in the test), and printed, never
asserted: the machine is shared. One screenshot per view is
saved in ``$VAELIB_SCREENSHOT_DIR`` (default: pytest's ``tmp_path``).

Needs Debian's Chromium (``apt-get install chromium``; ``/usr/bin/chromium``, or
set ``VAELIB_CHROMIUM``) and the ``playwright`` Python package; never run
``playwright install``. Skips when either is missing, and fails instead when
``VAELIB_REQUIRE_BROWSER=1`` (CI sets it). The app and site parts also need
Voila and the site tools (``pip install -e ".[site]"``); without them those
tests skip, or fail under ``VAELIB_REQUIRE_BROWSER=1``.
"""

import functools
import http.server
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import numpy as np
import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
FIXTURES = REPO / "tests" / "browser"
SMOKE_NOTEBOOK = "slider_smoke.ipynb"
PRECOMPUTED_NOTEBOOK = "precomputed_sliders.ipynb"
APP_DIR = REPO / "app"
CHROMIUM = Path(os.environ.get("VAELIB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous bounds: the machine has 2 cores and may be running other CPU-bound work.
SERVER_START_TIMEOUT = 60  # s, until the server answers
UI_TIMEOUT_MS = 60_000  # default bound for every Playwright wait
RUN_CELLS_TIMEOUT_MS = 600_000  # a notebook's cells up to its last slider view
APP_TIMEOUT_MS = 900_000  # the app's page: every view built (trains first if the model cache is empty)
UPDATE_TIMEOUT_MS = 60_000  # readout and figure follow a slider move

# CI sets VAELIB_REQUIRE_BROWSER=1: there a browser test that cannot run is a failure, not a skip.
REQUIRE_BROWSER = os.environ.get("VAELIB_REQUIRE_BROWSER") == "1"


def _cannot_run(reason, module_level=True):
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason}; VAELIB_REQUIRE_BROWSER=1 says the browser test must run", pytrace=False)
    pytest.skip(reason, allow_module_level=module_level)


try:
    from playwright import sync_api
except ImportError:
    _cannot_run("the playwright Python package is not installed (pip install playwright; never `playwright install`)")
if not CHROMIUM.exists():
    _cannot_run(f"{CHROMIUM} is missing (apt-get install -y chromium)")

from vaelib.teaching.views.slider_view import FRAMES_MIME, SliderView  # noqa: E402  (after the skip: imports matplotlib)

# JupyterLab user settings, written to a temporary settings dir: no news or update
# pop-ups, and every cell attached to the DOM so all prompts and outputs can be read.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

PROMPTS_JS = "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim())"
IMAGE_SELECTOR = ".jp-RenderedImage img"
STDERR_SELECTOR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'

# In-page helpers: the k-th slider view (its widget box carries the class vaelib-slider-view),
# its figure (an image widget in the box, or else the image of the next output) and its readout.
VIEW_JS = """
window.vaelib = {
  views: () => [...document.querySelectorAll('.vaelib-slider-view')],
  image: (k) => {
    const box = window.vaelib.views()[k];
    const inside = box && box.querySelector('img');  // the figure as a widget (the app)
    if (inside) return inside;
    const child = box && box.closest('.jp-OutputArea-child');
    for (let next = child && child.nextElementSibling; next; next = next.nextElementSibling) {
      const img = next.querySelector('img');
      if (img) return img;
    }
    return null;
  },
  readout: (k) => {
    const pre = window.vaelib.views()[k].querySelector('.widget-html-content pre');
    return pre === null ? null : pre.textContent;
  },
  // Stamp the next keydown or pointerup, and the first change of view k's image after it.
  watch: (k) => {
    const before = window.vaelib.image(k).src;
    const move = {start: null, changed: null};
    window.vaelib.move = move;
    const stamp = () => { if (move.start === null) move.start = performance.now(); };
    document.addEventListener('keydown', stamp, {capture: true, once: true});
    document.addEventListener('pointerup', stamp, {capture: true, once: true});
    const observer = new MutationObserver(() => {
      const img = window.vaelib.image(k);
      if (move.start !== null && img && img.src !== before && move.changed === null) {
        move.changed = performance.now();
        observer.disconnect();
      }
    });
    observer.observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
    return before;
  },
};
"""


def _normalise(text):
    return "\n".join(line.rstrip() for line in (text or "").strip().splitlines())


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- which notebooks have slider views
def _code(cell):
    return cell.source if cell.cell_type == "code" else ""


def _shows_a_view(cell):
    """A code cell that displays a SliderView: its stored outputs say so, or it calls ``<...view...>.show(``."""
    outputs = [o for o in cell.get("outputs", []) if o.get("output_type") == "display_data"]
    labelled = any(o.get("metadata", {}).get("vaelib", {}).get("role") == "slider-view-controls" for o in outputs)
    return labelled or re.search(r"\b\w*view\w*\.show\(", _code(cell)) is not None


def last_view_cell(path):
    """Index (among all cells) of the last cell that shows a slider view, or None."""
    nb = nbformat.read(path, as_version=4)
    shown = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and _shows_a_view(cell)]
    return shown[-1] if shown else None


SLIDER_NOTEBOOKS = [p for p in sorted(NOTEBOOKS.glob("*.ipynb")) if last_view_cell(p) is not None]
#: Checked in JupyterLab: the fixture of two SelectionSliders, then every notebook with a slider view.
LAB_NOTEBOOKS = [FIXTURES / PRECOMPUTED_NOTEBOOK, *SLIDER_NOTEBOOKS]


# ---------------------------------------------------------------- the expected side, in this process
def _run_cells_here(path, upto):
    """Run a notebook's code cells 0..upto in this process; return the SliderViews it showed, in order.

    ``SliderView.show`` records the view instead of displaying it. IPython magics
    (``%matplotlib inline``) are dropped; figures are drawn with Agg.
    """
    import matplotlib

    matplotlib.use("Agg")
    nb = nbformat.read(path, as_version=4)
    shown = []
    namespace = {"__name__": "__main__", "print": lambda *args, **kwargs: None}  # quiet: only the views count
    original = SliderView.show
    SliderView.show = lambda self, *args, **kwargs: shown.append(self)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, cell in enumerate(nb.cells[: upto + 1]):
                if cell.cell_type != "code":
                    continue
                source = "\n".join(line for line in cell.source.splitlines()
                                   if not line.lstrip().startswith(("%", "!")))
                exec(compile(source, f"{path.name}[{i}]", "exec"), namespace)
    finally:
        SliderView.show = original
    return shown


def _build_app_views_here():
    sys.path.insert(0, str(APP_DIR))
    try:
        import app_views
    finally:
        sys.path.remove(str(APP_DIR))
    return [entry.build() for entry in app_views.VIEWS]


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    """Futures of the views this process builds, keyed by notebook name and "app", computed one after another
    in a worker thread while the browser works."""
    pool = ThreadPoolExecutor(max_workers=1)
    futures = {}
    for path in [FIXTURES / SMOKE_NOTEBOOK, *LAB_NOTEBOOKS]:  # in the order the tests need them
        futures[path.name] = pool.submit(_run_cells_here, path, last_view_cell(path))
    if _voila_available():
        futures["app"] = pool.submit(_build_app_views_here)
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------- servers
def _kernel_pids(server_pid):
    """Descendants of the server (kernels run in their own session, so killpg misses them).

    Read from /proc (Linux); elsewhere the kernels' parent poller ends them when the server is gone.
    """
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [], [server_pid]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += children
        frontier = children
    return found


def _kill(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class Server:
    def __init__(self, root, port, token, proc, log):
        self.root, self.port, self.token, self.proc, self.log = root, port, token, proc, log

    def url(self, path=""):
        query = f"?token={self.token}&reset" if self.token else ""
        return f"http://127.0.0.1:{self.port}/{path}{query}"

    def log_tail(self, n=4000):
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def _isolated_env(base):
    """This environment with Jupyter's and IPython's dirs in ``base``: nothing read from or written to the user's."""
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "JPY_SESSION_NAME")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "MPLCONFIGDIR"):
        env[name] = str(base / name.lower())
        os.makedirs(env[name], exist_ok=True)
    env["JUPYTER_PLATFORM_DIRS"] = "0"
    env["VAELIB_STATIC_FRAMES"] = "0"  # live widgets only: the kernels need not precompute frames
    return env


def _serve(cmd, root, env, port, token, log, ready_path):
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(root, port, token, proc, log)
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{cmd[2]} exited with code {proc.returncode}:\n{server.log_tail()}")
        try:
            if ready_path is None:  # the port accepts connections
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                return server
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{ready_path}", timeout=2):
                return server
        except OSError:
            if time.monotonic() > deadline:
                _stop(server)
                pytest.fail(f"{cmd[2]} did not answer within {SERVER_START_TIMEOUT} s:\n{server.log_tail()}")
            time.sleep(0.2)


def _stop(server):
    proc = server.proc
    children = _kernel_pids(proc.pid)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything left in the server's process group
    except (ProcessLookupError, PermissionError):
        pass
    _kill(children, signal.SIGKILL)  # kernels that outlived the server
    print(f"--- log tail ({server.log}) ---\n{server.log_tail()}")


@pytest.fixture(scope="module")
def notebook_copies(tmp_path_factory):
    """A temporary copy of the notebooks and of the browser fixtures."""
    root = tmp_path_factory.mktemp("notebooks")
    for path in [*sorted(NOTEBOOKS.glob("*.ipynb")), *sorted(FIXTURES.glob("*.ipynb"))]:
        shutil.copy(path, root / path.name)
    return root


@pytest.fixture(scope="module")
def lab(tmp_path_factory, notebook_copies):
    """A JupyterLab server from this venv on the notebook copies."""
    base = tmp_path_factory.mktemp("lab")
    env = _isolated_env(base)
    settings = base / "user-settings"
    for rel, value in LAB_SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(value))
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable, "-m", "jupyterlab",  # this interpreter's JupyterLab; its kernel "python3" runs sys.executable
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={notebook_copies}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--LabApp.news_url=None",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    server = _serve(cmd, notebook_copies, env, port, token, base / "server.log", f"api/status?token={token}")
    try:
        yield server
    finally:
        _stop(server)


def _voila_available():
    return importlib.util.find_spec("voila") is not None


def _site_tools_available():
    return importlib.util.find_spec("myst_nb") is not None


def _start_app(base):
    """Voila on a copy of ``app/``, as ``make app`` runs it, on a free port."""
    root = base / "app"
    shutil.copytree(APP_DIR, root, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    port = _free_port()
    cmd = [sys.executable, "-B", str(root / "serve.py"), "--no-browser",  # as `make app` starts it
           f"--Voila.port={port}", "--Voila.port_retries=0"]
    return _serve(cmd, root, _isolated_env(base), port, None, base / "voila.log", None)


def _build_site(tmp_path_factory):
    """The static site that ``tests/test_site.py`` and ``tests/test_site_audit.py`` check (``tests/site_fixture.py``:
    a copy of the notebooks, not JupyterLab's, which it saves as it runs them, and the fixture pages, the
    precomputed fixture executed with its frames), built once a session."""
    from site_fixture import built_site

    return built_site(tmp_path_factory)


@pytest.fixture(scope="module", autouse=True)
def started_early(tmp_path_factory):
    """What takes long starts with the first test and runs beside the notebook tests: the app's server
    (its kernel builds the views at once) and the site build."""
    app_server, pool = None, ThreadPoolExecutor(max_workers=1)
    site_build = pool.submit(_build_site, tmp_path_factory) \
        if _site_tools_available() else None
    if _voila_available():
        app_server = _start_app(tmp_path_factory.mktemp("app"))
    try:
        yield {"app": app_server, "site": site_build}
    finally:
        if app_server is not None:
            _stop(app_server)
        pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="module")
def app(started_early):
    """The app (``make app``): Voila on a copy of ``app/``."""
    if started_early["app"] is None:
        _cannot_run('Voila is not installed (pip install -e ".[site]")', module_level=False)
    return started_early["app"]


@pytest.fixture(scope="module")
def site(started_early):
    """The built site, served by ``http.server`` on a free port: ``(SiteReport, port)``."""
    if started_early["site"] is None:
        _cannot_run('the site tools are not installed (pip install -e ".[site]")', module_level=False)
    report = started_early["site"].result(timeout=RUN_CELLS_TIMEOUT_MS / 1000)
    handler = functools.partial(_QuietHandler, directory=str(report.out))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield report, httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


# ---------------------------------------------------------------- the browser
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    # launch() gives every run a fresh temporary profile (user-data-dir); Chromium's crash
    # reports and dconf cache go to XDG dirs, so point those at a temporary dir too.
    home = tmp_path_factory.mktemp("chromium")
    env = dict(os.environ, XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"))
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, env=env)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, tmp_path):
    """A fresh page whose requests may go to 127.0.0.1 only (others are blocked and recorded)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(UI_TIMEOUT_MS)
    pg.page_errors, pg.outside_requests, pg.console = [], [], []
    pg.on("pageerror", lambda exc: pg.page_errors.append(str(exc)))
    pg.on("console", lambda m: pg.console.append(f"{m.type}: {m.text}") if m.type in ("warning", "error") else None)

    def only_loopback(route):
        url = route.request.url
        if re.match(r"(https?|wss?)://127\.0\.0\.1[:/]", url) or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            pg.outside_requests.append(url)
            route.abort()

    pg.route("**/*", only_loopback)
    try:
        yield pg
    finally:
        try:
            pg.screenshot(path=str(tmp_path / "last.png"))
        except Exception:
            pass
        context.close()


def _screenshot_path(tmp_path, name):
    folder = Path(os.environ.get("VAELIB_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def errors_on_page(page):
    """Tracebacks, widget errors and uncaught page errors now on the page."""
    found = [e.inner_text()[:500] for e in page.locator(STDERR_SELECTOR).all()
             if "Traceback" in e.inner_text() or "Error" in e.inner_text().split("\n")[0]]
    found += [e.inner_text()[:200] for e in page.locator(".jupyter-widgets-error-widget").all()]
    if "Error displaying widget" in page.locator("body").inner_text():
        found.append("Error displaying widget")
    return found + page.page_errors


# ---------------------------------------------------------------- driving JupyterLab
def open_and_run(page, lab, notebook_name, upto):
    """Open a notebook, run its cells 0..upto (all above the last slider view, then that cell)."""
    page.goto(lab.url(f"lab/tree/{notebook_name}"))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    # Running before the kernel is up would open a "Select Kernel" dialog: wait for it first.
    page.get_by_text(re.compile(r"\| Idle$")).first.wait_for()
    cells = page.locator(".jp-Notebook .jp-Cell")
    target = cells.nth(upto)
    target.locator(".jp-InputPrompt").click()  # selects the cell (command mode)
    if upto > 0:
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Above Selected Cell", exact=True).click()
    target.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Enter")  # run the selected cell, stay on it
    try:
        # Done when every code cell up to the target has an execution count, or at the first error.
        page.wait_for_function(
            """([upto, selector]) => {
                const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')].slice(0, upto + 1);
                const prompts = cells.filter(c => c.classList.contains('jp-CodeCell'))
                                     .map(c => c.querySelector('.jp-InputPrompt').textContent.trim());
                const failed = [...document.querySelectorAll(selector)].some(e => e.textContent.includes('Traceback'));
                return failed || (prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p)));
            }""",
            arg=[upto, STDERR_SELECTOR],
            timeout=RUN_CELLS_TIMEOUT_MS,
        )
    except sync_api.TimeoutError:
        pytest.fail(f"{notebook_name}: cells did not finish within {RUN_CELLS_TIMEOUT_MS / 1000:.0f} s; prompts: "
                    f"{page.evaluate(PROMPTS_JS)}; server log:\n{lab.log_tail()}")
    assert errors_on_page(page) == [], f"{notebook_name}: error output after running its cells"
    page.get_by_text(re.compile(r"\| Idle$")).first.wait_for()


# ---------------------------------------------------------------- moving sliders
class Moves:
    """Times from move to changed image, in ms, per kind of move."""

    def __init__(self, label):
        self.label, self.times = label, {"keyboard": [], "drag": []}

    def report(self):
        for kind, times in self.times.items():
            if times:
                print(f"{self.label}: {kind} move -> changed image: median {statistics.median(times):.0f} ms "
                      f"(n = {len(times)}; {', '.join(f'{t:.0f}' for t in times)})")


def slider_values(box, view):
    """The view's slider values as the page shows them (read from each slider's readout)."""
    texts = [r.inner_text().strip() for r in box.locator(".widget-slider .widget-readout").all()]
    values = {}
    for (name, slider), text in zip(view.sliders.items(), texts):
        options = view.options()
        if options is not None and name in options:
            values[name] = dict(options[name])[text]
        else:
            values[name] = type(slider.value)(float(text.replace("\u2212", "-")))  # the readout writes a minus sign
    assert len(values) == len(view.sliders), f"read {texts} for sliders {list(view.sliders)}"
    return values


def settle(page, k, quiet_ms=300):
    """Wait until view ``k``'s figure has not changed for ``quiet_ms`` (late updates of a drag are in)."""
    page.wait_for_function(
        """([k, quiet]) => {
            const src = (window.vaelib.image(k) || {}).src, now = performance.now();
            if (window.vaelib.lastSrc !== src) { window.vaelib.lastSrc = src; window.vaelib.since = now; return false; }
            return now - window.vaelib.since >= quiet;
        }""", arg=[k, quiet_ms], polling=50, timeout=UPDATE_TIMEOUT_MS)


def check_move(page, k, view, box, move, kind, moves, where):
    """Do ``move()`` on view ``k``; wait for its readout and figure to follow; return the new values."""
    settle(page, k)
    values_before = slider_values(box, view)
    before = page.evaluate("(k) => window.vaelib.watch(k)", k)
    start = time.perf_counter()
    move()
    # the slider's own readout shows the new setting first; then the kernel's readout and figure follow
    deadline = time.perf_counter() + UPDATE_TIMEOUT_MS / 1000
    while True:
        values = slider_values(box, view)
        expected = _normalise(view.readout_at(**values))
        try:
            page.wait_for_function(
                """([k, before, expected]) => {
                    const norm = t => (t || '').trim().split('\\n').map(l => l.trimEnd()).join('\\n');
                    const img = window.vaelib.image(k);
                    return img !== null && img.src !== before && norm(window.vaelib.readout(k)) === expected;
                }""",
                arg=[k, before, expected], timeout=2_000)
            break
        except sync_api.TimeoutError:  # the values may still have been moving (a drag): read them again
            if time.perf_counter() > deadline:
                if values == values_before:
                    pytest.fail(f"{where}: the {kind} move left the sliders at {values}")
                got = page.evaluate("(k) => window.vaelib.readout(k)", k)
                pytest.fail(f"{where}: after a {kind} move to {values} the readout is\n{got}\nexpected (library):\n"
                            f"{expected}\nor the figure did not change")
    elapsed = page.evaluate("() => window.vaelib.move")
    if kind == "keyboard" and elapsed["start"] is not None and elapsed["changed"] is not None:
        moves.times[kind].append(elapsed["changed"] - elapsed["start"])
    elif kind == "drag":
        moves.times[kind].append(1e3 * (time.perf_counter() - start))  # from press to the final picture
    return values


def drag(page, handle, track, fraction):
    """Press on the handle, move to ``fraction`` of the track's width, release."""
    h, t = handle.bounding_box(), track.bounding_box()
    page.mouse.move(h["x"] + h["width"] / 2, h["y"] + h["height"] / 2)
    page.mouse.down()
    page.mouse.move(t["x"] + fraction * t["width"], h["y"] + h["height"] / 2, steps=8)
    page.mouse.up()


def exercise_views(page, views, label, tmp_path):
    """Move every slider of every view on the page with the keyboard and by a drag, checking each move."""
    page.evaluate(VIEW_JS)
    boxes = page.locator(".vaelib-slider-view")
    assert boxes.count() == len(views), f"{label}: {boxes.count()} slider views on the page, {len(views)} expected"
    moves = Moves(label)
    for k, view in enumerate(views):
        box = boxes.nth(k)
        box.scroll_into_view_if_needed()
        where = f"{label}, view {k + 1}"
        assert _normalise(page.evaluate("(k) => window.vaelib.readout(k)", k)) == _normalise(
            view.readout_at(**slider_values(box, view))), f"{where}: the first readout is not the library's"
        sliders = box.locator(".widget-slider")
        for j in range(sliders.count()):
            handle = sliders.nth(j).locator(".noUi-handle[role=slider]")
            track = sliders.nth(j).locator(".noUi-target")
            low, high = (float(handle.get_attribute(a)) for a in ("aria-valuemin", "aria-valuemax"))
            now = float(handle.get_attribute("aria-valuenow"))
            key = "ArrowLeft" if now >= high else "ArrowRight"
            before = slider_values(box, view)
            after = check_move(page, k, view, box, lambda: handle.press(key), "keyboard", moves, where)
            assert after != before, f"{where}: {key} did not move slider {j + 1}"
            now = float(handle.get_attribute("aria-valuenow"))
            fraction = 0.1 if (now - low) > 0.5 * (high - low) else 0.9  # towards the far end
            dragged = check_move(page, k, view, box, lambda: drag(page, handle, track, fraction), "drag", moves,
                                 where)
            assert dragged != after, f"{where}: the drag did not move slider {j + 1}"
        box.scroll_into_view_if_needed()
        page.screenshot(path=str(_screenshot_path(tmp_path, f"{label}-view{k + 1}.png")))
        assert errors_on_page(page) == [], f"{where}: error output after moving its sliders"
    moves.report()
    return moves


# ---------------------------------------------------------------- the tests
def _views(expected, name):
    return expected[name].result(timeout=RUN_CELLS_TIMEOUT_MS / 1000)


def test_smoke_fixture_slider(page, lab, expected, tmp_path):
    """The plain fixture (one FloatSlider), as the notebooks build their views."""
    open_and_run(page, lab, SMOKE_NOTEBOOK, last_view_cell(FIXTURES / SMOKE_NOTEBOOK))
    exercise_views(page, _views(expected, SMOKE_NOTEBOOK), "slider_smoke", tmp_path)
    assert page.locator(IMAGE_SELECTOR).count() == 1, "the view must redraw one figure in place"


@pytest.mark.parametrize("path", LAB_NOTEBOOKS, ids=[p.stem for p in LAB_NOTEBOOKS])
def test_every_slider_of_the_notebook(page, lab, expected, tmp_path, path):
    open_and_run(page, lab, path.name, last_view_cell(path))
    # each view's sliders' output holds the live widget and its frames data: JupyterLab shows the widget alone,
    # neither the data nor a player made of them
    assert page.locator(".vaelib-slider-view").count() > 0
    assert page.locator(f'[data-mime-type="{FRAMES_MIME}"]').count() == 0
    assert page.locator(".vaelib-static-view").count() == 0
    assert page.locator(".jp-OutputArea-output", has_text='"frames"').count() == 0
    exercise_views(page, _views(expected, path.name), path.stem, tmp_path)


def test_every_slider_of_the_app(page, app, expected, tmp_path):
    views = _views(expected, "app")
    start = time.perf_counter()
    page.goto(app.url(), timeout=APP_TIMEOUT_MS)
    # the page shows each view as its kernel builds it (progressive rendering): wait for all of them
    page.wait_for_function("(n) => [...document.querySelectorAll('.vaelib-slider-view')].filter(b => b.querySelector("
                           "'img') !== null).length >= n", arg=len(views), timeout=APP_TIMEOUT_MS)
    print(f"app: views on the page {time.perf_counter() - start:.1f} s after it was opened")
    assert errors_on_page(page) == [], "error output in the app"
    # no warning either: Voila's page and the widget extension are built for one JupyterLab (pyproject.toml)
    assert page.console == [], page.console
    code = [c for c in page.locator(".jp-CodeCell .jp-InputArea").all() if c.is_visible()]
    assert code == [] and "show_all" not in page.locator("body").inner_text(), "the app shows code"
    exercise_views(page, views, "app", tmp_path)
    print(f"app: requests blocked (not 127.0.0.1): {sorted(set(page.outside_requests))}")


def test_precomputed_sliders_move_on_the_site(page, site, tmp_path):
    report, port = site
    pages = [p for p in report.pages if p.frames]
    assert any(p.name.startswith("zz-") for p in pages), "the fixture page has no precomputed slider"
    for entry in pages:
        html_file = report.out / f"{entry.name}.html"
        data = json.loads(re.search(r'<script type="application/json" class="vaelib-static-data">(.*?)</script>',
                                    html_file.read_text(), re.S).group(1))  # tools/player.py's data
        frames = data["frames"]
        page.goto(f"http://127.0.0.1:{port}/{html_file.name}")
        player = page.locator(".vaelib-static-view").first
        player.scroll_into_view_if_needed()
        slider = player.locator("input.vaelib-static-input").first
        image, readout = player.locator("img.vaelib-static-figure"), player.locator("pre.vaelib-static-readout")
        counts = [len(slider["values"]) for slider in data["sliders"]]
        stride = int(np.prod(counts[1:]))

        def shown_frame():
            values = [int(v) for v in player.locator("input.vaelib-static-input").evaluate_all(
                "inputs => inputs.map(i => i.value)")]
            return int(np.ravel_multi_index(values, counts))

        def expect_frame(frame):
            sync_api.expect(image).to_have_attribute("src", "data:image/png;base64," + frames[frame]["png"])
            sync_api.expect(readout).to_have_text(frames[frame]["readout"])
            if frames[frame]["alt"]:  # the frame's own words, naming its setting
                sync_api.expect(image).to_have_attribute("alt", frames[frame]["alt"])
            first_slider = data["sliders"][0]  # announced as the value it shows, not as its step
            shown = first_slider["values"][np.unravel_index(frame, counts)[0]]
            sync_api.expect(slider).to_have_attribute("aria-valuetext", f"{first_slider['label']} = {shown}")

        sync_api.expect(readout).to_have_attribute("aria-live", "polite")

        start = shown_frame()
        expect_frame(start)
        first = int(slider.get_attribute("value"))
        slider.press("ArrowLeft" if first == counts[0] - 1 else "ArrowRight")  # keyboard
        moved = shown_frame()
        assert moved == start + (-stride if first == counts[0] - 1 else stride)
        expect_frame(moved)
        box = slider.bounding_box()  # drag the range input's thumb to the other end
        x_now = box["x"] + box["width"] * (int(slider.input_value()) + 0.5) / counts[0]
        page.mouse.move(x_now, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + (2 if x_now > box["x"] + box["width"] / 2 else box["width"] - 2),
                        box["y"] + box["height"] / 2, steps=6)
        page.mouse.up()
        dragged = shown_frame()
        assert dragged != moved, f"{entry.name}: the drag did not move the slider"
        expect_frame(dragged)
        if "class=\"math" in html_file.read_text():  # MathJax, from the site itself, typeset the maths
            page.wait_for_function("() => document.querySelectorAll('mjx-container').length > 0")
        page.screenshot(path=str(_screenshot_path(tmp_path, f"site-{entry.name}.png")))
        assert page.page_errors == [] and page.console == [], f"{entry.name}: {page.page_errors} {page.console}"
    assert page.outside_requests == [], f"the site asked for {page.outside_requests}"
