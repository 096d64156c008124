"""Tests for vaelib.teaching.evidence_check: the importance-sampling estimate with its standard error, and the
per-image check of a computed log p(x), which must fail when log p(x) is too high or too low."""

import numpy as np
import pytest

from vaelib.core.vae import VAEConfig, init_params
from vaelib.teaching.evidence_check import excess_beyond_noise, log_mean_weight
from vaelib.teaching.inference_gap import grid_posteriors, log_evidence_by_importance, log_weights
from vaelib.teaching.quadrature import quadrature_error


# ---------------------------------------------------------------- log_mean_weight
def test_log_mean_weight_by_hand():
    # w = (1, 3): mean 2, sd sqrt(2) (ddof = 1), so se = sqrt(2) / (2 sqrt(2)) = 1/2
    estimate, se = log_mean_weight(np.log([[1.0, 3.0]]))
    np.testing.assert_allclose(estimate, [np.log(2.0)], rtol=1e-15)
    np.testing.assert_allclose(se, [0.5], rtol=1e-15)


def test_log_mean_weight_is_safe_for_log_weights_of_any_size():
    log_w = np.log([[1.0, 3.0], [1.0, 3.0]]) + np.array([[-900.0], [700.0]])   # exp overflows or underflows
    estimate, se = log_mean_weight(log_w)
    np.testing.assert_allclose(estimate, [np.log(2.0) - 900.0, np.log(2.0) + 700.0], rtol=1e-15)
    np.testing.assert_allclose(se, [0.5, 0.5], rtol=1e-12)


def test_log_mean_weight_standard_error_is_the_spread_of_repeated_estimates():
    # log-normal weights (finite variance): 400 independent estimates of S = 2000 weights each
    rng = np.random.default_rng(3)
    estimate, se = log_mean_weight(rng.normal(-50.0, 0.7, size=(400, 2000)))
    assert estimate.std(ddof=1) == pytest.approx(np.median(se), rel=0.1)
    # E[w] = exp(mu + s^2 / 2) for log w ~ N(mu, s^2): the estimates centre on it, within 4 s.e. of their mean
    assert abs(estimate.mean() - (-50.0 + 0.7**2 / 2)) < 4 * estimate.std(ddof=1) / np.sqrt(400)


def test_log_mean_weight_needs_two_weights_per_row():
    with pytest.raises(ValueError, match="S >= 2"):
        log_mean_weight(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="shape"):
        log_mean_weight(np.zeros(5))


# ---------------------------------------------------------------- excess_beyond_noise
def test_excess_by_hand():
    # allowed: 4 * 0.1 + 0.05 = 0.45 nats
    above = excess_beyond_noise([1.0], [0.1], [0.0], 0.05)
    below = excess_beyond_noise([-1.0], [0.1], [0.0], 0.05)
    np.testing.assert_allclose([above[0], below[0]], [0.55, 0.55], rtol=1e-12)
    np.testing.assert_allclose(excess_beyond_noise([1.0], [0.1], [0.0], 0.05, lower_bound=True), [0.55])
    np.testing.assert_allclose(excess_beyond_noise([-1.0], [0.1], [0.0], 0.05, lower_bound=True), [-1.45])
    np.testing.assert_allclose(excess_beyond_noise([0.2, 0.2], [0.1, 0.01], [0.0, 0.0], [0.0, 0.0], n_se=2),
                               [0.0, 0.18], atol=1e-15)                       # per-image se and delta


# ---------------------------------------------------------------- the whole check, on a model with a known log p(x)
@pytest.fixture(scope="module")
def checked_model():
    """A small 2-D Bernoulli VAE, log p(x) by quadrature, and both kinds of Monte Carlo estimate."""
    config = VAEConfig(n_pixels=6, hidden=(5,), n_latent=2, activation="tanh")
    params = {k: 2.0 * v for k, v in init_params(config, np.random.default_rng(5)).items()}
    x = (np.random.default_rng(6).random((4, 6)) > 0.5).astype(float)
    post = grid_posteriors(params, x, config, radius=6.0, step=0.04)
    delta = quadrature_error(params, x, config, radius=6.0, step=0.04, log_px=post.log_px)["bound"]
    is_estimate, is_se = log_evidence_by_importance(params, x, config, post.mean, post.cov,
                                                    np.random.default_rng(7), n_samples=4096)
    iwae, iwae_se = log_mean_weight(log_weights(params, x, config, np.random.default_rng(8), n_samples=2000))
    return post.log_px, delta, (is_estimate, is_se), (iwae, iwae_se)


def check_passes(log_px, delta, estimate, bound):
    """The notebook's check: both kinds of estimate within their noise of log p(x), for every image."""
    return bool(np.all(excess_beyond_noise(*estimate, log_px, delta) <= 0)
                and np.all(excess_beyond_noise(*bound, log_px, delta, lower_bound=True) <= 0))


def test_the_check_passes_on_the_true_log_px(checked_model):
    log_px, delta, estimate, bound = checked_model
    assert np.all(4 * estimate[1] + delta < 0.05)       # the allowance is small next to the corruptions below
    assert check_passes(log_px, delta, estimate, bound)


@pytest.mark.parametrize("shift", [0.3, -0.3])
def test_the_check_fails_when_log_px_is_too_high_or_too_low(checked_model, shift):
    log_px, delta, estimate, bound = checked_model
    assert not check_passes(log_px + shift, delta, estimate, bound)
    corrupted_one = log_px.copy()
    corrupted_one[2] += shift                           # one image wrong is enough
    assert not check_passes(corrupted_one, delta, estimate, bound)


def test_a_lower_bound_alone_cannot_see_a_log_px_that_is_too_high(checked_model):
    log_px, delta, _, bound = checked_model
    assert np.all(excess_beyond_noise(*bound, log_px + 0.3, delta, lower_bound=True) <= 0)   # passes, wrongly
    assert np.any(excess_beyond_noise(*bound, log_px - 0.3, delta, lower_bound=True) > 0)
