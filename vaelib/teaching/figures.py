"""How every figure of the notebooks is drawn and shown, so that every reader can read it.

Three rules, each a constant or a function here:

- **Drawn for the width it is shown at.** The site's text column is 688 px wide
  on a 1280 px screen. A figure :data:`WIDTH` inches wide at :data:`DPI` dots per
  inch is 700 px, shown there at 98 % of its size, so the smallest text,
  :data:`SMALLEST_POINTS` (10 pt), shows at 10 / 72 * 100 * 0.98 = 13.6 px: at
  least 12 px. Wider figures are laid out on more rows, never shrunk.
- **Nothing told by colour alone.** :data:`PALETTE` is Okabe and Ito's, whose
  colours stay apart under deuteranopia and protanopia; :data:`LINESTYLES` and
  :data:`MARKERS` give each series a second channel, and :func:`use_style`
  cycles colour and dash together.
- **Words for every figure.** :func:`show` displays a figure with its
  description (its axes, and what to look for) in the output's metadata,
  ``{"image/png": {"alt": ...}}``, which the static site and the app read.

Reference: M. Okabe and K. Ito, *Color Universal Design* (2002), the eight
colours of its palette.
"""

import matplotlib
import matplotlib.pyplot as plt
from cycler import cycler

#: Width of a full-width figure, in inches (700 px at :data:`DPI`).
WIDTH = 7.0
#: Dots per inch of every figure and slider frame.
DPI = 100
#: The smallest text of a figure, in points (tick labels, legends, annotations).
SMALLEST_POINTS = 10
#: The site's text column at 1280 px, in CSS pixels.
COLUMN_PX = 688

#: Okabe and Ito's colours, in the order series use them (yellow last: it is faint on white).
PALETTE = {
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "bluish green": "#009E73",
    "orange": "#E69F00",
    "reddish purple": "#CC79A7",
    "sky blue": "#56B4E9",
    "black": "#000000",
    "yellow": "#F0E442",
}
#: A dash style per series, in the order of :data:`PALETTE`.
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2)), (0, (3, 1, 1, 1)))
#: A marker per series, in the order of :data:`PALETTE`.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

#: Matplotlib settings for every figure: size, resolution, text sizes and the series' cycle.
STYLE = {
    "figure.figsize": (WIDTH, 3.2),
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.size": SMALLEST_POINTS,
    "axes.titlesize": SMALLEST_POINTS + 1,
    "axes.labelsize": SMALLEST_POINTS,
    "xtick.labelsize": SMALLEST_POINTS,
    "ytick.labelsize": SMALLEST_POINTS,
    "legend.fontsize": SMALLEST_POINTS,
    "legend.title_fontsize": SMALLEST_POINTS,
    "figure.titlesize": SMALLEST_POINTS + 2,
    "axes.prop_cycle": cycler(color=list(PALETTE.values())) + cycler(linestyle=list(LINESTYLES)),
}


def text_px(points=SMALLEST_POINTS, width_inches=WIDTH, dpi=DPI, column_px=COLUMN_PX):
    """Height in CSS pixels at which text of ``points`` shows in a figure ``width_inches`` wide.

    A figure narrower than the column shows at its own size; a wider one is
    shrunk to the column.
    """
    scale = min(1.0, column_px / (width_inches * dpi))
    return points / 72 * dpi * scale


def use_style():
    """Set :data:`STYLE` in Matplotlib's ``rcParams`` (call once, in a notebook's set-up cell)."""
    matplotlib.rcParams.update(STYLE)


def describe(alt):
    """``alt``, checked to be a description: at least a few words, not a file name.

    Raises
    ------
    ValueError
        If ``alt`` is empty, shorter than four words, or looks like a file name.
    """
    words = str(alt).split()
    if len(words) < 4 or str(alt).strip().lower().endswith((".png", ".svg", ".jpg")):
        raise ValueError(f"a figure needs a description of its axes and what to look for, got {alt!r}")
    return " ".join(words)


def show(fig, alt):
    """Display ``fig`` with ``alt`` as its description, then close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    alt : str
        What the figure shows, in words a screen-reader user can act on: its
        axes, and what to look for. Stored as ``{"image/png": {"alt": alt}}`` in
        the output's metadata.
    """
    from IPython.display import display

    display(fig, metadata={"image/png": {"alt": describe(alt)}})
    plt.close(fig)
