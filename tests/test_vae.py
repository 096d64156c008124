"""The whole model: gradient checks in every configuration, and what the loss means."""

import numpy as np
import pytest

from vaelib.core.gradcheck import check_gradients, directional_check
from vaelib.core.gaussian import kl_std_normal
from vaelib.core.optim import Adam
from vaelib.core.vae import (
    VAEConfig,
    decode,
    encode,
    init_params,
    loss_and_grads,
    negative_elbo_backward,
    negative_elbo_forward,
    param_shapes,
)

SMALL = dict(n_pixels=7, hidden=(6,), n_latent=3, activation="tanh")
CONFIGS = {
    "bernoulli": VAEConfig(**SMALL),
    "bernoulli-mc-beta": VAEConfig(**SMALL, kl="monte_carlo", beta=0.25),
    "bernoulli-two-hidden-softplus": VAEConfig(**{**SMALL, "hidden": (6, 5), "activation": "softplus"}, beta=3.0),
    "gaussian-fixed-sigma": VAEConfig(**SMALL, likelihood="gaussian", sigma=0.3),
    "gaussian-learned-sigma-mc": VAEConfig(**SMALL, likelihood="gaussian", learn_sigma=True, sigma=0.8,
                                           kl="monte_carlo", beta=2.0),
    "gaussian-mean-over-pixels": VAEConfig(**SMALL, likelihood="gaussian", sigma=0.5, pixel_reduction="mean"),
}


def batch_for(config, rng, n=5):
    if config.likelihood == "bernoulli":
        return (rng.random((n, config.n_pixels)) > 0.5).astype(np.float64)
    return rng.random((n, config.n_pixels))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_whole_model_gradient(name, rng):
    config = CONFIGS[name]
    params = init_params(config, rng)
    x, eps = batch_for(config, rng), rng.standard_normal((5, config.n_latent))
    f = lambda p: negative_elbo_forward(p, x, eps, config)[0]
    _, grads = loss_and_grads(params, x, eps, config)
    assert set(grads) == set(params) == set(param_shapes(config))
    errors = check_gradients(f, params, grads)
    assert max(errors.values()) < 1e-7, errors
    assert directional_check(f, params, grads, rng) < 1e-7


def test_full_size_model_directional_check(rng):
    config = VAEConfig(activation="tanh")  # 784-400-20
    params = init_params(config, rng)
    x, eps = batch_for(config, rng, 4), rng.standard_normal((4, 20))
    _, grads = loss_and_grads(params, x, eps, config)
    f = lambda p: negative_elbo_forward(p, x, eps, config)[0]
    assert directional_check(f, params, grads, rng) < 1e-7


@pytest.mark.parametrize("name", ["bernoulli-mc-beta", "gaussian-fixed-sigma", "gaussian-mean-over-pixels"])
def test_loss_against_scipy_densities(name, rng):
    """The loss and its terms, rebuilt from SciPy's own densities at the same z.

    reconstruction = -sum_d log p(x_d | z), KL = E_q[log q(z) - log p(z)] (one sample for
    the Monte Carlo estimate, numerical integration per dimension for the closed form),
    loss = mean_batch(w * reconstruction + beta * KL) with w = 1/D for a mean over pixels.
    """
    from scipy import integrate, stats
    from scipy.special import expit

    config = CONFIGS[name]
    params = init_params(config, rng)
    x, eps = batch_for(config, rng), rng.standard_normal((5, config.n_latent))
    loss, terms, _ = negative_elbo_forward(params, x, eps, config)

    mu, log_var = encode(params, x, config)
    std = np.sqrt(np.exp(log_var))
    z = mu + std * eps
    out = decode(params, z, config)
    if config.likelihood == "bernoulli":
        rec = -stats.bernoulli.logpmf(x, expit(out)).sum(axis=1)
    else:
        rec = -stats.norm.logpdf(x, out, config.sigma).sum(axis=1)
    if config.kl == "monte_carlo":
        kl = (stats.norm.logpdf(z, mu, std) - stats.norm.logpdf(z)).sum(axis=1)
    else:
        kl_1d = lambda m, s: integrate.quad(
            lambda t: stats.norm.pdf(t, m, s) * (stats.norm.logpdf(t, m, s) - stats.norm.logpdf(t)),
            m - 12 * s, m + 12 * s, epsabs=1e-12)[0]
        kl = np.array([[kl_1d(m, s) for m, s in zip(mr, sr)] for mr, sr in zip(mu, std)]).sum(axis=1)
    weight = 1 / config.n_pixels if config.pixel_reduction == "mean" else 1
    np.testing.assert_allclose(terms["reconstruction"], rec, rtol=1e-12)
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-8)
    assert loss == pytest.approx(np.mean(weight * rec + config.beta * kl), rel=1e-8)


def test_untrained_bernoulli_decoder_costs_about_d_ln2(rng):
    """Near-zero logits give p = 1/2 per pixel: D ln 2 = 543.4 nats for MNIST."""
    config = VAEConfig()
    params = init_params(config, rng)
    for k in params:
        if k.startswith("dec."):
            params[k] *= 1e-3
    x = batch_for(config, rng, 64)
    _, terms, _ = negative_elbo_forward(params, x, rng.standard_normal((64, 20)), config)
    assert terms["reconstruction"].mean() == pytest.approx(784 * np.log(2), rel=1e-3)
    # the default initialisation starts within a few percent of it
    params = init_params(config, rng)
    _, terms, _ = negative_elbo_forward(params, x, rng.standard_normal((64, 20)), config)
    assert terms["reconstruction"].mean() == pytest.approx(784 * np.log(2), rel=0.05)


def test_tiny_batch_is_overfitted(rng):
    config = VAEConfig(n_pixels=16, hidden=(32,), n_latent=2)
    params = init_params(config, rng)
    x = batch_for(config, rng, 4)
    opt = Adam(lr=1e-2)
    for _ in range(1500):
        _, grads = loss_and_grads(params, x, rng.standard_normal((4, 2)), config)
        opt.inplace_step(params, grads)
    _, terms, _ = negative_elbo_forward(params, x, np.zeros((4, 2)), config)
    start = 16 * np.log(2)
    # the posterior means separate four images: reconstruction far below chance
    assert terms["reconstruction"].mean() < 0.1 * start


@pytest.mark.parametrize("bad, message", [
    (dict(n_latent=0), "n_latent"), (dict(hidden=(0,)), "hidden"), (dict(n_pixels=-3), "n_pixels"),
    (dict(likelihood="poisson"), "likelihood"), (dict(kl="exact"), "kl"), (dict(sigma=0.0), "sigma"),
    (dict(beta=-1.0), "beta"), (dict(activation="gelu"), "activation"), (dict(pixel_reduction="max"), "pixel_reduction"),
])
def test_bad_config_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        VAEConfig(**bad)


def test_config_round_trips_through_dict():
    config = VAEConfig(hidden=(300, 100), likelihood="gaussian", learn_sigma=True)
    assert VAEConfig(**config.to_dict()) == config


@pytest.mark.parametrize("name", list(CONFIGS))
def test_float32_parameters_give_float32_loss_terms_and_gradients(name, rng):
    config = CONFIGS[name]
    params = init_params(config, rng, dtype=np.float32)
    x = batch_for(config, rng).astype(np.float32)
    eps = rng.standard_normal((5, config.n_latent)).astype(np.float32)
    _, terms, cache = negative_elbo_forward(params, x, eps, config)
    _, grads = loss_and_grads(params, x, eps, config)
    assert {t.dtype for t in terms.values()} == {np.dtype(np.float32)}
    assert {g.dtype for g in grads.values()} == {np.dtype(np.float32)}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_backward_reads_only_the_cache_and_changes_nothing(name, rng):
    """The cs231n contract: backward needs no config, and leaves params, x and eps as they were."""
    config = CONFIGS[name]
    params = init_params(config, rng)
    x, eps = batch_for(config, rng), rng.standard_normal((5, config.n_latent))
    before = ({k: v.copy() for k, v in params.items()}, x.copy(), eps.copy())
    _, _, cache = negative_elbo_forward(params, x, eps, config)
    first = negative_elbo_backward(cache)
    second = negative_elbo_backward(cache)
    for k in params:
        np.testing.assert_array_equal(params[k], before[0][k])
        np.testing.assert_array_equal(first[k], second[k])
    np.testing.assert_array_equal(x, before[1])
    np.testing.assert_array_equal(eps, before[2])
