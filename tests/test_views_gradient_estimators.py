"""Tests for vaelib.teaching.views.gradient_estimators: the pathwise vs score-function slider."""

import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from matplotlib.text import Text

from vaelib.teaching import figures
from vaelib.teaching.views.gradient_estimators import (
    N_OPTIONS,
    PANELS,
    SIGMA_OPTIONS,
    make_gradient_estimators_view,
    shared_bin_edges,
    step_outline,
)
from vaelib.teaching.views.slider_view import FRAME_DPI, compressed_png

MU, N_REPEATS, SEED = 1.0, 400, 3


def independent_estimates(sigma, n, n_repeats=N_REPEATS, seed=SEED):
    """The two estimators of d/dmu E[z^2], written out by hand from the same noise."""
    eps = np.random.default_rng(seed).standard_normal((n_repeats, max(N_OPTIONS)))[:, :n]
    z = MU + sigma * eps
    pathwise = (2 * z).mean(axis=1)  # f'(z)
    score = (z**2 * eps / sigma).mean(axis=1)  # f(z) * d log q / d mu = f(z) (z - mu) / sigma^2
    return pathwise, score


def readout_number(readout, label):
    match = re.search(rf"{label}\s+mean (-?[\d.]+), std (-?[\d.]+)", readout)
    return float(match.group(1)), float(match.group(2))


@pytest.fixture(scope="module")
def view():
    return make_gradient_estimators_view(mu=MU, n_repeats=N_REPEATS, seed=SEED)


def lines_of(view):
    return [ax.lines[0] for ax in view.fig.axes]


@pytest.mark.parametrize("sigma, n", [(0.5, 1), (1.0, 10), (2.0, 200), (0.2, 1000)])
def test_histograms_follow_the_sliders(view, sigma, n):
    view.sliders["sigma"].value = sigma
    view.sliders["n_samples"].value = n
    pathwise, score = independent_estimates(sigma, n)
    for line, values in zip(lines_of(view), (pathwise, score)):
        x, y = (np.asarray(a) for a in line.get_data())
        edges = x[::2]
        heights = y[1:-1:2]
        counts, _ = np.histogram(values, bins=edges)
        np.testing.assert_allclose(heights * np.diff(edges) * len(values), counts, rtol=0, atol=1e-9)
        # the bins cover most of the estimates and the exact value
        assert counts.sum() >= 0.97 * len(values)
        assert edges[0] <= 2 * MU <= edges[-1]


def test_readout_numbers(view):
    view.sliders["sigma"].value = 0.5
    view.sliders["n_samples"].value = 20
    pathwise, score = independent_estimates(0.5, 20)
    text = view.readout
    assert f"exact d/dmu E[f]  = {2 * MU:.4f}" in text
    for label, values in (("pathwise:", pathwise), ("score function:", score)):
        mean, std = readout_number(text, label)
        assert mean == pytest.approx(values.mean(), abs=6e-5)
        assert std == pytest.approx(values.std(ddof=1), abs=6e-5)
    ratio = float(re.search(r"score / pathwise = ([\d.]+)", text).group(1))
    assert ratio == pytest.approx(score.var(ddof=1) / pathwise.var(ddof=1), abs=0.06)


def test_exact_line_and_meaning(view):
    """The vertical line sits at 2 mu; both histograms are centred on it; score spreads wider."""
    view.sliders["sigma"].value = 0.5
    view.sliders["n_samples"].value = 50
    for ax in view.fig.axes:
        np.testing.assert_allclose(ax.lines[1].get_xdata(), [2 * MU, 2 * MU])
    pathwise, score = independent_estimates(0.5, 50)
    # exact single-sample variances: 4 sigma^2 and mu^4/sigma^2 + 14 mu^2 + 15 sigma^2
    assert abs(pathwise.mean() - 2 * MU) < 4 * np.sqrt(4 * 0.25 / 50 / N_REPEATS)
    assert abs(score.mean() - 2 * MU) < 4 * np.sqrt((4 + 14 + 3.75) / 50 / N_REPEATS)
    mean_p, std_p = readout_number(view.readout, "pathwise:")
    mean_s, std_s = readout_number(view.readout, "score function:")
    assert std_s > 3 * std_p


def test_artists_are_reused(view):
    before = [id(line) for line in lines_of(view)]
    n_lines = [len(ax.lines) for ax in view.fig.axes]
    view.sliders["sigma"].value = 2.0
    assert [id(line) for line in lines_of(view)] == before
    assert [len(ax.lines) for ax in view.fig.axes] == n_lines


def test_step_outline_and_edges_by_hand():
    edges = np.array([0.0, 1.0, 2.0])
    x, y = step_outline(np.array([0.5, 1.5, 1.7, 5.0]), edges)
    np.testing.assert_array_equal(x, [0, 0, 1, 1, 2, 2])
    np.testing.assert_allclose(y, [0, 0.25, 0.25, 0.5, 0.5, 0])  # 1/4 and 2/4 of all values per unit width
    e = shared_bin_edges(np.array([1.0, 2.0]), np.array([3.0]), exact=10.0, n_bins=4, coverage=1.0)
    np.testing.assert_allclose(e, [1.0, 3.25, 5.5, 7.75, 10.0])


def test_figure_follows_the_figure_rules(view):
    """At most 7 inches wide at 100 dpi, so that a frame's 10-pt text shows at 12 px or more on the site;
    no text under 10 pt; each estimator's outline in its own Okabe-Ito colour, its panel named by its title."""
    width, _ = view.fig.get_size_inches()
    assert width <= figures.WIDTH and view.fig.dpi == figures.DPI == FRAME_DPI
    assert figures.text_px(figures.SMALLEST_POINTS, width, FRAME_DPI) >= 12
    view.fig.canvas.draw()
    texts = [t for t in view.fig.findobj(Text) if t.get_visible() and t.get_text()]  # titles, labels, ticks
    assert len(texts) > 8
    assert min(t.get_fontsize() for t in texts) >= figures.SMALLEST_POINTS
    for ax, line, (title, colour) in zip(view.fig.axes, lines_of(view), PANELS):
        assert ax.get_title(loc="left") == title and ax.get_ylabel() == "density"
        assert line.get_color() == colour and colour in figures.PALETTE.values()
    assert "exact value 2" in view.fig.axes[1].get_xlabel()


def test_a_frame_is_drawn_at_its_stated_size(view):
    from PIL import Image
    import io

    image = Image.open(io.BytesIO(compressed_png(view.fig)))
    width, height = view.fig.get_size_inches()
    assert image.size == (round(width * FRAME_DPI), round(height * FRAME_DPI))
    assert image.info["dpi"] == pytest.approx((FRAME_DPI, FRAME_DPI), abs=0.01)


def test_every_frame_has_its_own_words_naming_its_setting(view):
    settings = view.settings()
    assert len(settings) == len(SIGMA_OPTIONS) * len(N_OPTIONS)
    words = [view.alt_text(values) for values in settings]
    assert len(set(words)) == len(words)
    for values, text in zip(settings, words):
        assert text.endswith(f"Setting shown: σ = {values['sigma']:g}, N = {values['n_samples']}.")
        assert f"{N_REPEATS:,} pathwise estimates" in text and "exact value 2 " in text
    view.sliders["sigma"].value, view.sliders["n_samples"].value = 0.2, 50
    assert view.alt_text() == view.alt_text({"sigma": 0.2, "n_samples": 50})


@pytest.mark.parametrize("n_repeats, seed", [(N_REPEATS, SEED), (1000, 0)])  # this module's view, notebook 04's
def test_the_words_hold_at_every_setting(n_repeats, seed):
    """The description says: the score-function estimates have the larger standard deviation at every setting,
    far larger at small sigma, and both narrow as N grows. Checked on the view's estimates, written out by hand."""
    spread = {(sigma, n): [values.std(ddof=1) for values in independent_estimates(sigma, n, n_repeats, seed)]
              for sigma in SIGMA_OPTIONS for n in N_OPTIONS}
    for (pathwise, score) in spread.values():
        assert score > pathwise
    smallest, largest = min(SIGMA_OPTIONS), max(SIGMA_OPTIONS)
    for n in N_OPTIONS:
        ratio = {s: spread[s, n][1] / spread[s, n][0] for s in (smallest, largest)}
        assert ratio[smallest] > 10 * ratio[largest]
    for sigma in SIGMA_OPTIONS:
        for k in range(2):
            assert all(spread[sigma, a][k] > spread[sigma, b][k] for a, b in zip(N_OPTIONS, N_OPTIONS[1:]))
