"""The importance-weighted bound: its gradient, its value against independent paths, its meaning."""

import numpy as np
import pytest
from scipy.special import logsumexp, softmax

from vaelib.core.evaluate import importance_weighted_log_likelihood, log_importance_weights
from vaelib.core.gradcheck import check_gradients, directional_check
from vaelib.core.iwae import log_mean_exp_forward, negative_iwae_backward, negative_iwae_forward
from vaelib.core.vae import VAEConfig, decode, init_params, loss_and_grads, negative_elbo_forward

SMALL = dict(n_pixels=7, hidden=(6,), n_latent=3, activation="tanh")
CONFIGS = {
    "bernoulli": VAEConfig(**SMALL),
    "bernoulli-two-hidden-softplus": VAEConfig(**{**SMALL, "hidden": (6, 5), "activation": "softplus"}),
    "gaussian-fixed-sigma": VAEConfig(**SMALL, likelihood="gaussian", sigma=0.3),
    "gaussian-learned-sigma": VAEConfig(**SMALL, likelihood="gaussian", learn_sigma=True, sigma=0.8),
}


def batch_for(config, rng, n=5):
    if config.likelihood == "bernoulli":
        return (rng.random((n, config.n_pixels)) > 0.5).astype(np.float64)
    return rng.random((n, config.n_pixels))


def loss_and_iwae_grads(params, x, eps, config):
    loss, _, cache = negative_iwae_forward(params, x, eps, config)
    return loss, negative_iwae_backward(cache)


@pytest.mark.parametrize("K", [1, 2, 7])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_gradient_against_finite_differences(name, K, rng):
    """Every parameter tensor, float64 central differences: relative error below 1e-7."""
    config = CONFIGS[name]
    params = init_params(config, rng)
    x, eps = batch_for(config, rng), rng.standard_normal((5, K, config.n_latent))
    f = lambda p: negative_iwae_forward(p, x, eps, config)[0]
    _, grads = loss_and_iwae_grads(params, x, eps, config)
    assert set(grads) == set(params)
    errors = check_gradients(f, params, grads)
    assert max(errors.values()) < 1e-7, errors
    assert directional_check(f, params, grads, rng) < 1e-7


def test_full_size_model_directional_check(rng):
    """784-400-20 at K = 3: the whole gradient along a random direction, relative error below 1e-7."""
    config = VAEConfig(activation="tanh")
    params = init_params(config, rng)
    x, eps = batch_for(config, rng, 4), rng.standard_normal((4, 3, 20))
    _, grads = loss_and_iwae_grads(params, x, eps, config)
    f = lambda p: negative_iwae_forward(p, x, eps, config)[0]
    assert directional_check(f, params, grads, rng) < 1e-7


def test_the_check_catches_equal_weights_in_place_of_the_normalised_ones(rng):
    """Averaging the K one-sample ELBO gradients (weights 1/K, not softmax(log w)) is the gradient of
    another function, the K-sample ELBO; the finite-difference check of the IWAE must reject it."""
    config, K = CONFIGS["bernoulli"], 4
    params = init_params(config, rng)
    x, eps = batch_for(config, rng), rng.standard_normal((5, K, config.n_latent))
    rows = lambda a: np.repeat(a, K, axis=0)
    _, elbo_grads = loss_and_grads(params, rows(x), eps.reshape(5 * K, -1), VAEConfig(**SMALL, kl="monte_carlo"))
    f = lambda p: negative_iwae_forward(p, x, eps, config)[0]
    assert max(check_gradients(f, params, elbo_grads).values()) > 1e-3
    # while those averaged gradients are exactly right for the K-sample ELBO they belong to
    g = lambda p: negative_elbo_forward(p, rows(x), eps.reshape(5 * K, -1), VAEConfig(**SMALL, kl="monte_carlo"))[0]
    assert max(check_gradients(g, params, elbo_grads).values()) < 1e-7


@pytest.mark.parametrize("kl", ["closed_form", "monte_carlo"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_one_sample_is_the_monte_carlo_elbo(name, kl, rng):
    """K = 1: the loss and every gradient equal negative_elbo_forward/backward's with kl="monte_carlo"
    and the same eps, to 1e-13 relative (config.kl plays no part in the IWAE)."""
    config = VAEConfig(**{**CONFIGS[name].to_dict(), "kl": kl})
    elbo_config = VAEConfig(**{**CONFIGS[name].to_dict(), "kl": "monte_carlo"})
    params = init_params(config, rng)
    x, eps = batch_for(config, rng), rng.standard_normal((5, 1, config.n_latent))
    loss, terms, cache = negative_iwae_forward(params, x, eps, config)
    elbo_loss, elbo_terms, _ = negative_elbo_forward(params, x, eps[:, 0], elbo_config)
    assert loss == pytest.approx(elbo_loss, rel=1e-13)
    np.testing.assert_allclose(terms["neg_iwae"], elbo_terms["neg_elbo"], rtol=1e-13)
    for k in ("reconstruction", "kl", "neg_elbo"):
        np.testing.assert_allclose(terms[k], elbo_terms[k], rtol=1e-13)
    grads = negative_iwae_backward(cache)
    _, elbo_grads = loss_and_grads(params, x, eps[:, 0], elbo_config)
    for k in params:
        np.testing.assert_allclose(grads[k], elbo_grads[k], rtol=1e-13, atol=1e-300, err_msg=k)


@pytest.mark.parametrize("name", ["bernoulli", "gaussian-learned-sigma"])
def test_bound_equals_the_evaluation_path_with_the_same_eps(name, rng):
    """The bound against importance_weighted_log_likelihood (core/evaluate.py: log_normal and
    log_std_normal, SciPy's logsumexp), fed the same noise through a generator in the same state:
    equal to 1e-12 relative. The log weights too, against log_importance_weights."""
    config, K, n = CONFIGS[name], 11, 6
    params = init_params(config, rng)
    x = batch_for(config, rng, n)
    eps = np.random.default_rng(99).standard_normal((n, K, config.n_latent))  # what the evaluation will draw
    _, terms, _ = negative_iwae_forward(params, x, eps, config)
    reference = importance_weighted_log_likelihood(params, x, config, np.random.default_rng(99), n_samples=K)
    np.testing.assert_allclose(-terms["neg_iwae"], reference, rtol=1e-12)
    np.testing.assert_allclose(terms["log_w"], log_importance_weights(params, x, config, eps), rtol=1e-12)
    # and the K-sample terms: neg_elbo is minus the mean log weight
    np.testing.assert_allclose(terms["neg_elbo"], -terms["log_w"].mean(axis=1), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("centre", [-1e4, 1e4, 0.0])
def test_normalised_weights_are_stable_far_from_zero(centre, dtype, rng):
    """Log weights around -1e4 (a badly fitted image) and +1e4: exp alone underflows to 0 or overflows,
    the shifted form does not. Weights finite, in [0, 1], summing to 1 (float64: 1e-12, float32: 1e-6);
    against SciPy's softmax and logsumexp in float64."""
    log_w = (centre + 30 * rng.standard_normal((8, 50))).astype(dtype)
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        naive = np.log(np.mean(np.exp(log_w.astype(np.float64)), axis=1))
    if centre != 0:
        assert not np.all(np.isfinite(naive))  # what the shift is for
    bound, cache = log_mean_exp_forward(log_w)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    assert cache.weights.dtype == dtype and bound.dtype == dtype
    assert np.all(np.isfinite(cache.weights)) and np.all(cache.weights >= 0) and np.all(cache.weights <= 1)
    np.testing.assert_allclose(cache.weights.sum(axis=1), 1, rtol=0, atol=tol)
    np.testing.assert_allclose(cache.weights, softmax(log_w.astype(np.float64), axis=1), rtol=10 * tol, atol=tol)
    reference = logsumexp(log_w.astype(np.float64), axis=1) - np.log(50)
    np.testing.assert_allclose(bound, reference, rtol=tol)


def test_a_hand_worked_log_mean_exp():
    """log((e^0 + e^ln3) / 2) = log 2; weights 1/4 and 3/4."""
    bound, cache = log_mean_exp_forward(np.array([[0.0, np.log(3.0)]]))
    assert bound[0] == pytest.approx(np.log(2.0), rel=1e-15)
    np.testing.assert_allclose(cache.weights, [[0.25, 0.75]], rtol=1e-15)


def test_bound_rises_with_K_towards_log_px(rng):
    """E[L_1] < E[L_5] < E[L_50] <= log p(x), on a random model with one latent dimension (decoder weights
    scaled by 3, so that p(x|z) depends on z), where log p(x) is an integral on a line: the trapezoid rule
    on 4001 points over [-10, 10] (it agrees with 8001 points to 1e-12 nats).

    Each E[L_K] is a mean over 1000 independent draws of eps; each rise is asserted larger than 4
    standard errors of the difference of the two means, and every E[L_K] below log p(x) + 4 standard
    errors. L_50 is also within 0.15 nats of log p(x) (its gaps were 0.005 to 0.08 nats here, L_1's 0.6
    to 4.6)."""
    config = VAEConfig(n_pixels=10, hidden=(8,), n_latent=1, activation="tanh")
    params = init_params(config, rng)
    for k in ("dec.W0", "dec.b0", "dec.W1", "dec.b1"):
        params[k] *= 3
    x = batch_for(config, rng, 4)
    grid = np.linspace(-10, 10, 4001)
    out = decode(params, grid[:, None], config)
    log_px_given_z = -(np.logaddexp(0, out)[None] - x[:, None, :] * out[None]).sum(axis=2)  # (4, grid), Bernoulli
    log_joint = log_px_given_z - 0.5 * (np.log(2 * np.pi) + grid**2)
    trapezoid = np.r_[0.5, np.ones(len(grid) - 2), 0.5] * (grid[1] - grid[0])
    log_px = logsumexp(log_joint + np.log(trapezoid), axis=1)

    repeats = 1000
    bounds = {}
    for K in (1, 5, 50):
        eps = rng.standard_normal((repeats, 4, K, 1))
        bounds[K] = np.array([-negative_iwae_forward(params, x, e, config)[1]["neg_iwae"] for e in eps])  # (R, 4)
    se = {K: b.std(axis=0, ddof=1) / np.sqrt(repeats) for K, b in bounds.items()}
    for small, large in ((1, 5), (5, 50)):
        rise = bounds[large].mean(axis=0) - bounds[small].mean(axis=0)
        assert np.all(rise > 4 * np.hypot(se[small], se[large])), (small, large, rise)
    for K in bounds:
        assert np.all(bounds[K].mean(axis=0) <= log_px + 4 * se[K]), K
    assert np.all(np.abs(bounds[50].mean(axis=0) - log_px) < 0.15)


def test_refuses_a_loss_that_is_not_a_bound_on_log_px(rng):
    x, eps = np.zeros((2, 7)), np.zeros((2, 3, 3))
    for config in (VAEConfig(**SMALL, beta=0.5), VAEConfig(**SMALL, likelihood="gaussian", pixel_reduction="mean")):
        with pytest.raises(ValueError, match="bound on log p"):
            negative_iwae_forward(init_params(config, rng), x, eps, config)


def test_float32_in_float32_out_and_inputs_unchanged(rng):
    config = CONFIGS["gaussian-learned-sigma"]
    params = init_params(config, rng, np.float32)
    x = batch_for(config, rng).astype(np.float32)
    eps = rng.standard_normal((5, 3, config.n_latent)).astype(np.float32)
    before = ({k: v.copy() for k, v in params.items()}, x.copy(), eps.copy())
    _, terms, cache = negative_iwae_forward(params, x, eps, config)
    grads = negative_iwae_backward(cache)
    assert terms["neg_iwae"].dtype == np.float32 and terms["log_w"].shape == (5, 3)
    assert all(grads[k].dtype == np.float32 and grads[k].shape == params[k].shape for k in params)
    for k in params:
        np.testing.assert_array_equal(params[k], before[0][k])
    np.testing.assert_array_equal(x, before[1])
    np.testing.assert_array_equal(eps, before[2])
