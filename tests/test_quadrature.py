"""log p(x) by quadrature on a latent grid, against SciPy's adaptive integration."""

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import expit

from vaelib.core.vae import VAEConfig, decode, init_params
from vaelib.teaching.quadrature import (latent_grid, log_evidence, log_evidence_from_joint, posterior_on_grid,
                                       quadrature_error)


@pytest.fixture(params=["bernoulli", "gaussian"])
def model(request, rng):
    likelihood = request.param
    config = VAEConfig(n_pixels=6, hidden=(5,), n_latent=2, activation="tanh", likelihood=likelihood, sigma=0.5)
    params = {k: 2.0 * v for k, v in init_params(config, rng).items()}  # sharper than at initialisation
    if likelihood == "bernoulli":
        x = (rng.random((3, 6)) > 0.5).astype(float)
    else:
        x = rng.random((3, 6))
    return config, params, x


def evidence_by_dblquad(config, params, x_row):
    """p(x) = ∫∫ p(x|z) N(z|0,I) dz with SciPy's adaptive quadrature, from SciPy's densities."""
    def joint(z2, z1):
        out = decode(params, np.array([[z1, z2]]), config)[0]
        if config.likelihood == "bernoulli":
            like = np.prod(stats.bernoulli.pmf(x_row, expit(out)))
        else:
            like = np.prod(stats.norm.pdf(x_row, out, config.sigma))
        return like * stats.norm.pdf(z1) * stats.norm.pdf(z2)
    value, _ = integrate.dblquad(joint, -9, 9, -9, 9, epsabs=1e-13, epsrel=1e-10)
    return np.log(value)


def test_grid_evidence_equals_adaptive_quadrature(model):
    config, params, x = model
    grid_value = log_evidence(params, x, config, radius=6.0, step=0.04)
    reference = np.array([evidence_by_dblquad(config, params, row) for row in x[:1]])
    np.testing.assert_allclose(grid_value[:1], reference, atol=1e-6)


def test_quadrature_error_is_small_and_shrinks(model):
    config, params, x = model
    coarse = quadrature_error(params, x, config, radius=3.0, step=0.2)
    fine = quadrature_error(params, x, config, radius=6.0, step=0.05)
    assert np.all(fine["bound"] < 1e-5)
    assert np.all(fine["bound"] < coarse["bound"])


def test_quadrature_error_sees_a_range_that_cuts_the_posterior_off(model):
    """On [-1, 1]^2 the grid misses much of p(x) (SciPy's integral says how much); widening the square
    by half must recover a good part of it, and never more than is missing."""
    config, params, x = model
    error = quadrature_error(params, x[:1], config, radius=1.0, step=0.05)
    missing = evidence_by_dblquad(config, params, x[0]) - error["log_px"][0]
    assert missing > 0.1
    assert 0.5 * missing < error["wider"][0] <= missing + 1e-6
    assert error["bound"][0] == max(abs(error["half_step"][0]), abs(error["wider"][0]))


def test_quadrature_error_uses_a_given_log_px(model):
    config, params, x = model
    computed = quadrature_error(params, x, config, radius=3.0, step=0.2)
    log_px = log_evidence(params, x, config, radius=3.0, step=0.2)
    given = quadrature_error(params, x, config, radius=3.0, step=0.2, log_px=log_px)
    for key in ("log_px", "half_step", "wider", "bound"):
        assert np.array_equal(given[key], computed[key]), key
    shifted = quadrature_error(params, x, config, radius=3.0, step=0.2, log_px=log_px + 1.0)  # used, not recomputed
    np.testing.assert_allclose(shifted["half_step"], computed["half_step"] - 1.0, rtol=0, atol=1e-12)


def test_log_evidence_from_joint_by_hand():
    # G = 4 cells of spacing h = 0.5, each with log p(x, z_g) = -3: log(4 * e^-3 * 0.25) = -3
    assert log_evidence_from_joint(np.full((2, 4), -3.0), 0.5) == pytest.approx([-3.0, -3.0], abs=1e-15)


def test_posterior_integrates_to_one_and_has_the_right_mean(model):
    config, params, x = model
    grid, density, log_px = posterior_on_grid(params, x[:1], config, radius=6.0, step=0.04)
    assert density.sum() * grid.step**2 == pytest.approx(1.0, abs=1e-12)
    mean_z1 = np.sum(density[0] * grid.axis[:, None]) * grid.step**2
    # reference: E[z1 | x] = ∫∫ z1 p(x, z) dz / p(x), by SciPy
    def weighted(z2, z1):
        out = decode(params, np.array([[z1, z2]]), config)[0]
        if config.likelihood == "bernoulli":
            like = np.prod(stats.bernoulli.pmf(x[0], expit(out)))
        else:
            like = np.prod(stats.norm.pdf(x[0], out, config.sigma))
        return z1 * like * stats.norm.pdf(z1) * stats.norm.pdf(z2)
    numerator, _ = integrate.dblquad(weighted, -9, 9, -9, 9, epsabs=1e-13, epsrel=1e-10)
    assert mean_z1 == pytest.approx(numerator / np.exp(log_px[0]), abs=1e-6)


def test_grid_cells_cover_the_square():
    grid = latent_grid(radius=1.0, step=0.5)
    np.testing.assert_allclose(grid.axis, [-0.75, -0.25, 0.25, 0.75])
    assert grid.z.shape == (16, 2) and tuple(grid.z[1]) == (-0.75, -0.25)
