"""The training step's fast twin of :mod:`vaelib.core.vae`: the same loss and gradient, one call.

:func:`inplace_negative_elbo_and_grads` computes what
``negative_elbo_forward`` followed by ``negative_elbo_backward`` compute, for
every :class:`~vaelib.core.vae.VAEConfig`, equal up to rounding (the fused
Bernoulli kernel is within ``3 eps`` of the core's formula per pixel; the
tolerances are in ``tests/test_fast_vae.py``), and writes the gradient into
arrays the caller owns (views of one flat vector, :mod:`vaelib.fast.flat`).
What makes it faster, each measured in ``benchmarks/README.md``:

- the Bernoulli likelihood's forward and backward are one fused pass
  (:func:`vaelib.fast.kernels.bernoulli_nll_and_grad`): the loss's weight on
  each image is known before the forward pass, so its gradient is too;
- bias and ReLU are one in-place pass forward, and ReLU's backward and the
  bias gradient one pass back;
- weight gradients are written straight into the flat gradient vector
  (``np.matmul(..., out=)``), and the first layer's input gradient, which
  nothing needs, is never computed.

Other activations, the Gaussian likelihood and the KL use the core's own
functions: they are either small (``batch x n_latent``) or not what training
on MNIST spends its time on. ``tests/test_fast_vae.py`` checks this module
against the core in every configuration.
"""

import numpy as np

from vaelib.core.gaussian import KL_ESTIMATES
from vaelib.core.layers import ACTIVATIONS
from vaelib.core.likelihoods import LIKELIHOODS
from vaelib.core.reparam import reparam_backward, reparam_forward
from vaelib.core.vae import log_sigma_of

from .kernels import bernoulli_nll_and_grad, inplace_bias_relu, inplace_relu_backward_bias_grad


def _mlp_forward(x, params, prefix, n_layers, activation):
    """Forward pass of :func:`vaelib.core.mlp.mlp_forward`.

    Returns the output, every layer's input (``inputs[0] = x``) and every
    hidden layer's activation cache.
    """
    act_forward, _ = ACTIVATIONS[activation]
    inputs, act_caches = [x], []
    h = x
    for i in range(n_layers):
        a = h @ params[f"{prefix}.W{i}"]
        b = params[f"{prefix}.b{i}"]
        if i == n_layers - 1:
            a += b
            h = a
        elif activation == "relu":
            h = act_cache = inplace_bias_relu(a, b)  # ReLU's cache is its output
        else:
            a += b
            h, act_cache = act_forward(a)
        if i < n_layers - 1:
            inputs.append(h)
            act_caches.append(act_cache)
    return h, inputs, act_caches


def _mlp_backward_into(grads, dout, params, inputs, act_caches, prefix, activation, need_dx):
    """Backward pass of the MLP, writing ``{prefix}.W{i}`` and ``{prefix}.b{i}`` into ``grads``.

    Returns ``dx``, the gradient at the MLP's input, or None if not ``need_dx``.
    """
    _, act_backward = ACTIVATIONS[activation]
    n_layers = len(inputs)
    da = dout
    np.sum(da, axis=0, out=grads[f"{prefix}.b{n_layers - 1}"])
    for i in reversed(range(n_layers)):
        np.matmul(inputs[i].T, da, out=grads[f"{prefix}.W{i}"])
        if i == 0 and not need_dx:
            return None
        dh = da @ params[f"{prefix}.W{i}"].T
        if i == 0:
            return dh
        db = grads[f"{prefix}.b{i - 1}"]
        if activation == "relu":
            da = inplace_relu_backward_bias_grad(dh, act_caches[i - 1], db)
        else:
            da = act_backward(dh, act_caches[i - 1])
            np.sum(da, axis=0, out=db)


def inplace_negative_elbo_and_grads(grads, params, x, eps, config):
    """The loss of :func:`vaelib.core.vae.negative_elbo_forward` and its gradient, written into ``grads``.

    Parameters
    ----------
    grads : dict of str -> ndarray
        Keyed like ``params``; every entry is overwritten with the gradient.
    params : dict of str -> ndarray
    x : ndarray, shape (batch, n_pixels)
    eps : ndarray, shape (batch, n_latent)
    config : VAEConfig

    Returns
    -------
    loss : float
        ``mean_batch(rec_weight * reconstruction + beta * kl)``, nats per image.
    terms : dict
        ``"reconstruction"``, ``"kl"``, ``"neg_elbo"``: ndarrays of shape (batch,), nats.
    """
    L, batch = config.n_latent, x.shape[0]
    dtype = x.dtype
    rec_weight = config.rec_weight
    drec = np.full(batch, rec_weight / batch, dtype=dtype)
    dkl = np.full(batch, config.beta / batch, dtype=dtype)

    h, enc_inputs, enc_acts = _mlp_forward(x, params, "enc", len(config.encoder_sizes) - 1, config.activation)
    mu, log_var = h[:, :L], h[:, L:]
    z, reparam_cache = reparam_forward(mu, log_var, eps)
    out, dec_inputs, dec_acts = _mlp_forward(z, params, "dec", len(config.decoder_sizes) - 1, config.activation)

    if config.likelihood == "bernoulli":  # forward and backward in one pass
        dout = np.empty_like(out)
        rec = bernoulli_nll_and_grad(out, x, drec, dout)
    else:
        rec_forward, rec_backward = LIKELIHOODS[config.likelihood]
        rec, rec_cache = rec_forward(out, x, log_sigma_of(params, config))
        dout, dlog_sigma = rec_backward(drec, rec_cache)
        if "log_sigma" in grads:
            grads["log_sigma"][...] = dlog_sigma
    kl_forward, kl_backward = KL_ESTIMATES[config.kl]
    kl, kl_cache = kl_forward(z, mu, log_var)

    dz = _mlp_backward_into(grads, dout, params, dec_inputs, dec_acts, "dec", config.activation, need_dx=True)
    dz_kl, dmu_kl, dlog_var_kl = kl_backward(dkl, kl_cache)
    dmu, dlog_var = reparam_backward(dz + dz_kl, reparam_cache)
    dh = np.concatenate([dmu + dmu_kl, dlog_var + dlog_var_kl], axis=1)
    _mlp_backward_into(grads, dh, params, enc_inputs, enc_acts, "enc", config.activation, need_dx=False)

    loss = float(np.sum(rec_weight * rec + config.beta * kl) / batch)
    return loss, {"reconstruction": rec, "kl": kl, "neg_elbo": rec + kl}
