"""Evaluating a trained VAE: the ELBO and its terms, log p(x) by importance sampling, active units.

All values are per image, in nats. Signs: ``neg_elbo`` and ``reconstruction``
are losses (lower is better); ``log_likelihood`` is a log-density (higher is
better), so for every image, on average, ``-neg_elbo <= log_likelihood``.
"""

import numpy as np
from scipy.special import logsumexp
from tqdm.auto import tqdm

from .gaussian import log_normal, log_std_normal
from .reparam import reparam_forward
from .vae import decode, encode, negative_elbo_forward, reconstruction_nll


def elbo_terms(params, x, config, rng, batch_size=1000):
    """One-sample negative ELBO and its two terms for every image.

    Parameters
    ----------
    params : dict of str -> ndarray
    x : ndarray, shape (n, n_pixels)
    config : VAEConfig
    rng : numpy.random.Generator
        Draws the one ``eps`` per image.
    batch_size : int

    Returns
    -------
    dict with ``"neg_elbo"``, ``"reconstruction"``, ``"kl"``: ndarrays of shape (n,), nats.
        ``neg_elbo = reconstruction + kl`` (``beta`` is a training weight, not part of the ELBO).
    """
    dtype = next(iter(params.values())).dtype
    parts = {"neg_elbo": [], "reconstruction": [], "kl": []}
    for start in range(0, len(x), batch_size):
        xb = np.asarray(x[start : start + batch_size], dtype=dtype)
        eps = rng.standard_normal((len(xb), config.n_latent)).astype(dtype)
        _, terms, _ = negative_elbo_forward(params, xb, eps, config)
        for k in parts:
            parts[k].append(terms[k].astype(np.float64))
    return {k: np.concatenate(v) for k, v in parts.items()}


def log_importance_weights(params, x, config, eps):
    r"""``log w_k = log p(x, z_k) - log q(z_k | x)`` for ``z_k = mu + std * eps_k``.

    Parameters
    ----------
    x : ndarray, shape (batch, n_pixels)
    eps : ndarray, shape (batch, n_samples, n_latent)

    Returns
    -------
    ndarray, shape (batch, n_samples)
    """
    batch, n_samples, n_latent = eps.shape
    mu, log_var = encode(params, x, config)
    z, _ = reparam_forward(mu[:, None, :], log_var[:, None, :], eps)
    out = decode(params, z.reshape(batch * n_samples, n_latent), config).reshape(batch, n_samples, -1)
    log_px_given_z = -reconstruction_nll(out, x[:, None, :], params, config)  # x broadcast over samples
    log_pz = log_std_normal(z)
    log_qz = log_normal(z, mu[:, None, :], log_var[:, None, :])
    return log_px_given_z + log_pz - log_qz


def importance_weighted_log_likelihood(params, x, config, rng, n_samples=5000, max_rows=4096, progress=False):
    r"""Estimate ``log p(x) ~ log (1/K) sum_k p(x, z_k) / q(z_k|x)``, ``z_k ~ q(z|x)``.

    This is the IWAE bound (Burda et al., 2016): a lower bound on ``log p(x)``
    in expectation that rises with ``K`` towards ``log p(x)``; ``K = 1`` is the ELBO.
    Memory is bounded: at most ``max_rows`` decoded images are held at once,
    whatever ``K`` and the number of images.

    Parameters
    ----------
    x : ndarray, shape (n, n_pixels)
    rng : numpy.random.Generator
    n_samples : int
        ``K``, the number of importance samples per image.
    max_rows : int
        Bound on ``images x samples`` decoded in one call.
    progress : bool
        Show a tqdm progress bar over the images.

    Returns
    -------
    ndarray, shape (n,): the estimate for each image, in nats.
    """
    if n_samples < 1 or max_rows < 1:
        raise ValueError(f"n_samples and max_rows must be positive, got {n_samples}, {max_rows}")
    dtype = next(iter(params.values())).dtype
    images_per_call = max(1, max_rows // n_samples)
    samples_per_call = min(n_samples, max_rows)
    result = np.empty(len(x))
    bar = tqdm(total=len(x), desc=f"log p(x), K={n_samples}", unit="image", disable=not progress, leave=False)
    for start in range(0, len(x), images_per_call):
        xb = np.asarray(x[start : start + images_per_call], dtype=dtype)
        log_w = np.empty((len(xb), n_samples))
        for s in range(0, n_samples, samples_per_call):
            k = min(samples_per_call, n_samples - s)
            eps = rng.standard_normal((len(xb), k, config.n_latent)).astype(dtype)
            log_w[:, s : s + k] = log_importance_weights(params, xb, config, eps)
        result[start : start + len(xb)] = logsumexp(log_w, axis=1) - np.log(n_samples)
        bar.update(len(xb))
    bar.close()
    return result


def active_units(params, x, config, threshold=0.01, batch_size=1000):
    r"""Count latent dimensions the encoder uses (Burda et al., 2016).

    Unit ``j`` is active when ``Cov_x( E_q[z_j | x] ) > threshold``, i.e. its
    posterior mean varies across the data.

    Parameters
    ----------
    x : ndarray, shape (n, n_pixels)

    Returns
    -------
    count : int
    variances : ndarray, shape (n_latent,), ``Var_x(mu_j(x))``.
    """
    dtype = next(iter(params.values())).dtype
    mus = [encode(params, np.asarray(x[s : s + batch_size], dtype=dtype), config)[0] for s in range(0, len(x), batch_size)]
    variances = np.concatenate(mus).astype(np.float64).var(axis=0)
    return int(np.sum(variances > threshold)), variances
