r"""The importance-weighted bound (IWAE, Burda et al. 2016) as a loss, with its gradient.

The bound
---------
Draw ``K`` samples per image, ``z_k = mu + std * eps_k``, and weigh each by how
much more probable it is under the model than under the encoder::

    log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x)
    L_K(x)  = log (1/K) sum_k w_k                      (log-mean-exp, nats per image)
    loss    = -mean_batch L_K(x)

``log w_k`` is the one-sample ELBO at ``z_k``: minus the reconstruction term
``-log p(x|z_k)`` and minus the Monte Carlo KL ``log q(z_k|x) - log p(z_k)``,
the two pieces :func:`~vaelib.core.vae.negative_elbo_forward` computes with
``kl="monte_carlo"``. So ``K = 1`` is that ELBO, and ``L_K`` rises with ``K``
towards ``log p(x)`` (in expectation).

The gradient, as a learner derives it
-------------------------------------
The chain rule through the log-mean-exp gives

.. math:: \nabla L_K = \sum_k \tilde w_k \, \nabla \log w_k, \qquad
          \tilde w_k = \frac{w_k}{\sum_j w_j} = \mathrm{softmax}_k(\log w)

(``d/d log w_k`` of ``log sum_j exp(log w_j)`` is ``w_k / sum_j w_j``). Each
``nabla log w_k`` is the gradient of a one-sample ELBO: the pathwise gradient
through ``z_k = mu + std * eps_k`` into the decoder and the prior, plus the
direct dependence of ``log q(z_k|x)`` on ``mu`` and ``log_var``. So the IWAE
gradient is the ELBO's gradient at each sample, weighted by the normalised
importance weights instead of by ``1/K``; samples the model explains badly
count for almost nothing. With ``K = 1``, ``tilde w = 1``.

Shapes: the encoder runs once on ``(batch, n_pixels)``; its ``mu`` and
``log_var`` are repeated for the ``K`` samples, so the reparameterisation, the
decoder, the likelihood and the KL run on ``batch * K`` rows, image by image
(row ``b * K + k`` is sample ``k`` of image ``b``). Backward sums the ``K``
copies' gradients back onto each image's ``mu`` and ``log_var``.

The bound is a bound on ``log p(x)`` only for the plain likelihood: a model
with ``beta != 1`` or ``pixel_reduction="mean"`` is refused. ``config.kl`` is
not used: each ``log w_k`` holds its own ``log q - log p`` at ``z_k``.
"""

from typing import NamedTuple

import numpy as np

from .gaussian import kl_monte_carlo_backward, kl_monte_carlo_forward
from .likelihoods import LIKELIHOODS
from .mlp import MLPCache, mlp_backward, mlp_forward
from .reparam import ReparamCache, reparam_backward, reparam_forward
from .vae import log_sigma_of


class LogMeanExpCache(NamedTuple):
    weights: np.ndarray  # the normalised importance weights softmax(log_w), shape (batch, K)


def log_mean_exp_forward(log_w):
    """``log (1/K) sum_k exp(log_w_k)`` per row, and the normalised weights ``softmax(log_w)``.

    The row's largest ``m = max_k log_w_k`` is taken out first,
    ``log (1/K) sum_k exp(log_w_k) = m + log sum_k exp(log_w_k - m) - log K``,
    so ``exp`` sees values in ``(-inf, 0]``, one of them 0: no overflow, and
    the sum is at least 1, so its log is finite. The weights
    ``exp(log_w_k - m) / sum_j exp(log_w_j - m)`` are non-negative and sum to 1.

    Parameters
    ----------
    log_w : ndarray, shape (batch, K)

    Returns
    -------
    bound : ndarray, shape (batch,)
    cache : LogMeanExpCache
    """
    m = np.max(log_w, axis=-1)
    e = np.exp(log_w - m[:, None])
    s = np.sum(e, axis=-1)
    bound = m + np.log(s) - float(np.log(log_w.shape[-1]))
    return bound, LogMeanExpCache(e / s[:, None])


def log_mean_exp_backward(dbound, cache):
    """``dlog_w = dbound * softmax(log_w)``.

    Parameters
    ----------
    dbound : ndarray, shape (batch,)

    Returns
    -------
    dlog_w : ndarray, shape (batch, K)
    """
    return dbound[:, None] * cache.weights


def check_iwae_config(config):
    """Raise ``ValueError`` unless ``config`` weighs the likelihood as ``log p(x)`` does."""
    if config.beta != 1 or config.pixel_reduction != "sum":
        raise ValueError("the importance-weighted bound is a bound on log p(x): it needs beta = 1 and "
                         f"pixel_reduction='sum', got beta={config.beta}, pixel_reduction={config.pixel_reduction!r}")


class IWAECache(NamedTuple):
    """What :func:`negative_iwae_backward` needs: the stages' caches and the shapes."""

    enc: MLPCache
    reparam: ReparamCache
    dec: MLPCache
    rec: tuple  # the likelihood's cache
    kl: tuple  # the Monte Carlo KL's cache
    lme: LogMeanExpCache
    likelihood: str
    learn_sigma: bool
    batch: int
    k: int


def negative_iwae_forward(params, x, eps, config):
    """The loss ``-mean_batch L_K`` on a batch, and its terms.

    Parameters
    ----------
    params : dict of str -> ndarray
    x : ndarray, shape (batch, n_pixels)
    eps : ndarray, shape (batch, K, n_latent)
        Standard normal noise, ``K`` samples per image.
    config : VAEConfig
        With ``beta = 1`` and ``pixel_reduction="sum"``.

    Returns
    -------
    loss : float
        ``-mean_batch L_K``, nats per image.
    terms : dict
        ``"neg_iwae"``: ``-L_K``, shape (batch,). ``"log_w"``: shape (batch, K).
        ``"reconstruction"``, ``"kl"``, ``"neg_elbo"``: the one-sample terms
        averaged over the ``K`` samples, shape (batch,) (``neg_elbo`` is then the
        ``K``-sample estimate of the negative ELBO). All in nats.
    cache : IWAECache, for :func:`negative_iwae_backward`
    """
    check_iwae_config(config)
    batch, K, L = eps.shape
    h, enc_cache = mlp_forward(x, params, "enc", len(config.encoder_sizes) - 1, config.activation)
    mu = np.repeat(h[:, :L], K, axis=0)  # (batch * K, L): each image's q, once per sample
    log_var = np.repeat(h[:, L:], K, axis=0)
    z, reparam_cache = reparam_forward(mu, log_var, eps.reshape(batch * K, L))
    out, dec_cache = mlp_forward(z, params, "dec", len(config.decoder_sizes) - 1, config.activation)

    rec_forward, _ = LIKELIHOODS[config.likelihood]
    rec, rec_cache = rec_forward(out, np.repeat(x, K, axis=0), log_sigma_of(params, config))  # -log p(x|z_k)
    kl, kl_cache = kl_monte_carlo_forward(z, mu, log_var)  # log q(z_k|x) - log p(z_k)
    log_w = -(rec + kl).reshape(batch, K)
    bound, lme_cache = log_mean_exp_forward(log_w)

    loss = float(-np.sum(bound) / batch)
    rec, kl = rec.reshape(batch, K).mean(axis=1), kl.reshape(batch, K).mean(axis=1)
    terms = {"neg_iwae": -bound, "log_w": log_w, "reconstruction": rec, "kl": kl, "neg_elbo": rec + kl}
    cache = IWAECache(enc_cache, reparam_cache, dec_cache, rec_cache, kl_cache, lme_cache, config.likelihood,
                      "log_sigma" in params, batch, K)
    return loss, terms, cache


def negative_iwae_backward(cache):
    """Gradient of the loss of :func:`negative_iwae_forward` with respect to every parameter.

    ``dlog_w = -softmax(log_w) / batch``; since ``log w = -(rec + kl)``, both
    ``drec`` and ``dkl`` are ``softmax(log_w) / batch``, row by row. Then the
    one-sample ELBO's backward on ``batch * K`` rows, and the ``K`` rows of each
    image summed onto its ``mu`` and ``log_var``.

    Parameters
    ----------
    cache : IWAECache

    Returns
    -------
    grads : dict of str -> ndarray, the same keys and shapes as ``params``
    """
    batch, K = cache.batch, cache.k
    dtype = cache.reparam.std.dtype
    dbound = np.full(batch, -1 / batch, dtype=dtype)
    dlog_w = log_mean_exp_backward(dbound, cache.lme)
    drec = dkl = -dlog_w.reshape(batch * K)

    _, rec_backward = LIKELIHOODS[cache.likelihood]
    dout, dlog_sigma = rec_backward(drec, cache.rec)
    dz, grads = mlp_backward(dout, cache.dec)

    dz_kl, dmu_kl, dlog_var_kl = kl_monte_carlo_backward(dkl, cache.kl)
    dmu, dlog_var = reparam_backward(dz + dz_kl, cache.reparam)
    sum_samples = lambda d: d.reshape(batch, K, -1).sum(axis=1)  # the K copies of mu and log_var
    dh = np.concatenate([sum_samples(dmu + dmu_kl), sum_samples(dlog_var + dlog_var_kl)], axis=1)
    _, enc_grads = mlp_backward(dh, cache.enc)

    grads.update(enc_grads)
    if cache.learn_sigma:
        grads["log_sigma"] = dlog_sigma
    return grads
