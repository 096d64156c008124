"""The fast training step against the core: the same loss, terms and gradient in every configuration."""

import numpy as np
import pytest

from vaelib.core.vae import VAEConfig, init_params, loss_and_grads, negative_elbo_forward
from vaelib.fast.vae import inplace_negative_elbo_and_grads

SMALL = dict(n_pixels=12, hidden=(9,), n_latent=3)
CONFIGS = {
    "bernoulli-relu": VAEConfig(**SMALL),
    "bernoulli-relu-two-hidden-mc-beta": VAEConfig(**{**SMALL, "hidden": (9, 7)}, kl="monte_carlo", beta=0.3),
    "bernoulli-tanh-mean-over-pixels": VAEConfig(**SMALL, activation="tanh", pixel_reduction="mean"),
    "bernoulli-softplus": VAEConfig(**SMALL, activation="softplus", beta=4.0),
    "gaussian-fixed-sigma-relu": VAEConfig(**SMALL, likelihood="gaussian", sigma=0.2),
    "gaussian-learned-sigma-sigmoid-mc": VAEConfig(**SMALL, likelihood="gaussian", learn_sigma=True,
                                                   activation="sigmoid", kl="monte_carlo"),
}


def fast_and_core(config, dtype, rng, batch=16):
    params = init_params(config, rng, dtype)
    if config.likelihood == "bernoulli":
        x = (rng.random((batch, config.n_pixels)) > 0.5).astype(dtype)
    else:
        x = rng.random((batch, config.n_pixels)).astype(dtype)
    eps = rng.standard_normal((batch, config.n_latent)).astype(dtype)
    core_loss, core_grads = loss_and_grads(params, x, eps, config)
    _, core_terms, _ = negative_elbo_forward(params, x, eps, config)
    grads = {k: np.full_like(v, np.nan) for k, v in params.items()}
    fast_loss, fast_terms = inplace_negative_elbo_and_grads(grads, params, x, eps, config)
    return (core_loss, core_terms, core_grads), (fast_loss, fast_terms, grads)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_float64_equals_the_core(name, rng):
    """float64: equal to 1e-12 (only the order of a few sums differs)."""
    core, fast = fast_and_core(CONFIGS[name], np.float64, rng)
    assert fast[0] == pytest.approx(core[0], rel=1e-12)
    for k in ("reconstruction", "kl", "neg_elbo"):
        np.testing.assert_allclose(fast[1][k], core[1][k], rtol=1e-12)
    assert set(fast[2]) == set(core[2])
    for k in core[2]:
        np.testing.assert_allclose(fast[2][k], core[2][k], rtol=1e-10, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_float32_equals_the_core_within_float32_rounding(name, rng):
    """float32: each gradient tensor within 1e-5 of the core's, relative to its largest entry.

    float32 carries 7 digits; sums over 16 images and a few hundred pixels, and the fused
    kernels' own exp and log1p (a few ulp), keep the difference near 1e-6.
    """
    core, fast = fast_and_core(CONFIGS[name], np.float32, rng)
    assert fast[0] == pytest.approx(core[0], rel=1e-5)
    for k in ("reconstruction", "kl"):
        np.testing.assert_allclose(fast[1][k], core[1][k], rtol=1e-5, atol=1e-4)
    for k in core[2]:
        scale = np.abs(core[2][k]).max()
        np.testing.assert_allclose(fast[2][k], core[2][k], rtol=0, atol=1e-5 * scale, err_msg=k)
        assert fast[2][k].dtype == np.float32


def test_a_wrong_gradient_would_be_caught(rng):
    """The float32 tolerance bites: a gradient off by one part in 1e4 fails it."""
    core, fast = fast_and_core(CONFIGS["bernoulli-relu"], np.float32, rng)
    g = fast[2]["dec.W0"] * (1 + 1e-4)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(g, core[2]["dec.W0"], rtol=0, atol=1e-5 * np.abs(core[2]["dec.W0"]).max())


def test_leaves_params_x_and_eps_unchanged(rng):
    config = CONFIGS["bernoulli-relu-two-hidden-mc-beta"]
    params = init_params(config, rng, np.float32)
    x = (rng.random((8, 12)) > 0.5).astype(np.float32)
    eps = rng.standard_normal((8, 3)).astype(np.float32)
    before = ({k: v.copy() for k, v in params.items()}, x.copy(), eps.copy())
    inplace_negative_elbo_and_grads({k: np.empty_like(v) for k, v in params.items()}, params, x, eps, config)
    for k in params:
        np.testing.assert_array_equal(params[k], before[0][k])
    np.testing.assert_array_equal(x, before[1])
    np.testing.assert_array_equal(eps, before[2])
