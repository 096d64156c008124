"""Checks shared by the views' tests."""

from matplotlib.text import Text


def assert_readable(fig, min_texts):
    """At least 9 inches wide at 100 dpi, more than ``min_texts`` pieces of text, every one at least 9 pt."""
    width, _ = fig.get_size_inches()
    assert width >= 9 and fig.dpi >= 100
    fig.canvas.draw()
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]  # titles, labels, ticks
    assert len(texts) > min_texts
    assert min(t.get_fontsize() for t in texts) >= 9
