r"""The estimator slider of notebook 04: pathwise versus score-function gradients.

The target is :math:`\partial_\mu \mathbb{E}_{z \sim \mathcal N(\mu, \sigma^2)}[f(z)]`
for ``f(z) = z**2`` (exact value ``2 mu``). For each slider setting, ``n_repeats``
independent ``N``-sample estimates are made with each estimator from one fixed
draw of noise, and the view shows their spread as two histograms on a shared
x-axis (pathwise on top, score function below), with the exact gradient as a
vertical line in both. All estimates for every slider setting are computed
when the view is built (:func:`estimate_table`), so a slider move only
re-bins ``n_repeats`` numbers. The figure follows :mod:`vaelib.teaching.figures`
(7 inches wide, Okabe-Ito colours; the two estimators are told apart by their
panels' titles as well as their colours) and carries its description
(:func:`describe`), to which the setting shown is added.

``sigma`` here is the standard deviation of ``q``; the estimators take
``log_var = 2 log sigma`` (vaelib's parameterisation, ``std = exp(0.5 * log_var)``).
"""

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from .. import figures
from ..estimators import pathwise_gradient, score_function_gradient
from .slider_view import SliderView, value_slider

#: Slider settings: 5 x 8 = 40 in all, each precomputed as one frame for a page without a kernel (about
#: 7 KB a frame: the figure's 7 x 4 inches at ``slider_view.FRAME_DPI``, 100 dpi, most of it the text).
#: sigma in 1-2-5 steps: along them the exact variance ratio score / pathwise at mu = 1,
#: 1 / (4 sigma^4) + 3.5 / sigma^2 + 3.75, falls through 2854, 248, 21.75, 7.5 and 4.6.
SIGMA_OPTIONS = (0.1, 0.2, 0.5, 1.0, 2.0)
N_OPTIONS = (1, 2, 5, 10, 20, 50, 200, 1000)
N_BINS = 40
#: The two panels, top to bottom: title and colour.
PANELS = (("pathwise (reparameterisation)", figures.PALETTE["blue"]),
          ("score function (REINFORCE)", figures.PALETTE["vermillion"]))


def square(z):
    """``f(z) = z**2``, elementwise."""
    return z * z


def square_prime(z):
    """``f'(z) = 2 z``, elementwise."""
    return 2 * z


def exact_dmu_square(mu, sigma):
    """``d/dmu E[z^2] = d/dmu (mu^2 + sigma^2) = 2 mu``."""
    return 2.0 * mu


def noise(n_repeats, n_max, seed):
    """The view's fixed noise: ``default_rng(seed).standard_normal((n_repeats, n_max))``."""
    return np.random.default_rng(seed).standard_normal((n_repeats, n_max))


def dmu_estimates(mu, sigma, eps, f=square, f_prime=square_prime):
    """Estimates of ``d/dmu E[f(z)]`` by each estimator, for every number of samples at once.

    Parameters
    ----------
    mu, sigma : float
        Mean and standard deviation of ``q`` (the estimators take ``log_var = 2 log sigma``).
    eps : ndarray, shape (n_repeats, n_max)
        Standard normal noise; row ``r`` is one independent stream.
    f, f_prime : callable
        The integrand and its derivative, elementwise.

    Returns
    -------
    pathwise, score : ndarray, shape (n_repeats, n_max)
        Column ``N - 1`` holds the ``N``-sample estimates: the mean of the
        single-sample estimates over ``eps[r, :N]``.
    """
    log_var = 2.0 * np.log(sigma)
    g_path, _ = pathwise_gradient(f_prime, mu, log_var, eps)
    g_score, _ = score_function_gradient(f, mu, log_var, eps)
    n = np.arange(1, eps.shape[1] + 1)
    return np.cumsum(g_path, axis=1) / n, np.cumsum(g_score, axis=1) / n


def estimate_table(mu, sigmas, n_options, eps):
    """Both estimators' ``N``-sample estimates for every ``(sigma, N)`` of the sliders.

    Returns
    -------
    dict of (float, int) -> (ndarray, ndarray)
        ``(sigma, N) -> (pathwise, score)``, each of shape (n_repeats,).
    """
    table = {}
    for sigma in sigmas:
        pathwise, score = dmu_estimates(mu, sigma, eps)
        for n in n_options:
            table[sigma, n] = pathwise[:, n - 1].copy(), score[:, n - 1].copy()
    return table


def shared_bin_edges(a, b, exact, n_bins=N_BINS, coverage=0.99):
    """Equal-width bins over the central ``coverage`` of both sets of estimates and the exact value.

    Returns
    -------
    ndarray, shape (n_bins + 1,)
    """
    tail = 50.0 * (1.0 - coverage)
    both = np.concatenate([a, b])
    lo, hi = np.percentile(both, [tail, 100.0 - tail])
    lo, hi = min(lo, exact), max(hi, exact)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n_bins + 1)


def step_outline(values, edges):
    """Histogram of ``values`` as the outline of its bars, for one ``Line2D``.

    Heights are densities relative to *all* values, ``count / (len(values) * width)``,
    so the area under the outline is the fraction of values inside the edges.

    Returns
    -------
    x : ndarray, shape (2 * n_bins + 2,)
        ``np.repeat(edges, 2)``.
    y : ndarray, shape (2 * n_bins + 2,)
        ``0, h_0, h_0, h_1, h_1, ..., h_last, h_last, 0``.
    """
    counts, _ = np.histogram(values, bins=edges)
    heights = counts / (len(values) * np.diff(edges))
    return np.repeat(edges, 2), np.concatenate([[0.0], np.repeat(heights, 2), [0.0]])


def readout(pathwise, score, exact, sigma, n_samples):
    """The numbers the view shows, as text."""
    return (
        f"σ = {sigma:.3g}, N = {n_samples} samples per estimate, {len(pathwise)} estimates each\n"
        f"exact d/dmu E[f]  = {exact:.4f}\n"
        f"pathwise:         mean {pathwise.mean():.4f}, std {pathwise.std(ddof=1):.4f}\n"
        f"score function:   mean {score.mean():.4f}, std {score.std(ddof=1):.4f}\n"
        f"variance ratio score / pathwise = {score.var(ddof=1) / pathwise.var(ddof=1):.1f}"
    )


def histogram_figure(exact):
    """The view's empty figure: two panels on a shared x-axis, each with an outline to fill and the exact value.

    Returns
    -------
    fig : matplotlib.figure.Figure
        :data:`figures.WIDTH <vaelib.teaching.figures.WIDTH>` wide, drawn in :data:`figures.STYLE
        <vaelib.teaching.figures.STYLE>`.
    axes : ndarray of Axes, shape (2,)
        Pathwise on top, score function below (:data:`PANELS`).
    lines : list of Line2D, length 2
        The histogram outlines, empty.
    """
    with plt.rc_context(figures.STYLE):
        fig, axes = plt.subplots(2, 1, figsize=(figures.WIDTH, 4.0), sharex=True)
        lines = []
        for ax, (name, color) in zip(axes, PANELS):
            (line,) = ax.plot([], [], color=color, linestyle="-")
            ax.axvline(exact, color="k", linestyle="--")
            ax.set_title(name, loc="left")
            ax.set_ylabel("density")
            ax.yaxis.set_major_locator(MaxNLocator(3))  # few tick labels: text dominates the render time
            ax.tick_params(labelsize=figures.SMALLEST_POINTS)  # also for ticks made after the style is gone
            lines.append(line)
        axes[0].tick_params(axis="x", bottom=False)
        axes[1].set_xlabel(rf"estimate of $\partial_\mu\, \mathbb{{E}}_q[z^2]$  (dashed: exact value {exact:g})")
        fig.tight_layout()
    return fig, axes, lines


def describe(mu, n_repeats):
    """The figure in words, for a reader who cannot see it (the view's ``alt``; the setting is added to it).

    The words hold at every setting (``tests/test_views_gradient_estimators.py`` checks them on every
    one); the numbers that change with the sliders are in the readout beside the figure.
    """
    return (f"Two histograms on a shared x-axis, the estimate of the derivative with respect to μ of the "
            f"expectation of z squared at μ = {mu:g}, with density on the y-axis: {n_repeats:,} pathwise "
            f"estimates in the top panel, {n_repeats:,} score-function estimates in the bottom one, and a dashed "
            f"vertical line at the exact value {exact_dmu_square(mu, 1.0):g} in both. Compare their spreads: the "
            f"score-function estimates have the larger standard deviation at every setting, far larger at small "
            f"σ, and both narrow as N grows; the readout gives the numbers.")


def make_gradient_estimators_view(mu=1.0, sigma=1.0, n_samples=10, n_repeats=1000, seed=0):
    """Sliders for ``sigma`` and ``N``; histograms of both estimators of ``d/dmu E[z^2]``.

    Parameters
    ----------
    mu : float
        Mean of ``q`` (fixed); the exact gradient is ``2 mu``.
    sigma : float
        Initial standard deviation of ``q``, one of :data:`SIGMA_OPTIONS`.
    n_samples : int
        Initial samples per estimate, one of :data:`N_OPTIONS`.
    n_repeats : int
        Estimates per histogram.
    seed : int
        Noise is :func:`noise` ``(n_repeats, max(N_OPTIONS), seed)``, fixed for the view's life.

    Returns
    -------
    SliderView
    """
    table = estimate_table(mu, SIGMA_OPTIONS, N_OPTIONS, noise(n_repeats, max(N_OPTIONS), seed))
    exact = exact_dmu_square(mu, sigma)
    fig, axes, lines = histogram_figure(exact)

    def update(sigma, n_samples):
        pathwise, score = table[sigma, n_samples]
        edges = shared_bin_edges(pathwise, score, exact)
        for ax, line, values in zip(axes, lines, (pathwise, score)):
            x, y = step_outline(values, edges)
            line.set_data(x, y)
            ax.set_ylim(0.0, 1.1 * max(y.max(), 1e-12))
        axes[0].set_xlim(edges[0], edges[-1])
        return readout(pathwise, score, exact, sigma, n_samples)

    sliders = {
        "sigma": value_slider("σ", SIGMA_OPTIONS, sigma),
        "n_samples": widgets.SelectionSlider(options=list(N_OPTIONS), value=n_samples, description="N"),
    }
    return SliderView(fig, sliders, update, alt=describe(mu, n_repeats))
