r"""log p(x) of a VAE with a two-dimensional latent space, by quadrature on a grid.

With ``z`` in two dimensions the evidence is an integral a grid can do:

.. math::
    \log p(x) = \log \int p(x \mid z)\, p(z)\, dz
              \approx \log \sum_{g} p(x \mid z_g)\, p(z_g)\, h^2
              = \operatorname{logsumexp}_g \big[\log p(x \mid z_g) + \log p(z_g)\big] + 2 \log h

for the points ``z_g`` of a square grid of spacing ``h`` on ``[-radius, radius]^2``
(the midpoint rule). Its two errors, the spacing and the cut-off tails, are
measured, not assumed: :func:`quadrature_error` halves the spacing and widens
the range and reports how far the answer moves. The normalised terms of the
same sum are the true posterior ``p(z_g | x)`` on the grid.

The decoder is evaluated once per grid point, for all images at once:
``log p(x | z_g)`` is a matrix product between the images and the decoder's
outputs (for a Bernoulli decoder ``sum_d x_d l_d - softplus(l_d)``; for a
Gaussian one ``-|x - m|^2 / 2 sigma^2 - D log sigma - (D/2) log 2 pi``).
"""

from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp

from vaelib.core.gaussian import LOG_2PI, log_std_normal
from vaelib.core.layers import softplus
from vaelib.core.vae import decode, log_sigma_of


class LatentGrid(NamedTuple):
    """A square grid of latent points: ``z`` of shape (m * m, 2), row-major over ``(axis, axis)``."""

    axis: np.ndarray  # (m,), cell centres along each latent dimension
    z: np.ndarray  # (m * m, 2)
    step: float


def latent_grid(radius=5.0, step=0.05):
    """Cell centres of a grid of spacing ``step`` covering ``[-radius, radius]^2``.

    Returns
    -------
    LatentGrid
        ``z[i * m + j] = (axis[i], axis[j])``.
    """
    m = int(round(2 * radius / step))
    axis = -radius + step * (np.arange(m) + 0.5)
    z1, z2 = np.meshgrid(axis, axis, indexing="ij")
    return LatentGrid(axis, np.column_stack([z1.ravel(), z2.ravel()]), float(step))


def log_likelihood_on_grid(params, x, config, z, chunk=2048):
    """``log p(x_n | z_g)`` for every image and every latent point.

    Parameters
    ----------
    params : dict of str -> ndarray
    x : ndarray, shape (n, n_pixels)
    config : VAEConfig
        ``n_latent = 2`` is what a grid can integrate; any works here.
    z : ndarray, shape (G, n_latent)
    chunk : int
        Latent points decoded at once.

    Returns
    -------
    ndarray, shape (n, G), float64, nats
    """
    x = np.asarray(x, dtype=np.float64)
    params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    out = np.empty((len(x), len(z)))
    for s in range(0, len(z), chunk):
        decoded = decode(params, np.asarray(z[s:s + chunk], dtype=np.float64), config)  # (g, n_pixels)
        if config.likelihood == "bernoulli":
            out[:, s:s + chunk] = x @ decoded.T - softplus(decoded).sum(axis=1)
        else:
            log_sigma = float(log_sigma_of(params, config))
            squared = (x * x).sum(axis=1)[:, None] - 2 * x @ decoded.T + (decoded * decoded).sum(axis=1)
            out[:, s:s + chunk] = (-0.5 * squared * np.exp(-2 * log_sigma)
                                   - config.n_pixels * (log_sigma + 0.5 * LOG_2PI))
    return out


def log_joint_on_grid(params, x, config, grid):
    """``log p(x_n, z_g) = log p(x_n | z_g) + log N(z_g | 0, I)``, shape (n, G)."""
    return log_likelihood_on_grid(params, x, config, grid.z) + log_std_normal(grid.z)


def log_evidence_from_joint(log_joint, step):
    """``log p(x) = logsumexp_g log p(x, z_g) + 2 log h`` from ``log_joint`` of shape (n, G); shape (n,), nats."""
    return logsumexp(log_joint, axis=1) + 2 * np.log(step)


def log_evidence(params, x, config, radius=5.0, step=0.05):
    """``log p(x)`` for each image, by the midpoint rule on :func:`latent_grid`.

    Returns
    -------
    ndarray, shape (n,), nats
    """
    grid = latent_grid(radius, step)
    return log_evidence_from_joint(log_joint_on_grid(params, x, config, grid), grid.step)


def posterior_on_grid(params, x, config, radius=5.0, step=0.05):
    """The true posterior ``p(z | x)`` on the grid, and ``log p(x)``.

    Returns
    -------
    grid : LatentGrid
    density : ndarray, shape (n, m, m)
        ``p(z | x_n)`` at the cell centres (per unit area); it sums to ``1 / step**2``.
    log_px : ndarray, shape (n,)
    """
    grid = latent_grid(radius, step)
    log_joint = log_joint_on_grid(params, x, config, grid)
    log_px = log_evidence_from_joint(log_joint, grid.step)
    m = len(grid.axis)
    density = np.exp(log_joint - log_px[:, None]).reshape(len(x), m, m)
    return grid, density, log_px


def quadrature_error(params, x, config, radius=5.0, step=0.05, log_px=None):
    """How far ``log p(x)`` moves when the grid is refined, per image.

    Parameters
    ----------
    log_px : ndarray, shape (n,), optional
        ``log p(x)`` on the given grid, if already computed (e.g. :func:`log_evidence` or
        ``GridPosteriors.log_px`` with the same ``radius`` and ``step``); computed if not given.

    Returns
    -------
    dict of str -> ndarray, shape (n,)
        ``"log_px"`` on the given grid; ``"half_step"``: the change when the
        spacing is halved; ``"wider"``: the change when the radius grows by
        half; ``"bound"``: the larger of the two changes in absolute value.
        It estimates the given grid's error; it is not a guaranteed bound (the
        refined grids have errors of their own, usually far smaller).
    """
    base = log_evidence(params, x, config, radius, step) if log_px is None else np.asarray(log_px)
    half = log_evidence(params, x, config, radius, step / 2) - base
    wide = log_evidence(params, x, config, 1.5 * radius, step) - base
    return {"log_px": base, "half_step": half, "wider": wide, "bound": np.maximum(np.abs(half), np.abs(wide))}
