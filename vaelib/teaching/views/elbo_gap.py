"""The gap between the ELBO and log p(x), as q(z) moves: notebook 02.

Model: the linear-Gaussian model of :mod:`vaelib.teaching.exact_models` with one latent,
``z ~ N(0, 1)``, ``x | z ~ N(w z + b, sigma^2 I)``, whose posterior ``p(z | x)`` is
Gaussian and known. Sliders move ``q(z) = N(mu, exp(log_var))``. Left panel: the
densities of ``p(z | x)`` (solid black) and ``q(z)`` (dashed blue). Right panel, a
waterfall: a bar from 0 to the ELBO, the KL gap as a hatched bar from the ELBO upwards,
and ``log p(x)``, which the top of the KL bar always reaches:
``log p(x) = ELBO + KL(q || p(z | x))``.

The sliders step through a grid (:func:`halfway_grid`): each moves in steps of half the
way from its starting value to the posterior's, so the start (by default the prior,
``mu = 0``, ``log_var = 0``) and the posterior itself are both settings, and at the
posterior the KL bar has no height. The grid is finite, 5 means by 5 log-variances
(:data:`MU_STEPS`, :data:`LOG_VAR_STEPS`), so that every setting is precomputed for a page
without a kernel (:meth:`SliderView.frames`). The axes' limits hold every setting, so that
no setting rescales them, and a move redraws only q's curve and the two moving bars over
the rest of the figure, kept from one full draw (``SliderView(moving=...)``). The figure
follows :mod:`vaelib.teaching.figures` (7 inches wide, Okabe-Ito colours, a dash or a hatch
beside each colour) and carries its description (:func:`figure_words`): the same words at
every setting, true whichever frame a page shows beside them, with the setting named after
them and the setting's numbers in the readout.
"""

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from vaelib.core.gaussian import log_normal

from .. import figures
from ..exact_models import (
    linear_gaussian_elbo,
    linear_gaussian_kl_to_posterior,
    linear_gaussian_log_evidence,
    linear_gaussian_posterior,
)
from .slider_view import SliderView

#: Default model: two pixels, one latent.
DEFAULT_W = np.array([[1.0], [0.5]])
DEFAULT_B = np.array([0.0, 0.0])
DEFAULT_SIGMA = 0.7
DEFAULT_X = np.array([1.2, 0.3])
#: Figure size (inches): the full width of :mod:`vaelib.teaching.figures`.
FIGSIZE = (figures.WIDTH, 3.4)
#: The sliders' grid, in half-steps from the start (k = 0) through the posterior (k = 2) to as far
#: beyond it (k = 4), for the mean and for the log-variance: 5 x 5 = 25 settings, each precomputed
#: as one frame (notebook 02's: 7.5-9.2 KB each, 0.30 MB of the notebook as base64 in its player).
MU_STEPS = range(0, 5)
LOG_VAR_STEPS = range(0, 5)
#: Slider labels, one per slider, as a reader says the setting ("q's mean μ = 0.78").
LABELS = {"mu": "q's mean μ", "log_var": "q's log-variance"}
#: Colours of the two densities and of the three bars (ELBO, KL, log p(x)), from Okabe and Ito's palette.
POSTERIOR_COLOUR, Q_COLOUR = figures.PALETTE["black"], figures.PALETTE["blue"]
BAR_COLOURS = (figures.PALETTE["blue"], figures.PALETTE["vermillion"], "white")


def gaussian_density_1d(z, mu, log_var):
    """``N(z | mu, exp(log_var))`` for a scalar Gaussian.

    Parameters
    ----------
    z : ndarray, shape (n,)
    mu, log_var : float

    Returns
    -------
    ndarray, shape (n,)
    """
    return np.exp(log_normal(np.asarray(z, float)[:, None], mu, log_var))


def elbo_gap_terms(mu, log_var, x, W, b, sigma):
    """ELBO, KL to the posterior and log evidence for ``q = N(mu, exp(log_var))``.

    Parameters
    ----------
    mu, log_var : float
    x : ndarray, shape (D,)
    W : ndarray, shape (D, 1)
    b : ndarray, shape (D,)
    sigma : float

    Returns
    -------
    dict with float values ``"elbo"``, ``"kl"``, ``"log_evidence"``, in nats.
    """
    q = (np.array([mu], float), np.array([log_var], float))
    return {
        "elbo": float(linear_gaussian_elbo(x, *q, W, b, sigma)),
        "kl": float(linear_gaussian_kl_to_posterior(x, *q, W, b, sigma)),
        "log_evidence": float(linear_gaussian_log_evidence(x, W, b, sigma)),
    }


def elbo_gap_readout(terms):
    """The readout text: ELBO, KL, their sum and log p(x), in nats, four decimals."""
    rows = [
        ("ELBO", terms["elbo"]),
        ("KL(q || p(z|x))", terms["kl"]),
        ("ELBO + KL", terms["elbo"] + terms["kl"]),
        ("log p(x)", terms["log_evidence"]),
    ]
    return "\n".join(f"{name:<16} = {value:9.4f} nats" for name, value in rows)


def halfway_grid(start, target, steps):
    """``start + k (target - start) / 2`` for each ``k`` of ``steps``, in increasing order.

    ``k = 0`` gives ``start`` and ``k = 2`` gives ``target``; each step is half the way between them.

    Parameters
    ----------
    start, target : float
    steps : iterable of int

    Returns
    -------
    tuple of float

    Raises
    ------
    ValueError
        If ``start`` and ``target`` are too close (under 0.01 apart) to make steps of.
    """
    if abs(target - start) < 0.01:
        raise ValueError(f"start {start:g} and target {target:g} are too close for a grid between them")
    half = (target - start) / 2
    return tuple(sorted(float(start + k * half) + 0.0 for k in steps))  # + 0.0: no -0.0


def _range(values, fmt=".2f"):
    low, high = min(values), max(values)
    return f"{low:{fmt}} to {high:{fmt}}"


def figure_words(grid_terms, post_mean, post_log_var, z_range):
    """What the view's figure shows, in words (its alt text), true at every setting of the grid.

    The same words for every setting: a page without a kernel may show the words of its
    starting setting beside any frame. :meth:`SliderView.alt_text` adds the setting shown,
    and the readout gives that setting's numbers.

    Parameters
    ----------
    grid_terms : list of dict
        :func:`elbo_gap_terms` at every setting, each with its ``"mu"`` and ``"log_var"`` added;
        the setting of least KL is taken to be the posterior's (every :func:`halfway_grid` holds it).
    post_mean, post_log_var : float
        The posterior's mean and log-variance.
    z_range : tuple of float
        The left panel's ``z`` axis, ``(first, last)``.
    """
    mus = [t["mu"] for t in grid_terms]
    sds = [np.exp(0.5 * t["log_var"]) for t in grid_terms]
    log_vars = [t["log_var"] for t in grid_terms]
    elbos = [t["elbo"] for t in grid_terms]
    tight = min(grid_terms, key=lambda t: t["kl"])  # the posterior, a setting of every grid (halfway_grid)
    others = [t["kl"] for t in grid_terms if t is not tight]
    return (f"Left: two densities, per unit of z, against z from {z_range[0]:g} to {z_range[1]:g}: the true "
            f"posterior p(z|x) as a solid black curve, mean {post_mean:.2f} and standard deviation "
            f"{np.exp(0.5 * post_log_var):.2f}, and q(z) as a dashed blue curve with the mean and log-variance "
            f"the sliders set (means {_range(mus)}, log-variances {_range(log_vars)}, so standard deviations "
            f"{_range(sds)}). Right, in nats: the ELBO as a blue bar from 0 ({_range(elbos)} over the settings), "
            f"the KL as a hatched vermillion bar from the ELBO up to log p(x) = {grid_terms[0]['log_evidence']:.2f}, "
            f"which an outlined third bar and a dashed line mark. At every setting the KL bar ends at the dashed "
            f"line, ELBO + KL = log p(x); the KL bar has no height only at mean {tight['mu']:.2f} and log-variance "
            f"{tight['log_var']:.2f}, the posterior's own, where the dashed curve lies on the solid one; at every other "
            f"setting the KL is {_range(others)} nats. The readout above the figure gives the "
            f"four numbers of the setting shown.")


def density_limit(post_peak, log_vars):
    """Upper y-limit of the densities' panel: room for the posterior and the narrowest q (peak ``1/sqrt(2 pi v)``)."""
    return 1.1 * max(post_peak, 1.0 / np.sqrt(2 * np.pi * np.exp(min(log_vars))))


def z_limits(mus, log_vars, n_sd=3.0):
    """Whole numbers of ``z`` that hold every q of the grid to ``n_sd`` standard deviations either side."""
    widest = n_sd * np.exp(0.5 * max(log_vars))
    return float(np.floor(min(mus) - widest)), float(np.ceil(max(mus) + widest))


def bar_limits(terms):
    """y-limits of the bars' panel that hold 0, ``log p(x)`` and every ELBO of ``terms`` (a list of dicts)."""
    low = min(0.0, *(t["elbo"] for t in terms))
    high = max(0.0, *(t["log_evidence"] for t in terms))
    pad = 0.1 * (high - low) + 0.05
    return low - pad, high + pad


def grid_slider(description, values, value):
    """A ``SelectionSlider`` over ``values``, each labelled with two decimals, its label shown in full."""
    return widgets.SelectionSlider(options=[(f"{v:.2f}", v) for v in values], value=value, description=description,
                                   style={"description_width": "initial"})


def make_elbo_gap_view(x=DEFAULT_X, W=DEFAULT_W, b=DEFAULT_B, sigma=DEFAULT_SIGMA, *, mu=0.0, log_var=0.0,
                       z_grid=None):
    """Build the slider view of ``log p(x) = ELBO + KL`` on a one-latent linear-Gaussian model.

    Parameters
    ----------
    x : ndarray, shape (D,)
    W : ndarray, shape (D, 1)
    b : ndarray, shape (D,)
    sigma : float
    mu, log_var : float
        The starting ``q(z) = N(mu, exp(log_var))``, from which the sliders' grid steps to the
        posterior (:func:`halfway_grid` with :data:`MU_STEPS` and :data:`LOG_VAR_STEPS`).
    z_grid : ndarray, shape (n,), optional
        Where the densities are drawn; default 401 points over :func:`z_limits` of the grid.

    Returns
    -------
    SliderView
        Sliders ``mu`` and ``log_var`` (``SelectionSlider`` s, 25 settings). Artists (on
        ``view.fig.axes[0]`` and ``[1]``): ``lines[0]`` the posterior density, ``lines[1]`` q's
        density; ``patches[0]`` the ELBO bar (from 0), ``patches[1]`` the KL bar (from the ELBO up),
        ``patches[2]`` the ``log p(x)`` bar, ``lines[0]`` a dashed line at ``log p(x)``. ``alt`` is
        :func:`figure_words` (the same at every setting).

    Raises
    ------
    ValueError
        If ``W`` is not of shape (D, 1), or the start lies within 0.01 of the posterior's mean or
        log-variance (no grid between them).
    """
    x, W, b = (np.asarray(v, float) for v in (x, W, b))
    if W.ndim != 2 or W.shape[1] != 1:
        raise ValueError(f"W must have shape (D, 1) for a one-latent model, got {W.shape}")
    post_mean, post_cov = linear_gaussian_posterior(x, W, b, sigma)
    post_mean, post_log_var = float(post_mean[0]), float(np.log(post_cov[0, 0]))
    mus = halfway_grid(mu, post_mean, MU_STEPS)
    log_vars = halfway_grid(log_var, post_log_var, LOG_VAR_STEPS)
    z = np.linspace(*z_limits(mus, log_vars), 401) if z_grid is None else np.asarray(z_grid, float)
    post = gaussian_density_1d(z, post_mean, post_log_var)
    every = [{"mu": m, "log_var": v, **elbo_gap_terms(m, v, x, W, b, sigma)} for m in mus for v in log_vars]
    log_ev = every[0]["log_evidence"]

    with plt.rc_context(figures.STYLE):
        fig, (ax_z, ax_bar) = plt.subplots(1, 2, figsize=FIGSIZE, width_ratios=[1.8, 1], layout="constrained")
        ax_z.plot(z, post, color=POSTERIOR_COLOUR, linestyle="-", lw=2, label=r"true posterior $p(z\mid x)$")
        (q_line,) = ax_z.plot(z, np.zeros_like(z), color=Q_COLOUR, linestyle="--", lw=2, label="$q(z)$")
        ax_z.set(xlabel="$z$", ylabel="density (per unit of $z$)", xlim=(z[0], z[-1]),
                 ylim=(0.0, density_limit(post.max(), log_vars)))
        ax_z.xaxis.set_major_locator(MaxNLocator(5, integer=True))  # few tick labels: text dominates the redraw
        ax_z.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2, frameon=False, borderaxespad=0.2)

        # A waterfall: the ELBO from 0, the KL from the ELBO upwards, log p(x) from 0.
        elbo_bar, kl_bar, _ = ax_bar.bar([0, 1, 2], [0.0, 0.0, log_ev], width=0.6, color=BAR_COLOURS,
                                         edgecolor="black", linewidth=1, hatch=[None, "//", None])
        ev_line = ax_bar.axhline(log_ev, color="black", linestyle="--", lw=1)
        zero_line = ax_bar.axhline(0.0, color="black", lw=0.8)
        ax_bar.set(xticks=[0, 1, 2], xticklabels=["ELBO", "+ KL", r"$\log p(x)$"], ylabel="nats",
                   ylim=bar_limits(every))
        ax_bar.set_title(r"$\log p(x) = \mathrm{ELBO} + \mathrm{KL}$", loc="right")
        for ax in (ax_z, ax_bar):
            ax.tick_params(labelsize=figures.SMALLEST_POINTS)  # also for ticks made after the style is gone

    def update(mu, log_var):
        q_line.set_ydata(gaussian_density_1d(z, mu, log_var))
        terms = elbo_gap_terms(mu, log_var, x, W, b, sigma)
        elbo_bar.set_height(terms["elbo"])
        kl_bar.set_y(terms["elbo"])
        kl_bar.set_height(terms["kl"])
        return elbo_gap_readout(terms)

    # lay out once, then keep the layout: an engine left on the figure would lay it out again at every savefig
    fig.get_layout_engine().execute(fig)
    fig.set_layout_engine("none")
    # Limits and layout stay fixed: a slider move redraws only these, in the order a full draw draws them
    # (bars, then the lines over them, then q's curve on its own axes).
    moving = [elbo_bar, kl_bar, ev_line, zero_line, q_line]
    sliders = {"mu": grid_slider(LABELS["mu"], mus, mu), "log_var": grid_slider(LABELS["log_var"], log_vars, log_var)}
    words = figure_words(every, post_mean, post_log_var, (z[0], z[-1]))
    return SliderView(fig, sliders, update, moving=moving, alt=words)
