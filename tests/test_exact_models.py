"""Tests for vaelib.teaching.exact_models: every exact quantity against an independent reference."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import integrate, stats

from vaelib.teaching.exact_models import (
    PRIOR_GRID,
    diag_covariance,
    gaussian_kl,
    linear_gaussian_elbo,
    linear_gaussian_kl_to_posterior,
    linear_gaussian_log_evidence,
    linear_gaussian_log_joint,
    linear_gaussian_marginal,
    linear_gaussian_posterior,
    tanh_bernoulli_elbo,
    tanh_bernoulli_kl_to_posterior,
    tanh_bernoulli_log_evidence,
    tanh_bernoulli_log_joint,
    tanh_bernoulli_log_posterior,
)
from vaelib.core.gaussian import kl_std_normal


def make_linear_gaussian(seed, n_pixels=5, n_latent=2, sigma=0.5):
    """A random linear-Gaussian model and one data point drawn from it."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n_pixels, n_latent))
    b = rng.normal(size=n_pixels)
    x = W @ rng.normal(size=n_latent) + b + sigma * rng.normal(size=n_pixels)
    return x, W, b, sigma


# Four pixels that switch on when z > 0; the observed image has all four on.
A = np.array([6.0, 5.0, 4.0, 3.0])
C = np.array([0.0, 0.5, -0.5, 0.0])
X_BIN = np.array([1.0, 1.0, 0.0, 1.0])


def quad_log_evidence(x, a, c):
    """Reference log p(x) for the tanh-Bernoulli model by adaptive quadrature."""
    value, _ = integrate.quad(lambda z: np.exp(tanh_bernoulli_log_joint(x, z, a, c)), -np.inf, np.inf,
                              epsabs=1e-14, epsrel=1e-12, limit=200)
    return np.log(value)


QUAD_LOG_EVIDENCE = quad_log_evidence(X_BIN, A, C)


# ---------------------------------------------------------------- gaussian_kl
def test_gaussian_kl_matches_kl_std_normal_for_a_standard_normal_target():
    rng = np.random.default_rng(0)
    mu, log_var = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    got = gaussian_kl(mu, diag_covariance(log_var), np.zeros(3), np.eye(3))
    np.testing.assert_allclose(got, kl_std_normal(mu, log_var), rtol=1e-12)


def test_gaussian_kl_one_dimensional_hand_formula():
    # KL(N(m1, s1^2) || N(m2, s2^2)) = log(s2/s1) + (s1^2 + (m1-m2)^2) / (2 s2^2) - 1/2
    m1, s1, m2, s2 = 0.3, 0.5, -1.0, 2.0
    want = np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    got = gaussian_kl(np.array([m1]), np.array([[s1**2]]), np.array([m2]), np.array([[s2**2]]))
    assert got == pytest.approx(want, rel=1e-13)


def test_gaussian_kl_against_monte_carlo_with_full_covariances():
    rng = np.random.default_rng(1)
    k = 3
    m1, m2 = rng.normal(size=k), rng.normal(size=k)
    B1, B2 = rng.normal(size=(k, k)), rng.normal(size=(k, k))
    S1, S2 = B1 @ B1.T + 0.5 * np.eye(k), B2 @ B2.T + 0.5 * np.eye(k)
    z = stats.multivariate_normal(m1, S1).rvs(size=400_000, random_state=rng)
    terms = stats.multivariate_normal(m1, S1).logpdf(z) - stats.multivariate_normal(m2, S2).logpdf(z)
    stderr = terms.std() / np.sqrt(len(terms))
    assert abs(gaussian_kl(m1, S1, m2, S2) - terms.mean()) < 5 * stderr


def test_gaussian_kl_is_zero_for_equal_arguments_and_asymmetric_otherwise():
    S = np.array([[1.0, 0.8], [0.8, 1.0]])
    m = np.array([0.5, -0.5])
    assert abs(gaussian_kl(m, S, m, S)) < 1e-14
    forward, reverse = gaussian_kl(m, np.eye(2), m, S), gaussian_kl(m, S, m, np.eye(2))
    assert forward > 0 and reverse > 0 and abs(forward - reverse) > 0.1


# ---------------------------------------------------------------- linear-Gaussian model
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_gaussian_log_evidence_against_scipy(seed):
    x, W, b, sigma = make_linear_gaussian(seed)
    xs = np.stack([x, x + 1.0, b])
    want = stats.multivariate_normal(b, W @ W.T + sigma**2 * np.eye(len(b))).logpdf(xs)
    np.testing.assert_allclose(linear_gaussian_log_evidence(xs, W, b, sigma), want, rtol=1e-12)


def test_linear_gaussian_marginal_matches_sample_moments():
    x, W, b, sigma = make_linear_gaussian(3, n_pixels=3, n_latent=2)
    rng = np.random.default_rng(4)
    z = rng.normal(size=(200_000, 2))
    xs = z @ W.T + b + sigma * rng.normal(size=(200_000, 3))
    mean, cov = linear_gaussian_marginal(W, b, sigma)
    n, var = len(xs), np.diag(cov)
    # Five standard errors: of a sample mean, sqrt(S_ii / n); of a sample covariance,
    # sqrt((S_ii S_jj + S_ij^2) / n) for Gaussian data.
    assert np.all(np.abs(xs.mean(axis=0) - mean) < 5 * np.sqrt(var / n))
    assert np.all(np.abs(np.cov(xs.T) - cov) < 5 * np.sqrt((np.outer(var, var) + cov**2) / n))


def test_linear_gaussian_log_joint_against_scipy():
    x, W, b, sigma = make_linear_gaussian(5)
    z = np.array([0.3, -1.2])
    want = (stats.multivariate_normal(W @ z + b, sigma**2 * np.eye(len(x))).logpdf(x)
            + stats.multivariate_normal(np.zeros(2), np.eye(2)).logpdf(z))
    assert linear_gaussian_log_joint(x, z, W, b, sigma) == pytest.approx(want, rel=1e-12)


def test_linear_gaussian_posterior_against_bayes_on_a_grid():
    # L = 1: tabulate p(x|z) p(z) on a grid, normalise, and take moments.
    x, W, b, sigma = make_linear_gaussian(6, n_pixels=4, n_latent=1, sigma=0.8)
    z = np.linspace(-10, 10, 20_001)
    log_unnorm = stats.norm.logpdf(z) + stats.norm.logpdf(x[:, None], W @ z[None, :] + b[:, None], sigma).sum(0)
    density = np.exp(log_unnorm - log_unnorm.max())
    density /= integrate.trapezoid(density, z)
    grid_mean = integrate.trapezoid(z * density, z)
    grid_var = integrate.trapezoid((z - grid_mean) ** 2 * density, z)
    mean, cov = linear_gaussian_posterior(x, W, b, sigma)
    assert mean.shape == (1,) and cov.shape == (1, 1)
    assert mean[0] == pytest.approx(grid_mean, abs=1e-10)
    assert cov[0, 0] == pytest.approx(grid_var, abs=1e-10)
    np.testing.assert_allclose(stats.norm.pdf(z, mean[0], np.sqrt(cov[0, 0])), density, atol=1e-9)


def test_linear_gaussian_posterior_is_bayes_rule_pointwise():
    # log p(z|x) = log p(x|z) + log p(z) - log p(x) at arbitrary z, for L = 3.
    x, W, b, sigma = make_linear_gaussian(7, n_pixels=6, n_latent=3)
    mean, cov = linear_gaussian_posterior(x, W, b, sigma)
    z = np.random.default_rng(8).normal(size=(10, 3))
    lhs = stats.multivariate_normal(mean, cov).logpdf(z)
    rhs = linear_gaussian_log_joint(x, z, W, b, sigma) - linear_gaussian_log_evidence(x, W, b, sigma)
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-10)


def test_linear_gaussian_elbo_against_monte_carlo():
    x, W, b, sigma = make_linear_gaussian(9)
    mu, log_var = np.array([0.4, -0.7]), np.array([-1.0, 0.3])
    rng = np.random.default_rng(10)
    z = mu + np.exp(0.5 * log_var) * rng.normal(size=(400_000, 2))
    log_q = stats.multivariate_normal(mu, np.diag(np.exp(log_var))).logpdf(z)
    log_joint = (stats.norm.logpdf(x, z @ W.T + b, sigma).sum(-1)
                 + stats.multivariate_normal(np.zeros(2), np.eye(2)).logpdf(z))
    terms = log_joint - log_q
    stderr = terms.std() / np.sqrt(len(terms))
    assert abs(linear_gaussian_elbo(x, mu, log_var, W, b, sigma) - terms.mean()) < 5 * stderr


def test_linear_gaussian_elbo_broadcasts_over_many_q():
    x, W, b, sigma = make_linear_gaussian(11)
    rng = np.random.default_rng(12)
    mu, log_var = rng.normal(size=(7, 2)), rng.normal(size=(7, 2))
    batched = linear_gaussian_elbo(x, mu, log_var, W, b, sigma)
    one_by_one = [linear_gaussian_elbo(x, m, lv, W, b, sigma) for m, lv in zip(mu, log_var)]
    assert batched.shape == (7,)
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-14)


def test_linear_gaussian_bound_is_tight_at_the_true_posterior_for_one_latent():
    x, W, b, sigma = make_linear_gaussian(13, n_latent=1)
    mean, cov = linear_gaussian_posterior(x, W, b, sigma)
    log_var = np.log(np.diag(cov))
    assert abs(linear_gaussian_kl_to_posterior(x, mean, log_var, W, b, sigma)) < 1e-12
    assert linear_gaussian_elbo(x, mean, log_var, W, b, sigma) == pytest.approx(
        linear_gaussian_log_evidence(x, W, b, sigma), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1),
       mu=arrays(np.float64, 2, elements=st.floats(-5, 5)),
       log_var=arrays(np.float64, 2, elements=st.floats(-6, 4)))
def test_linear_gaussian_log_evidence_is_elbo_plus_kl(seed, mu, log_var):
    x, W, b, sigma = make_linear_gaussian(seed)
    elbo = linear_gaussian_elbo(x, mu, log_var, W, b, sigma)
    kl = linear_gaussian_kl_to_posterior(x, mu, log_var, W, b, sigma)
    log_evidence = linear_gaussian_log_evidence(x, W, b, sigma)
    assert abs(elbo + kl - log_evidence) < 1e-10
    assert kl >= 0 and elbo <= log_evidence


# ---------------------------------------------------------------- tanh-Bernoulli model
def test_tanh_bernoulli_log_evidence_against_adaptive_quadrature():
    for x in [X_BIN, 1 - X_BIN, np.zeros(4)]:
        assert tanh_bernoulli_log_evidence(x, A, C) == pytest.approx(quad_log_evidence(x, A, C), abs=1e-10)


def test_tanh_bernoulli_evidence_sums_to_one_over_all_images():
    images = np.array(list(itertools.product([0.0, 1.0], repeat=len(A))))
    log_evidence = tanh_bernoulli_log_evidence(images, A, C)
    assert log_evidence.shape == (16,)
    assert np.all(log_evidence < 0)
    assert np.exp(log_evidence).sum() == pytest.approx(1.0, abs=1e-12)


def test_tanh_bernoulli_log_joint_against_scipy():
    z = np.array([-1.3, 0.0, 0.7])
    p = 1 / (1 + np.exp(-(A * np.tanh(z)[:, None] + C)))
    want = stats.bernoulli.logpmf(X_BIN, p).sum(-1) + stats.norm.logpdf(z)
    np.testing.assert_allclose(tanh_bernoulli_log_joint(X_BIN, z, A, C), want, rtol=1e-12)


def test_tanh_bernoulli_posterior_integrates_to_one_and_is_not_gaussian():
    density = np.exp(tanh_bernoulli_log_posterior(PRIOR_GRID, X_BIN, A, C))
    assert integrate.trapezoid(density, PRIOR_GRID) == pytest.approx(1.0, abs=1e-12)
    mean = integrate.trapezoid(PRIOR_GRID * density, PRIOR_GRID)
    sd = np.sqrt(integrate.trapezoid((PRIOR_GRID - mean) ** 2 * density, PRIOR_GRID))
    skewness = integrate.trapezoid(((PRIOR_GRID - mean) / sd) ** 3 * density, PRIOR_GRID)
    assert abs(skewness) > 0.1  # a Gaussian has skewness 0


def test_tanh_bernoulli_elbo_against_adaptive_quadrature_and_monte_carlo():
    mu, log_var = 0.8, np.log(0.6**2)
    std = np.exp(0.5 * log_var)

    def integrand(z):
        return stats.norm.pdf(z, mu, std) * (tanh_bernoulli_log_joint(X_BIN, z, A, C) - stats.norm.logpdf(z, mu, std))

    want, _ = integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12, limit=200)
    got = tanh_bernoulli_elbo(X_BIN, mu, log_var, A, C)
    assert got == pytest.approx(want, abs=1e-10)

    z = np.random.default_rng(14).normal(mu, std, size=400_000)
    terms = tanh_bernoulli_log_joint(X_BIN, z, A, C) - stats.norm.logpdf(z, mu, std)
    assert abs(got - terms.mean()) < 5 * terms.std() / np.sqrt(len(terms))


def test_tanh_bernoulli_kl_against_adaptive_quadrature():
    mu, log_var = -0.5, np.log(1.5**2)
    std = np.exp(0.5 * log_var)
    log_evidence = quad_log_evidence(X_BIN, A, C)

    def integrand(z):
        log_q = stats.norm.logpdf(z, mu, std)
        return np.exp(log_q) * (log_q - tanh_bernoulli_log_joint(X_BIN, z, A, C) + log_evidence)

    want, _ = integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12, limit=200)
    assert tanh_bernoulli_kl_to_posterior(X_BIN, mu, log_var, A, C) == pytest.approx(want, abs=1e-9)


def test_tanh_bernoulli_elbo_and_kl_broadcast_over_many_q():
    rng = np.random.default_rng(15)
    mu, log_var = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    for f in (tanh_bernoulli_elbo, tanh_bernoulli_kl_to_posterior):
        batched = f(X_BIN, mu, log_var, A, C)
        assert batched.shape == (3, 4)
        np.testing.assert_allclose(batched[1, 2], f(X_BIN, mu[1, 2], log_var[1, 2], A, C), rtol=1e-13)


@settings(max_examples=100, deadline=None)
@given(mu=st.floats(-4, 4), log_var=st.floats(-8, 3))
def test_tanh_bernoulli_log_evidence_is_elbo_plus_kl(mu, log_var):
    elbo = tanh_bernoulli_elbo(X_BIN, mu, log_var, A, C)
    kl = tanh_bernoulli_kl_to_posterior(X_BIN, mu, log_var, A, C)
    assert abs(elbo + kl - QUAD_LOG_EVIDENCE) < 1e-9
    assert kl > 0 and elbo < QUAD_LOG_EVIDENCE

