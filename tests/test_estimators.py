"""Tests for vaelib.teaching.estimators: pathwise and score-function gradients of E_q[f(z)]."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vaelib.teaching.estimators import (
    batch_means,
    gaussian_score,
    mean_and_standard_error,
    pathwise_gradient,
    score_function_gradient,
    variance_and_standard_error,
)
from vaelib.core.gaussian import log_normal
from vaelib.core.gradcheck import numerical_gradient, relative_error


def square(z):
    return z * z


def square_prime(z):
    return 2 * z


def exact_square(mu, log_var):
    """E[z^2] = mu^2 + var: gradients (2 mu, var) with respect to (mu, log_var)."""
    return 2 * mu, np.exp(log_var)


def exact_sin(mu, log_var):
    """E[sin z] = sin(mu) exp(-var / 2): gradients with respect to (mu, log_var)."""
    var = np.exp(log_var)
    damp = np.exp(-0.5 * var)
    return np.cos(mu) * damp, -np.sin(mu) * damp * 0.5 * var


FUNCTIONS = {"square": (square, square_prime, exact_square), "sin": (np.sin, np.cos, exact_sin)}
SETTINGS = [(1.0, 0.0), (-0.7, np.log(0.25)), (0.3, np.log(4.0))]


# ------------------------------------------------------------------ hand-worked example
def test_hand_worked_example_square():
    # mu = 1, log_var = log 4 (std 2), eps = 0.5: z = 2.
    mu, log_var, eps = 1.0, np.log(4.0), np.array([0.5])
    g_mu, g_lv = pathwise_gradient(square_prime, mu, log_var, eps)
    assert g_mu == pytest.approx([4.0])  # f'(z) = 2z = 4
    assert g_lv == pytest.approx([2.0])  # f'(z) * eps * std / 2 = 4 * 0.5 * 2 / 2
    s_mu, s_lv = score_function_gradient(square, mu, log_var, eps)
    assert s_mu == pytest.approx([1.0])  # f(z) * eps / std = 4 * 0.5 / 2
    assert s_lv == pytest.approx([-1.5])  # f(z) * (eps^2 - 1) / 2 = 4 * (-0.375)


def test_log_var_is_a_log_variance():
    """std = exp(0.5 * log_var): the z the estimators use has variance exp(log_var)."""
    eps = np.random.default_rng(0).standard_normal(200_000)
    log_var = np.log(9.0)
    # f(z) = z has pathwise d/dlog_var = eps * std / 2; so 2 * g / eps = std at every sample.
    _, g_lv = pathwise_gradient(np.ones_like, 0.0, log_var, eps)
    np.testing.assert_allclose(2 * g_lv / eps, 3.0, rtol=1e-12)
    # The d/dlog_var of E[z^2] = exp(log_var) is exp(log_var) = 9, not std = 3 or 2 log std.
    _, g_lv = pathwise_gradient(square_prime, 0.0, log_var, eps)
    mean, se = mean_and_standard_error(g_lv)
    assert abs(mean - 9.0) < 4 * se


# ------------------------------------------------------------------ definitions as properties
finite = st.floats(-2.0, 2.0)


@settings(max_examples=40, deadline=None)
@given(mu=finite, log_var=st.floats(-3.0, 2.0), eps=st.floats(-3.0, 3.0))
def test_pathwise_is_the_derivative_of_the_sample_along_the_path(mu, log_var, eps):
    """With eps held fixed, g = d f(mu + exp(log_var / 2) eps) / d(mu, log_var)."""
    p = np.array([mu, log_var])
    numeric = numerical_gradient(lambda: np.sin(p[0] + np.exp(0.5 * p[1]) * eps), p)
    g_mu, g_lv = pathwise_gradient(np.cos, mu, log_var, np.array([eps]))
    assert relative_error(np.array([g_mu[0], g_lv[0]]), numeric) < 1e-7


@settings(max_examples=40, deadline=None)
@given(mu=finite, log_var=st.floats(-3.0, 2.0), z=st.floats(-4.0, 4.0))
def test_score_is_the_derivative_of_log_q_at_fixed_z(mu, log_var, z):
    p = np.array([mu, log_var])
    numeric = numerical_gradient(lambda: float(log_normal(np.array([z]), p[0], p[1])), p)
    analytic = np.array(gaussian_score(z, mu, log_var), dtype=np.float64)
    assert relative_error(analytic, numeric) < 1e-6


def test_the_finite_difference_property_catches_a_wrong_parameterisation():
    """Treating log_var as a log-std (std = exp(log_var)) must fail the path check."""
    mu, log_var, eps = 0.4, 0.8, 1.3
    p = np.array([mu, log_var])
    numeric = numerical_gradient(lambda: np.sin(p[0] + np.exp(p[1]) * eps), p)
    g_mu, g_lv = pathwise_gradient(np.cos, mu, log_var, np.array([eps]))
    assert relative_error(np.array([g_mu[0], g_lv[0]]), numeric) > 1e-2


# ------------------------------------------------------------------ meaning: unbiased
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("mu, log_var", SETTINGS)
def test_both_estimators_are_unbiased(name, mu, log_var):
    f, f_prime, exact = FUNCTIONS[name]
    eps = np.random.default_rng(1).standard_normal(400_000)
    expected = exact(mu, log_var)
    for estimates in (pathwise_gradient(f_prime, mu, log_var, eps), score_function_gradient(f, mu, log_var, eps)):
        for g, target in zip(estimates, expected):
            mean, se = mean_and_standard_error(g)
            assert abs(mean - target) < 4 * se, (mean, target, se)


def test_a_wrong_derivative_is_detected_as_biased():
    """The unbiasedness check can fail: f' = z instead of 2z for f = z^2."""
    eps = np.random.default_rng(2).standard_normal(400_000)
    g_mu, _ = pathwise_gradient(lambda z: z, 1.0, 0.0, eps)
    mean, se = mean_and_standard_error(g_mu)
    assert abs(mean - 2.0) > 20 * se


def test_baseline_changes_variance_not_mean():
    mu, log_var = 1.0, np.log(0.25)
    eps = np.random.default_rng(3).standard_normal(400_000)
    plain, _ = score_function_gradient(square, mu, log_var, eps)
    centred, _ = score_function_gradient(square, mu, log_var, eps, baseline=mu**2 + 0.25)
    m, se = mean_and_standard_error(centred)
    assert abs(m - 2 * mu) < 4 * se
    assert centred.var() < 0.5 * plain.var()


# ------------------------------------------------------------------ meaning: variances
@pytest.mark.parametrize("mu, log_var", SETTINGS)
def test_single_sample_variances_for_square(mu, log_var):
    """For f = z^2, d/dmu: pathwise var = 4 var_q; score var = mu^4/var_q + 14 mu^2 + 15 var_q."""
    var_q = np.exp(log_var)
    eps = np.random.default_rng(4).standard_normal(1_000_000)
    g_path, _ = pathwise_gradient(square_prime, mu, log_var, eps)
    g_score, _ = score_function_gradient(square, mu, log_var, eps)
    for g, exact in ((g_path, 4 * var_q), (g_score, mu**4 / var_q + 14 * mu**2 + 15 * var_q)):
        v, se = variance_and_standard_error(g)
        assert abs(v - exact) < 5 * se, (v, exact, se)


def test_variance_and_standard_error_against_normal_theory():
    x = np.random.default_rng(5).normal(0.0, 2.0, size=(400_000,))
    v, se = variance_and_standard_error(x)
    assert v == pytest.approx(np.var(x, ddof=1), rel=1e-12)
    # for a normal sample se(s^2) = sigma^2 sqrt(2 / n)
    assert se == pytest.approx(4.0 * np.sqrt(2 / x.size), rel=0.02)


def test_mean_and_standard_error_hand_example():
    mean, se = mean_and_standard_error(np.array([1.0, 2.0, 3.0, 6.0]))
    assert mean == 3.0
    assert se == pytest.approx(np.sqrt(14 / 3) / 2)  # ddof=1 variance 14/3, n = 4


def test_batch_means():
    x = np.arange(12.0).reshape(6, 2)
    out = batch_means(x, 3)
    np.testing.assert_array_equal(out, [[2.0, 3.0], [8.0, 9.0]])
    with pytest.raises(ValueError):
        batch_means(x, 4)


def test_variance_of_n_sample_mean_scales_as_one_over_n():
    eps = np.random.default_rng(6).standard_normal(64 * 4000)
    g, _ = score_function_gradient(square, 1.0, 0.0, eps)
    for n in (1, 4, 16, 64):
        v, se = variance_and_standard_error(batch_means(g, n))
        assert abs(v - 30.0 / n) < 5 * se
