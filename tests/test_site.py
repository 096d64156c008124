"""The static site (``make site``, ``tools/build_site.py``), built into a temporary folder.

Built from the notebooks as committed (their stored outputs; nothing re-executed),
plus one fixture notebook with a precomputed slider view, executed here
(``tests/browser/precomputed_sliders.ipynb``), so that the player is checked
whatever the notebooks hold. Checks: a page per notebook; the front page (the
README's notebook list) and the contents; no CDN address in any built file;
MathJax served from the site; every precomputed slider view's page carries all
its frames; a view that cannot be precomputed says that it needs a kernel.
"""

import base64
import importlib.util
import json
import re
import shutil
import sys
from html.parser import HTMLParser
from math import prod
from pathlib import Path

import nbformat
import pytest

from vaelib.teaching.views.slider_view import MAX_STATIC_FRAMES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FIXTURE = ROOT / "tests" / "browser" / "precomputed_sliders.ipynb"
FIXTURE_PAGE = "zz-precomputed-sliders"  # last in the contents
# Hosts and words that mean a file is fetched from a CDN (checked here, independently of the builder's list).
CDN_WORDS = ("cdn.", "jsdelivr", "unpkg", "cdnjs", "googleapis", "gstatic", "bootstrapcdn", "use.fontawesome",
             "mathjax.org", "polyfill.io", "code.jquery")

pytestmark = [
    pytest.mark.slow,  # a site build: 10-30 s
    pytest.mark.skipif(importlib.util.find_spec("myst_nb") is None,
                       reason='the site tools are not installed: pip install -e ".[site]"'),
]


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build_site = _load_builder()


def _executed_fixture(target):
    """Execute the fixture notebook into ``target`` with nbclient, precomputed frames on."""
    from nbclient import NotebookClient

    nb = nbformat.read(FIXTURE, as_version=4)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VAELIB_STATIC_FRAMES", "1")
        env.setenv("IPYTHONDIR", str(target.parent / "ipython"))  # the kernel's history stays out of the user's
        env.delenv("MPLBACKEND", raising=False)
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(target.parent)}}
                       ).execute()
    nbformat.write(nb, target)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("site")
    notebooks = base / "notebooks"
    notebooks.mkdir()
    for path in NOTEBOOKS:
        shutil.copy(path, notebooks / path.name)
    _executed_fixture(notebooks / f"{FIXTURE_PAGE}.ipynb")
    report = build_site.build_site(base / "html", notebooks=notebooks, readme=ROOT / "README.md",
                                   stage=base / "stage", log=lambda text: None)
    return report


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
    """The frame data of every static player on a page, in order."""
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
    assert [p.stem for p in copied] == [p.stem for p in NOTEBOOKS] + [FIXTURE_PAGE]
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
    wanted = [p.stem for p in NOTEBOOKS] + [FIXTURE_PAGE]
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
    for name in [p.stem for p in NOTEBOOKS] + [FIXTURE_PAGE]:
        html_text = page(site, name)
        if 'class="math' in html_text:
            assert 'src="_static/mathjax/startup.js' in html_text, f"{name}.html has maths but no MathJax"


def test_each_precomputed_slider_page_carries_all_its_frames(site):
    fixture = players(page(site, FIXTURE_PAGE))
    assert [len(p["frames"]) for p in fixture] == [6] and fixture[0]["labels"] == [["0.5", "1", "2"], ["0", "0.5"]]
    for path in sorted((site.out.parent / "notebooks").glob("*.ipynb")):  # as copied for the build
        expected = [frames for _, frames in notebook_views(path) if frames]
        found = players(page(site, path.stem))
        assert [len(p["frames"]) for p in found] == expected, path.stem
        for data in found:
            assert prod(len(labels) for labels in data["labels"]) == len(data["frames"])
            for png, readout in data["frames"]:
                assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n" and readout.strip()
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
