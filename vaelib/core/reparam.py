"""The reparameterisation ``z = mu + exp(0.5 * log_var) * eps`` with ``eps ~ N(0, I)``.

All randomness is in ``eps``, which the caller passes in, so ``z`` is a
deterministic, differentiable function of ``mu`` and ``log_var``.
"""

from typing import NamedTuple

import numpy as np


class ReparamCache(NamedTuple):
    eps: np.ndarray
    std: np.ndarray


def reparam_forward(mu, log_var, eps):
    """Sample ``z ~ N(mu, diag(exp(log_var)))`` as a function of the noise ``eps``.

    Parameters
    ----------
    mu, log_var : ndarray, shape (batch, n_latent)
    eps : ndarray, shape (batch, n_latent)
        Standard normal noise. (Any shapes that broadcast work alike.)

    Returns
    -------
    z : ndarray, shape (batch, n_latent)
    cache : ReparamCache
    """
    std = np.exp(0.5 * log_var)
    return mu + std * eps, ReparamCache(eps, std)


def reparam_backward(dz, cache):
    """Pathwise gradients: ``dmu = dz``, ``dlog_var = dz * eps * std / 2``.

    Returns
    -------
    dmu, dlog_var : ndarray, shape (batch, n_latent)
    """
    eps, std = cache
    return dz, dz * eps * (0.5 * std)
