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
"""

import io
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt


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

    Attributes
    ----------
    readout : str
        The latest readout.
    last_update_seconds : float
        Wall time of the latest ``update`` call (artists only, not rendering).
    last_render_seconds : float
        Wall time of the latest PNG rendering (only while shown in a notebook).
    """

    def __init__(self, fig, sliders, update):
        self.fig, self.sliders, self._update = fig, dict(sliders), update
        self.readout = ""
        self.last_update_seconds = self.last_render_seconds = float("nan")
        self._handle = None
        self._label = widgets.HTML()
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
        self._label.value = f"<pre>{self.readout}</pre>"
        if self._handle is not None:
            self._handle.update(self.png())
        return self.readout

    def png(self):
        """The figure as it stands, rendered once to an ``IPython.display.Image``."""
        from IPython.display import Image

        start = time.perf_counter()
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png")
        self.last_render_seconds = time.perf_counter() - start
        return Image(data=buffer.getvalue(), format="png")

    def _on_change(self, _change):
        self.refresh()

    def show(self):
        """Display sliders, readout and figure in a notebook."""
        from IPython.display import display

        display(widgets.VBox([*self.sliders.values(), self._label]))
        self._handle = display(self.png(), display_id=True)
