"""The fast IWAE step against the core: the same loss, terms and gradient."""

import numpy as np
import pytest

from vaelib.core.iwae import negative_iwae_backward, negative_iwae_forward
from vaelib.core.vae import VAEConfig, init_params
from vaelib.fast.iwae import inplace_negative_iwae_and_grads

SMALL = dict(n_pixels=12, hidden=(9,), n_latent=3)
CONFIGS = {
    "bernoulli-relu": VAEConfig(**SMALL),
    "bernoulli-relu-two-hidden": VAEConfig(**{**SMALL, "hidden": (9, 7)}),
    "bernoulli-softplus": VAEConfig(**SMALL, activation="softplus"),
    "gaussian-fixed-sigma-relu": VAEConfig(**SMALL, likelihood="gaussian", sigma=0.2),
    "gaussian-learned-sigma-sigmoid": VAEConfig(**SMALL, likelihood="gaussian", learn_sigma=True, activation="sigmoid"),
}


def fast_and_core(config, dtype, rng, K, batch=16):
    params = init_params(config, rng, dtype)
    if config.likelihood == "bernoulli":
        x = (rng.random((batch, config.n_pixels)) > 0.5).astype(dtype)
    else:
        x = rng.random((batch, config.n_pixels)).astype(dtype)
    eps = rng.standard_normal((batch, K, config.n_latent)).astype(dtype)
    core_loss, core_terms, cache = negative_iwae_forward(params, x, eps, config)
    core_grads = negative_iwae_backward(cache)
    grads = {k: np.full_like(v, np.nan) for k, v in params.items()}
    fast_loss, fast_terms = inplace_negative_iwae_and_grads(grads, params, x, eps, config)
    return (core_loss, core_terms, core_grads), (fast_loss, fast_terms, grads)


@pytest.mark.parametrize("K", [1, 5])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_float64_equals_the_core(name, K, rng):
    """float64: loss and terms equal to 1e-12, gradients to 1e-10 (the order of a few sums differs,
    and the fused Bernoulli kernel's exp and log1p are within 3 eps of NumPy's)."""
    core, fast = fast_and_core(CONFIGS[name], np.float64, rng, K)
    assert fast[0] == pytest.approx(core[0], rel=1e-12)
    for k in ("neg_iwae", "log_w", "reconstruction", "kl", "neg_elbo"):
        np.testing.assert_allclose(fast[1][k], core[1][k], rtol=1e-12, err_msg=k)
    assert set(fast[2]) == set(core[2])
    for k in core[2]:
        np.testing.assert_allclose(fast[2][k], core[2][k], rtol=1e-10, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("K", [1, 5])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_float32_equals_the_core_within_float32_rounding(name, K, rng):
    """float32: each gradient tensor within 1e-5 of the core's, relative to its largest entry; the loss
    to 1e-5 relative. (The fast Bernoulli path computes log w in float64, the core in float32.)"""
    core, fast = fast_and_core(CONFIGS[name], np.float32, rng, K)
    assert fast[0] == pytest.approx(core[0], rel=1e-5)
    for k in ("neg_iwae", "reconstruction", "kl"):
        np.testing.assert_allclose(fast[1][k], core[1][k], rtol=1e-5, atol=1e-4, err_msg=k)
    for k in core[2]:
        scale = np.abs(core[2][k]).max()
        np.testing.assert_allclose(fast[2][k], core[2][k], rtol=0, atol=1e-5 * scale, err_msg=k)
        assert fast[2][k].dtype == np.float32


def test_a_wrong_gradient_would_be_caught(rng):
    """The float32 tolerance bites: a gradient off by one part in 1e4 fails it."""
    core, fast = fast_and_core(CONFIGS["bernoulli-relu"], np.float32, rng, 5)
    g = fast[2]["dec.W0"] * (1 + 1e-4)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(g, core[2]["dec.W0"], rtol=0, atol=1e-5 * np.abs(core[2]["dec.W0"]).max())


def test_leaves_params_x_and_eps_unchanged(rng):
    config = CONFIGS["bernoulli-relu-two-hidden"]
    params = init_params(config, rng, np.float32)
    x = (rng.random((8, 12)) > 0.5).astype(np.float32)
    eps = rng.standard_normal((8, 4, 3)).astype(np.float32)
    before = ({k: v.copy() for k, v in params.items()}, x.copy(), eps.copy())
    inplace_negative_iwae_and_grads({k: np.empty_like(v) for k, v in params.items()}, params, x, eps, config)
    for k in params:
        np.testing.assert_array_equal(params[k], before[0][k])
    np.testing.assert_array_equal(x, before[1])
    np.testing.assert_array_equal(eps, before[2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_scaling_flushes_subnormal_products_to_zero(dtype, rng):
    """inplace_scale_rows_flush: a * w[:, None] exactly, except products below the smallest normal number,
    which are 0 (in float32, rows weighted 1e-30 times entries of 1e-9 and less)."""
    from vaelib.fast.kernels import inplace_scale_rows_flush

    tiny = np.finfo(dtype).tiny
    a = (rng.standard_normal((6, 50)) * 10.0 ** rng.integers(-12, 1, (6, 50))).astype(dtype)
    w = np.array([1.0, 0.5, 1e-30, 1e-300, 0.0, 3e-3]).astype(dtype)
    with np.errstate(under="ignore"):
        expected = a * w[:, None]
    subnormal = (expected != 0) & (np.abs(expected) < tiny)
    assert dtype == np.float64 or subnormal.sum() > 10  # there is something to flush
    expected[subnormal] = 0
    out = inplace_scale_rows_flush(a, w, tiny)
    assert out is a
    np.testing.assert_array_equal(a, expected)
