"""Decoder likelihoods: gradients, values against scipy, numerical stability."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from vaelib.core.gradcheck import numerical_gradient, relative_error
from vaelib.core.likelihoods import (
    bernoulli_nll_backward,
    bernoulli_nll_forward,
    bernoulli_nll_from_logits,
    gaussian_nll,
    gaussian_nll_backward,
    gaussian_nll_forward,
)


def test_bernoulli_nll_matches_scipy(rng):
    logits = rng.standard_normal((3, 5)) * 3
    x = (rng.random((3, 5)) > 0.5).astype(float)
    expected = -stats.bernoulli.logpmf(x, 1 / (1 + np.exp(-logits))).sum(axis=1)
    np.testing.assert_allclose(bernoulli_nll_from_logits(logits, x), expected, rtol=1e-12)


def test_bernoulli_hand_worked_example():
    # logit 0 -> p = 1/2 -> ln 2 per pixel; logit ln 3 -> p = 3/4: x=1 costs ln(4/3), x=0 costs ln 4
    logits = np.array([[0.0, np.log(3), np.log(3)]])
    x = np.array([[1.0, 1.0, 0.0]])
    assert bernoulli_nll_from_logits(logits, x)[0] == pytest.approx(np.log(2) + np.log(4 / 3) + np.log(4))


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, 6, elements=st.sampled_from([-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4])),
       arrays(np.float64, 6, elements=st.sampled_from([0.0, 1.0])))
def test_bernoulli_nll_is_stable_at_huge_logits(logits, x):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow RuntimeWarning fails the test
        nll = bernoulli_nll_from_logits(logits[None], x[None])[0]
        g, _ = bernoulli_nll_backward(np.ones(1), bernoulli_nll_forward(logits[None], x[None])[1])
    assert np.isfinite(nll) and nll >= 0 and np.all(np.isfinite(g))
    # a confidently wrong pixel costs |logit| nats
    wrong = ((logits > 0) & (x == 0)) | ((logits < 0) & (x == 1))
    assert nll >= np.abs(logits[wrong]).sum() - 1e-9


def test_bernoulli_gradient(rng):
    logits = rng.standard_normal((3, 5))
    x = (rng.random((3, 5)) > 0.5).astype(float)
    dnll = rng.standard_normal(3)
    g, _ = bernoulli_nll_backward(dnll, bernoulli_nll_forward(logits, x)[1])
    f = lambda: float(np.sum(bernoulli_nll_from_logits(logits, x) * dnll))
    assert relative_error(g, numerical_gradient(f, logits)) < 1e-7


def test_gaussian_nll_matches_scipy(rng):
    mean, x = rng.standard_normal((2, 3, 5))
    log_sigma = np.log(0.3)
    expected = -stats.norm.logpdf(x, mean, 0.3).sum(axis=1)
    np.testing.assert_allclose(gaussian_nll(mean, x, log_sigma), expected, rtol=1e-12)


def test_gaussian_gradients_including_log_sigma(rng):
    mean, x = rng.standard_normal((2, 3, 5))
    log_sigma = np.array(-0.4)
    dnll = rng.standard_normal(3)
    dmean, dls = gaussian_nll_backward(dnll, gaussian_nll_forward(mean, x, log_sigma)[1])
    f = lambda: float(np.sum(gaussian_nll(mean, x, log_sigma) * dnll))
    assert relative_error(dmean, numerical_gradient(f, mean)) < 1e-7
    assert relative_error(dls, numerical_gradient(f, log_sigma)) < 1e-7


def test_gaussian_log_density_can_be_positive():
    # a narrow Gaussian has density above 1 at its mean: log p > 0, nll < 0
    assert gaussian_nll(np.zeros((1, 1)), np.zeros((1, 1)), np.log(0.1))[0] < 0
