"""Sphinx configuration of the static site of the executed notebooks (``make site``).

``tools/build_site.py`` stages the sources (the notebooks, with their stored
outputs, and a front page from the README) and runs
``sphinx-build -c docs STAGE OUT``; this file is that ``-c`` directory's config.
Nothing is executed and nothing is loaded from the network, at build time or
when the site is read:

- notebooks are read with their stored outputs (``nb_execution_mode = "off"``);
- MathJax 3 is served from the site itself: the few components it needs are
  copied from the ``sphinx-mathjax-offline`` package (PyPI) into ``_static/mathjax``;
- no ipywidgets JavaScript: ``tools/build_site.py`` removes the widget views and
  their saved state, and turns each slider view's stored frames into a player
  (``tools/player.py``), which ``_static/player.js`` moves.
"""

import importlib
import shutil
from pathlib import Path

project = "Understanding the VAE"
author = "vaelib"
copyright = "vaelib authors"

extensions = ["myst_nb", "sphinx.ext.mathjax"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
master_doc = "index"

# MyST: $...$ and $$...$$ maths, as the notebooks write it.
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# MyST-NB: stored outputs only; no widget JavaScript (it would come from a CDN).
nb_execution_mode = "off"
nb_ipywidgets_js = {}
nb_merge_streams = True

# MathJax 3 from _static: the loader, TeX input (its extensions load on demand from
# input/tex/extensions), CommonHTML output with its web fonts, and assistive MathML (a
# hidden MathML copy of each formula, which screen readers read; CommonHTML alone is
# glyphs drawn by CSS). The combined components (tex-chtml.js, ...) also bundle the
# accessibility menu, whose speech-rule engine names CDN addresses as fallbacks: the
# menu (ui/menu) is not copied nor loaded, so no option of it is set either (MathJax
# warns 'Invalid option "enableMenu"' on every page when it is set without the menu).
mathjax_path = "mathjax/startup.js"
mathjax3_config = {"loader": {"load": ["input/tex", "output/chtml", "a11y/assistive-mml"]}}
MATHJAX_PARTS = ("startup.js", "core.js", "input/tex.js", "input/tex/extensions", "output/chtml.js", "output/chtml/fonts",
                 "a11y/assistive-mml.js")

html_theme = "sphinx_book_theme"
html_title = "Understanding the VAE, with every step checked"
html_static_path = ["_static"]
html_css_files = ["site.css"]
# Any figure opens at full size on a click, a tap or Enter; what scrolls sideways is in the tab order
# (docs/_static/site.js); the slider views' players move (docs/_static/player.js). No library.
html_js_files = [("site.js", {"defer": "defer"}), ("player.js", {"defer": "defer"})]
# The site's own icon: without one, browsers ask for /favicon.ico and log its 404 on every page.
html_favicon = "_static/favicon.svg"
# Overrides of theme templates, each saying why (docs/_templates).
templates_path = ["_templates"]
# The theme's colour mode on a first visit. pydata-sphinx-theme reads it from the page context; left
# unset, a first visit starts from an empty mode and the theme logs "Got invalid theme mode" before
# falling back to "auto". Light: the figures are drawn on white; the reader's choice is kept.
html_context = {"default_mode": "light"}
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
}


def mathjax_dir():
    """The MathJax 3 tree shipped by the ``sphinx-mathjax-offline`` package."""
    package = importlib.import_module("sphinx-mathjax-offline")
    return Path(package.__file__).parent / "static" / "mathjax"


def copy_mathjax(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    source, target = mathjax_dir(), Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


def setup(app):
    app.connect("build-finished", copy_mathjax)
