"""Time slider moves in a real browser: from a key press to the changed figure.

    python benchmarks/bench_browser.py [--moves 20] [--notebook notebooks/04-reparameterisation.ipynb ...]

Starts the app (Voila on ``app/explorer.ipynb``, as ``make app`` does) on a free
port of 127.0.0.1, opens it in headless Chromium (Debian's ``/usr/bin/chromium``
through Playwright; nothing is downloaded), and presses an arrow key on each
slider of each view ``--moves`` times, alternating right and left, waiting each
time for the figure to change. The time of each move is measured in the page:
from the ``keydown`` event to the moment the figure's image is replaced. With
``--notebook``, the same in JupyterLab for those notebooks (their cells run up to
their last slider view first). Prints the median and range per slider.

Run it once models are cached (a first ``make app`` trains them). The target is
under 300 ms per move; this script reports, it does not judge.
"""

import argparse
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("VAELIB_CHROMIUM", "/usr/bin/chromium")

WATCH_JS = """(k) => {
  const boxes = [...document.querySelectorAll('.vaelib-slider-view')];
  const image = () => {
    const inside = boxes[k].querySelector('img');  // the figure as a widget (the app)
    if (inside) return inside;
    const child = boxes[k].closest('.jp-OutputArea-child');
    for (let n = child.nextElementSibling; n; n = n.nextElementSibling) {
      const img = n.querySelector('img'); if (img) return img;
    }
    return null;
  };
  const before = image().src;
  const move = {start: null, changed: null};
  window.benchMove = move;
  document.addEventListener('keydown', () => { if (move.start === null) move.start = performance.now(); },
                            {capture: true, once: true});
  const observer = new MutationObserver(() => {
    const img = image();
    if (move.start !== null && img && img.src !== before) { move.changed = performance.now(); observer.disconnect(); }
  });
  observer.observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, cwd, env, ready_url, log):
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{cmd[2]} exited with code {proc.returncode}; see {log.name}")
        try:
            if ready_url.startswith("tcp:"):  # the port accepts connections
                socket.create_connection(("127.0.0.1", int(ready_url[4:])), timeout=2).close()
            else:
                urllib.request.urlopen(ready_url, timeout=2).close()
            return proc
        except OSError:
            time.sleep(0.3)
    stop(proc)
    raise SystemExit(f"{cmd[2]} did not start; see {log.name}")


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def isolated_env(base):
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "JPY_SESSION_NAME")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(Path(base) / name.lower())
        os.makedirs(env[name], exist_ok=True)
    env["VAELIB_STATIC_FRAMES"] = "0"
    return env


def time_moves(page, label, n_moves):
    """Press arrow keys on every slider of every view on the page; return {slider label: [ms, ...]}."""
    results = {}
    boxes = page.locator(".vaelib-slider-view")
    for k in range(boxes.count()):
        box = boxes.nth(k)
        box.scroll_into_view_if_needed()
        sliders = box.locator(".widget-slider")
        for j in range(sliders.count()):
            handle = sliders.nth(j).locator(".noUi-handle[role=slider]")
            name = sliders.nth(j).locator(".widget-label").inner_text().strip() or f"slider {j + 1}"
            times = []
            for i in range(n_moves):
                now, high = (float(handle.get_attribute(a)) for a in ("aria-valuenow", "aria-valuemax"))
                key = "ArrowLeft" if (i % 2 == 1 or now >= high) else "ArrowRight"
                page.evaluate(WATCH_JS, k)
                handle.press(key)
                page.wait_for_function("() => window.benchMove.changed !== null", timeout=60_000)
                move = page.evaluate("() => window.benchMove")
                times.append(move["changed"] - move["start"])
            results[f"{label}, view {k + 1}, {name}"] = times
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", type=int, default=20, help="key presses per slider")
    parser.add_argument("--notebook", type=Path, action="append", default=[],
                        help="also time the sliders of this notebook in JupyterLab")
    parser.add_argument("--no-app", action="store_true", help="skip the app")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    results, procs = {}, []
    with tempfile.TemporaryDirectory() as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(120_000)
        page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), lambda route: route.abort())
        env = isolated_env(base)
        try:
            if not args.no_app:
                port = free_port()
                log = open(Path(base) / "voila.log", "wb")
                procs.append(start([sys.executable, "-m", "voila", str(ROOT / "app" / "explorer.ipynb"),
                                    "--no-browser", "--Voila.ip=127.0.0.1", "--preheat_kernel=True", f"--Voila.port={port}",
                                    "--Voila.port_retries=0", "--theme=light"],
                                   ROOT / "app", env, f"tcp:{port}", log))
                opened = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/", timeout=900_000)
                page.wait_for_function("() => document.querySelectorAll('.vaelib-slider-view').length > 0 && "
                                       "!document.querySelector('#loading')", timeout=900_000)
                page.wait_for_timeout(1000)
                print(f"app: page ready in {time.perf_counter() - opened:.1f} s")
                results.update(time_moves(page, "app", args.moves))
            for notebook in args.notebook:
                results.update(bench_notebook(page, notebook.resolve(), base, env, procs, args.moves))
        finally:
            browser.close()
            for proc in procs:
                stop(proc)
    print(f"\nmove -> changed image, {args.moves} key presses per slider (ms):")
    for label, times in results.items():
        print(f"  {label:55s} median {statistics.median(times):6.0f}   range {min(times):5.0f} - {max(times):5.0f}")
    every = [t for times in results.values() for t in times]
    if every:
        print(f"  {'all moves':55s} median {statistics.median(every):6.0f}   (n = {len(every)})")
    return 0


def bench_notebook(page, notebook, base, env, procs, n_moves):
    """Run a notebook's cells up to its last slider view in JupyterLab, then time its sliders."""
    import shutil

    root = Path(base) / "lab-root"
    root.mkdir(exist_ok=True)
    shutil.copy(notebook, root / notebook.name)
    nb = json.loads(notebook.read_text())
    upto = max(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
               and re.search(r"\b\w*view\w*\.show\(", "".join(c["source"])))
    if not any(p.args[2] == "jupyterlab" for p in procs if isinstance(p.args, list)):
        port, token = free_port(), secrets.token_hex(8)
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.news_url=None"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        log = open(Path(base) / "lab.log", "wb")
        procs.append(start(cmd, root, env, f"http://127.0.0.1:{port}/api/status?token={token}", log))
        bench_notebook.url = f"http://127.0.0.1:{port}/lab/tree/{{}}?token={token}&reset"
    page.goto(bench_notebook.url.format(notebook.name))
    page.get_by_text(re.compile(r"\| Idle$")).first.wait_for()
    cell = page.locator(".jp-Notebook .jp-Cell").nth(upto)
    cell.locator(".jp-InputPrompt").click()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Above Selected Cell", exact=True).click()
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Enter")  # run the selected cell, stay on it
    cell.locator(".vaelib-slider-view").first.wait_for(timeout=900_000)
    page.get_by_text(re.compile(r"\| Idle$")).first.wait_for(timeout=900_000)
    return time_moves(page, notebook.stem, n_moves)


if __name__ == "__main__":
    sys.exit(main())
