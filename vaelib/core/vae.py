"""The variational autoencoder: configuration, parameters, and the loss with its gradient.

Signs, stated once
------------------
The **ELBO** is an objective, to be *maximised*::

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))          (nats, per image)

The **loss** is its negative, to be *minimised*; with the ``beta`` weight::

    loss(x) = -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z))
            =  reconstruction  + beta * kl

Both ``reconstruction`` and ``kl`` are >= 0 for a Bernoulli decoder, and each
is *minimised*. The loss is one-sample: ``E_q`` is estimated at
``z = mu + exp(0.5 * log_var) * eps`` for the ``eps`` the caller passes.

Reductions: each term is **summed over pixels and latent dimensions** (one
value per image) and then **averaged over the batch**: the ``1/batch`` is
applied where the loss is formed (:func:`negative_elbo_forward`) and, as its
derivative, where the backward pass starts. ``pixel_reduction="mean"``
averages the reconstruction term over pixels instead, which is the same as
multiplying the KL weight by ``n_pixels`` (notebook 3 shows it).

The encoder emits ``mu`` and ``log_var`` (the log of the *variance*); the
standard deviation is ``exp(0.5 * log_var)``.
"""

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from .gaussian import KL_ESTIMATES
from .layers import ACTIVATIONS
from .likelihoods import LIKELIHOODS
from .mlp import MLPCache, init_mlp, mlp_backward, mlp_forward, mlp_param_shapes
from .reparam import ReparamCache, reparam_backward, reparam_forward

PIXEL_REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class VAEConfig:
    """Architecture and loss of a VAE.

    Parameters
    ----------
    n_pixels : int
        Data dimension ``D`` (784 for MNIST).
    hidden : tuple of int
        Hidden widths of the encoder; the decoder mirrors them.
    n_latent : int
        Latent dimension.
    likelihood : {"bernoulli", "gaussian"}
        Bernoulli: the decoder emits logits. Gaussian: the decoder emits the mean,
        with one standard deviation ``sigma`` shared by all pixels.
    sigma : float
        Gaussian only: the fixed ``sigma``, or the initial value if ``learn_sigma``.
    learn_sigma : bool
        Gaussian only: learn ``log_sigma`` as one shared parameter.
    beta : float
        Weight of the KL term in the loss (``beta = 1`` is the ELBO).
    kl : {"closed_form", "monte_carlo"}
        How the KL term is computed.
    activation : {"relu", "tanh", "sigmoid", "softplus"}
    pixel_reduction : {"sum", "mean"}
        How the reconstruction term is reduced over pixels.
    """

    n_pixels: int = 784
    hidden: tuple = (400,)
    n_latent: int = 20
    likelihood: str = "bernoulli"
    sigma: float = 1.0
    learn_sigma: bool = False
    beta: float = 1.0
    kl: str = "closed_form"
    activation: str = "relu"
    pixel_reduction: str = "sum"

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in np.atleast_1d(self.hidden)))
        for name in ("n_pixels", "n_latent"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not self.hidden or min(self.hidden) <= 0:
            raise ValueError(f"hidden sizes must be positive integers, got {self.hidden!r}")
        _check_choice("likelihood", self.likelihood, tuple(LIKELIHOODS))
        _check_choice("kl", self.kl, tuple(KL_ESTIMATES))
        _check_choice("activation", self.activation, tuple(ACTIVATIONS))
        _check_choice("pixel_reduction", self.pixel_reduction, PIXEL_REDUCTIONS)
        if not (np.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"sigma must be a positive number, got {self.sigma!r}")
        if not (np.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a non-negative number, got {self.beta!r}")

    @property
    def encoder_sizes(self):
        """``(D, *hidden, 2 * n_latent)``: the encoder emits ``[mu, log_var]``."""
        return (self.n_pixels, *self.hidden, 2 * self.n_latent)

    @property
    def decoder_sizes(self):
        """``(n_latent, *reversed(hidden), D)``."""
        return (self.n_latent, *reversed(self.hidden), self.n_pixels)

    @property
    def rec_weight(self):
        """The reconstruction term's weight in the loss: 1, or ``1 / n_pixels`` for ``pixel_reduction="mean"``."""
        return 1 / self.n_pixels if self.pixel_reduction == "mean" else 1.0

    def to_dict(self):
        """A JSON-ready dict; ``VAEConfig(**d)`` rebuilds the config."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}")


# ---------------------------------------------------------------- parameters
def param_shapes(config):
    """Name -> shape of every parameter of the model. ``log_sigma`` is a 0-d array."""
    shapes = {
        **mlp_param_shapes(config.encoder_sizes, "enc"),
        **mlp_param_shapes(config.decoder_sizes, "dec"),
    }
    if config.likelihood == "gaussian" and config.learn_sigma:
        shapes["log_sigma"] = ()
    return shapes


def init_params(config, rng, dtype=np.float64):
    """Initial parameters: PyTorch's default ``nn.Linear`` initialisation.

    Parameters
    ----------
    config : VAEConfig
    rng : numpy.random.Generator
    dtype : numpy dtype
        float64 for gradient checks, float32 for training.

    Returns
    -------
    dict of str -> ndarray
    """
    params = {
        **init_mlp(config.encoder_sizes, "enc", rng, dtype),
        **init_mlp(config.decoder_sizes, "dec", rng, dtype),
    }
    if "log_sigma" in param_shapes(config):
        params["log_sigma"] = np.array(np.log(config.sigma), dtype=dtype)
    return params


def log_sigma_of(params, config):
    """The decoder's ``log sigma``: the parameter if learned, else ``log(config.sigma)``.

    A fixed value is a Python float, so float32 parameters stay float32.
    """
    if "log_sigma" in params:
        return params["log_sigma"]
    return float(np.log(config.sigma))


# ---------------------------------------------------------------- encoder / decoder
def encode(params, x, config):
    """``q(z|x)``: the mean and log-variance of the Gaussian posterior.

    Parameters
    ----------
    x : ndarray, shape (batch, n_pixels)

    Returns
    -------
    mu, log_var : ndarray, shape (batch, n_latent)
    """
    h, _ = mlp_forward(x, params, "enc", len(config.encoder_sizes) - 1, config.activation)
    return h[:, : config.n_latent], h[:, config.n_latent :]


def decode(params, z, config):
    """The decoder's output for latents ``z``: Bernoulli logits, or the Gaussian mean.

    Parameters
    ----------
    z : ndarray, shape (batch, n_latent)

    Returns
    -------
    ndarray, shape (batch, n_pixels)
    """
    out, _ = mlp_forward(z, params, "dec", len(config.decoder_sizes) - 1, config.activation)
    return out


def reconstruction_nll(out, x, params, config):
    """``-log p(x|z)`` per image, summed over pixels, from the decoder output ``out``.

    Parameters
    ----------
    out : ndarray, shape (..., n_pixels)
        Bernoulli logits or Gaussian means.
    x : ndarray, broadcastable to ``out``

    Returns
    -------
    ndarray, shape ``out.shape[:-1]``
    """
    nll_forward, _ = LIKELIHOODS[config.likelihood]
    return nll_forward(out, x, log_sigma_of(params, config))[0]


# ---------------------------------------------------------------- loss and gradient
class ELBOCache(NamedTuple):
    """What :func:`negative_elbo_backward` needs: the stages' caches and the loss's weights."""

    enc: MLPCache
    reparam: ReparamCache
    dec: MLPCache
    rec: tuple  # the likelihood's cache
    kl: tuple  # the KL estimate's cache
    likelihood: str
    kl_estimate: str
    learn_sigma: bool
    rec_weight: float  # 1, or 1 / n_pixels for pixel_reduction="mean"
    beta: float
    batch: int


def negative_elbo_forward(params, x, eps, config):
    """The loss (negative ELBO, with ``beta``) on a batch, and its terms.

    Parameters
    ----------
    params : dict of str -> ndarray
    x : ndarray, shape (batch, n_pixels)
    eps : ndarray, shape (batch, n_latent)
        Standard normal noise for the reparameterisation. Passing it in makes
        the loss a deterministic function of ``params``.
    config : VAEConfig

    Returns
    -------
    loss : float
        ``mean_batch(rec_weight * reconstruction + beta * kl)``, in nats per image.
    terms : dict
        ``"reconstruction"`` and ``"kl"``, each an ndarray of shape (batch,), in
        nats: ``-log p(x|z)`` and the KL of ``q(z|x)`` from the prior.
        ``"neg_elbo"``: their sum (``beta = 1``), shape (batch,).
    cache : ELBOCache, for :func:`negative_elbo_backward`
    """
    L = config.n_latent
    h, enc_cache = mlp_forward(x, params, "enc", len(config.encoder_sizes) - 1, config.activation)
    mu, log_var = h[:, :L], h[:, L:]
    z, reparam_cache = reparam_forward(mu, log_var, eps)
    out, dec_cache = mlp_forward(z, params, "dec", len(config.decoder_sizes) - 1, config.activation)

    rec_forward, _ = LIKELIHOODS[config.likelihood]
    rec, rec_cache = rec_forward(out, x, log_sigma_of(params, config))
    kl_forward, _ = KL_ESTIMATES[config.kl]
    kl, kl_cache = kl_forward(z, mu, log_var)

    rec_weight, batch = config.rec_weight, x.shape[0]
    loss = float(np.sum(rec_weight * rec + config.beta * kl) / batch)
    terms = {"reconstruction": rec, "kl": kl, "neg_elbo": rec + kl}
    cache = ELBOCache(enc_cache, reparam_cache, dec_cache, rec_cache, kl_cache, config.likelihood, config.kl,
                      "log_sigma" in params, rec_weight, config.beta, batch)
    return loss, terms, cache


def negative_elbo_backward(cache):
    """Gradient of the loss of :func:`negative_elbo_forward` with respect to every parameter.

    Walks the forward pass in reverse. ``dz`` receives a second contribution
    from the KL when it is estimated at the sample ``z`` (Monte Carlo).

    Parameters
    ----------
    cache : ELBOCache

    Returns
    -------
    grads : dict of str -> ndarray, the same keys and shapes as ``params``
    """
    dtype = cache.reparam.std.dtype
    drec = np.full(cache.batch, cache.rec_weight / cache.batch, dtype=dtype)
    dkl = np.full(cache.batch, cache.beta / cache.batch, dtype=dtype)

    _, rec_backward = LIKELIHOODS[cache.likelihood]
    dout, dlog_sigma = rec_backward(drec, cache.rec)
    dz, grads = mlp_backward(dout, cache.dec)

    _, kl_backward = KL_ESTIMATES[cache.kl_estimate]
    dz_kl, dmu_kl, dlog_var_kl = kl_backward(dkl, cache.kl)
    dmu, dlog_var = reparam_backward(dz + dz_kl, cache.reparam)
    dh = np.concatenate([dmu + dmu_kl, dlog_var + dlog_var_kl], axis=1)
    _, enc_grads = mlp_backward(dh, cache.enc)

    grads.update(enc_grads)
    if cache.learn_sigma:
        grads["log_sigma"] = dlog_sigma
    return grads


def loss_and_grads(params, x, eps, config):
    """Convenience: ``(loss, grads)`` in one call."""
    loss, _, cache = negative_elbo_forward(params, x, eps, config)
    return loss, negative_elbo_backward(cache)
