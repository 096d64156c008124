"""Tests for vaelib.teaching.views.tradeoff_explorer: set a slider, read the artists and the readout."""

import io
import re

import matplotlib
import matplotlib.colors as mcolors
import numpy as np
import pytest
from PIL import Image

from figure_checks import assert_drawn_for_the_column
from vaelib.teaching import figures
from vaelib.teaching.views import tradeoff_explorer
from vaelib.teaching.views.slider_view import compressed_png

SIDE, N_IMAGES, N_LATENT = 3, 2, 5
BETAS = np.array([0.1, 0.5, 2.0, 8.0])


def synthetic_table():
    """Four models on the convex curve D = 100 / R, each at the point where the slope is -beta.

    On D = c / R the slope is -c / R^2, so beta picks R = sqrt(c / beta); the test points sit
    a little off the training points. Kl bars, unit variances and images are random.
    """
    rng = np.random.default_rng(0)
    rate_train = np.sqrt(100 / BETAS)
    n = len(BETAS)
    kl = rng.uniform(0.01, 3.0, size=(n, N_LATENT))
    variances = rng.uniform(0.0, 0.05, size=(n, N_LATENT))
    variances[:, 0] = 0.005                                  # one inactive unit in every model
    return {
        "beta": BETAS, "sigma": np.sqrt(BETAS),
        "rate_train": rate_train, "distortion_train": 100 / rate_train,
        "rate": rate_train * 1.02, "distortion": 100 / rate_train + 3.0,
        "half_squared_error_train": 100 / rate_train / 4, "half_squared_error": 100 / rate_train / 4 + 1,
        "kl_per_dim": kl, "unit_variances": variances, "active": variances > 0.01,
        "active_units": (variances > 0.01).sum(axis=1),
        "originals": rng.random((N_IMAGES, SIDE * SIDE)),
        "reconstructions": rng.random((n, N_IMAGES, SIDE * SIDE)),
        "samples": rng.random((n, N_IMAGES, SIDE * SIDE)),
        "image_shape": (SIDE, SIDE),
    }


@pytest.fixture
def table():
    return synthetic_table()


@pytest.fixture
def view(table):
    return tradeoff_explorer.make_beta_view(table)


def readout_rows(text):
    """(rate, distortion, loss) on the training-images and test-images lines of the readout."""
    rows = {}
    for label in ("training images", "test images"):
        line = next(l for l in text.splitlines() if l.startswith(label))
        rows[label] = [float(v) for v in line[len(label):].split()]
    return rows


@pytest.mark.parametrize("i", [2, 0, 3, 1])
def test_plane_follows_the_slider(view, table, i):
    ax_plane = view.fig.axes[0]
    view.sliders["beta"].value = BETAS[i]
    train, test, ring_tr, ring_te, line = ax_plane.lines
    assert np.array_equal(train.get_xdata(), table["rate_train"]) and np.array_equal(test.get_ydata(), table["distortion"])
    assert list(ring_tr.get_xdata()) == [table["rate_train"][i]] and list(ring_tr.get_ydata()) == [table["distortion_train"][i]]
    assert list(ring_te.get_xdata()) == [table["rate"][i]] and list(ring_te.get_ydata()) == [table["distortion"][i]]
    # the line is D + beta R = constant, through the chosen training point
    xs, ys = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    loss = table["distortion_train"][i] + BETAS[i] * table["rate_train"][i]
    np.testing.assert_allclose(ys + BETAS[i] * xs, loss, rtol=1e-12)
    assert xs.min() <= table["rate"].min() and xs.max() >= table["rate"].max()   # spans every point


@pytest.mark.parametrize("i", range(len(BETAS)))
def test_no_training_point_lies_below_the_line_of_its_beta(view, table, i):
    """On a convex curve, the model beta picks is where the line of slope -beta touches it."""
    view.sliders["beta"].value = BETAS[i]
    line = view.fig.axes[0].lines[4]
    slope = np.diff(line.get_ydata())[0] / np.diff(line.get_xdata())[0]
    assert slope == pytest.approx(-BETAS[i])
    on_line = line.get_ydata()[0] + slope * (table["rate_train"] - line.get_xdata()[0])
    assert np.all(table["distortion_train"] >= on_line - 1e-9)


@pytest.mark.parametrize("i", [1, 3])
def test_kl_bars_follow_the_slider(view, table, i):
    view.sliders["beta"].value = BETAS[i]
    bars = view.fig.axes[1].patches
    heights = np.array([b.get_height() for b in bars])
    assert np.array_equal(heights, np.sort(table["kl_per_dim"][i])[::-1])    # largest first
    blue, grey = mcolors.to_rgba(figures.PALETTE["blue"]), mcolors.to_rgba(tradeoff_explorer.INACTIVE_FACE)
    for bar, height in zip(bars, heights):
        j = int(np.flatnonzero(table["kl_per_dim"][i] == height)[0])
        # an inactive unit's bar is grey and hatched, an active unit's solid blue: told apart without colour too
        active = bool(table["active"][i, j])
        assert bar.get_facecolor() == (blue if active else grey)
        assert bool(bar.get_hatch()) == (not active)
    assert f"{table['active_units'][i]} of {N_LATENT} units active (solid)" in view.fig.axes[1].get_title()


@pytest.mark.parametrize("i", [0, 2])
def test_picture_follows_the_slider(view, table, i):
    view.sliders["beta"].value = BETAS[i]
    shown = np.asarray(view.fig.axes[2].images[0].get_array())
    assert shown.shape == (3 * SIDE, N_IMAGES * SIDE)
    rows = [table["originals"], table["reconstructions"][i], table["samples"][i]]
    for r, images in enumerate(rows):            # row r: originals, reconstructions, samples; image k in columns k*SIDE...
        for k in range(N_IMAGES):
            block = shown[r * SIDE : (r + 1) * SIDE, k * SIDE : (k + 1) * SIDE]
            assert np.array_equal(block, images[k].reshape(SIDE, SIDE))


@pytest.mark.parametrize("i", [0, 3])
def test_readout_numbers(view, table, i):
    view.sliders["beta"].value = BETAS[i]
    assert view.readout.startswith(f"β = {BETAS[i]:g}:")
    rows = readout_rows(view.readout)
    for label, suffix in (("training images", "_train"), ("test images", "")):
        r, d = table["rate" + suffix][i], table["distortion" + suffix][i]
        # printed to two decimals: within half a unit of the last place
        assert rows[label] == pytest.approx([r, d, d + BETAS[i] * r], abs=5.01e-3)
    match = re.search(r"active units: (\d+) of (\d+)", view.readout)
    assert (int(match.group(1)), int(match.group(2))) == (table["active_units"][i], N_LATENT)


def test_sigma_view_uses_half_squared_error_and_sigma_squared(table):
    view = tradeoff_explorer.make_sigma_view(table, sigma=table["sigma"][2])
    train, test, ring_tr, _, line = view.fig.axes[0].lines
    assert np.array_equal(train.get_ydata(), table["half_squared_error_train"])
    assert list(ring_tr.get_ydata()) == [table["half_squared_error_train"][2]]
    slope = np.diff(line.get_ydata())[0] / np.diff(line.get_xdata())[0]
    assert slope == pytest.approx(-table["sigma"][2] ** 2)                      # sigma^2 acts as beta
    rows = readout_rows(view.readout)
    hse, r = table["half_squared_error_train"][2], table["rate_train"][2]
    assert rows["training images"] == pytest.approx([r, hse, hse + BETAS[2] * r], abs=5.01e-3)


def test_updates_in_place(view):
    """A slider move changes the existing artists' data; no artist is added or removed."""
    def artists():
        return [list(ax.lines) + list(ax.patches) + list(ax.images) for ax in view.fig.axes]

    before = artists()
    picture = np.array(view.fig.axes[2].images[0].get_array()).copy()
    view.sliders["beta"].value = BETAS[-1]
    assert artists() == before and len(view.fig.axes) == 3
    assert not np.array_equal(np.array(view.fig.axes[2].images[0].get_array()), picture)


def test_picture_is_clipped_and_rows_must_match(table):
    table["reconstructions"] = 3 * table["reconstructions"] - 1                 # Gaussian means stray outside [0, 1]
    view = tradeoff_explorer.make_beta_view(table)
    shown = np.asarray(view.fig.axes[2].images[0].get_array())
    for k in range(N_IMAGES):
        block = shown[SIDE : 2 * SIDE, k * SIDE : (k + 1) * SIDE]
        assert np.array_equal(block, np.clip(table["reconstructions"][0, k], 0.0, 1.0).reshape(SIDE, SIDE))
    with pytest.raises(ValueError, match="same number"):
        tradeoff_explorer.make_beta_view({**table, "samples": table["samples"][:, :1]})


def test_loss_line_by_hand():
    xs, ys = tradeoff_explorer.loss_line(rate=10.0, distortion=50.0, weight=2.0, rate_range=(0.0, 30.0))
    assert list(xs) == [0.0, 30.0] and list(ys) == [70.0, 10.0]


def test_digits_are_dark_on_light(view):
    """Ink (pixel value 1) is drawn dark on a white page (0), as in every figure of digits."""
    from vaelib.teaching.digit_figures import DIGIT_CMAP

    image = view.fig.axes[2].images[0]
    assert image.get_cmap() is DIGIT_CMAP and image.get_clim() == (0.0, 1.0)
    ink, page = (np.mean(image.get_cmap()(v)[:3]) for v in (1.0, 0.0))
    assert ink < 0.1 and page > 0.9


@pytest.mark.parametrize("make, weight, distortion", [(tradeoff_explorer.make_beta_view, r"\beta", "$D$"),
                                                      (tradeoff_explorer.make_sigma_view, r"\sigma^2", r"$\|x-m\|^2/2$")])
def test_figure_text_is_in_maths_type(table, make, weight, distortion):
    view = make(table)
    ax_plane = view.fig.axes[0]
    assert "$R$" in ax_plane.get_xlabel() and distortion in ax_plane.get_ylabel()
    assert weight + r"\,R$" in ax_plane.get_legend().get_texts()[-1].get_text()
    view.fig.canvas.draw()                                   # every label parses as mathtext


@pytest.mark.parametrize("make", [tradeoff_explorer.make_beta_view, tradeoff_explorer.make_sigma_view])
def test_figure_is_drawn_for_the_column_whatever_the_callers_settings(table, make):
    # small defaults, as a notebook's old rcParams might set them: the view keeps its own style
    with matplotlib.rc_context({"font.size": 6, "xtick.labelsize": 6, "ytick.labelsize": 6, "figure.dpi": 72,
                                "legend.fontsize": 6, "axes.titlesize": 6}):
        view = make(table)
    (slider,) = view.sliders.values()
    for end in (0, -1):                                      # the titles change with the setting: both ends fit
        slider.value = slider.options[end][1]
        assert_drawn_for_the_column(view.fig, min_texts=20)
    png = Image.open(io.BytesIO(compressed_png(view.fig)))
    assert png.size[0] <= round(figures.WIDTH * figures.DPI)  # the frame the site shows: 700 px at most
    assert png.info["dpi"][0] == pytest.approx(figures.DPI, abs=0.01)


def test_training_and_test_points_differ_by_more_than_colour(view):
    train, test = view.fig.axes[0].lines[:2]
    assert (train.get_marker(), train.get_linestyle(), train.get_fillstyle()) == ("o", "-", "full")
    assert (test.get_marker(), test.get_linestyle(), test.get_fillstyle()) == ("s", "None", "none")
    assert mcolors.to_hex(train.get_color()) == figures.PALETTE["blue"].lower()
    assert mcolors.to_hex(test.get_color()) == figures.PALETTE["vermillion"].lower()
    labels = [t.get_text() for t in view.fig.axes[0].get_legend().get_texts()]
    assert labels[:2] == ["training digits", "test digits"]


@pytest.mark.parametrize("make, key, label", [(tradeoff_explorer.make_beta_view, "beta", "β"),
                                              (tradeoff_explorer.make_sigma_view, "sigma", "σ")])
def test_the_slider_is_named_by_its_symbol_and_the_words_name_the_setting(table, make, key, label):
    view = make(table)
    assert view.sliders[key].description == label
    values = table[key]
    words = view.alt_text()
    assert words.endswith(f"Setting shown: {label} = {values[0]:g}.")
    # the sweep's numbers, formatted here: both ends of the test digits' curve, active units at both ends
    distortion = table["distortion" if key == "beta" else "half_squared_error"]
    for number in (f"R = {table['rate'][0]:.1f} nats and {distortion[0]:.1f}",
                   f"R = {table['rate'][-1]:.2f} nats and {distortion[-1]:.1f}",
                   f"{label} from {values[0]:g} to {values[-1]:g}", f"each of the {N_LATENT} latent dimensions",
                   f"({table['active_units'][0]} active units at {label} = {values[0]:g}, "
                   f"{table['active_units'][-1]} at {label} = {values[-1]:g})", f"Bottom, {N_IMAGES} test digits"):
        assert number in words
    # the same words at every setting, the setting aside: the site's player changes only the setting
    for value in values:
        view.sliders[key].value = value
        assert view.alt_text() == words.replace(f"{label} = {values[0]:g}.", f"{label} = {value:g}.")


def test_the_two_views_have_their_own_words(table):
    beta_words = tradeoff_explorer.make_beta_view(table).alt
    sigma_words = tradeoff_explorer.make_sigma_view(table).alt
    assert beta_words != sigma_words
    assert "distortion D in nats up" in beta_words and "D + βR" in beta_words
    assert "half the squared error" in sigma_words and "σ²R" in sigma_words
