"""The static site, built once per test session for ``tests/test_site.py`` and ``tests/test_site_audit.py``.

Built from the notebooks as committed (their stored outputs; nothing re-executed) and two
fixture pages, last in the contents:

- ``zz-precomputed-sliders``: ``tests/browser/precomputed_sliders.ipynb``, executed here with
  precomputed frames on, so that the player is checked whatever the notebooks hold;
- ``zz-alt-text``: a notebook written here, outputs and all, whose figures carry their
  descriptions the ways a notebook can (:data:`ALT_TEXTS`): an image output's
  ``metadata["image/png"]["alt"]``, its ``metadata["alt"]``, and a precomputed slider
  view (its output as :meth:`SliderView.show` makes it) whose every frame has its own
  words (:func:`player_alt`). Its figures are drawn at most 7 inches wide at 100 dpi or
  more, so that 10-pt text shows at 12 px or more in the site's column at 1280 px, and
  their PNGs say their dpi. Its text has a short inline formula and a long one
  (:data:`LONG_FORMULA`), wider than a phone's column and narrower than a laptop's.
"""

import base64
import importlib.util
import io
import os
import shutil
import sys
import threading
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FIXTURE = ROOT / "tests" / "browser" / "precomputed_sliders.ipynb"
FIXTURE_PAGE = "zz-precomputed-sliders"
ALT_FIXTURE_PAGE = "zz-alt-text"
FIXTURE_PAGES = sorted([FIXTURE_PAGE, ALT_FIXTURE_PAGE])  # in name order, as in the contents
PLAYER_SCALES = (0.5, 1.0, 2.0)


def player_alt(scale):
    """The alt-text fixture's player at ``scale``: words that depend on the setting, and the setting."""
    return (f"A line plot of {scale:g} sin(x) for x from 0 to 2 pi: one wave, up to {scale:g} at pi/2 and down "
            f"to {-scale:g} at 3 pi/2. Setting shown: scale = {scale:g}.")


#: The descriptions the alt-text fixture's figures carry, in page order (the player's at its first setting).
ALT_TEXTS = {
    "line": "A line plot of sin(x) for x from 0 to 2 pi: one smooth wave, up to 1 at pi/2 and down to -1 at 3 pi/2.",
    "bars": "A bar chart of five counts, 3, 7, 4, 9 and 2, for the categories a to e; d is the tallest.",
    "player": player_alt(1.0),
}
#: An inline formula of the alt-text fixture: about 500 px wide, wider than a phone's column.
LONG_FORMULA = (r"\log p(x) = \mathbb{E}_{q(z \mid x)}[\log p(x \mid z)] - \mathrm{KL}(q(z \mid x) \,\|\, p(z))"
                r" + \mathrm{KL}(q(z \mid x) \,\|\, p(z \mid x))")

_BUILT = {}
_BUILDING = threading.Lock()


def load_builder():
    """``tools/build_site.py`` as a module."""
    if "build_site" not in sys.modules:
        spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["build_site"]


def executed_fixture(target):
    """Execute the precomputed-sliders fixture into ``target`` with nbclient, precomputed frames on.

    The kernel gets its own environment; this process's is not changed (the browser test builds
    the site in a thread beside its other work).
    """
    from nbclient import NotebookClient

    nb = nbformat.read(FIXTURE, as_version=4)
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "JPY_SESSION_NAME")}
    env.update(VAELIB_STATIC_FRAMES="1", IPYTHONDIR=str(target.parent / "ipython"))  # history out of the user's
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(target.parent)}}
                   ).execute(env=env)
    nbformat.write(nb, target)


def _png(fig, dpi):
    """PNG bytes of ``fig`` at ``dpi`` (Matplotlib writes the dpi in the PNG's pHYs chunk)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _image_output(png, metadata):
    return nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(png).decode("ascii"),
                                                        "text/plain": "<Figure>"}, metadata=metadata)


def alt_text_notebook():
    """The alt-text fixture, its outputs made here as ``SliderView.show`` and ``display`` make them.

    Its figures are made without pyplot, whose list of figures another thread may be using.
    """
    import numpy as np
    from matplotlib.figure import Figure

    from vaelib.teaching.views.slider_view import (CONTROLS_ROLE, FIGURE_ROLE, FRAMES_MIME, SliderView,
                                                   value_slider)

    x = np.linspace(0.0, 2.0 * np.pi, 200)
    fig = Figure(figsize=(7, 2.5))
    ax = fig.add_subplot()
    ax.plot(x, np.sin(x))
    ax.set(xlabel="x", ylabel="sin(x)")
    line_png = _png(fig, 100)
    fig = Figure(figsize=(6, 2.5))
    ax = fig.add_subplot()
    ax.bar(list("abcde"), [3, 7, 4, 9, 2])
    ax.set(xlabel="category", ylabel="count")
    bars_png = _png(fig, 110)

    fig = Figure(figsize=(6.5, 2.5))
    ax = fig.add_subplot()
    (curve,) = ax.plot(x, np.sin(x))
    ax.set(xlabel="x", ylabel="scale sin(x)", ylim=(-2.2, 2.2))

    def update(scale):
        curve.set_ydata(scale * np.sin(x))
        return f"scale = {scale:g}, max = {scale:.4f}"

    view = SliderView(fig, {"scale": value_slider("scale", PLAYER_SCALES, 1.0)}, update,
                      alt=lambda scale: player_alt(scale).split(" Setting shown:")[0])
    frames = view.frames()  # at FRAME_DPI, with each setting's words; the live figure as show() leaves it
    controls = nbformat.v4.new_output(
        "display_data", data={FRAMES_MIME: view.frames_data(frames), "text/plain": "scale = 1"},
        metadata={"vaelib": {"role": CONTROLS_ROLE, "settings": len(frames), "frames": len(frames)}})
    live = _image_output(_png(fig, 100), {"vaelib": {"role": FIGURE_ROLE, "alt": view.alt_text()}})

    nb = nbformat.v4.new_notebook()
    nb.cells = [  # two sections, so that the page has its contents beside it and the column of a notebook's page
        nbformat.v4.new_markdown_cell("# Alt text on the site\n\nEach figure below carries its own description. "
                                      f"Inline maths, short, $z$, and long, ${LONG_FORMULA}$, in a sentence."),
        nbformat.v4.new_markdown_cell("## Two figures of one cell"),
        nbformat.v4.new_code_cell("display(line, metadata=...)\ndisplay(bars, metadata=...)", outputs=[
            _image_output(line_png, {"image/png": {"alt": ALT_TEXTS["line"]}}),
            _image_output(bars_png, {"alt": ALT_TEXTS["bars"]}),
        ]),
        nbformat.v4.new_markdown_cell("## A precomputed slider view"),
        nbformat.v4.new_code_cell("view.show()", outputs=[controls, live]),
    ]
    return nb


def built_site(tmp_path_factory):
    """The :class:`build_site.SiteReport` of the site of the notebooks and the fixtures, built once a session
    (``tests/test_site.py``, ``tests/test_site_audit.py`` and the site part of ``tests/test_browser_sliders.py``
    share it; the last builds it in a thread, so it is built under a lock)."""
    with _BUILDING:
        return _build_once(tmp_path_factory)


def _build_once(tmp_path_factory):
    if "site" not in _BUILT:
        base = tmp_path_factory.mktemp("site")
        notebooks = base / "notebooks"
        notebooks.mkdir()
        for path in NOTEBOOKS:
            shutil.copy(path, notebooks / path.name)
        executed_fixture(notebooks / f"{FIXTURE_PAGE}.ipynb")
        nbformat.write(alt_text_notebook(), notebooks / f"{ALT_FIXTURE_PAGE}.ipynb")
        _BUILT["site"] = load_builder().build_site(base / "html", notebooks=notebooks, readme=ROOT / "README.md",
                                                   stage=base / "stage", log=lambda text: None)
    return _BUILT["site"]
