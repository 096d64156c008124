"""The diagonal Gaussian: log-density and the KL divergence to N(0, I).

Parameterisation, used everywhere in vaelib: a Gaussian is given by its mean
``mu`` and its log-variance ``log_var``; the standard deviation is
``std = exp(0.5 * log_var)``.

All KL functions return one value per row (summed over the latent
dimensions); the mean over the batch is taken by the caller.
"""

from typing import NamedTuple

import numpy as np

LOG_2PI = float(np.log(2 * np.pi))  # a Python float, so float32 arrays stay float32


def log_normal(z, mu, log_var):
    """``log N(z | mu, diag(exp(log_var)))``, summed over the last axis.

    Parameters
    ----------
    z, mu, log_var : ndarray, broadcastable, shape (..., n_latent)

    Returns
    -------
    ndarray, shape (...)
    """
    return -0.5 * np.sum(LOG_2PI + log_var + (z - mu) ** 2 * np.exp(-log_var), axis=-1)


def log_std_normal(z):
    """``log N(z | 0, I)``, summed over the last axis. Shape (..., n) -> (...)."""
    return -0.5 * np.sum(LOG_2PI + z * z, axis=-1)


def kl_std_normal(mu, log_var):
    r"""Closed-form ``KL(N(mu, diag(exp(log_var))) || N(0, I))`` per row.

    .. math:: \mathrm{KL} = \tfrac12 \sum_j \left(e^{\ell_j} + \mu_j^2 - 1 - \ell_j\right)

    Parameters
    ----------
    mu, log_var : ndarray, shape (batch, n_latent)

    Returns
    -------
    ndarray, shape (batch,), in nats, always >= 0.

    ``exp(l) - 1`` is computed as ``expm1(l)``: for tiny ``l`` the naive form
    rounds ``exp(l)`` to 1 and returns ``-l``, a negative KL.
    """
    return 0.5 * np.sum(np.expm1(log_var) - log_var + mu * mu, axis=-1)


class GaussianCache(NamedTuple):
    mu: np.ndarray
    log_var: np.ndarray


def kl_std_normal_forward(mu, log_var):
    """:func:`kl_std_normal` with a cache for :func:`kl_std_normal_backward`."""
    return kl_std_normal(mu, log_var), GaussianCache(mu, log_var)


def kl_std_normal_backward(dkl, cache):
    """Gradients of the closed-form KL.

    ``d mu = dkl * mu``, ``d log_var = dkl * (exp(log_var) - 1) / 2``.

    Parameters
    ----------
    dkl : ndarray, shape (batch,)
        Upstream gradient, one value per row.

    Returns
    -------
    dmu, dlog_var : ndarray, shape (batch, n_latent)
    """
    mu, log_var = cache
    d = dkl[:, None]
    return d * mu, d * 0.5 * np.expm1(log_var)


class SampleCache(NamedTuple):
    z: np.ndarray
    mu: np.ndarray
    log_var: np.ndarray


def kl_monte_carlo_forward(z, mu, log_var):
    """Single-sample Monte Carlo KL: ``log q(z) - log p(z)`` at a sample ``z ~ q``.

    Its expectation over ``z ~ q`` is the closed-form KL; one sample can be
    negative. The KL of the ELBO uses the same ``z`` as the reconstruction term.

    Parameters
    ----------
    z, mu, log_var : ndarray, shape (batch, n_latent)

    Returns
    -------
    kl : ndarray, shape (batch,)
    cache : SampleCache
    """
    kl = log_normal(z, mu, log_var) - log_std_normal(z)
    return kl, SampleCache(z, mu, log_var)


def kl_monte_carlo_backward(dkl, cache):
    """Gradients of :func:`kl_monte_carlo_forward` with respect to ``z``, ``mu`` and ``log_var``.

    ``d/dz log p(z) = -z`` and ``d/dz log q(z) = -r`` with ``r = (z - mu) / var``;
    ``(r, ((z - mu) r - 1) / 2)`` is the score of ``q`` in ``(mu, log_var)``
    (:func:`gaussian_score`). So ``dz = dkl * (z - r)``, ``dmu = dkl * r``,
    ``dlog_var = dkl * ((z - mu) * r - 1) / 2``.

    Returns
    -------
    dz, dmu, dlog_var : ndarray, shape (batch, n_latent)
    """
    z, mu, log_var = cache
    d = dkl[:, None]
    score_mu, score_log_var = gaussian_score(z, mu, log_var)
    return d * (z - score_mu), d * score_mu, d * score_log_var


def gaussian_score(z, mu, log_var):
    r"""Score of the Gaussian: derivatives of ``log N(z | mu, exp(log_var))`` at fixed ``z``.

    .. math::
        \partial_\mu \log q = \frac{z - \mu}{e^{\ell}}, \qquad
        \partial_\ell \log q = \tfrac12\left(\frac{(z - \mu)^2}{e^{\ell}} - 1\right)

    Both have expectation zero under ``z ~ q``.

    Parameters
    ----------
    z, mu, log_var : float or ndarray, broadcastable

    Returns
    -------
    score_mu, score_log_var : ndarray, broadcast shape
    """
    r = (z - mu) * np.exp(-log_var)
    return r, 0.5 * ((z - mu) * r - 1)


# ---------------------------------------------------------------- one table of KL estimates
def kl_closed_form_forward(z, mu, log_var):
    """:func:`kl_std_normal_forward` under the signature of :data:`KL_ESTIMATES`.

    ``z`` is not used: the exact KL does not depend on the sample.
    """
    return kl_std_normal_forward(mu, log_var)


def kl_closed_form_backward(dkl, cache):
    """:func:`kl_std_normal_backward`, with ``dz = 0``. Returns ``dz, dmu, dlog_var``."""
    dmu, dlog_var = kl_std_normal_backward(dkl, cache)
    return np.zeros_like(dmu), dmu, dlog_var


#: How the KL term of the ELBO is computed: name -> (forward, backward), where
#: ``forward(z, mu, log_var) -> (kl per row, cache)`` and
#: ``backward(dkl, cache) -> (dz, dmu, dlog_var)``.
KL_ESTIMATES = {
    "closed_form": (kl_closed_form_forward, kl_closed_form_backward),
    "monte_carlo": (kl_monte_carlo_forward, kl_monte_carlo_backward),
}
