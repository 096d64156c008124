"""Tests for vaelib.teaching.views.gradient_estimators: the pathwise vs score-function slider."""

import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from vaelib.teaching.views.gradient_estimators import (
    N_OPTIONS,
    make_gradient_estimators_view,
    shared_bin_edges,
    step_outline,
)

from figure_checks import assert_readable

MU, N_REPEATS, SEED = 1.0, 400, 3


def independent_estimates(sigma, n):
    """The two estimators of d/dmu E[z^2], written out by hand from the same noise."""
    eps = np.random.default_rng(SEED).standard_normal((N_REPEATS, max(N_OPTIONS)))[:, :n]
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


def test_figure_is_readable(view):
    assert_readable(view.fig, min_texts=8)
