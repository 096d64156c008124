"""The gap between the ELBO and log p(x), as q(z) moves: notebook 02.

Model: the linear-Gaussian model of :mod:`vaelib.teaching.exact_models` with one latent,
``z ~ N(0, 1)``, ``x | z ~ N(w z + b, sigma^2 I)``, whose posterior ``p(z | x)`` is
Gaussian and known. Sliders move ``q(z) = N(mu, exp(log_var))``. Left panel: the
densities of ``p(z | x)`` and ``q(z)``. Right panel, a waterfall: a bar from 0 to the
ELBO, the KL gap as a bar from the ELBO upwards, and ``log p(x)``, which the top
of the KL bar always reaches: ``log p(x) = ELBO + KL(q || p(z | x))``.
"""

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from ..exact_models import (
    linear_gaussian_elbo,
    linear_gaussian_kl_to_posterior,
    linear_gaussian_log_evidence,
    linear_gaussian_posterior,
)
from vaelib.core.gaussian import log_normal
from .slider_view import SliderView

#: Default model: two pixels, one latent.
DEFAULT_W = np.array([[1.0], [0.5]])
DEFAULT_B = np.array([0.0, 0.0])
DEFAULT_SIGMA = 0.7
DEFAULT_X = np.array([1.2, 0.3])
#: Figure size (inches), resolution (dots per inch) and font size (points): readable at 100 %.
FIGSIZE, DPI, FONTSIZE = (10, 4), 100, 10


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
        Initial slider values for ``q(z) = N(mu, exp(log_var))``.
    z_grid : ndarray, shape (n,), optional
        Where the densities are drawn; default 401 points on [-4, 4].

    Returns
    -------
    SliderView
        Sliders ``mu`` and ``log_var``. Artists (on ``view.fig.axes[0]`` and ``[1]``):
        ``lines[0]`` the posterior density, ``lines[1]`` q's density; ``patches[0]``
        the ELBO bar (from 0), ``patches[1]`` the KL bar (from the ELBO up),
        ``patches[2]`` the ``log p(x)`` bar, ``lines[0]`` a dashed line at ``log p(x)``.
    """
    x, W, b = (np.asarray(v, float) for v in (x, W, b))
    if W.ndim != 2 or W.shape[1] != 1:
        raise ValueError(f"W must have shape (D, 1) for a one-latent model, got {W.shape}")
    z = np.linspace(-4.0, 4.0, 401) if z_grid is None else np.asarray(z_grid, float)
    post_mean, post_cov = linear_gaussian_posterior(x, W, b, sigma)
    post = gaussian_density_1d(z, post_mean[0], np.log(post_cov[0, 0]))

    fig, (ax_z, ax_bar) = plt.subplots(1, 2, figsize=FIGSIZE, dpi=DPI, width_ratios=[2, 1])
    ax_z.plot(z, post, color="k", label=r"true posterior $p(z\mid x)$")
    (q_line,) = ax_z.plot(z, np.zeros_like(z), color="C0", ls="--", label="$q(z)$")  # dashed: not colour alone
    ax_z.set(xlabel="$z$", ylabel="density (per unit of $z$)", title=r"$p(z\mid x)$ and $q(z)$")
    ax_z.xaxis.set_major_locator(MaxNLocator(5))  # few tick labels: text dominates the redraw time
    ax_z.legend(loc="upper left", fontsize=FONTSIZE)
    for ax in (ax_z, ax_bar):
        ax.tick_params(labelsize=FONTSIZE)

    log_ev = float(linear_gaussian_log_evidence(x, W, b, sigma))
    # A waterfall: the ELBO from 0, the KL from the ELBO upwards, log p(x) from 0.
    elbo_bar, kl_bar, _ = ax_bar.bar([0, 1, 2], [0.0, 0.0, log_ev], width=0.6, color=["C0", "C3", "0.5"])
    ax_bar.axhline(log_ev, color="k", ls="--", lw=1)
    ax_bar.axhline(0.0, color="0.6", lw=0.8)
    ax_bar.set(xticks=[0, 1, 2], xticklabels=["ELBO", "+ KL", r"$\log p(x)$"], ylabel="nats",
               title=r"$\log p(x) = \mathrm{ELBO} + \mathrm{KL}$")
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.16, top=0.9, wspace=0.3)

    def update(mu, log_var):
        q = gaussian_density_1d(z, mu, log_var)
        q_line.set_ydata(q)
        ax_z.set_ylim(0.0, 1.1 * max(q.max(), post.max()))
        terms = elbo_gap_terms(mu, log_var, x, W, b, sigma)
        elbo_bar.set_height(terms["elbo"])
        kl_bar.set_y(terms["elbo"])
        kl_bar.set_height(terms["kl"])
        low, high = min(0.0, terms["elbo"]), max(0.0, log_ev)
        pad = 0.15 * (high - low) + 0.1
        ax_bar.set_ylim(low - pad, high + pad)
        return elbo_gap_readout(terms)

    sliders = {
        "mu": widgets.FloatSlider(value=mu, min=-3.0, max=3.0, step=0.05, description="q mean mu"),
        "log_var": widgets.FloatSlider(value=log_var, min=-5.0, max=2.0, step=0.05, description="q log_var"),
    }
    return SliderView(fig, sliders, update)
