"""The sigma slider of notebook 03: how the decoder's sigma trades reconstruction against KL.

One Gaussian VAE is trained for each fixed decoder standard deviation ``sigma``
of a grid (same data, architecture, seed and epochs), then measured on the
test images. With ``sigma`` fixed,

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

import time
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.layout_engine import TightLayoutEngine
from matplotlib.ticker import FuncFormatter
from threadpoolctl import threadpool_limits

from vaelib.core.vae import VAEConfig, decode, encode, negative_elbo_forward
from vaelib.machinery.train import fit
from vaelib.teaching.digit_figures import mosaic
from .slider_view import SliderView, value_slider

#: The default grid of decoder standard deviations (pixels in [0, 1]).
DEFAULT_SIGMAS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


def gaussian_vae_terms(params, x, eps, config):
    """Per-image squared error, reconstruction term and KL of a Gaussian VAE at ``z = mu + std * eps``.

    Parameters
    ----------
    params : dict of str -> ndarray
    x : ndarray, shape (n, n_pixels)
    eps : ndarray, shape (n, n_latent)
        Standard normal noise: one sample ``z ~ q(z|x)`` per image.
    config : VAEConfig
        ``likelihood="gaussian"`` with a fixed ``sigma``.

    Returns
    -------
    dict of str -> ndarray, shape (n,), float64
        ``"squared_error"``: ``|x - m(z)|^2`` summed over pixels;
        ``"reconstruction"``: ``-log p(x|z)`` (nats);
        ``"kl"``: ``KL(q(z|x) || p(z))`` (nats, closed form, does not depend on ``eps``);
        ``"elbo"``: ``-(reconstruction + kl)`` (nats, one-sample estimate).
    """
    if config.likelihood != "gaussian" or config.learn_sigma:
        raise ValueError("gaussian_vae_terms needs a Gaussian decoder with a fixed sigma")
    as64 = lambda a: np.asarray(a, dtype=np.float64)
    _, terms, cache = negative_elbo_forward({k: as64(v) for k, v in params.items()}, as64(x), as64(eps), config)
    squared_error = np.sum((cache.rec.x - cache.rec.mean) ** 2, axis=-1)  # the likelihood's cache: x and m(z)
    rec, kl = terms["reconstruction"], terms["kl"]
    return {"squared_error": squared_error, "reconstruction": rec, "kl": kl, "elbo": -(rec + kl)}


def reconstruct(params, x, config):
    """The decoder's mean at the posterior mean: ``m(mu(x))``, shape (n, n_pixels).

    This is the picture usually shown as "the reconstruction"; the loss itself
    uses a sampled ``z`` (see :func:`gaussian_vae_terms`).
    """
    mu, _ = encode(params, x, config)
    return decode(params, mu, config)


def train_sigma_sweep(data, sigmas=DEFAULT_SIGMAS, *, hidden=(128,), n_latent=10, epochs=8, lr=3e-3,
                      batch_size=100, seed=0, n_images=6, threads=1):
    """Train one Gaussian VAE per fixed ``sigma`` and measure it on the test images.

    Parameters
    ----------
    data : Dataset (or any object with ``train`` and ``test`` arrays)
        ``train``, shape (n_train, n_pixels); ``test``, shape (n_test, n_pixels).
    sigmas : sequence of float, increasing
    hidden, n_latent
        Architecture (see :class:`~vaelib.core.vae.VAEConfig`); ``beta = 1``.
    epochs, lr, batch_size, seed
        Passed to :func:`vaelib.machinery.train.fit`; the same seed for every ``sigma``,
        so every model starts from the same initial weights and sees the same
        batches and noise.
    n_images : int
        How many test images (the first ones) to reconstruct for display.
    threads : int
        BLAS threads for training and for the measurements. One (the default)
        gives the same numbers on every run on one machine; another BLAS
        kernel (another CPU) sums in another order, and the numbers move a
        little (``benchmarks/README.md``).

    Returns
    -------
    dict
        ``"sigma"``, ``"kl"``, ``"squared_error"``, ``"reconstruction"``, ``"elbo"``,
        ``"seconds"``: ndarrays of shape (n_sigmas,), means over the test
        images (one ``z ~ q(z|x)`` each, the same noise ``"eps"`` for every model);
        ``"originals"``: shape (n_images, n_pixels);
        ``"reconstructions"``: shape (n_sigmas, n_images, n_pixels), :func:`reconstruct`;
        ``"eps"``: shape (n_test, n_latent); ``"configs"``, ``"params"``: one per sigma;
        ``"image_shape"``: the shape one image reshapes to.
    """
    sigmas = np.asarray(sigmas, dtype=float)
    if sigmas.ndim != 1 or len(sigmas) == 0 or np.any(np.diff(sigmas) <= 0):
        raise ValueError(f"sigmas must be a non-empty increasing sequence, got {sigmas}")
    x_test = np.asarray(data.test, dtype=np.float32)
    n_pixels = x_test.shape[1]
    image_shape = tuple(getattr(data, "image_shape", None) or _square_shape(n_pixels))
    base = VAEConfig(n_pixels=n_pixels, hidden=tuple(hidden), n_latent=n_latent, likelihood="gaussian")
    eps = np.random.default_rng([seed, 1]).standard_normal((len(x_test), n_latent)).astype(np.float32)

    table = {k: [] for k in ("kl", "squared_error", "reconstruction", "elbo", "seconds",
                             "reconstructions", "configs", "params")}
    for sigma in sigmas:
        config = replace(base, sigma=float(sigma))
        start = time.perf_counter()
        trainer = fit(config, data.train, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                      progress=False, log=lambda line: None, threads=threads)
        table["seconds"].append(time.perf_counter() - start)
        with threadpool_limits(threads, user_api="blas"):
            terms = gaussian_vae_terms(trainer.params, x_test, eps, config)
        for k in ("kl", "squared_error", "reconstruction", "elbo"):
            table[k].append(float(terms[k].mean()))
        table["reconstructions"].append(reconstruct(trainer.params, x_test[:n_images], config))
        table["configs"].append(config)
        table["params"].append({k: v.copy() for k, v in trainer.params.items()})

    out = {k: np.array(table[k]) for k in ("kl", "squared_error", "reconstruction", "elbo", "seconds",
                                            "reconstructions")}
    out.update(sigma=sigmas, originals=x_test[:n_images].copy(), eps=eps, configs=table["configs"],
               params=table["params"], image_shape=image_shape)
    return out


def _square_shape(n_pixels):
    side = int(round(np.sqrt(n_pixels)))
    return (side, side) if side * side == n_pixels else (1, n_pixels)


def readout(table, i):
    """The numbers the view shows for row ``i`` of a :func:`train_sigma_sweep` table, as text."""
    return (
        f"sigma = {table['sigma'][i]:g}   (decoder standard deviation; acts as beta = sigma^2)\n"
        f"KL(q(z|x) || p(z))      = {table['kl'][i]:10.3f} nats\n"
        f"squared error |x - m|^2 = {table['squared_error'][i]:10.3f} (per image, summed over pixels)\n"
        f"-log p(x|z)             = {table['reconstruction'][i]:10.3f} nats\n"
        f"ELBO = -(-log p + KL)   = {table['elbo'][i]:10.3f} nats"
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


def make_sigma_tradeoff_view(table, sigma=None):
    """A sigma slider over a :func:`train_sigma_sweep` table.

    Parameters
    ----------
    table : dict from :func:`train_sigma_sweep`
    sigma : float, optional
        Initial slider value (one of ``table["sigma"]``; default the first).

    Returns
    -------
    SliderView
        Slider ``sigma``. Artists: ``fig.axes[0].images[0]`` the
        :func:`~vaelib.teaching.digit_figures.mosaic` (no padding) of the test images on
        top and the reconstructions below;
        ``fig.axes[1].lines[0]`` KL against sigma, ``lines[1]`` the marker on it;
        ``fig.axes[2].lines[0]`` the reconstruction term ``-log p(x|z)`` against
        sigma (symlog axis), ``lines[1]`` the marker on it.
    """
    sigmas = table["sigma"]
    originals = table["originals"]
    mosaics = [mosaic(np.concatenate([originals, r]), len(originals), table["image_shape"], pad=0)
               for r in table["reconstructions"]]
    fig = plt.figure(figsize=(10, 6.4), dpi=100)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.0, 1.15])
    ax_img = fig.add_subplot(grid[0, :])
    image = ax_img.imshow(mosaics[0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax_img.set_axis_off()
    title = ax_img.set_title(f"top: test images; bottom: reconstructions, sigma = {sigmas[0]:g}", fontsize=11)

    ax_kl, ax_rec = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    curves = [(ax_kl, table["kl"], "C0", "KL(q(z|x) || p(z)) (nats)", "KL term, every model"),
              (ax_rec, table["reconstruction"], "C3", "-log p(x|z) (nats, symlog)",
               "reconstruction term, every model")]
    markers = []
    for ax, values, color, ylabel, name in curves:
        ax.plot(sigmas, values, "o-", color=color)
        (marker,) = ax.plot([], [], "s", color=color, markersize=12, fillstyle="none", markeredgewidth=2)
        markers.append(marker)
        ax.set_xscale("log")
        ax.set_xticks(sigmas, [f"{s:g}" for s in sigmas])
        ax.minorticks_off()
        ax.set_xlabel("decoder sigma (pixel units, log scale)")
        ax.set_ylabel(ylabel, color=color)
        ax.set_title(name, fontsize=11)
        ax.grid(True, color="0.9")
    kl_marker, rec_marker = markers
    ax_rec.axhline(0.0, color="0.4", lw=1.0, ls=":")
    ax_rec.set_yscale("symlog", linthresh=symlog_threshold(table["reconstruction"]), linscale=0.5)
    ax_rec.set_ylim(*padded_symlog_limits(table["reconstruction"]))
    ax_rec.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 1000, not 10^3
    # lay out once; fig.tight_layout() would leave an engine that re-lays out at every savefig
    TightLayoutEngine().execute(fig)

    def update(sigma):
        i = int(np.argmin(np.abs(sigmas - sigma)))
        image.set_data(mosaics[i])
        title.set_text(f"top: test images; bottom: reconstructions, sigma = {sigmas[i]:g}")
        kl_marker.set_data([sigmas[i]], [table["kl"][i]])
        rec_marker.set_data([sigmas[i]], [table["reconstruction"][i]])
        return readout(table, i)

    return SliderView(fig, {"sigma": value_slider("sigma", sigmas, sigma)}, update)
