"""Decoder likelihoods ``p(x | z)`` as negative log-likelihoods, in nats.

Each ``*_nll_forward`` returns one value per image, **summed over pixels**;
the caller chooses how to reduce over the batch (see :mod:`vaelib.core.vae`).
The negative log-likelihood is the reconstruction term of the *loss*;
the ELBO contains ``-nll``.

:data:`LIKELIHOODS` is the one table the model reads, like
:data:`vaelib.core.layers.ACTIVATIONS`: every entry has the signature
``forward(out, x, log_sigma) -> (nll, cache)`` and
``backward(dnll, cache) -> (dout, dlog_sigma)``.
"""

from typing import NamedTuple

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


class BernoulliCache(NamedTuple):
    logits: np.ndarray
    x: np.ndarray


def bernoulli_nll_forward(logits, x, log_sigma=None):
    """:func:`bernoulli_nll_from_logits` with a cache.

    ``log_sigma`` is not used (a Bernoulli has no scale); it is there so that
    every entry of :data:`LIKELIHOODS` has one signature.
    """
    return bernoulli_nll_from_logits(logits, x), BernoulliCache(logits, x)


def bernoulli_nll_backward(dnll, cache):
    """``d logits = dnll * (sigmoid(logits) - x)``.

    Parameters
    ----------
    dnll : ndarray, shape (batch,)
    cache : BernoulliCache

    Returns
    -------
    dlogits : ndarray, shape (batch, n_pixels)
    dlog_sigma : None (no scale parameter)
    """
    logits, x = cache
    return dnll[:, None] * (sigmoid(logits) - x), None


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


class GaussianNLLCache(NamedTuple):
    mean: np.ndarray
    x: np.ndarray
    log_sigma: object  # float or 0-d ndarray


def gaussian_nll_forward(mean, x, log_sigma):
    """:func:`gaussian_nll` with a cache."""
    return gaussian_nll(mean, x, log_sigma), GaussianNLLCache(mean, x, log_sigma)


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


#: The decoder's likelihood: name -> (forward, backward).
LIKELIHOODS = {
    "bernoulli": (bernoulli_nll_forward, bernoulli_nll_backward),
    "gaussian": (gaussian_nll_forward, gaussian_nll_backward),
}
