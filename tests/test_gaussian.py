"""Gaussian log-density and KL: gradients, and agreement with independent references."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import integrate, stats

from vaelib.core.gaussian import (
    kl_monte_carlo_backward,
    kl_monte_carlo_forward,
    kl_std_normal,
    kl_std_normal_backward,
    kl_std_normal_forward,
    log_normal,
    log_std_normal,
)
from vaelib.core.gradcheck import numerical_gradient, relative_error

finite = st.floats(-5, 5, allow_nan=False)


def test_log_normal_matches_scipy(rng):
    z, mu, log_var = rng.standard_normal((3, 4, 5))
    expected = stats.norm.logpdf(z, mu, np.exp(0.5 * log_var)).sum(axis=-1)
    np.testing.assert_allclose(log_normal(z, mu, log_var), expected, rtol=1e-12)
    np.testing.assert_allclose(log_std_normal(z), stats.norm.logpdf(z).sum(axis=-1), rtol=1e-12)


@pytest.mark.parametrize("mu, log_var", [(0.0, 0.0), (1.5, -1.0), (-0.7, 0.8)])
def test_closed_form_kl_matches_quadrature(mu, log_var):
    q = stats.norm(mu, np.exp(0.5 * log_var))
    integrand = lambda z: q.pdf(z) * (q.logpdf(z) - stats.norm.logpdf(z))
    reference, _ = integrate.quad(integrand, -30, 30, epsabs=1e-13)
    assert kl_std_normal(np.array([[mu]]), np.array([[log_var]]))[0] == pytest.approx(reference, abs=1e-10)


def test_closed_form_kl_matches_monte_carlo(rng):
    mu, log_var = rng.standard_normal((2, 1, 3))
    n = 400_000
    z = mu + np.exp(0.5 * log_var) * rng.standard_normal((n, 3))
    samples = kl_monte_carlo_forward(z, mu, log_var)[0]
    se = samples.std() / np.sqrt(n)
    assert abs(samples.mean() - kl_std_normal(mu, log_var)[0]) < 4 * se


def test_closed_form_kl_matches_multivariate_formula(rng):
    """KL(N(m, S) || N(0, I)) = (tr S + m.m - d - log det S) / 2, with S diagonal."""
    mu, log_var = rng.standard_normal((2, 4))
    S = np.diag(np.exp(log_var))
    expected = 0.5 * (np.trace(S) + mu @ mu - 4 - np.linalg.slogdet(S)[1])
    assert kl_std_normal(mu[None], log_var[None])[0] == pytest.approx(expected, rel=1e-12)


def test_kl_gradients(rng):
    mu, log_var = rng.standard_normal((2, 3, 4))
    dkl = rng.standard_normal(3)
    dmu, dlv = kl_std_normal_backward(dkl, kl_std_normal_forward(mu, log_var)[1])
    f = lambda: float(np.sum(kl_std_normal(mu, log_var) * dkl))
    assert relative_error(dmu, numerical_gradient(f, mu)) < 1e-7
    assert relative_error(dlv, numerical_gradient(f, log_var)) < 1e-7


def test_monte_carlo_kl_gradients(rng):
    z, mu, log_var = rng.standard_normal((3, 3, 4))
    dkl = rng.standard_normal(3)
    grads = kl_monte_carlo_backward(dkl, kl_monte_carlo_forward(z, mu, log_var)[1])
    f = lambda: float(np.sum(kl_monte_carlo_forward(z, mu, log_var)[0] * dkl))
    for x, g in zip((z, mu, log_var), grads):
        assert relative_error(g, numerical_gradient(f, x)) < 1e-7


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, (2, 3), elements=finite), arrays(np.float64, (2, 3), elements=finite))
def test_kl_is_non_negative(mu, log_var):
    assert np.all(kl_std_normal(mu, log_var) >= 0)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, 3, elements=finite), arrays(np.float64, 3, elements=finite))
def test_kl_is_zero_only_at_the_prior(mu, log_var):
    kl = kl_std_normal(mu[None], log_var[None])[0]
    at_prior = not np.any(mu) and not np.any(log_var)
    assume(at_prior or max(np.abs(mu).max(), np.abs(log_var).max()) > 1e-3)
    assert (kl == 0) if at_prior else (kl > 0)
    assert kl_std_normal(np.zeros((1, 3)), np.zeros((1, 3)))[0] == 0
