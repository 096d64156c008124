"""End to end: a learner's slider works in a real JupyterLab in a real browser.

Starts JupyterLab from this virtual environment on 127.0.0.1 (random free port,
a token, temporary config/data/runtime/settings/workspace directories, root dir a
temporary copy of the notebooks), opens a notebook in headless Chromium driven by
Playwright, runs all cells from the Run menu, moves the first slider with the
keyboard and checks that

1. the readout text changes to the new values,
2. the figure image (its ``data:`` src) changes, and
3. no error output (traceback or stderr) or widget error appears.

Needs Debian's Chromium (``apt-get install chromium``; ``/usr/bin/chromium``, or
set ``VAELIB_CHROMIUM``) and the ``playwright`` Python package; never run
``playwright install``. Skips when either is missing, and fails instead when
``VAELIB_REQUIRE_BROWSER=1`` (CI sets it). Set
``VAELIB_SCREENSHOT_DIR`` to keep screenshots of the page after the slider moved
(by default they go to pytest's ``tmp_path``).
"""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
FIXTURE_NOTEBOOK = REPO / "tests" / "browser" / "slider_smoke.ipynb"
KL_NOTEBOOK = REPO / "notebooks" / "02-kl-decomposition.ipynb"
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
SERVER_START_TIMEOUT = 30  # s, until /api/status answers
UI_TIMEOUT_MS = 30_000  # default bound for every Playwright wait
RUN_ALL_TIMEOUT_MS = 60_000  # all cells of a notebook executed
UPDATE_TIMEOUT_MS = 15_000  # readout and figure follow a slider move

# CI sets VAELIB_REQUIRE_BROWSER=1: there a browser test that cannot run is a failure, not a skip.
REQUIRE_BROWSER = os.environ.get("VAELIB_REQUIRE_BROWSER") == "1"


def _cannot_run(reason):
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason}; VAELIB_REQUIRE_BROWSER=1 says the browser test must run", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    from playwright import sync_api
except ImportError:
    _cannot_run("the playwright Python package is not installed (pip install playwright; never `playwright install`)")
if not CHROMIUM.exists():
    _cannot_run(f"{CHROMIUM} is missing (apt-get install -y chromium)")

# JupyterLab user settings, written to a temporary settings dir: no news or update
# pop-ups, and every cell attached to the DOM so all prompts and outputs can be read.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

# Prompts of code cells, and outputs that mean something went wrong, in JupyterLab 4 / ipywidgets 8.
PROMPTS_JS = "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim())"
IMAGE_SELECTOR = ".jp-RenderedImage img"
ERROR_SELECTOR = (
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], '
    ".jupyter-widgets-error-widget"
)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class LabServer:
    def __init__(self, root, port, token, proc, log):
        self.root, self.port, self.token, self.proc, self.log = root, port, token, proc, log

    def url(self, path):
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}&reset"

    def log_tail(self, n=4000):
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server from this venv, with nothing read from or written to the user's dirs."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    shutil.copytree(FIXTURE_NOTEBOOK.parent, root)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel must use the inline backend
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "MPLCONFIGDIR"):
        env[name] = str(base / name.lower())
        os.makedirs(env[name])
    env["JUPYTER_PLATFORM_DIRS"] = "0"
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
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--LabApp.news_url=None",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = base / "server.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = LabServer(root, port, token, proc, log)
    children = []
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {proc.returncode}:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within {SERVER_START_TIMEOUT} s:\n{server.log_tail()}")
                time.sleep(0.2)
        yield server
    finally:
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
        print(f"--- JupyterLab log tail ({log}) ---\n{server.log_tail()}")


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
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(UI_TIMEOUT_MS)
    pg.page_errors = []
    pg.on("pageerror", lambda exc: pg.page_errors.append(str(exc)))
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


def _errors_on_page(page):
    texts = [e.inner_text() for e in page.locator(ERROR_SELECTOR).all()]
    if "Error displaying widget" in page.locator(".jp-Notebook").inner_text():
        texts.append("Error displaying widget")
    return texts


def open_and_run_all(page, lab, notebook_name):
    """Open ``notebook_name`` (in the server's root), run all cells, return once every code cell ran."""
    page.goto(lab.url(f"lab/tree/{notebook_name}"))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    # Run All before the kernel is up would open a "Select Kernel" dialog: wait for it first.
    page.get_by_text(re.compile(r"\| Idle$")).first.wait_for()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    try:
        # Done when every code cell has an execution count, or stop early at the first error.
        page.wait_for_function(
            """(errorSelector) => {
                const prompts = (%s)();
                return document.querySelector(errorSelector) !== null
                    || (prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p)));
            }""" % PROMPTS_JS,
            arg=ERROR_SELECTOR,
            timeout=RUN_ALL_TIMEOUT_MS,
        )
    except sync_api.TimeoutError:
        prompts = page.evaluate(PROMPTS_JS)
        pytest.fail(f"cells did not finish within {RUN_ALL_TIMEOUT_MS / 1000:.0f} s; prompts: {prompts}; "
                    f"server log:\n{lab.log_tail()}")
    assert _errors_on_page(page) == [], "error output after Run All Cells"
    assert page.page_errors == [], f"uncaught errors in the page: {page.page_errors}"


def slider_parts(page):
    """The first slider's cell, its handle, and the readout and figure image shown under it."""
    cell = page.locator(".jp-CodeCell").filter(has=page.locator(".widget-slider")).first
    cell.wait_for()
    handle = cell.locator(".widget-slider .noUi-handle[role=slider]").first
    readout = cell.locator(".widget-html-content pre").first
    image = cell.locator(IMAGE_SELECTOR).first
    for part in (handle, readout, image):
        part.wait_for()
    return cell, handle, readout, image


def press(handle, key, times):
    for _ in range(times):
        handle.press(key)  # focuses the handle, then keydown/keyup: noUiSlider moves one step


def wait_for_src(cell, condition, src):
    """Wait until the cell's figure src is (``condition="same"``) or is not (``"new"``) ``src``.

    The image element is replaced on every display update, so look it up afresh on each poll.
    """
    cell.page.wait_for_function(
        """([cell, selector, condition, src]) => {
            const img = cell.querySelector(selector);
            if (img === null || !img.src.startsWith('data:image/png')) return false;
            return condition === 'same' ? img.src === src : img.src !== src;
        }""",
        arg=[cell.element_handle(), IMAGE_SELECTOR, condition, src],
        timeout=UPDATE_TIMEOUT_MS,
    )


def smoke_readout(a):
    x = np.linspace(0.0, 2.0 * np.pi, 200)  # as in tests/browser/slider_smoke.ipynb
    return f"a = {a:.2f}, max = {(a * np.sin(x)).max():.4f}"


def test_slider_moves_readout_and_figure(page, lab, tmp_path):
    open_and_run_all(page, lab, FIXTURE_NOTEBOOK.name)
    cell, handle, readout, image = slider_parts(page)
    assert float(handle.get_attribute("aria-valuetext")) == 1.0  # aria-valuenow is rounded to 0.1
    assert readout.inner_text() == smoke_readout(1.0)
    src_before = image.get_attribute("src")
    assert src_before.startswith("data:image/png;base64,")

    press(handle, "ArrowRight", 3)  # step 0.25: a goes 1.00 -> 1.75
    sync_api.expect(handle).to_have_attribute("aria-valuetext", "1.75", timeout=UPDATE_TIMEOUT_MS)
    sync_api.expect(readout).to_have_text(smoke_readout(1.75), timeout=UPDATE_TIMEOUT_MS)
    wait_for_src(cell, "new", src_before)
    page.get_by_text(re.compile(r"\| Idle$")).first.wait_for()  # the last update has been drawn
    src_after = image.get_attribute("src")
    assert src_after != src_before
    handle.scroll_into_view_if_needed()
    page.screenshot(path=str(_screenshot_path(tmp_path, "slider_after.png")))

    # Back to a = 1: the figure is redrawn from the artists, so it is the first picture again.
    press(handle, "ArrowLeft", 3)
    sync_api.expect(readout).to_have_text(smoke_readout(1.0), timeout=UPDATE_TIMEOUT_MS)
    wait_for_src(cell, "same", src_before)

    assert _errors_on_page(page) == [], "error output after moving the slider"
    assert page.page_errors == [], f"uncaught errors in the page: {page.page_errors}"
    assert page.locator(IMAGE_SELECTOR).count() == 1, "the view must redraw one figure in place"


def test_kl_decomposition_notebook_slider(page, lab, tmp_path):
    if not KL_NOTEBOOK.exists():
        pytest.skip(f"{KL_NOTEBOOK.relative_to(REPO)} is not there")
    if "view.show()" not in KL_NOTEBOOK.read_text():
        pytest.skip(f"{KL_NOTEBOOK.relative_to(REPO)} has no slider view")
    shutil.copy(KL_NOTEBOOK, lab.root / KL_NOTEBOOK.name)
    open_and_run_all(page, lab, KL_NOTEBOOK.name)
    cell, handle, readout, image = slider_parts(page)
    value_before = float(handle.get_attribute("aria-valuetext"))
    text_before, src_before = readout.inner_text(), image.get_attribute("src")
    assert text_before.strip(), "the readout is empty"

    press(handle, "ArrowRight", 3)
    page.wait_for_function("([h, v]) => parseFloat(h.getAttribute('aria-valuetext')) > v",
                           arg=[handle.element_handle(), value_before], timeout=UPDATE_TIMEOUT_MS)
    sync_api.expect(readout).not_to_have_text(text_before, timeout=UPDATE_TIMEOUT_MS)
    wait_for_src(cell, "new", src_before)
    page.get_by_text(re.compile(r"\| Idle$")).first.wait_for()
    assert image.get_attribute("src") != src_before
    handle.scroll_into_view_if_needed()
    page.screenshot(path=str(_screenshot_path(tmp_path, "kl_slider_after.png")))

    assert _errors_on_page(page) == [], "error output after moving the slider"
    assert page.page_errors == [], f"uncaught errors in the page: {page.page_errors}"
