"""Evaluation: the importance-weighted estimate against exact log p(x) on a model small enough to integrate."""

import numpy as np
import pytest
from scipy.special import logsumexp

from vaelib.core.evaluate import active_units, elbo_terms, importance_weighted_log_likelihood
from vaelib.core.vae import VAEConfig, decode, init_params, reconstruction_nll

CONFIG = VAEConfig(n_pixels=6, hidden=(8,), n_latent=1, activation="tanh")


@pytest.fixture
def model(rng):
    params = init_params(CONFIG, rng)
    params = {k: v * 2 for k, v in params.items()}  # sharp enough that the ELBO sits ~0.2 nats below log p(x)
    x = (rng.random((8, 6)) > 0.5).astype(np.float64)
    return params, x


def exact_log_likelihood(params, x):
    """log p(x) = log ∫ p(x|z) N(z; 0, 1) dz by the trapezoid rule on a fine grid."""
    z = np.linspace(-10, 10, 20001)
    out = decode(params, z[:, None], CONFIG)
    log_prior = -0.5 * (z**2 + np.log(2 * np.pi))
    result = []
    for xi in x:
        log_joint = -reconstruction_nll(out, np.broadcast_to(xi, out.shape), params, CONFIG) + log_prior
        result.append(logsumexp(log_joint) + np.log(z[1] - z[0]))
    return np.array(result)


def test_iwae_converges_to_exact_log_likelihood(model, rng):
    params, x = model
    exact = exact_log_likelihood(params, x)
    estimate = importance_weighted_log_likelihood(params, x, CONFIG, rng, n_samples=5000)
    elbo = -np.mean([elbo_terms(params, x, CONFIG, rng)["neg_elbo"] for _ in range(200)], axis=0)
    np.testing.assert_allclose(estimate, exact, atol=0.1)
    # K = 5000 closes most of the ELBO's gap to log p(x)
    assert np.mean(np.abs(estimate - exact)) < 0.3 * np.mean(exact - elbo)


def test_elbo_is_below_iwae_which_rises_with_k(model, rng):
    params, x = model
    exact = exact_log_likelihood(params, x)
    elbo = -np.mean([elbo_terms(params, x, CONFIG, rng)["neg_elbo"] for _ in range(200)], axis=0)
    means = [np.mean([importance_weighted_log_likelihood(params, x, CONFIG, rng, n_samples=k) for _ in range(50)])
             for k in (1, 10, 100)]
    assert elbo.mean() == pytest.approx(means[0], abs=0.1)  # K = 1 is the ELBO
    assert elbo.mean() < means[1] < means[2] <= exact.mean() + 0.01
    assert np.all(elbo < exact)


def test_memory_bound_does_not_change_the_estimate_in_distribution(model, rng):
    params, x = model
    a = importance_weighted_log_likelihood(params, x, CONFIG, np.random.default_rng(0), n_samples=2000)
    b = importance_weighted_log_likelihood(params, x, CONFIG, np.random.default_rng(1), n_samples=2000, max_rows=300)
    np.testing.assert_allclose(a, b, atol=0.1)


def test_bad_sample_count_is_refused(model, rng):
    with pytest.raises(ValueError, match="positive"):
        importance_weighted_log_likelihood(*model, CONFIG, rng, n_samples=0)


def test_active_units_counts_latents_the_encoder_uses(rng):
    config = VAEConfig(n_pixels=6, hidden=(8,), n_latent=4)
    params = init_params(config, rng)
    params["enc.W1"][:, [1, 3]] = 0  # the means of latents 1 and 3 ignore x
    params["enc.W1"][:, [0, 2]] *= 20
    x = rng.random((500, 6))
    count, variances = active_units(params, x, config)
    assert count == 2
    assert variances[1] == pytest.approx(0, abs=1e-20) and variances[0] > 0.01
