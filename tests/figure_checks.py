"""Checks shared by the views' tests."""

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from vaelib.teaching import figures


def visible_texts(fig):
    """Every visible piece of text of ``fig``, drawn: titles, axis labels, tick labels, legends."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)  # a closed figure too
    canvas.draw()
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def assert_drawn_for_the_column(fig, min_texts):
    """The rules of :mod:`vaelib.teaching.figures`: at most ``figures.WIDTH`` inches wide at ``figures.DPI``,
    more than ``min_texts`` pieces of text, every one at least ``figures.SMALLEST_POINTS`` and inside the
    figure (none cut off at an edge)."""
    width, _ = fig.get_size_inches()
    assert width <= figures.WIDTH + 1e-9, f"{width} in wide, more than {figures.WIDTH}"
    assert fig.dpi == figures.DPI, f"{fig.dpi} dpi, not {figures.DPI}"
    texts = visible_texts(fig)
    assert len(texts) > min_texts, f"{len(texts)} pieces of text"
    small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < figures.SMALLEST_POINTS]
    assert small == [], f"text under {figures.SMALLEST_POINTS} pt: {small}"
    # everything drawn (the ticks shown, not those past the axis' ends) lies on the canvas, within a pixel
    drawn, (w, h), pixel = fig.get_tightbbox(fig.canvas.get_renderer()), fig.get_size_inches(), 1 / fig.dpi
    assert drawn.x0 >= -pixel and drawn.y0 >= -pixel and drawn.x1 <= w + pixel and drawn.y1 <= h + pixel, \
        f"something is cut off at the figure's edge: drawn over x {drawn.x0:.2f} to {drawn.x1:.2f}, y {drawn.y0:.2f} " \
        f"to {drawn.y1:.2f} in a {w:g} x {h:g} in figure"
