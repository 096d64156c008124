"""A Matplotlib figure driven by ipywidgets sliders, updated in place.

The view keeps its figure and artists for its whole life. A slider change
calls the view's ``update`` function, which changes the existing artists
(``set_data``, ``set_ydata``, ...) and returns a text readout of the numbers
shown. In a notebook the figure is shown once with a display handle, and
each update renders it once to PNG into that same output, so it works with
the default inline backend and the executed notebook still shows a picture
on a code host. (Rendering ourselves, without the inline backend's
``bbox_inches="tight"``, draws the figure once per update instead of
twice.) Tests drive a view without any display: set a slider's ``value``
and read the artists and ``readout``.

A view whose sliders are all ``SelectionSlider`` s or ``IntSlider`` s has
a finite set of settings. For those, :meth:`SliderView.frames` renders every
setting (a compressed PNG, the readout and the figure's words), and
:meth:`SliderView.show` stores them beside the live widget, in the sliders'
output under :data:`FRAMES_MIME` (:meth:`SliderView.frames_data`): JupyterLab
and Voila show the widget, and the static site (``make site``,
``tools/player.py``) turns the data into a player that needs no kernel.
"""

import base64
import html
import io
import itertools
import os
import time
from typing import NamedTuple

import ipywidgets as widgets
import matplotlib.pyplot as plt

from vaelib.teaching.figures import DPI

#: A view with more settings than this is not precomputed (its page says it needs a kernel).
MAX_STATIC_FRAMES = 256
#: Colours in the palette of a precomputed frame (an indexed PNG is 2-4x smaller than RGBA).
FRAME_COLOURS = 64
#: Resolution of a precomputed frame: that of every figure (:mod:`vaelib.teaching.figures`), so that a
#: frame's 10-pt text shows at 12 px or more where the site shows it.
FRAME_DPI = DPI
#: MIME type of the data a page without a kernel needs (:meth:`SliderView.frames_data`), stored beside the
#: live widget in the sliders' output. JupyterLab and Voila render the widget: of a bundle's types they pick
#: the richest they have a renderer for, and none has one for this type.
FRAMES_MIME = "application/vnd.vaelib.frames+json"
#: ``metadata["vaelib"]["role"]`` of the two outputs :meth:`SliderView.show` makes.
CONTROLS_ROLE, FIGURE_ROLE = "slider-view-controls", "slider-view-figure"
#: CSS classes of the readout's and the figure's widgets, and of the figure's words (:meth:`SliderView.widget`).
READOUT_CLASS, FIGURE_CLASS, FIGURE_ALT_CLASS = "vaelib-readout", "vaelib-figure", "vaelib-figure-alt"
#: The readout's text block: fixed-width, so that its columns line up in JupyterLab and in Voila.
_READOUT_STYLE = "font-family: monospace; line-height: 1.3; margin: 0.2em 0; white-space: pre"
#: Environment variable: "1" always precomputes frames in :meth:`SliderView.show`, "0" never.
STATIC_FRAMES_ENV = "VAELIB_STATIC_FRAMES"


def value_slider(description, values, value=None):
    """A slider that steps through ``values`` (numbers), each labelled with ``{:g}``.

    Parameters
    ----------
    description : str
        The label shown beside the slider.
    values : sequence of float
    value : float, optional
        The starting value; the first of ``values`` by default.

    Returns
    -------
    ipywidgets.SelectionSlider
    """
    return widgets.SelectionSlider(
        options=[(f"{v:g}", float(v)) for v in values],
        value=float(values[0] if value is None else value),
        description=description,
    )


class Frame(NamedTuple):
    """One precomputed setting of a view."""

    values: dict  # {slider name: value}
    png: bytes  # the figure, an indexed-colour PNG
    readout: str
    alt: str | None = None  # the figure's words at this setting, naming it (SliderView.alt_text)


def _png_bytes(fig):
    """The whole figure drawn and encoded as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def compressed_png(fig, colours=FRAME_COLOURS, dpi=FRAME_DPI):
    """``fig`` as PNG bytes at ``dpi``, with a palette of at most ``colours`` colours (no dithering).

    Plots drawn with a few colours and anti-aliased edges lose nothing visible;
    grey-level images keep up to ``colours`` levels. The octree quantiser keeps
    small areas of a distinct colour (a thin blue or orange line), which the
    median cut merges into grey.
    """
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    image = Image.open(buffer).convert("RGB")
    indexed = image.quantize(colors=colours, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    indexed.save(out, format="PNG", optimize=True, dpi=(dpi, dpi))  # the dpi, for whoever measures the text
    return out.getvalue()


def static_frames_default():
    """Whether :meth:`SliderView.show` precomputes frames when not told.

    ``$VAELIB_STATIC_FRAMES`` decides when set ("1" or "0"). Otherwise yes,
    except in a kernel of a notebook opened in JupyterLab (its server sets
    ``JPY_SESSION_NAME``), where the live widget is there to be moved and a
    learner should not wait for frames; ``jupyter nbconvert --execute``, which
    makes the committed notebooks, does precompute them.
    """
    setting = os.environ.get(STATIC_FRAMES_ENV)
    if setting in ("0", "1"):
        return setting == "1"
    return "JPY_SESSION_NAME" not in os.environ


class SliderView:
    """A figure, its sliders, and the function that moves its artists.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    sliders : dict of str -> ipywidgets.ValueWidget
        Keyed by the keyword ``update`` receives.
    update : callable
        ``update(**values) -> str``: sets artist data for the slider values and
        returns a readout. Must not create or remove figures.
    moving : sequence of matplotlib artists, optional
        Every artist ``update`` changes, when it changes nothing else (no axis
        limits, no layout). Then the rest of the figure is drawn once and kept,
        and a slider move redraws only these artists ("blitting"): for a figure
        full of text, several times faster than drawing it all again.
    alt : str or callable, optional
        What the figure shows, in words, for a reader who cannot see it: its
        axes and what to look for (``alt(**values) -> str`` if it depends on
        the setting). :meth:`alt_text` adds the sliders' setting. It is the
        figure's alt text wherever the view is shown: the image's accessible
        name in a widget, and ``metadata["vaelib"]["alt"]`` of the figure's
        output in a notebook, which a page built from it can use.

    Attributes
    ----------
    readout : str
        The latest readout.
    last_update_seconds : float
        Wall time of the latest ``update`` call (artists only, not rendering).
    last_render_seconds : float
        Wall time of the latest PNG rendering (only while shown in a notebook).
    alt : str or callable or None
        As the parameter; may be set later.
    """

    def __init__(self, fig, sliders, update, moving=None, alt=None):
        self.fig, self.sliders, self._update = fig, dict(sliders), update
        self.moving = list(moving or [])
        self.alt = alt
        self._background = self._background_key = None
        self.readout = ""
        self.last_update_seconds = self.last_render_seconds = float("nan")
        self._handle = self._image = self._alt_label = None
        self._label = widgets.HTML()
        self._label.add_class(READOUT_CLASS)  # a page may make this element a live region (aria-live)
        for slider in self.sliders.values():
            slider.observe(self._on_change, names="value")
        self.refresh()
        plt.close(fig)  # the view owns the figure; stop pyplot from showing it a second time

    @property
    def values(self):
        """Current slider values, ``{name: value}``."""
        return {name: s.value for name, s in self.sliders.items()}

    def refresh(self):
        """Apply the current slider values to the artists; returns the readout."""
        start = time.perf_counter()
        self.readout = self._update(**self.values)
        self.last_update_seconds = time.perf_counter() - start
        self._label.value = f'<pre style="{_READOUT_STYLE}">{html.escape(self.readout)}</pre>'
        if self._handle is not None or self._image is not None:
            image = self.png()
            if self._handle is not None:
                self._handle.update(image, metadata=self._figure_metadata())
            if self._image is not None:
                self._image.value = image.data
            if self._alt_label is not None:
                self._alt_label.value = _alt_html(self.alt_text())
        return self.readout

    def setting_text(self, values=None):
        """The sliders' setting as a reader would say it, e.g. ``"β = 1"`` or ``"σ = 0.5, n = 10"``.

        Each slider is named by its label (``description``) and its value by the
        label it shows (a ``SelectionSlider`` 's option label, else ``{:g}``).
        """
        values = self.values if values is None else values
        parts = []
        for name, slider in self.sliders.items():
            value = values[name]
            shown = next((label for label, v in _choices(slider) or [] if v == value), None)
            if shown is None:
                shown = f"{value:g}" if isinstance(value, (int, float)) else str(value)
            parts.append(f"{slider.description or name} = {shown}")
        return ", ".join(parts)

    def alt_text(self, values=None):
        """The figure in words at ``values`` (default: the sliders' values): :attr:`alt` and the setting.

        None when the view has no :attr:`alt`.
        """
        if self.alt is None:
            return None
        values = self.values if values is None else values
        words = self.alt(**values) if callable(self.alt) else self.alt
        return f"{words.rstrip()} Setting shown: {self.setting_text(values)}."

    def _figure_metadata(self):
        alt = self.alt_text()
        return _role(FIGURE_ROLE) if alt is None else _role(FIGURE_ROLE, alt=alt)

    def png(self):
        """The figure as it stands, rendered once to an ``IPython.display.Image``."""
        from IPython.display import Image

        start = time.perf_counter()
        data = self._blitted_png() if self.moving else _png_bytes(self.fig)
        self.last_render_seconds = time.perf_counter() - start
        return Image(data=data, format="png")

    def _blitted_png(self):
        """PNG bytes of the figure: the kept background, then the moving artists drawn over it."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from PIL import Image as PILImage

        canvas = self.fig.canvas
        if not isinstance(canvas, FigureCanvasAgg):
            canvas = FigureCanvasAgg(self.fig)
        key = (id(canvas.get_renderer()), self.fig.dpi, tuple(self.fig.get_size_inches()))
        if self._background is None or key != self._background_key:  # first use, or re-rendered at another size
            for artist in self.moving:
                artist.set_animated(True)  # left out of a full draw
            try:
                canvas.draw()
                self._background = canvas.copy_from_bbox(self.fig.bbox)
            finally:
                for artist in self.moving:
                    artist.set_animated(False)
            self._background_key = key
        canvas.restore_region(self._background)
        for artist in self.moving:
            self.fig.draw_artist(artist)
        width, height = canvas.get_width_height()
        image = PILImage.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1, dpi=(self.fig.dpi, self.fig.dpi))  # as savefig writes it
        return buffer.getvalue()

    def _on_change(self, _change):
        self.refresh()

    # ------------------------------------------------------------ a finite set of settings
    def options(self):
        """Each slider's settings, ``{name: [(label, value), ...]}``, or None if a slider is continuous.

        A ``SelectionSlider`` has its options; an ``IntSlider`` the integers from
        ``min`` to ``max`` in steps of ``step``; any other slider (a ``FloatSlider``)
        is continuous.
        """
        choices = {name: _choices(s) for name, s in self.sliders.items()}
        return None if any(c is None for c in choices.values()) else choices

    @property
    def n_settings(self):
        """How many settings the sliders can take together (None if a slider is continuous)."""
        options = self.options()
        if options is None:
            return None
        count = 1
        for choices in options.values():
            count *= len(choices)
        return count

    @property
    def precomputable(self):
        """True when every setting can be rendered ahead: finitely many, at most :data:`MAX_STATIC_FRAMES`."""
        n = self.n_settings
        return n is not None and n <= MAX_STATIC_FRAMES

    def settings(self):
        """Every setting, ``[{name: value}, ...]``, the first slider varying slowest (None if continuous)."""
        options = self.options()
        if options is None:
            return None
        names = list(options)
        return [dict(zip(names, combo)) for combo in itertools.product(*([v for _, v in options[n]] for n in names))]

    def readout_at(self, **values):
        """The readout ``update`` gives for ``values`` (all sliders named); the view is left as it was."""
        try:
            return self._update(**values)
        finally:
            self._update(**self.values)

    def frames(self):
        """Render every setting: a list of :class:`Frame`, in the order of :meth:`settings`.

        Each frame has its PNG, its readout and the figure's words at its setting
        (:meth:`alt_text`; None without :attr:`alt`). The sliders do not move and the
        displayed figure is not touched; the artists are put back to the sliders' values
        afterwards.

        Raises
        ------
        ValueError
            If the view is not :attr:`precomputable`.
        """
        if not self.precomputable:
            raise ValueError(f"{self.n_settings or 'continuous'} settings: only a view of SelectionSliders or "
                             f"IntSliders with at most {MAX_STATIC_FRAMES} settings is precomputed")
        frames = []
        try:
            for values in self.settings():
                readout = self._update(**values)
                frames.append(Frame(values, compressed_png(self.fig), readout, self.alt_text(values)))
        finally:
            self._update(**self.values)
        return frames

    def frames_data(self, frames=()):
        """What a page without a kernel needs to show the view: a JSON-able dict (stored as :data:`FRAMES_MIME`).

        Parameters
        ----------
        frames : list of Frame, optional
            From :meth:`frames`; none for a view that is not precomputed.

        Returns
        -------
        dict
            ``sliders``: ``[{"name", "label", "values"}]``, each slider's keyword, its label and the
            labels of its settings (``values`` None for a continuous slider); ``start``: the index of
            the sliders' current setting among the frames (first slider slowest; None if continuous);
            ``settings``: :attr:`n_settings`; ``dpi``: :data:`FRAME_DPI`; ``readout``: the current
            readout; ``frames``: ``[{"png", "readout", "setting", "alt"}]``, the PNG in base64, the
            readout, the setting in words (:meth:`setting_text`) and the figure's words at it
            (:meth:`alt_text`, or None).
        """
        options = self.options()
        sliders = [{"name": name, "label": slider.description or name,
                    "values": None if options is None else [label for label, _ in options[name]]}
                   for name, slider in self.sliders.items()]
        start = None
        if options is not None:
            start = 0
            for name, slider in self.sliders.items():
                start = start * len(options[name]) + _index(slider)
        return {
            "sliders": sliders,
            "start": start,
            "settings": self.n_settings,
            "dpi": FRAME_DPI,
            "readout": self.readout,
            "frames": [{"png": base64.b64encode(f.png).decode("ascii"), "readout": f.readout,
                        "setting": self.setting_text(f.values), "alt": f.alt} for f in frames],
        }

    # ------------------------------------------------------------ in a notebook
    def show(self, static=None, image_widget=False):
        """Display sliders, readout and figure in a notebook.

        Two outputs: the sliders with the readout (the live widget), then the figure,
        which every slider move redraws in place. The sliders' output also holds
        :meth:`frames_data` as :data:`FRAMES_MIME`, for a page without a kernel
        (``tools/build_site.py``), and, as plain text, the setting and the readout.
        Their ``metadata["vaelib"]`` names their role (:data:`CONTROLS_ROLE`,
        :data:`FIGURE_ROLE`) and, for the sliders, the number of settings and of
        precomputed frames.

        Parameters
        ----------
        static : bool, optional
            Precompute every frame (only if :attr:`precomputable`). Default:
            :func:`static_frames_default`.
        image_widget : bool
            Show the figure in an ``ipywidgets.Image`` under the readout, in the
            same output, instead of an output of its own. For Voila, which does
            not apply display updates outside widgets (voila-dashboards/voila#498);
            a saved notebook then holds no picture of the figure.
        """
        from IPython.display import display

        if static is None:
            static = static_frames_default()
        frames = self.frames() if static and self.precomputable else []
        controls = self.widget(image_widget=image_widget)
        bundle = controls._repr_mimebundle_()
        bundle[FRAMES_MIME] = self.frames_data(frames)
        bundle["text/plain"] = f"{self.setting_text()}\n{self.readout}"  # where no widget is shown (a code host)
        meta = _role(CONTROLS_ROLE, settings=self.n_settings, frames=len(frames))
        display(bundle, raw=True, metadata=meta)
        if not image_widget:
            self._handle = display(self.png(), display_id=True, metadata=self._figure_metadata())

    def widget(self, image_widget=False):
        """The live widget: the sliders, the readout and, if ``image_widget``, the figure.

        :meth:`show` displays it; a page may place it itself. The box has the class
        ``vaelib-slider-view``, the readout :data:`READOUT_CLASS`. With ``image_widget`` the
        figure is an ``ipywidgets.Image`` (class :data:`FIGURE_CLASS`) after the words of
        :meth:`alt_text` (class :data:`FIGURE_ALT_CLASS`, visually hidden, read by a screen
        reader; a page's script can make them the image's alt text: an image widget has no alt
        attribute, and its ``tooltip`` breaks its view in ipywidgets 8.1).
        """
        children = [*self.sliders.values(), self._label]
        if image_widget:
            self._alt_label = widgets.HTML(_alt_html(self.alt_text()),
                                           layout=widgets.Layout(height="0px", margin="0", overflow="hidden"))
            self._alt_label.add_class(FIGURE_ALT_CLASS)
            self._image = widgets.Image(value=self.png().data, format="png")
            self._image.add_class(FIGURE_CLASS)
            children += [self._alt_label, self._image]
        controls = widgets.VBox(children)
        controls.add_class("vaelib-slider-view")
        return controls


def _alt_html(words):
    return f'<p style="margin: 0">{html.escape(words)}</p>' if words else ""


def _choices(slider):
    if isinstance(slider, widgets.SelectionSlider):
        return list(zip(slider._options_labels, slider._options_values))
    if isinstance(slider, widgets.IntSlider):
        return [(str(v), v) for v in range(slider.min, slider.max + 1, slider.step)]
    return None


def _index(slider):
    if isinstance(slider, widgets.SelectionSlider):
        return slider.index
    return (slider.value - slider.min) // slider.step


def _role(role, **extra):
    return {"vaelib": {"role": role, **extra}}
