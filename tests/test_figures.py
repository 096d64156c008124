"""The figure rules: legible at the width shown, colours apart for colour-blind eyes, words for every figure."""

import io
import itertools

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from colorspacious import cspace_convert, deltaE
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.pylabtools import select_figure_formats
from IPython.utils.capture import capture_output
from PIL import Image

from vaelib.teaching import figures

#: Matplotlib's default colours (tab10), which the palette replaces.
TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def rgb(hex_colour):
    return np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])


def closest_pair_seen_with(colours, cvd_type):
    """The smallest CAM02-UCS distance between two colours as seen with a full colour-vision deficiency."""
    space = {"name": "sRGB1+CVD", "cvd_type": cvd_type, "severity": 100}
    seen = [np.clip(cspace_convert(rgb(c), space, "sRGB1"), 0, 1) for c in colours]
    return min(deltaE(a, b, input_space="sRGB1") for a, b in itertools.combinations(seen, 2))


@pytest.mark.parametrize("cvd_type", ["deuteranomaly", "protanomaly"])
def test_the_palette_stays_apart_for_red_green_colour_blindness(cvd_type):
    # Okabe-Ito's closest pair is about 14 units apart; Matplotlib's default colours come within 5 (and 2),
    # so the threshold tells the two apart.
    assert closest_pair_seen_with(figures.PALETTE.values(), cvd_type) > 12
    assert closest_pair_seen_with(TAB10, cvd_type) < 12


def test_every_series_has_a_second_channel_beside_its_colour():
    n = len(figures.PALETTE)
    assert len(set(map(str, figures.LINESTYLES))) == n and len(set(figures.MARKERS)) == n
    cycle = list(figures.STYLE["axes.prop_cycle"])
    assert len({(c["color"], str(c["linestyle"])) for c in cycle}) == n
    assert len({str(c["linestyle"]) for c in cycle}) == n


def test_ten_point_text_shows_at_twelve_pixels_or_more_in_the_column():
    assert figures.text_px() >= 12
    # By hand: 10 pt at 100 dpi is 13.89 px; a 7-inch figure is 700 px, shrunk to 688.
    assert figures.text_px(10, 7.0, 100, 688) == pytest.approx(10 / 72 * 100 * 688 / 700)
    # A 13-inch figure, as some were drawn, is shrunk to about half: its 10-pt text shows under 8 px.
    assert figures.text_px(10, 13.0, 100, 688) < 8
    # A narrow figure at 72 dpi shows at its own size, so 10 pt is 10 px.
    assert figures.text_px(10, 5.0, 72, 688) == pytest.approx(10)


def test_a_figure_drawn_in_the_style_is_as_wide_as_stated():
    with matplotlib.rc_context(figures.STYLE):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
    assert Image.open(buffer).size[0] == round(figures.WIDTH * figures.DPI)


def test_show_displays_the_figure_with_its_words():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    shell = InteractiveShell.instance()  # display() publishes through a shell, as in a notebook's kernel,
    select_figure_formats(shell, {"png"})  # which shows figures as PNG (what %matplotlib inline sets up)
    with capture_output() as captured:
        figures.show(fig, "A falling line: y against x, from 1 down to 0.")
    (output,) = captured.outputs
    assert "image/png" in output.data
    assert output.metadata["image/png"]["alt"] == "A falling line: y against x, from 1 down to 0."
    assert not plt.fignum_exists(fig.number)


@pytest.mark.parametrize("alt", ["", "a figure", "_images/3f2a9c.png", None])
def test_a_figure_without_a_description_is_refused(alt):
    with pytest.raises(ValueError, match="description"):
        figures.describe(alt)
