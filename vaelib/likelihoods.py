"""Decoder likelihoods ``p(x | z)`` as negative log-likelihoods, in nats.

Each ``*_nll_forward`` returns one value per image, **summed over pixels**;
the caller chooses how to reduce over the batch (see :mod:`vaelib.vae`).
The negative log-likelihood is the reconstruction term of the *loss*;
the ELBO contains ``-nll``.
"""

import numpy as np

from .gaussian import LOG_2PI
from .layers import sigmoid, softplus


# ---------------------------------------------------------------- Bernoulli
def bernoulli_nll_from_logits(logits, x):
    r"""``-log Bernoulli(x | sigmoid(logits))`` summed over pixels: binary cross-entropy.

    .. math:: -\log p(x\mid\ell) = \sum_d \mathrm{softplus}(\ell_d) - x_d \ell_d,
              \qquad \mathrm{softplus}(\ell) = \log(1 + e^{\ell})

    ``softplus`` is computed as ``max(l, 0) + log1p(exp(-|l|))``, which never
    overflows, at any logit.

    Parameters
    ----------
    logits : ndarray, shape (batch, n_pixels)
    x : ndarray, shape (batch, n_pixels)
        Targets; a Bernoulli likelihood is a distribution on {0, 1}.

    Returns
    -------
    ndarray, shape (batch,)
    """
    return np.sum(softplus(logits) - x * logits, axis=-1)


def bernoulli_nll_forward(logits, x):
    """:func:`bernoulli_nll_from_logits` with a cache."""
    return bernoulli_nll_from_logits(logits, x), (logits, x)


def bernoulli_nll_backward(dnll, cache):
    """``d logits = dnll * (sigmoid(logits) - x)``.

    Parameters
    ----------
    dnll : ndarray, shape (batch,)

    Returns
    -------
    dlogits : ndarray, shape (batch, n_pixels)
    """
    logits, x = cache
    return dnll[:, None] * (sigmoid(logits) - x)


# ---------------------------------------------------------------- Gaussian
def gaussian_nll(mean, x, log_sigma):
    r"""``-log N(x | mean, sigma^2 I)`` summed over pixels, with ``sigma = exp(log_sigma)``.

    .. math:: -\log p(x\mid\mu) = \frac{1}{2\sigma^2}\lVert x-\mu\rVert^2
              + D\log\sigma + \frac{D}{2}\log 2\pi

    Parameters
    ----------
    mean : ndarray, shape (batch, n_pixels)
    x : ndarray, shape (batch, n_pixels)
    log_sigma : float or 0-d ndarray
        One standard deviation shared by every pixel.

    Returns
    -------
    ndarray, shape (batch,)
    """
    n_pixels = x.shape[-1]
    log_sigma = np.asarray(log_sigma, dtype=mean.dtype)
    sq = np.sum((x - mean) ** 2, axis=-1)
    return 0.5 * sq * np.exp(-2 * log_sigma) + n_pixels * (log_sigma + 0.5 * LOG_2PI)


def gaussian_nll_forward(mean, x, log_sigma):
    """:func:`gaussian_nll` with a cache."""
    return gaussian_nll(mean, x, log_sigma), (mean, x, log_sigma)


def gaussian_nll_backward(dnll, cache):
    """Gradients of :func:`gaussian_nll`.

    ``d mean = dnll * (mean - x) / sigma^2``,
    ``d log_sigma = sum_batch dnll * (D - |x - mean|^2 / sigma^2)``.

    Returns
    -------
    dmean : ndarray, shape (batch, n_pixels)
    dlog_sigma : 0-d ndarray
    """
    mean, x, log_sigma = cache
    inv_var = np.exp(-2 * np.asarray(log_sigma, dtype=mean.dtype))
    resid = mean - x
    dmean = (dnll[:, None] * inv_var) * resid
    sq = np.sum(resid * resid, axis=-1)
    dlog_sigma = np.sum(dnll * (x.shape[-1] - sq * inv_var))
    return dmean, np.asarray(dlog_sigma, dtype=mean.dtype)
