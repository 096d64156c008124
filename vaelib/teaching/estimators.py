r"""Monte Carlo estimators of the gradient of a Gaussian expectation.

The quantity estimated is the gradient of

.. math:: F(\mu, \ell) = \mathbb{E}_{z \sim \mathcal N(\mu, e^{\ell})}[f(z)]

with respect to the mean ``mu`` and the log-variance ``log_var`` (``\ell``).
Parameterisation, as everywhere in vaelib: ``std = exp(0.5 * log_var)``,
``var = exp(log_var)``. To get a gradient with respect to ``std`` instead,
use ``dF/dstd = dF/dlog_var * 2 / std``.

Two estimators, both unbiased, both taking the standard normal noise ``eps``
from the caller (no hidden randomness), one estimate per noise value:

- :func:`pathwise_gradient` (reparameterisation): write ``z = mu + std * eps``
  and differentiate ``f(z)`` along that path, with ``eps`` held fixed. Needs
  ``f'``.
- :func:`score_function_gradient` (REINFORCE, likelihood ratio): multiply
  ``f(z)`` by the score ``d log q(z) / d(mu, log_var)`` at fixed ``z``. Needs
  only ``f``.

Everything is elementwise and broadcasts: ``mu`` and ``log_var`` may be floats
or arrays that broadcast against ``eps``. Averaging over samples is left to
the caller (:func:`mean_and_standard_error`, :func:`batch_means`).
"""

import numpy as np

from vaelib.core.gaussian import gaussian_score
from vaelib.core.reparam import reparam_backward, reparam_forward


def pathwise_gradient(f_prime, mu, log_var, eps):
    r"""Per-sample reparameterisation (pathwise) gradients of ``E_q[f(z)]``.

    With ``z = mu + std * eps`` and ``std = exp(0.5 * log_var)``:

    .. math::
        g_\mu = f'(z), \qquad g_\ell = f'(z)\, \varepsilon\, \tfrac12 \mathrm{std}

    Parameters
    ----------
    f_prime : callable
        Derivative of ``f``, elementwise: ``f_prime(z)`` has the shape of ``z``.
    mu, log_var : float or ndarray, broadcastable against ``eps``
        Mean and log-variance of ``q``.
    eps : ndarray, shape (n_samples, ...)
        Standard normal noise.

    Returns
    -------
    g_mu, g_log_var : ndarray, shape of ``mu + eps`` (broadcast)
        One estimate per noise value; their mean over samples estimates
        ``dF/dmu`` and ``dF/dlog_var``.
    """
    z, cache = reparam_forward(mu, log_var, eps)
    g_mu, g_log_var = reparam_backward(f_prime(z), cache)
    return np.broadcast_to(g_mu, z.shape).copy(), g_log_var


def score_function_gradient(f, mu, log_var, eps, baseline=0.0):
    r"""Per-sample score-function (REINFORCE) gradients of ``E_q[f(z)]``.

    Uses :math:`\nabla_\phi \mathbb{E}_q[f] = \mathbb{E}_q[(f(z) - b)\,\nabla_\phi \log q(z)]`,
    which holds for any constant baseline ``b`` because the score has mean zero.
    With ``z = mu + std * eps`` the scores are ``eps / std`` and ``(eps**2 - 1) / 2``.

    Parameters
    ----------
    f : callable
        Elementwise function; ``f(z)`` has the shape of ``z``. Its derivative is not used.
    mu, log_var : float or ndarray, broadcastable against ``eps``
        Mean and log-variance of ``q`` (``std = exp(0.5 * log_var)``).
    eps : ndarray, shape (n_samples, ...)
        Standard normal noise.
    baseline : float or ndarray, broadcastable, optional
        Subtracted from ``f(z)``; changes the variance, not the mean.

    Returns
    -------
    g_mu, g_log_var : ndarray, shape of ``mu + eps`` (broadcast)
        One estimate per noise value.
    """
    z, _ = reparam_forward(mu, log_var, eps)
    score_mu, score_log_var = gaussian_score(z, mu, log_var)
    weight = f(z) - baseline
    return weight * score_mu, weight * score_log_var


def mean_and_standard_error(samples, axis=0):
    """Sample mean and its standard error ``std / sqrt(n)`` (``ddof=1``).

    Parameters
    ----------
    samples : ndarray, shape (n, ...) when ``axis=0``
    axis : int

    Returns
    -------
    mean, standard_error : ndarray, ``samples`` with ``axis`` removed
    """
    samples = np.asarray(samples, dtype=np.float64)
    n = samples.shape[axis]
    return samples.mean(axis=axis), samples.std(axis=axis, ddof=1) / np.sqrt(n)


def variance_and_standard_error(samples, axis=0):
    r"""Unbiased sample variance and its large-sample standard error.

    .. math:: \mathrm{se}(s^2) \approx \sqrt{(m_4 - s^4) / n}

    with ``m_4`` the fourth central sample moment; no normality is assumed,
    so it holds for heavy-tailed estimators too.

    Parameters
    ----------
    samples : ndarray, shape (n, ...) when ``axis=0``
    axis : int

    Returns
    -------
    variance, standard_error : ndarray, ``samples`` with ``axis`` removed
    """
    samples = np.asarray(samples, dtype=np.float64)
    n = samples.shape[axis]
    centred = samples - samples.mean(axis=axis, keepdims=True)
    var = np.sum(centred**2, axis=axis) / (n - 1)
    m4 = np.mean(centred**4, axis=axis)
    return var, np.sqrt(np.maximum(m4 - var**2, 0.0) / n)


def batch_means(per_sample, n_samples):
    """Means over consecutive groups of ``n_samples``: many ``n_samples``-sample estimates.

    Parameters
    ----------
    per_sample : ndarray, shape (n_total, ...)
        Single-sample estimates; ``n_total`` must be a multiple of ``n_samples``.
    n_samples : int

    Returns
    -------
    ndarray, shape (n_total // n_samples, ...)
        Row ``r`` is the mean of ``per_sample[r * n_samples:(r + 1) * n_samples]``.
    """
    per_sample = np.asarray(per_sample)
    n_total = per_sample.shape[0]
    if n_samples < 1 or n_total % n_samples:
        raise ValueError(f"{n_total} samples do not split into groups of {n_samples}")
    return per_sample.reshape(n_total // n_samples, n_samples, *per_sample.shape[1:]).mean(axis=1)
