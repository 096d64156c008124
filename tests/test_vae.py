"""The whole model: gradient checks in every configuration, and what the loss means."""

import numpy as np
import pytest

from vaelib.gradcheck import check_gradients, directional_check
from vaelib.gaussian import kl_std_normal
from vaelib.optim import Adam
from vaelib.vae import (
    VAEConfig,
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


def test_loss_is_reconstruction_plus_beta_kl(rng):
    config = VAEConfig(**SMALL, beta=0.4)
    params = init_params(config, rng)
    x, eps = batch_for(config, rng), rng.standard_normal((5, 3))
    loss, terms, _ = negative_elbo_forward(params, x, eps, config)
    mu, log_var = encode(params, x, config)
    np.testing.assert_allclose(terms["kl"], kl_std_normal(mu, log_var))
    assert loss == pytest.approx(np.mean(terms["reconstruction"] + 0.4 * terms["kl"]))
    np.testing.assert_allclose(terms["neg_elbo"], terms["reconstruction"] + terms["kl"])


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
def test_gradients_written_into_out_equal_returned_gradients(name, rng):
    config = CONFIGS[name]
    params = init_params(config, rng)
    x, eps = batch_for(config, rng), rng.standard_normal((5, config.n_latent))
    _, grads = loss_and_grads(params, x, eps, config)
    out = {k: np.full_like(v, np.nan) for k, v in params.items()}
    _, _, cache = negative_elbo_forward(params, x, eps, config)
    returned = negative_elbo_backward(cache, config, out=out)
    for k in params:
        np.testing.assert_array_equal(out[k], grads[k])
        assert returned[k] is out[k] or np.shares_memory(returned[k], out[k])
