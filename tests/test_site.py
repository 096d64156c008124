"""The static site (``make site``, ``tools/build_site.py``), built into a temporary folder.

Built once per session (``tests/site_fixture.py``) from the notebooks as committed (their
stored outputs; nothing re-executed), plus two fixture pages: a precomputed slider view,
executed here (``tests/browser/precomputed_sliders.ipynb``), so that the player is checked
whatever the notebooks hold; and figures whose outputs carry alt text. Checks: a page per
notebook; the front page (the README's notebook list) and the contents, with the page for
instructors; no CDN address in any built file; MathJax served from the site; every
precomputed slider view's page carries all its frames; a view that cannot be precomputed
says that it needs a kernel; each figure's alt text comes from its output's metadata.
The same site is audited in Chromium by ``tests/test_site_audit.py``.
"""

import base64
import importlib.util
import json
import re
from html.parser import HTMLParser
from math import prod

import nbformat
import pytest

from site_fixture import (ALT_FIXTURE_PAGE, ALT_TEXTS, FIXTURE_PAGE, FIXTURE_PAGES, NOTEBOOKS, PLAYER_SCALES, ROOT,
                          built_site, load_builder, player_alt)
from vaelib.teaching.views.slider_view import MAX_STATIC_FRAMES

# Hosts and words that mean a file is fetched from a CDN (checked here, independently of the builder's list).
CDN_WORDS = ("cdn.", "jsdelivr", "unpkg", "cdnjs", "googleapis", "gstatic", "bootstrapcdn", "use.fontawesome",
             "mathjax.org", "polyfill.io", "code.jquery")

pytestmark = [
    pytest.mark.slow,  # a site build: 10-30 s
    pytest.mark.skipif(importlib.util.find_spec("myst_nb") is None,
                       reason='the site tools are not installed: pip install -e ".[site]"'),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return built_site(tmp_path_factory)


class Tags(HTMLParser):
    """Start tags with their attributes, and the text, of one HTML file."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.text = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def page(site, name):
    return (site.out / f"{name}.html").read_text()


def players(html_text):
    """The data of every player on a page, in order (``tools/player.py``: sliders, start, frames)."""
    return [json.loads(m) for m in re.findall(
        r'<script type="application/json" class="vaelib-static-data">(.*?)</script>', html_text, re.S)]


def notebook_views(path):
    """``(settings, frames)`` of each slider view a notebook's stored outputs show, in order."""
    nb = nbformat.read(path, as_version=4)
    return [(o.metadata["vaelib"].get("settings"), o.metadata["vaelib"].get("frames", 0))
            for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
            if o.get("metadata", {}).get("vaelib", {}).get("role") == "slider-view-controls"]


def test_every_notebook_has_a_page(site):
    copied = sorted((site.out.parent / "notebooks").glob("*.ipynb"))
    assert [p.stem for p in copied] == [p.stem for p in NOTEBOOKS] + FIXTURE_PAGES
    for path in copied:
        html_text = page(site, path.stem)
        nb = nbformat.read(path, as_version=4)
        heading = next(line[2:] for c in nb.cells if c.cell_type == "markdown"
                       for line in c.source.splitlines() if line.startswith("# "))
        title_words = re.sub(r"[`$\\]", "", heading).split()[:3]
        assert all(word in html_text for word in title_words), f"{path.stem}.html lacks its title {heading!r}"


def test_front_page_is_the_readme_notebook_list_and_the_contents(site):
    index = page(site, "index")
    readme = (ROOT / "README.md").read_text()
    listed = re.findall(r"^\| `([0-9]{2}-[A-Za-z0-9_-]+)` \|", readme, flags=re.M)
    assert listed, "the README has no notebook table"
    for name in listed:
        if (ROOT / "notebooks" / f"{name}.ipynb").exists():
            assert f'href="{name}.html"' in index, f"the front page does not link {name}"
    # the contents: every page, in order, on the front page and in every page's navigation
    wanted = [p.stem for p in NOTEBOOKS] + FIXTURE_PAGES
    toctree = re.search(r'<div class="toctree-wrapper compound">(.*?)</div>', index, re.S).group(1)
    assert re.findall(r'href="([^"#]+)\.html"', toctree) == wanted
    for name in wanted:
        nav = re.search(r'<nav class="bd-links bd-docs-nav"[^>]*>(.*?)</nav>', page(site, name), re.S).group(1)
        others = [n for n in wanted if n != name]  # the page's own entry links to "#"
        assert [n for n in re.findall(r'href="([^"#]+)\.html"', nav) if n in wanted] == others


def test_no_built_file_names_a_cdn(site):
    offenders = []
    for path in site.out.rglob("*"):
        if path.is_file() and path.suffix in {".html", ".js", ".css", ".json", ".txt", ".svg", ".inv", ""}:
            text = path.read_text(errors="replace").lower()
            offenders += [f"{path.relative_to(site.out)}: {w}" for w in CDN_WORDS if w in text]
    assert offenders == []
    assert site.cdn_references == []


def test_every_script_and_stylesheet_is_a_file_of_the_site(site):
    for path in site.out.glob("*.html"):
        tags = Tags(path.read_text()).tags
        links = [a["src"] for t, a in tags if t == "script" and a.get("src")]
        links += [a["href"] for t, a in tags if t == "link" and a.get("rel") in ("stylesheet", "preload")]
        for link in links:
            assert not re.match(r"(https?:)?//", link), f"{path.name} loads {link}"
            assert (path.parent / link.split("?")[0]).is_file(), f"{path.name}: {link} is not in the site"


def test_mathjax_is_served_from_the_site(site):
    mathjax = site.out / "_static" / "mathjax"
    for part in ("startup.js", "core.js", "input/tex.js", "output/chtml.js"):
        assert (mathjax / part).is_file(), part
    assert len(list((mathjax / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))) >= 20
    assert list((mathjax / "input" / "tex" / "extensions").glob("*.js"))  # loaded on demand
    for name in [p.stem for p in NOTEBOOKS] + FIXTURE_PAGES:
        html_text = page(site, name)
        if 'class="math' in html_text:
            assert 'src="_static/mathjax/startup.js' in html_text, f"{name}.html has maths but no MathJax"


def test_each_precomputed_slider_page_carries_all_its_frames(site):
    fixture = players(page(site, FIXTURE_PAGE))
    assert [len(p["frames"]) for p in fixture] == [6]
    assert [s["values"] for s in fixture[0]["sliders"]] == [["0.5", "1", "2"], ["0", "0.5"]]
    for path in sorted((site.out.parent / "notebooks").glob("*.ipynb")):  # as copied for the build
        expected = [frames for _, frames in notebook_views(path) if frames]
        found = players(page(site, path.stem))
        assert [len(p["frames"]) for p in found] == expected, path.stem
        for data in found:
            assert prod(len(s["values"]) for s in data["sliders"]) == len(data["frames"])
            assert 0 <= data["start"] < len(data["frames"])
            for frame in data["frames"]:
                assert base64.b64decode(frame["png"])[:8] == b"\x89PNG\r\n\x1a\n" and frame["readout"].strip()
        assert site.page(path.stem).frames == expected


def test_every_finite_slider_view_was_saved_with_its_frames():
    """A notebook executed where frames were off (e.g. saved from JupyterLab) loses them: re-execute it."""
    stale = [f"{path.name}: a view of {settings} settings" for path in NOTEBOOKS
             for settings, frames in notebook_views(path)
             if settings is not None and settings <= MAX_STATIC_FRAMES and not frames]
    assert stale == [], ("saved without precomputed frames; re-execute with "
                         "`jupyter nbconvert --to notebook --execute --inplace`: " + "; ".join(stale))


def test_a_view_that_cannot_be_precomputed_says_it_needs_a_kernel(site):
    for report in site.pages:
        html_text = page(site, report.name)
        notes = html_text.count('class="vaelib-needs-kernel"')
        assert notes == report.kernel_views, report.name
        if notes:
            assert "make lab" in html_text


def test_no_widget_javascript_or_state_on_any_page(site):
    for path in site.out.glob("*.html"):
        html_text = path.read_text()
        for word in ("application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json",
                     "embed-amd", "require.min.js"):
            assert word not in html_text, f"{path.name}: {word}"


def images(html_text):
    """``[(src, alt, attributes)]`` of every ``img`` of a page, in order."""
    return [(a.get("src", ""), a.get("alt"), a) for t, a in Tags(html_text).tags if t == "img"]


def test_each_figure_takes_the_alt_text_its_output_carries(site):
    found = images(page(site, ALT_FIXTURE_PAGE))
    files = [(src, alt) for src, alt, _ in found if src.startswith("_images/")]
    # two images of one cell, each with its own words: metadata["image/png"]["alt"], then metadata["alt"]
    assert [alt for _, alt in files] == [ALT_TEXTS["line"], ALT_TEXTS["bars"]]
    player = [a for src, _, a in found if "vaelib-static-figure" in a.get("class", "")]
    assert len(player) == 1 and player[0]["alt"] == ALT_TEXTS["player"]
    # each frame has its own words, which name its setting
    (data,) = players(page(site, ALT_FIXTURE_PAGE))
    assert [f["alt"] for f in data["frames"]] == [player_alt(scale) for scale in PLAYER_SCALES]
    assert site.page(ALT_FIXTURE_PAGE).alt_texts and len(site.page(ALT_FIXTURE_PAGE).alt_texts) == 2


def test_an_image_without_words_keeps_what_it_had(site):
    """No description in the output: the builder leaves the image as Sphinx wrote it (the audit reports it)."""
    for report in site.pages:
        for src, alt, _ in images(page(site, report.name)):
            if alt not in report.alt_texts.values() and src.startswith("_images/"):
                assert alt == src  # docutils' default: the image's address


def test_a_players_readout_is_announced_when_it_changes(site):
    for report in site.pages:
        html_text = page(site, report.name)
        readouts = re.findall(r'<pre class="vaelib-static-readout"[^>]*>', html_text)
        in_players = len(players(html_text))
        assert sum('aria-live="polite"' in r for r in readouts) == in_players, report.name


def test_the_front_page_is_for_learners(site):
    """Grading tools and the two source documents are on the instructors' page, not the front page."""
    index, instructors = page(site, "index"), page(site, "instructors")
    for words in ("otter-grader", "nbgrader", "jupyterquiz", "two source documents"):
        assert words not in index, words
        assert words in instructors, words
    assert '<span class="caption-text">For instructors</span>' in index  # a part of the contents of its own
    assert 'href="instructors.html"' in index


def test_every_page_loads_the_sites_script_and_icon(site):
    for path in site.out.glob("*.html"):
        tags = Tags(path.read_text()).tags
        for script in ("site.js", "player.js"):
            assert any(t == "script" and a.get("src", "").startswith(f"_static/{script}") for t, a in tags), path.name
        assert any(t == "link" and a.get("rel") == "icon" and (path.parent / a["href"]).is_file()
                   for t, a in tags), path.name
        # the theme starts in light mode on a first visit (no "Got invalid theme mode")
        assert re.search(r'<html[^>]*data-theme="light"', path.read_text()), path.name


def test_the_search_buttons_name_is_its_visible_text(site):
    """WCAG 2.5.3: no aria-label ("Search") that differs from what the button shows ("Search Ctrl+K")."""
    for path in site.out.glob("*.html"):
        buttons = [a for t, a in Tags(path.read_text()).tags if t == "button" and "search-button-field" in
                   a.get("class", "")]
        assert buttons and all("aria-label" not in a for a in buttons), path.name


def test_mathjax_options_are_those_of_the_components_loaded(site):
    """The menu is not loaded, so its option is not set (MathJax warns 'Invalid option "enableMenu"');
    assistive MathML is loaded and served."""
    text = page(site, "01-elbo-sign")
    config = json.loads(re.search(r"window\.MathJax = (\{.*?\})</script>", text).group(1))
    assert "enableMenu" not in json.dumps(config)
    assert config["loader"]["load"] == ["input/tex", "output/chtml", "a11y/assistive-mml"]
    assert (site.out / "_static" / "mathjax" / "a11y" / "assistive-mml.js").is_file()


def test_a_player_is_the_sites_html_over_the_notebooks_data(site):
    """No player brings its own script or styles (``docs/_static/player.js`` and ``site.css`` do), and its
    data are those the notebook stored, whatever form the notebook stored them in."""
    for report in site.pages:
        html_text = page(site, report.name)
        for view in re.findall(r'<div class="vaelib-static-view".*?</script></div>', html_text, re.S):
            assert "<style" not in view and len(re.findall(r"<script", view)) == 1, report.name
            assert '<script type="application/json" class="vaelib-static-data">' in view


# ---------------------------------------------------------------- tools/player.py, without a site
def _player():
    load_builder()  # puts tools/ on the path
    import player

    return player


def _legacy_html():
    """A player as a notebook stored it before the frames were stored as data (two sliders, 3 x 2 frames)."""
    frames = [[base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes([k])).decode(), f"readout {k}"] for k in range(6)]
    data = json.dumps({"labels": [["0.5", "1", "2"], ["0", "0.25"]], "frames": frames})
    sliders = "".join(
        f'<label class="vaelib-static-slider"><span>{label}</span><input class="vaelib-static-input" type="range" '
        f'min="0" max="{top}" step="1" value="{value}" data-name="{name}" aria-label="{label}" aria-valuetext="x">'
        f'<output class="vaelib-static-value">x</output></label>'
        for label, name, top, value in (("β", "beta", 2, 2), ("σ", "sigma", 1, 1)))
    return (f'<div class="vaelib-static-view" id="vaelib-view-0" data-vaelib-frames="6"><style>.x{{}}</style>'
            f'<div class="vaelib-static-controls">{sliders}</div><pre class="vaelib-static-readout">readout 5</pre>'
            f'<img class="vaelib-static-figure" alt="the figure at the setting chosen above" src="data:image/png;base64,'
            f'{frames[5][0]}"><script type="application/json" class="vaelib-static-data">{data}</script>'
            f'<script>(function () {{}})();</script></div>')


def test_a_stored_html_player_is_read_back_into_frames_data():
    player = _player()
    data = player.legacy_data(_legacy_html())
    assert [(s["name"], s["label"], s["values"]) for s in data["sliders"]] == [
        ("beta", "β", ["0.5", "1", "2"]), ("sigma", "σ", ["0", "0.25"])]
    assert data["start"] == 5 and data["readout"] == "readout 5" and data["settings"] == 6
    assert [f["readout"] for f in data["frames"]] == [f"readout {k}" for k in range(6)]
    assert [f["setting"] for f in data["frames"]][:3] == ["β = 0.5, σ = 0", "β = 0.5, σ = 0.25", "β = 1, σ = 0"]
    # the live figure's words at the starting setting give each frame its words, with its own setting
    described = player.with_words(data, "Two bars; at β = 2 the KL is small. Setting shown: β = 2, σ = 0.25.")
    assert described["frames"][0]["alt"] == "Two bars; at β = 2 the KL is small. Setting shown: β = 0.5, σ = 0."
    assert player.with_words(data, "Two bars.")["frames"][1]["alt"] == "Two bars. Setting shown: β = 0.5, σ = 0.25."
    assert player.legacy_data(player.kernel_note("its sliders are continuous")) is None


def test_the_players_html_starts_at_the_stored_setting_and_carries_its_data():
    player = _player()
    data = player.with_words(player.legacy_data(_legacy_html()), "Words. Setting shown: β = 2, σ = 0.25.")
    text = player.player_html(data)
    tags = Tags(text).tags
    inputs = [a for t, a in tags if t == "input"]
    assert [(i["data-name"], i["value"], i["aria-valuetext"]) for i in inputs] == [
        ("beta", "2", "β = 2"), ("sigma", "1", "σ = 0.25")]
    image = next(a for t, a in tags if t == "img")
    assert image["src"].endswith(data["frames"][5]["png"]) and image["alt"] == "Words. Setting shown: β = 2, σ = 0.25."
    assert '<pre class="vaelib-static-readout" aria-live="polite">readout 5</pre>' in text
    assert players(text) == [data]
    assert not re.search(r"https?://", text)


def test_a_view_without_frames_says_why_it_needs_a_kernel():
    player = _player()
    view = {"sliders": [{"name": "mu", "label": "q mean mu", "values": None}], "start": None, "settings": None,
            "dpi": 100, "readout": "ELBO = -3.96", "frames": []}
    text = player.view_html(view)
    assert "its sliders are continuous" in text and "(q mean mu)" in text and "make lab" in text
    assert "ELBO = -3.96" in text and "vaelib-static-data" not in text
    assert "too many to store" in player.view_html(dict(view, settings=MAX_STATIC_FRAMES + 1))
    assert "saved without its precomputed settings" in player.view_html(dict(view, settings=4))


def test_a_continuous_view_becomes_the_note_above_its_live_figure():
    """The site's note for a view that needs a kernel, from the outputs ``SliderView.show`` makes (whether or
    not a notebook of the site has such a view)."""
    import ipywidgets as widgets
    from matplotlib.figure import Figure

    from vaelib.teaching.views.slider_view import CONTROLS_ROLE, FIGURE_ROLE, FRAMES_MIME, SliderView

    builder = load_builder()
    fig = Figure(figsize=(3, 2))
    (line,) = fig.add_subplot().plot([0.0, 1.0], [0.0, 1.0])

    def update(a):
        line.set_ydata([0.0, a])
        return f"a = {a:.2f}"

    view = SliderView(fig, {"a": widgets.FloatSlider(value=0.5, min=0.0, max=1.0, description="a")}, update)
    controls = nbformat.v4.new_output("display_data", data={FRAMES_MIME: view.frames_data(), "text/plain": "a"},
                                      metadata={"vaelib": {"role": CONTROLS_ROLE, "settings": None, "frames": 0}})
    figure = nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(view.png().data).decode()},
                                    metadata={"vaelib": {"role": FIGURE_ROLE}})
    report = builder.PageReport("continuous")
    kept = builder.static_outputs([controls, figure], report)
    assert report.kernel_views == 1 and report.unsaved_frames == 0
    note = kept[0]["data"]["text/html"]
    assert 'class="vaelib-needs-kernel"' in note and "its sliders are continuous" in note and "make lab" in note
    assert "a = 0.50" in note and "vaelib-static-data" not in note
    assert "image/png" in kept[1]["data"]  # the live figure stays, at its starting setting
