"""Build the static site of the executed notebooks (``make site``).

    python tools/build_site.py [--out build/site] [--notebooks notebooks] [--readme README.md]

Every ``notebooks/*.ipynb`` becomes a page, with the outputs stored in it (nothing
is executed); the front page is the README's notebook list, followed by the
contents. The notebooks are staged first, each output kept as it is except:

- a slider view's sliders (:meth:`vaelib.teaching.views.slider_view.SliderView.show`)
  become what their output's frames data (``application/vnd.vaelib.frames+json``) makes
  with ``tools/player.py``: a player over the precomputed frames, which replaces the live
  figure under it, or, for a view that cannot be precomputed, a note that the figure needs
  a running kernel (``make lab``) above its first picture. A notebook executed before the
  frames were stored as data carries a player in the sliders' ``text/html``: its frames are
  read back into the same data (:func:`player.legacy_data`), so every page has one player;
- any other widget keeps its plain-text form, and the saved widget state goes, so
  that no page loads the ipywidgets JavaScript (from a CDN).

Alt text travels with the notebook: an image output's description is its
``metadata["image/png"]["alt"]`` (what ``IPython.display.Image(..., alt=...)`` and
``display(fig, metadata={"image/png": {"alt": ...}})`` write, and what nbconvert's
``classic`` template reads), or ``metadata["alt"]``, or ``metadata["vaelib"]["alt"]``
(a slider view's figure). MyST-NB uses only an output's width and height (an alt text
only from cell metadata, one for all of a cell's images), so the builder puts each
description on its own image after Sphinx has written the pages (:func:`apply_alt_texts`;
images are matched by content). A player's frames carry their own words, each naming its
setting, and ``docs/_static/player.js`` puts those of the frame shown on the image; a
stored HTML player takes the words of the live figure it replaces, with each frame's
setting in place of the starting one. The player's readout is announced when it changes
(``aria-live="polite"``).

Besides the notebooks the site has the pages listed in :data:`EXTRA_PAGES`
(``docs/instructors.md``), after the notebooks in the contents.

Then ``sphinx-build`` (MyST-NB, configuration in ``docs/conf.py``) writes the
site, and every file written is searched for CDN addresses: the site must work
without a network. Exit status 1 if one is found; 2 if a view that can be
precomputed was saved without its frames (re-execute that notebook with
``jupyter nbconvert --execute``).
"""

import argparse
import base64
import hashlib
import html
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import nbformat

from vaelib.teaching.views.slider_view import CONTROLS_ROLE, FIGURE_ROLE, FRAMES_MIME, MAX_STATIC_FRAMES

sys.path.insert(0, str(Path(__file__).resolve().parent))
import player  # noqa: E402  (tools/player.py)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: Substrings that name a CDN or a remote font/script host; none may appear in a built file.
CDN_PATTERNS = ("cdn.", "jsdelivr", "unpkg", "cdnjs", "googleapis", "gstatic", "bootstrapcdn", "aspnetcdn",
                "use.fontawesome.com", "kit.fontawesome.com", "mathjax.org", "polyfill.io", "code.jquery.com")
TEXT_SUFFIXES = {".html", ".js", ".css", ".json", ".txt", ".xml", ".svg", ".map", ".inv", ".ipynb", ".md", ""}
#: The note for a view's sliders saved with neither frames data nor a player.
KERNEL_NOTE = player.kernel_note(player.UNSAVED)
#: Pages of the site that are not notebooks, after the notebooks in the contents: (source, caption).
EXTRA_PAGES = [(DOCS / "instructors.md", "For instructors")]
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")


@dataclass
class PageReport:
    """What staging found in one notebook."""

    name: str
    frames: list = field(default_factory=list)  # frames of each precomputed view, in order
    kernel_views: int = 0  # views that need a kernel (continuous or too many settings)
    unsaved_frames: int = 0  # views that could be precomputed but were saved without frames
    alt_texts: dict = field(default_factory=dict)  # {sha256 of an image's bytes: its description}


@dataclass
class SiteReport:
    out: Path
    pages: list  # PageReport, in order
    seconds: float
    cdn_references: list  # (path, pattern), empty when the site is clean

    def page(self, name):
        return next(p for p in self.pages if p.name == name)


def discover_notebooks(folder):
    """The notebooks of ``folder``, in name order (``00-...``, ``01-...``)."""
    return sorted(p for p in Path(folder).glob("*.ipynb") if not p.name.startswith("."))


def _role(output):
    return (output.get("metadata") or {}).get("vaelib", {}).get("role")


def output_alt(output, mime_type):
    """An output's description of its image, or None: ``metadata[mime_type]["alt"]``, else ``metadata["alt"]``,
    else ``metadata["vaelib"]["alt"]`` (a slider view's figure, :class:`~vaelib.teaching.views.slider_view.SliderView`)."""
    meta = output.get("metadata") or {}
    alt = (meta.get(mime_type) or {}).get("alt") or meta.get("alt") or (meta.get("vaelib") or {}).get("alt")
    return " ".join(str(alt).split()) if alt else None


def image_digest(data):
    """SHA-256 of an image output's bytes (base64 text in the notebook), as hex."""
    text = "".join(data) if isinstance(data, list) else data
    return hashlib.sha256(base64.b64decode(text)).hexdigest()


def _text(value):
    return "".join(value) if isinstance(value, list) else value


def static_outputs(outputs, report):
    """The outputs of one code cell as the site shows them (see the module docstring)."""
    kept = []
    shown = False  # a player was just shown: the live figure that follows goes
    stored = None  # (index in ``kept``, data) of a stored HTML player, until its figure comes with its words
    for output in outputs:
        role = _role(output)
        data = output.get("data") or {}
        if role == CONTROLS_ROLE:
            meta = output["metadata"]["vaelib"]
            frames, settings = int(meta.get("frames") or 0), meta.get("settings")
            if frames:
                report.frames.append(frames)
            else:
                report.kernel_views += 1
                report.unsaved_frames += settings is not None and settings <= MAX_STATIC_FRAMES
            view = data.get(FRAMES_MIME)
            if view is not None:
                text = player.view_html(view)
                stored = None
            else:  # executed before the frames were stored as data
                view = player.legacy_data(_text(data.get("text/html", ""))) if frames else None
                text = player.player_html(view) if view else _text(data.get("text/html", KERNEL_NOTE))
                stored = (len(kept), view) if view else None
            output = nbformat.from_dict({**output, "data": {"text/html": text}})
            kept.append(output)
            shown = bool(view and view["frames"])
            continue
        if role == FIGURE_ROLE and shown:
            # the live figure, which the player replaces; a stored player takes its words
            if stored is not None:
                index, view = stored
                text = player.player_html(player.with_words(view, output_alt(output, "image/png")))
                kept[index] = nbformat.from_dict({**kept[index], "data": {"text/html": text}})
            stored, shown = None, False
            continue
        if WIDGET_VIEW in data:
            text = _text(data.get("text/plain", ""))
            if text and not re.match(r"[A-Z][A-Za-z]*\(", text):  # e.g. a progress bar's text
                output = nbformat.from_dict({**output, "data": {"text/plain": text}})
            else:
                continue
        for mime_type in IMAGE_TYPES:
            alt = output_alt(output, mime_type) if mime_type in (output.get("data") or {}) else None
            if alt:
                report.alt_texts[image_digest(output["data"][mime_type])] = alt
        kept.append(output)
    return kept


def static_notebook(path):
    """Read a notebook and return ``(notebook, PageReport)`` with its outputs made static."""
    nb = nbformat.read(path, as_version=4)
    report = PageReport(Path(path).stem)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = static_outputs(cell.outputs, report)
    return nb, report


def front_page(readme_text, names, extra=()):
    """MyST source of the front page: the README's title and its section "The notebooks", then the contents.

    Notebook names in the table's first column become links to their pages. ``extra``
    is ``[(page name, caption)]``: pages after the notebooks, each under its caption.
    """
    title = next((line[2:].strip() for line in readme_text.splitlines() if line.startswith("# ")),
                 "The notebooks")
    match = re.search(r"^## The notebooks\s*$(.*?)(?=^## |\Z)", readme_text, flags=re.M | re.S)
    section = match.group(1).strip() if match else ""

    def link(m):
        name = m.group(1)
        return f"| [{name}]({name}.ipynb) |" if name in names else m.group(0)

    section = re.sub(r"^\| `([0-9]{2}-[A-Za-z0-9_-]+)` \|", link, section, flags=re.M)
    toctree = "\n".join(names)
    others = "".join(f"\n```{{toctree}}\n:maxdepth: 1\n:caption: {caption}\n\n{name}\n```\n" for name, caption in extra)
    return (
        f"# {title}\n\n## The notebooks\n\n{section}\n\n"
        "Each page shows a notebook as it was last executed, outputs and all. A figure with sliders "
        "can be moved here among the settings computed in advance; a figure whose sliders are continuous "
        "says so, and moves in a running notebook: `make lab`. A click, a tap or Enter on any figure "
        "shows it at full size.\n\n"
        f"```{{toctree}}\n:maxdepth: 1\n:caption: Notebooks\n\n{toctree}\n```\n{others}"
    )


class _Images(HTMLParser):
    """``(start, end, attributes)`` of every ``img`` tag of an HTML text (offsets into the text)."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.found = []
        self._lines = [0] + [m.end() for m in re.finditer("\n", text)]  # where each line starts, as getpos counts
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            line, column = self.getpos()
            start = self._lines[line - 1] + column
            self.found.append((start, start + len(self.get_starttag_text()), dict(attrs)))

    handle_startendtag = handle_starttag


def apply_alt_texts(page, alt_texts):
    """Give each image of a built page the description its notebook output carries.

    Parameters
    ----------
    page : Path
        An HTML page of the site; its images are files of the site (MyST-NB writes them to ``_images/``).
    alt_texts : dict
        ``{sha256 of the image's bytes: description}``, from :attr:`PageReport.alt_texts`.

    Returns
    -------
    int
        The number of images described.
    """
    text = page.read_text()
    edits = []
    for start, end, attrs in _Images(text).found:
        src = attrs.get("src") or ""
        path = page.parent / src.split("?")[0]
        if src.startswith("data:") or not path.is_file():
            continue
        alt = alt_texts.get(hashlib.sha256(path.read_bytes()).hexdigest())
        if alt is None:
            continue
        tag = re.sub(r'\salt="[^"]*"', "", text[start:end])
        tag = re.sub(r"^<img", f'<img alt="{html.escape(alt, quote=True)}"', tag)
        edits.append((start, end, tag))
    for start, end, tag in reversed(edits):
        text = text[:start] + tag + text[end:]
    if edits:
        page.write_text(text)
    return len(edits)


def cdn_references(root):
    """Every ``(file, pattern)`` under ``root`` whose text names a CDN (see :data:`CDN_PATTERNS`)."""
    found = []
    for path in sorted(Path(root).rglob("*")):
        if not path.is_file() or path.suffix.lower() not in TEXT_SUFFIXES:
            continue
        text = path.read_text(errors="replace").lower()
        found += [(path, p) for p in CDN_PATTERNS if p in text]
    return found


def build_site(out, notebooks=ROOT / "notebooks", readme=ROOT / "README.md", stage=None, log=print,
               extra_pages=EXTRA_PAGES):
    """Stage the notebooks and front page, run Sphinx, put the site in ``out``; return a :class:`SiteReport`.

    ``out`` is emptied first. The staging folder (``stage``, default ``out`` + "-src",
    removed afterwards) holds the staged sources, Sphinx's caches and MyST-NB's copies.
    ``extra_pages`` is ``[(MyST file, caption)]``, as :data:`EXTRA_PAGES`.
    """
    start = time.perf_counter()
    out = Path(out)
    keep_stage = stage is not None
    stage = Path(stage) if keep_stage else out.parent / (out.name + "-src")
    for folder in (stage, out):
        if folder.exists():
            shutil.rmtree(folder)
    source = stage / "src"
    source.mkdir(parents=True)
    paths = discover_notebooks(notebooks)
    if not paths:
        raise SystemExit(f"no notebooks in {notebooks}")
    pages = []
    for path in paths:
        nb, report = static_notebook(path)
        nbformat.write(nb, source / path.name)
        pages.append(report)
    names = [p.stem for p in paths]
    extra = [(path.stem, caption) for path, caption in extra_pages]
    for path, _ in extra_pages:
        shutil.copy(path, source / path.name)
    (source / "index.md").write_text(front_page(Path(readme).read_text(), names, extra))
    # Sphinx writes into the stage (MyST-NB puts its copies of the notebooks beside its output folder);
    # the finished site is then moved to ``out``.
    html = stage / "html"
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", "2", "-c", str(DOCS),
               "-d", str(stage / "doctrees"), str(source), str(html)]
    result = subprocess.run(command, capture_output=True, text=True)
    warnings = (result.stdout + result.stderr).strip()
    if warnings:
        log(warnings)
    if result.returncode != 0:
        raise SystemExit(f"sphinx-build failed (exit {result.returncode})")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(html, out)
    if not keep_stage:
        shutil.rmtree(stage)
    for report in pages:
        apply_alt_texts(out / f"{report.name}.html", report.alt_texts)
    (out / ".buildinfo").unlink(missing_ok=True)
    for debug_map in out.rglob("*.map"):  # the theme's source maps: for debugging its JavaScript only
        debug_map.unlink()
    if (out / "_sources").is_dir() and not any((out / "_sources").iterdir()):
        (out / "_sources").rmdir()
    return SiteReport(out, pages, time.perf_counter() - start, cdn_references(out))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    report = build_site(args.out, args.notebooks, args.readme)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    for page in report.pages:
        parts = [f"{len(page.frames)} precomputed slider view(s) ({sum(page.frames)} frames)" if page.frames else "",
                 f"{page.kernel_views} view(s) that need a kernel" if page.kernel_views else ""]
        print(f"  {page.name}: " + ("; ".join(p for p in parts if p) or "no slider view"))
    print(f"site: {args.out / 'index.html'} ({len(report.pages)} notebooks, {size / 1e6:.1f} MB, "
          f"{report.seconds:.0f} s)")
    if report.cdn_references:
        for path, pattern in report.cdn_references:
            print(f"CDN reference {pattern!r} in {path.relative_to(args.out)}", file=sys.stderr)
        return 1
    stale = [p.name for p in report.pages if p.unsaved_frames]
    if stale:
        print("saved without their precomputed frames (re-execute with `jupyter nbconvert --to notebook --execute "
              f"--inplace`): {', '.join(stale)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
