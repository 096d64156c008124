"""The app (``make app``): its status panel, and a cold start in a real browser with two visitors at once.

The browser test starts the app as ``make app`` does (``app/serve.py``, on a copy of ``app/``, on
127.0.0.1 and a free port) on an empty model cache, and opens it from two Chromium pages at the same
time. The app's models are the notebooks' (16 models, 30 to 60 epochs each: minutes on a busy 2-core
machine); here every model trains for one epoch, through the app's one setting for it
(``$VAELIB_APP_EPOCHS``, read by ``app_views.app_epochs``): the same models, data, cache, locks and
pages, less training. The test shows that

- each model is trained once: the cache's ``training.log`` names every entry once as trained;
- while models train, each page shows what is trained, or waited for, and a progress bar;
- both pages end with their three views, sliders and figures, and no status panel, no stderr output
  and no error;
- no request leaves 127.0.0.1, the console has no error and no warning (none from the packages
  either: see the pins of voila and jupyterlab_widgets in pyproject.toml), and Voila's log no "not trusted";
- at 1024 x 768 each slider and at least half of its figure are on screen together; at 390 px the page
  does not scroll sideways, and a tap on a figure opens it at full size;
- sliders are named and announce their shown values ("β = 1"), readouts are polite live regions,
  figures have their own alt text, which names the setting;
- axe-core finds no serious or critical violation (when ``axe-playwright-python`` is installed);
- the kernels of the closed pages are culled (the app's culling, with shorter times here).

Needs Debian's Chromium and the ``playwright`` package (never ``playwright install``) and Voila; skips
without them, and fails instead when ``VAELIB_REQUIRE_BROWSER=1`` (CI sets it).
"""

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
APP_DIR = REPO / "app"
CHROMIUM = Path(os.environ.get("VAELIB_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER = os.environ.get("VAELIB_REQUIRE_BROWSER") == "1"
#: Generous: two kernels train 16 one-epoch models and measure them on a 2-core machine shared with others.
COLD_START_TIMEOUT = 900  # s
#: The app's culling, shortened for the test: a kernel with no page and nothing to do for 60 s goes. (Not
#: shorter: a kernel that a page has not yet connected to is idle too, and on a busy machine a kernel can
#: take more than 5 s to start.)
CULL_ARGS = ["--MappingKernelManager.cull_idle_timeout=60", "--MappingKernelManager.cull_interval=5"]
sys.path.insert(0, str(APP_DIR))
import app_views  # noqa: E402

sys.path.remove(str(APP_DIR))


# ---------------------------------------------------------------- the status panel, without a browser
def test_the_status_panel_says_what_trains_how_far_and_how_long_is_left(monkeypatch):
    from vaelib.machinery.cache import TrainingProgress

    monkeypatch.delenv(app_views.EPOCHS_ENV, raising=False)
    page = app_views.ExplorerPage(views=[])
    plan = app_views.planned_epochs()
    assert len(plan) == 16 and plan[0] == 30 and plan[-1] == 60
    page.cache.asked = 3  # the views have asked for three models: this is the third
    page.report(TrainingProgress("beta = 0.1", epochs=30, epoch=10, seconds=20.0))
    status = page.status.value
    assert "Training model 3 of 16: beta = 0.1, epoch 10 of 30." in status
    assert '<progress max="30" value="10"' in status
    later = sum(plan[3:])  # 20 epochs to go here, then every later model, at 2 s an epoch
    assert f"About {round((20 + later) * 2 / 60)} min left" in status
    page.report(TrainingProgress("beta = 0.1", epochs=30, epoch=12, seconds=24.0, waiting=True, pid=4242))
    assert "Another page is training model 3 of 16: beta = 0.1, epoch 12 of 30." in page.status.value
    assert "This page reads it when it is done." in page.status.value
    page.report(TrainingProgress("beta = 0.1", epochs=30, epoch=30, seconds=60.0, waiting=True, pid=4242, done=True))
    assert "Model 3 of 16 is trained: beta = 0.1." in page.status.value
    assert "Test configuration" not in page.status.value


def test_the_epochs_setting_is_read_in_one_place_and_the_page_names_it(monkeypatch):
    monkeypatch.setenv(app_views.EPOCHS_ENV, "2")
    assert app_views.app_epochs(30) == 2 and set(app_views.planned_epochs()) == {2}
    page = app_views.ExplorerPage(views=[])
    assert "Test configuration" in page.status.value and app_views.EPOCHS_ENV in page.status.value
    monkeypatch.delenv(app_views.EPOCHS_ENV)
    assert app_views.app_epochs(30) == 30


def test_every_view_has_its_own_alt_words_and_the_glossary_defines_the_terms():
    # the β, σ and posterior views carry their own words (tests/test_views_tradeoff_explorer.py,
    # tests/test_views_posterior_view.py); the app gives the rest theirs
    assert [entry.key for entry in app_views.VIEWS if entry.alt is None] == ["beta", "sigma", "posterior"]
    alts = [entry.alt for entry in app_views.VIEWS if entry.alt is not None]
    assert len(set(alts)) == len(alts) and all(len(a.split()) >= 30 for a in alts)
    import nbformat

    intro = nbformat.read(APP_DIR / "explorer.ipynb", as_version=4).cells[0].source
    glossary = [line for line in intro.splitlines() if line.startswith("- ")]
    assert len(glossary) == 3
    for term in ("**Rate**", "**distortion**", "**Active units**", "**approximation gap**", "**amortisation gap**"):
        assert term in intro


# ---------------------------------------------------------------- the browser
def _cannot_run(reason):
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason}; VAELIB_REQUIRE_BROWSER=1 says the browser test must run", pytrace=False)
    pytest.skip(reason)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid):
    """Every process below ``pid`` (kernels run in sessions of their own), read from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [], [pid]
    while frontier:
        frontier = [p for p, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def _kernels(server_pid):
    kernels = []
    for pid in _descendants(server_pid):
        try:
            if b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes():
                kernels.append(pid)
        except OSError:
            continue
    return kernels


@pytest.fixture
def cold_app(tmp_path):
    """The app as ``make app`` starts it, on a copy of ``app/``, with an empty model cache and one-epoch models."""
    if importlib.util.find_spec("voila") is None:
        _cannot_run('Voila is not installed (pip install -e ".[site]")')
    root = tmp_path / "app"
    shutil.copytree(APP_DIR, root, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "JPY_SESSION_NAME", "JUPYTER_PATH")}
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "MPLCONFIGDIR"):
        env[name] = str(tmp_path / name.lower())
    env.update(JUPYTER_PLATFORM_DIRS="0", VAELIB_CACHE=str(tmp_path / "models"), VAELIB_APP_EPOCHS="1",
               PYTHONDONTWRITEBYTECODE="1")
    port = _free_port()
    log = tmp_path / "voila.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, str(root / "serve.py"), "--no-browser", f"--Voila.port={port}",
                                 "--Voila.port_retries=0", *CULL_ARGS], cwd=tmp_path, env=env, stdout=log_file,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, f"the app exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/static/", timeout=2)
            break
        except urllib.error.HTTPError:
            break  # it answers
        except OSError:
            assert time.monotonic() < deadline, f"the app did not answer:\n{log.read_text()[-3000:]}"
            time.sleep(0.3)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "proc": proc, "log": log, "cache": tmp_path / "models"}
    finally:
        kernels = _kernels(proc.pid)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        for pid in kernels:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def browser(tmp_path):
    try:
        from playwright import sync_api
    except ImportError:
        _cannot_run("the playwright Python package is not installed")
    if not CHROMIUM.exists():
        _cannot_run(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg-config"), XDG_CACHE_HOME=str(tmp_path / "xdg-cache"))
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, env=env,
                               args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                     "--disable-background-networking", "--disable-component-update"])
        try:
            yield b
        finally:
            b.close()


def _open(browser, url, width=1280, height=800):
    """A page whose requests may go to 127.0.0.1 only (others are blocked and recorded), with its console."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.console, page.outside = [], []
    page.on("console", lambda m: page.console.append((m.type, m.text)))
    page.on("pageerror", lambda e: page.console.append(("pageerror", str(e))))

    def only_loopback(route):
        if re.match(r"(https?|wss?)://127\.0\.0\.1[:/]", route.request.url) or \
                route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            page.outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    page.goto(url)
    return page


STATE_JS = """() => {
  const status = document.querySelector('.vaelib-app-status');
  return {
    status: status ? status.innerText : null,
    progress: status ? status.querySelectorAll('progress').length : 0,
    views: [...document.querySelectorAll('.vaelib-slider-view')].filter(v => v.querySelector('img')).length,
    stderr: document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]').length,
    errors: document.querySelectorAll('.jupyter-widgets-error-widget, .jp-OutputArea-output[data-mime-type='
                                      + '"application/vnd.jupyter.error"]').length,
  };
}"""


@pytest.mark.browser
def test_two_visitors_on_an_empty_cache_train_each_model_once(cold_app, browser, tmp_path):
    start = time.monotonic()
    pages = [_open(browser, cold_app["url"]) for _ in range(2)]  # both at once
    seen = [[] for _ in pages]  # status texts shown while the models train
    ready = [None, None]
    while None in ready:
        assert time.monotonic() - start < COLD_START_TIMEOUT, \
            f"the pages were not ready in {COLD_START_TIMEOUT} s: {seen}\n{cold_app['log'].read_text()[-3000:]}"
        for i, page in enumerate(pages):
            if ready[i] is not None:
                continue
            state = page.evaluate(STATE_JS)
            assert state["stderr"] == 0 and state["errors"] == 0, f"page {i + 1}: {page.inner_text('body')[-2000:]}"
            if state["status"] and state["progress"]:
                seen[i].append(state["status"])
            if state["views"] == 3 and state["status"] is None:
                ready[i] = time.monotonic() - start
        time.sleep(0.5)
    print(f"cold start, two pages at once: views on the pages after {ready[0]:.0f} s and {ready[1]:.0f} s")

    # each model trained once, though both pages asked for all of them
    records = json.loads("[" + ",".join((cold_app["cache"] / "training.log").read_text().splitlines()) + "]")
    trained = Counter(r["entry"] for r in records if r["event"] == "trained")
    assert len(trained) == len(app_views.planned_epochs()) and set(trained.values()) == {1}, trained
    entries = sorted(p.name for p in cold_app["cache"].glob("*.npz"))
    assert entries == sorted(trained)
    waits = [r for r in records if r["event"] == "waited"]
    print(f"trainings: {len(trained)} models, each once, by {len({r['pid'] for r in records})} kernels; "
          f"waits for the other kernel's training: {len(waits)}")

    # while the models trained, the pages said what and showed a progress bar
    shown = "\n".join(seen[0] + seen[1])
    assert re.search(r"Training model \d+ of 16: .+, epoch \d of 1\.", shown), shown[:2000]
    assert all(seen), "a page never showed the training's progress"

    for i, page in enumerate(pages):
        state = page.evaluate(STATE_JS)
        assert state == {"status": None, "progress": 0, "views": 3, "stderr": 0, "errors": 0}, (i, state)
        assert page.outside == [], f"page {i + 1} asked another host for {page.outside}"
        errors = [text for kind, text in page.console if kind in ("error", "pageerror")]
        assert errors == [], errors
        # none from the packages either: Voila's page and the widget extension are built for one JupyterLab
        # (pyproject.toml pins them), so webpack has no "Unsatisfied version" of a shared module to report
        warnings = [text for kind, text in page.console if kind == "warning"]
        assert warnings == [], warnings
    assert "not trusted" not in cold_app["log"].read_text()

    _check_accessibility(pages[0])
    _check_layout(pages[1], tmp_path)

    # the kernels of closed pages are culled
    assert len(_kernels(cold_app["proc"].pid)) == 2
    for page in pages:
        page.context.close()
    deadline = time.monotonic() + 240
    while _kernels(cold_app["proc"].pid):
        assert time.monotonic() < deadline, "the kernels of the closed pages are still running"
        time.sleep(1)


def _check_accessibility(page):
    """Named sliders that announce their shown values, live readouts, figures with their own alt text; axe-core."""
    sliders = page.evaluate("""() => [...document.querySelectorAll('.vaelib-slider-view .widget-slider')].map(s => ({
        label: s.querySelector('.widget-label').textContent.trim(),
        name: s.querySelector('[role=slider]').getAttribute('aria-label'),
        valuetext: s.querySelector('[role=slider]').getAttribute('aria-valuetext'),
        shown: s.querySelector('.widget-readout').textContent.trim()}))""")
    assert [s["label"] for s in sliders] == ["β", "σ", "test digit"]
    for s in sliders:
        assert s["name"] == s["label"] and s["valuetext"] == f"{s['label']} = {s['shown']}", s
    assert sliders[0]["valuetext"] == "β = 1"
    live = page.evaluate("() => [...document.querySelectorAll('.vaelib-readout')].map(r => r.getAttribute('aria-live'))")
    assert live == ["polite"] * 3
    alts = page.evaluate("() => [...document.querySelectorAll('img.vaelib-figure')].map(i => i.alt)")
    assert len(set(alts)) == 3 and all("Setting shown:" in a for a in alts)
    assert alts[0].endswith("Setting shown: β = 1.")

    handle = page.locator(".vaelib-slider-view").first.locator("[role=slider]")
    handle.press("ArrowRight")  # β = 1 -> 2: the handle, the alt text and the readout follow
    page.wait_for_function("() => document.querySelector('img.vaelib-figure').alt.endsWith('Setting shown: β = 2.')")
    assert handle.get_attribute("aria-valuetext") == "β = 2"
    page.wait_for_function("() => document.querySelector('.vaelib-readout pre').textContent.startsWith('β = 2')")

    if importlib.util.find_spec("axe_playwright_python") is None:
        print("axe-playwright-python is not installed: no axe-core audit of the app")
        return
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    serious = [(v["id"], v["impact"], len(v["nodes"])) for v in violations if v["impact"] in ("serious", "critical")]
    print(f"axe-core on the app: {[(v['id'], v['impact']) for v in violations]}")
    assert serious == []


def _check_layout(page, tmp_path):
    """At 1024 x 768: each slider, scrolled to the top of the window, and at least half of its figure on screen."""
    for width, height in ((1024, 768), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        time.sleep(0.5)
        for k in range(3):
            seen = page.evaluate("""(k) => {
                const box = document.querySelectorAll('.vaelib-slider-view')[k];
                const slider = box.querySelector('.widget-slider');
                slider.scrollIntoView({block: 'start'});
                const s = slider.getBoundingClientRect(), r = box.querySelector('img').getBoundingClientRect();
                const visible = Math.max(0, Math.min(r.bottom, innerHeight) - Math.max(r.top, 0));
                return {slider: s.top >= -1 && s.bottom <= innerHeight + 1, figure: visible / r.height,
                        page_width: document.documentElement.scrollWidth};
            }""", k)
            if width == 1024:
                assert seen["slider"] and seen["figure"] >= 0.5, (k, seen)
            assert seen["page_width"] <= width, f"the page scrolls sideways at {width} px: {seen}"
        page.screenshot(path=str(tmp_path / f"app-{width}.png"))
    figure = page.locator("img.vaelib-figure").first  # on a phone: a tap opens the figure at full size
    figure.click()
    zoomed = page.locator("dialog.vaelib-zoom img")
    zoomed.wait_for()
    assert zoomed.evaluate("i => i.getBoundingClientRect().width === i.naturalWidth && i.naturalWidth > 390")
    assert zoomed.get_attribute("alt") == figure.get_attribute("alt")
    page.keyboard.press("Escape")
    page.locator("dialog.vaelib-zoom").wait_for(state="detached")
