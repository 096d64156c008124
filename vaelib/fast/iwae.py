"""The fast twin of :mod:`vaelib.core.iwae`: the IWAE loss and its gradient in one call.

:func:`inplace_negative_iwae_and_grads` computes what ``negative_iwae_forward``
followed by ``negative_iwae_backward`` compute, equal up to rounding (tolerances
in ``tests/test_fast_iwae.py``), with the kernels of :mod:`vaelib.fast.vae`:
the encoder runs once on ``batch`` rows, the decoder on ``batch * K``.

One difference from the ELBO's step: each row's weight in the loss, the
normalised importance weight over ``batch``, depends on the likelihood itself,
so it is not known before the fused Bernoulli kernel runs. The kernel is run
with weight 1 per row (it returns ``sigmoid(logits) - x``) and its output is
scaled row by row afterwards, one more pass over ``batch * K x n_pixels``
(:func:`~vaelib.fast.kernels.inplace_scale_rows_flush`). That pass sets products
below the smallest normal number to 0: a sample with a normalised weight of
1e-30, common in training, would otherwise fill its row with subnormal numbers
and slow the decoder's backward products fourfold (``benchmarks/README.md``).
The Gaussian likelihood uses the core's backward, as in :mod:`vaelib.fast.vae`.
"""

import numpy as np

from vaelib.core.gaussian import kl_monte_carlo_backward, kl_monte_carlo_forward
from vaelib.core.iwae import check_iwae_config, log_mean_exp_backward, log_mean_exp_forward
from vaelib.core.likelihoods import LIKELIHOODS
from vaelib.core.reparam import reparam_backward, reparam_forward
from vaelib.core.vae import log_sigma_of

from .kernels import bernoulli_nll_and_grad, inplace_scale_rows_flush
from .vae import _mlp_backward_into, _mlp_forward


def inplace_negative_iwae_and_grads(grads, params, x, eps, config):
    """The loss of :func:`vaelib.core.iwae.negative_iwae_forward` and its gradient, written into ``grads``.

    Parameters
    ----------
    grads : dict of str -> ndarray
        Keyed like ``params``; every entry is overwritten with the gradient.
    params : dict of str -> ndarray
    x : ndarray, shape (batch, n_pixels)
    eps : ndarray, shape (batch, K, n_latent)
    config : VAEConfig

    Returns
    -------
    loss : float
        ``-mean_batch L_K``, nats per image.
    terms : dict
        As :func:`~vaelib.core.iwae.negative_iwae_forward`'s.
    """
    check_iwae_config(config)
    batch, K, L = eps.shape
    h, enc_inputs, enc_acts = _mlp_forward(x, params, "enc", len(config.encoder_sizes) - 1, config.activation)
    mu = np.repeat(h[:, :L], K, axis=0)
    log_var = np.repeat(h[:, L:], K, axis=0)
    z, reparam_cache = reparam_forward(mu, log_var, eps.reshape(batch * K, L))
    out, dec_inputs, dec_acts = _mlp_forward(z, params, "dec", len(config.decoder_sizes) - 1, config.activation)
    x_k = np.repeat(x, K, axis=0)

    if config.likelihood == "bernoulli":
        dout = np.empty_like(out)
        rec = bernoulli_nll_and_grad(out, x_k, np.ones(batch * K, dtype=out.dtype), dout)  # dout = sigmoid - x
    else:
        rec_forward, rec_backward = LIKELIHOODS[config.likelihood]
        rec, rec_cache = rec_forward(out, x_k, log_sigma_of(params, config))
    kl, kl_cache = kl_monte_carlo_forward(z, mu, log_var)
    log_w = -(rec + kl).reshape(batch, K)
    bound, lme_cache = log_mean_exp_forward(log_w)

    dlog_w = log_mean_exp_backward(np.full(batch, -1 / batch, dtype=out.dtype), lme_cache)
    drec = dkl = -dlog_w.reshape(batch * K).astype(out.dtype, copy=False)
    if config.likelihood == "bernoulli":
        inplace_scale_rows_flush(dout, drec, np.finfo(dout.dtype).tiny)
    else:
        dout, dlog_sigma = rec_backward(drec, rec_cache)
        if "log_sigma" in grads:
            grads["log_sigma"][...] = dlog_sigma

    dz = _mlp_backward_into(grads, dout, params, dec_inputs, dec_acts, "dec", config.activation, need_dx=True)
    dz_kl, dmu_kl, dlog_var_kl = kl_monte_carlo_backward(dkl, kl_cache)
    dmu, dlog_var = reparam_backward(dz + dz_kl, reparam_cache)
    sum_samples = lambda d: d.reshape(batch, K, -1).sum(axis=1)
    dh = np.concatenate([sum_samples(dmu + dmu_kl), sum_samples(dlog_var + dlog_var_kl)], axis=1)
    _mlp_backward_into(grads, dh, params, enc_inputs, enc_acts, "enc", config.activation, need_dx=False)

    loss = float(-np.sum(bound) / batch)
    rec, kl = rec.reshape(batch, K).mean(axis=1), kl.reshape(batch, K).mean(axis=1)
    return loss, {"neg_iwae": -bound, "log_w": log_w, "reconstruction": rec, "kl": kl, "neg_elbo": rec + kl}
