"""The sigma slider of notebook 03: how the decoder's sigma trades reconstruction against KL.

The models are a sweep of :mod:`vaelib.teaching.tradeoff`: one Gaussian VAE per fixed
decoder standard deviation ``sigma`` of a grid (same data, architecture, seed and
epochs), trained through the model cache and measured by
:func:`~vaelib.teaching.tradeoff.measure_sweep` on the test images, with ``S`` draws
``z ~ q(z|x)`` per image (``tradeoff.sigma_sweep(sigmas, base=tradeoff.GREY_10D)``
builds notebook 03's). With ``sigma`` fixed,

    -log p(x|z) = |x - m(z)|^2 / (2 sigma^2) + D log sigma + (D/2) log 2 pi,

so the loss ``-log p(x|z) + KL`` has the same gradients, up to the factor
``1 / sigma^2``, as ``|x - m(z)|^2 / 2 + sigma^2 * KL``: ``sigma^2`` acts as the
KL weight ``beta``. Small ``sigma`` buys sharp reconstructions with a large KL;
large ``sigma`` makes information in ``z`` dear, and the KL falls towards 0
(posterior collapse) while the reconstructions blur towards the mean image.

The slider picks a ``sigma``; the view shows test images above that model's
reconstructions and, below them in two panels, the KL and the reconstruction
term of every model against ``sigma``, with a marker at the chosen one. The
reconstruction term spans thousands of nats on both sides of 0, so its axis
is symlog: linear near 0, logarithmic beyond, and every point stays in view.

Every number is in nats per image (summed over pixels or latent dimensions,
averaged over the test images), except the squared error, which is in squared
pixel units per image, summed over the ``D`` pixels.
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.layout_engine import TightLayoutEngine
from matplotlib.ticker import FuncFormatter

from vaelib.core.vae import encode
from vaelib.teaching import figures
from vaelib.teaching.digit_figures import DIGIT_CMAP, decoder_means, mosaic
from .slider_view import SliderView, value_slider

#: Figure size (inches): the full width of :mod:`vaelib.teaching.figures`, the digits above the two panels.
FIGSIZE = (figures.WIDTH, 5.6)


def sigma_terms(table):
    """The numbers of a sigma sweep, per model, from a :func:`~vaelib.teaching.tradeoff.measure_sweep` table.

    Parameters
    ----------
    table : dict
        From :func:`~vaelib.teaching.tradeoff.measure_sweep` (or ``sigma_sweep``): Gaussian decoders with
        fixed, increasing ``sigma``, trained with ``beta = 1``.

    Returns
    -------
    dict of str -> ndarray, shape (n_models,), float64
        ``"sigma"``: each model's decoder standard deviation; test-image means of
        ``"kl"``: ``KL(q(z|x) || p(z))`` (the rate, closed form, nats);
        ``"squared_error"``: ``|x - m(z)|^2`` summed over pixels;
        ``"reconstruction"``: ``-log p(x|z)`` (the distortion, nats);
        ``"elbo"``: ``-(reconstruction + kl)`` (nats). The last three are Monte Carlo means over the
        sweep's ``S`` draws ``z ~ q(z|x)`` per image.
    """
    configs = [spec.config for spec in table["specs"]]
    if any(c.likelihood != "gaussian" or c.learn_sigma for c in configs):
        raise ValueError("a sigma sweep needs Gaussian decoders with a fixed sigma")
    if any(c.beta != 1 for c in configs):
        raise ValueError("a sigma sweep's models are trained with beta = 1 (sigma^2 is their KL weight)")
    sigmas = np.array([c.sigma for c in configs], dtype=float)
    if np.any(np.diff(sigmas) <= 0):
        raise ValueError(f"a sigma sweep's sigmas must increase, got {sigmas}")
    kl, rec = np.asarray(table["rate"], dtype=float), np.asarray(table["distortion"], dtype=float)
    return {"sigma": sigmas, "kl": kl, "squared_error": 2 * np.asarray(table["half_squared_error"], dtype=float),
            "reconstruction": rec, "elbo": -(rec + kl)}


def reconstruct(params, x, config):
    """The decoder's mean at the posterior mean: ``m(mu(x))``, shape (n, n_pixels).

    This is the picture usually shown as "the reconstruction"; the loss itself
    uses a sampled ``z``.
    """
    mu, _ = encode(params, x, config)
    return decoder_means(params, mu, config)


def readout(terms, i):
    """The numbers the view shows for model ``i`` of :func:`sigma_terms`, as text."""
    return (
        f"σ = {terms['sigma'][i]:g}   (decoder standard deviation; acts as β = σ²)\n"
        f"KL(q(z|x) || p(z))      = {terms['kl'][i]:10.3f} nats\n"
        f"squared error |x - m|^2 = {terms['squared_error'][i]:10.3f} (per image, summed over pixels)\n"
        f"-log p(x|z)             = {terms['reconstruction'][i]:10.3f} nats\n"
        f"ELBO = -(-log p + KL)   = {terms['elbo'][i]:10.3f} nats"
    )


def symlog_threshold(values):
    """The linear half-width of a symlog axis for ``values``: a power of 10 at or below the smallest ``|value|``.

    Below it the axis is linear (so 0 and small values of either sign show);
    above it, logarithmic (so values thousands of times larger fit too).
    """
    smallest = np.min(np.abs(np.asarray(values, dtype=float)))
    return 10.0 ** np.floor(np.log10(smallest)) if smallest > 0 else 1.0


def padded_symlog_limits(values, pad=3.0):
    """Axis limits holding ``values`` and 0, widened by the factor ``pad`` on each side of 0.

    Returns
    -------
    lo, hi : float
        ``lo <= min(values, 0)`` and ``hi >= max(values, 0)``, with room for a marker.
    """
    values = np.asarray(values, dtype=float)
    unit = symlog_threshold(values)
    lo, hi = min(values.min(), 0.0), max(values.max(), 0.0)
    return (lo * pad if lo < 0 else -unit), (hi * pad if hi > 0 else unit)


def _sigmas_text(values):
    return f"{values[0]:g} to {values[-1]:g}"


def figure_words(terms, n_images):
    """What the view's figure shows, in words (its alt text), with the numbers of ``terms``.

    The same words describe every setting: :meth:`SliderView.alt_text` adds the chosen
    ``sigma``, and the chosen model's numbers are in the readout.

    Parameters
    ----------
    terms : dict
        From :func:`sigma_terms`.
    n_images : int
        Test images in the top panel.
    """
    sigmas, kl, rec = terms["sigma"], terms["kl"], terms["reconstruction"]
    low = int(np.argmin(rec))
    trend = "falls" if kl[-1] < kl[0] else "rises" if kl[-1] > kl[0] else "stays"
    lowest = (f"it is lowest, {rec[low]:.2f} nats" + (", below 0," if rec[low] < 0 else "")
              + f" at σ = {sigmas[low]:g}")
    return (
        f"Top, {n_images} test digits in a row, and below them their reconstructions by the model of the chosen σ "
        f"(the decoder's mean at the posterior mean). Below left, the KL term in nats against the decoder's σ "
        f"from {_sigmas_text(sigmas)} on a log scale, one circle per trained model: as σ grows the KL {trend} "
        f"from {kl[0]:.2f} to {kl[-1]:.2f} nats. Below right, the reconstruction term −log p(x|z) in nats "
        f"against σ, squares on a dashed line, on a symlog axis that is linear near 0: {rec[0]:.2f} nats at "
        f"σ = {sigmas[0]:g}, {rec[-1]:.2f} at σ = {sigmas[-1]:g}, and {lowest}. Rings mark the chosen σ in both "
        f"panels. Look for the reconstructions blurring into one smudge as the KL falls towards 0."
    )


def make_sigma_tradeoff_view(table, sigma=None):
    """A sigma slider over a sigma sweep (a :func:`~vaelib.teaching.tradeoff.measure_sweep` table).

    Drawn in the style of :mod:`vaelib.teaching.figures` whatever the caller's Matplotlib
    settings: :data:`~vaelib.teaching.figures.WIDTH` wide at its dpi, 10-pt text or larger,
    the KL blue and solid with circles, the reconstruction term vermillion and dashed with
    squares (each in its own panel, named by its title and axis label), the chosen model
    ringed in black in both.

    Parameters
    ----------
    table : dict
        See :func:`sigma_terms`; its ``"originals"`` and ``"reconstructions"`` are drawn.
    sigma : float, optional
        Initial slider value (one of the models' sigmas; default the first).

    Returns
    -------
    SliderView
        Slider ``sigma`` (labelled σ), figure described by :func:`figure_words` (``alt``).
        Artists: ``fig.axes[0].images[0]`` the
        :func:`~vaelib.teaching.digit_figures.mosaic` (no padding) of the test images on
        top and the reconstructions below, drawn with
        :data:`~vaelib.teaching.digit_figures.DIGIT_CMAP` (dark ink on white);
        ``fig.axes[1].lines[0]`` KL against sigma, ``lines[1]`` the ring on it;
        ``fig.axes[2].lines[0]`` the reconstruction term ``-log p(x|z)`` against
        sigma (symlog axis), ``lines[1]`` the ring on it.
    """
    terms = sigma_terms(table)
    sigmas = terms["sigma"]
    originals = table["originals"]
    mosaics = [mosaic(np.concatenate([originals, r]), len(originals), table["image_shape"], pad=0)
               for r in table["reconstructions"]]
    blue, vermillion = figures.PALETTE["blue"], figures.PALETTE["vermillion"]
    with plt.rc_context(figures.STYLE):
        fig = plt.figure(figsize=FIGSIZE)
        grid = fig.add_gridspec(2, 2, height_ratios=[1.0, 1.45])
        ax_img = fig.add_subplot(grid[0, :])
        image = ax_img.imshow(mosaics[0], cmap=DIGIT_CMAP, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax_img.set_axis_off()
        caption = "top: test digits; bottom: reconstructions at $\\sigma$ = {:g}"
        title = ax_img.set_title(caption.format(sigmas[0]))

        ax_kl, ax_rec = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
        curves = [(ax_kl, terms["kl"], blue, "-", figures.MARKERS[0], r"$\mathrm{KL}(q(z|x)\,\|\,p(z))$ (nats)",
                   "KL term"),
                  (ax_rec, terms["reconstruction"], vermillion, "--", figures.MARKERS[1],
                   r"$-\log p(x|z)$ (nats, symlog)", "reconstruction term")]
        rings = []
        for ax, values, color, dash, shape, ylabel, name in curves:
            ax.plot(sigmas, values, color=color, ls=dash, marker=shape)
            (ring,) = ax.plot([], [], "o", color="k", markersize=13, fillstyle="none", markeredgewidth=1.5)
            rings.append(ring)
            ax.set_xscale("log")
            ax.set_xticks(sigmas, [f"{s:g}" for s in sigmas])
            ax.minorticks_off()
            ax.set_xlabel(r"decoder $\sigma$ (pixel units, log scale)")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{name}, every model")
            ax.grid(True, color="0.9")
            ax.tick_params(labelsize=figures.SMALLEST_POINTS)  # also for ticks made after the style is gone
        kl_ring, rec_ring = rings
        ax_kl.margins(y=0.12)  # room for the ring at either end
        ax_rec.axhline(0.0, color="0.4", lw=1.0, ls=":")
        ax_rec.set_yscale("symlog", linthresh=symlog_threshold(terms["reconstruction"]), linscale=0.5)
        ax_rec.set_ylim(*padded_symlog_limits(terms["reconstruction"]))
        ax_rec.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 1000, not 10^3
        # lay out once; fig.tight_layout() would leave an engine that re-lays out at every savefig
        TightLayoutEngine().execute(fig)

    def update(sigma):
        i = int(np.argmin(np.abs(sigmas - sigma)))
        image.set_data(mosaics[i])
        title.set_text(caption.format(sigmas[i]))
        kl_ring.set_data([sigmas[i]], [terms["kl"][i]])
        rec_ring.set_data([sigmas[i]], [terms["reconstruction"][i]])
        return readout(terms, i)

    return SliderView(fig, {"sigma": value_slider("σ", sigmas, sigma)}, update,
                      alt=figure_words(terms, len(originals)))
