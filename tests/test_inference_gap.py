"""Per-image variational inference on a 2-D latent space, against closed forms and brute force.

The reference model: a Gaussian decoder whose ReLU units are all switched on over the
whole grid (a large first-layer bias), so the decoder is affine there and the model is
linear-Gaussian: its evidence and posterior are known in closed form
(:mod:`vaelib.teaching.exact_models`). The best full-covariance ``q`` is then the posterior
itself (gap 0), and the best diagonal ``q`` is known too.
"""

import numpy as np
import pytest
from scipy import linalg, optimize
from scipy.ndimage import maximum_filter
from scipy.spatial.distance import mahalanobis
from scipy.special import logsumexp

from vaelib.core.evaluate import log_importance_weights
from vaelib.core.gradcheck import numerical_gradient, relative_error
from vaelib.core.vae import VAEConfig, encode, init_params
from vaelib.teaching.exact_models import (
    diag_covariance,
    gaussian_kl,
    linear_gaussian_elbo,
    linear_gaussian_log_evidence,
    linear_gaussian_posterior,
)
from vaelib.teaching import inference_gap
from vaelib.teaching.inference_gap import (
    FAMILIES,
    GaussianQ,
    _negative_elbo_and_grad,
    best_gaussian,
    elbo_on_grid,
    elbo_on_nodes,
    encoder_gaussians,
    gaussian_entropy,
    grid_posteriors,
    inference_gaps,
    iwae_bounds,
    kl_to_posterior_on_grid,
    log_evidence_by_importance,
    log_gaussian,
    log_weights,
    offset_and_width,
    posterior_modes,
    posterior_moments,
    posterior_starts,
    q_from_moments,
    q_from_theta,
    q_mass_on_grid,
    standard_nodes,
    theta_from_q,
    weight_tail_onset,
)
from vaelib.teaching.quadrature import latent_grid, log_evidence

from fixtures_models import linear_gaussian_vae

RADIUS, STEP = 5.0, 0.05


@pytest.fixture(scope="module")
def linear_model():
    """A VAE whose decoder is affine on the grid: ``x | z ~ N(W z + b, sigma^2 I)``, and three images."""
    return linear_gaussian_vae()


@pytest.fixture(scope="module")
def linear_posteriors(linear_model):
    config, params, x, _, _ = linear_model
    return grid_posteriors(params, x, config, radius=RADIUS, step=STEP)


@pytest.fixture(scope="module")
def bernoulli_model():
    """A small nonlinear Bernoulli model: its posterior is not Gaussian."""
    config = VAEConfig(n_pixels=6, hidden=(5,), n_latent=2, activation="tanh")
    params = {k: 2.5 * v for k, v in init_params(config, np.random.default_rng(3)).items()}
    x = np.array([[1, 0, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1]], dtype=float)
    return config, params, x


def random_gaussians(rng, n, centre, scale=0.4):
    """Random full-covariance Gaussians near ``centre``."""
    out = []
    for _ in range(n):
        chol = np.array([[np.exp(rng.uniform(-2.0, -0.5)), 0.0],
                         [rng.uniform(-0.3, 0.3), np.exp(rng.uniform(-2.0, -0.5))]])
        out.append(GaussianQ(centre + scale * rng.standard_normal(2), chol))
    return out


# ---------------------------------------------------------------- one Gaussian
@pytest.mark.parametrize("family", FAMILIES)
def test_theta_round_trip_and_covariance(family, rng):
    theta = rng.standard_normal(4 if family == "diagonal" else 5)
    q = q_from_theta(theta, family)
    np.testing.assert_allclose(theta_from_q(q, family), theta, atol=1e-14)
    np.testing.assert_allclose(q.cov, q.chol @ q.chol.T)
    assert q.chol[0, 1] == 0 and np.all(np.diag(q.chol) > 0)
    with pytest.raises(ValueError, match="family"):
        q_from_theta(theta, "banana")


def test_log_gaussian_and_entropy_against_scipy(rng):
    from scipy import stats

    q = GaussianQ(np.array([0.3, -1.0]), np.array([[0.5, 0.0], [0.4, 0.2]]))
    z = rng.standard_normal((7, 2))
    reference = stats.multivariate_normal(q.mean, q.cov)
    np.testing.assert_allclose(log_gaussian(z, q), reference.logpdf(z), rtol=1e-12)
    assert gaussian_entropy(q) == pytest.approx(reference.entropy(), abs=1e-12)


def test_encoder_gaussians_use_log_var_as_log_variance(linear_model):
    config, params, x, _, _ = linear_model
    mu, log_var = encode(params, x, config)
    for q, m, lv in zip(encoder_gaussians(params, x, config), mu, log_var):
        np.testing.assert_allclose(q.mean, m)
        np.testing.assert_allclose(np.diag(q.cov), np.exp(lv), rtol=1e-12)
        assert q.cov[0, 1] == 0


# ---------------------------------------------------------------- grid and nodes, against closed forms
def test_grid_evidence_is_the_quadrature_modules_and_the_closed_form(linear_model, linear_posteriors):
    config, params, x, W, b = linear_model
    np.testing.assert_allclose(linear_posteriors.log_px, log_evidence(params, x, config, RADIUS, STEP), atol=1e-10)
    np.testing.assert_allclose(linear_posteriors.log_px, linear_gaussian_log_evidence(x, W, b, config.sigma),
                               atol=1e-8)


def test_posterior_moments_match_the_closed_form(linear_model, linear_posteriors):
    config, _, x, W, b = linear_model
    means, cov = linear_gaussian_posterior(x, W, b, config.sigma)
    for n in range(len(x)):
        mean, grid_cov = posterior_moments(linear_posteriors.log_joint[n], linear_posteriors.grid)
        np.testing.assert_allclose(mean, means[n], atol=1e-8)
        np.testing.assert_allclose(grid_cov, cov, atol=1e-8)
    # the batch form, as grid_posteriors stores it, gives the same numbers
    np.testing.assert_allclose(linear_posteriors.mean, means, atol=1e-8)
    np.testing.assert_allclose(linear_posteriors.cov, np.broadcast_to(cov, (len(x), 2, 2)), atol=1e-8)


def test_posterior_starts_add_the_mode_only_when_it_is_away_from_the_mean(linear_posteriors):
    grid = linear_posteriors.grid
    starts = posterior_starts(linear_posteriors.log_joint[0], grid)  # a Gaussian posterior: mode = mean
    assert [len(v) for v in starts.values()] == [1, 1]
    # two bumps of unequal height: the mean lies between them, the mode on the higher one
    two_modes = np.logaddexp(log_gaussian(grid.z, GaussianQ(np.array([1.0, 0.0]), 0.2 * np.eye(2))),
                             log_gaussian(grid.z, GaussianQ(np.array([-1.0, 0.0]), 0.2 * np.eye(2))) - 0.5)
    starts = posterior_starts(two_modes, grid)
    assert [len(v) for v in starts.values()] == [2, 2]
    np.testing.assert_allclose(starts["full"][1].mean, [1.0, 0.0], atol=grid.step)


def mixture_log_density(z, components):
    """``log sum_k w_k N(z | m_k, C_k)`` at the rows of ``z``, for ``components`` of (w_k, GaussianQ)."""
    return logsumexp([np.log(w) + log_gaussian(np.atleast_2d(z), q) for w, q in components], axis=0)


def test_posterior_modes_of_a_mixture_against_its_modes_found_by_an_optimiser():
    """Three well-apart bumps of a known mixture, and a fourth 6 nats below the highest: the modes are
    where an optimiser of the mixture's own density ends from each bump's centre, and their heights
    are the density's there. On the grid a mode is a grid point, so within a spacing of the true one,
    and its height is lower by at most (spacing^2 / 2) / sd^2, under 0.02 nats here."""
    grid = latent_grid(3.0, 0.05)
    components = [(0.5, GaussianQ(np.array([1.0, 0.4]), np.array([[0.3, 0.0], [0.1, 0.25]]))),
                  (0.3, GaussianQ(np.array([-1.2, 0.9]), np.array([[0.2, 0.0], [-0.05, 0.3]]))),
                  (0.2, GaussianQ(np.array([0.2, -1.5]), np.diag([0.35, 0.2])))]
    fourth = GaussianQ(np.array([-1.6, -1.4]), np.diag([0.2, 0.2]))
    peak = np.max(mixture_log_density(grid.z, components))
    weight = np.exp(peak - 6.0 - log_gaussian(fourth.mean[None, :], fourth)[0])  # its peak 6 nats below
    components.append((weight, fourth))
    log_p = mixture_log_density(grid.z, components)

    found = [optimize.minimize(lambda z: -mixture_log_density(z, components)[0], q.mean, method="Nelder-Mead",
                               options={"xatol": 1e-9, "fatol": 1e-12}).x for _, q in components]
    heights = mixture_log_density(np.array(found), components)
    order = np.argsort(-heights)
    assert heights.max() - heights.min() == pytest.approx(6.0, abs=0.05)  # the fourth is the lowest, 6 nats down

    points, rel = posterior_modes(log_p, grid)  # depth 5 nats: three modes, highest first
    np.testing.assert_allclose(points, np.array(found)[order[:3]], atol=grid.step)
    np.testing.assert_allclose(rel, heights[order[:3]] - heights.max(), atol=0.02)
    assert rel[0] == 0.0 and np.all(np.diff(rel) < 0)
    points, rel = posterior_modes(log_p, grid, depth=7.0)  # deep enough for the fourth
    np.testing.assert_allclose(points, np.array(found)[order], atol=grid.step)
    assert len(posterior_modes(log_p + 42.0, grid)[0]) == 3  # any constant offset


def test_posterior_modes_count_a_peak_between_grid_points_once():
    """A Gaussian centred on the corner of four cells has four grid points of the same density (the squares
    of +-h/2 are equal): a block maximum filter alone calls each a mode; they are one, at their centre."""
    grid = latent_grid(2.0, 0.05)
    log_p = log_gaussian(grid.z, GaussianQ(np.zeros(2), np.diag([0.3, 0.2]))).reshape(len(grid.axis), -1)
    naive = maximum_filter(log_p, size=5) == log_p
    assert naive.sum() == 4  # what the filter alone finds
    points, heights = posterior_modes(log_p.ravel(), grid)
    np.testing.assert_allclose(points, [[0.0, 0.0]], atol=1e-12)
    assert heights.tolist() == [0.0]


def test_posterior_modes_of_the_linear_model_is_its_mean(linear_model, linear_posteriors):
    config, _, x, W, b = linear_model
    means, _ = linear_gaussian_posterior(x, W, b, config.sigma)
    for n in range(len(x)):
        points, _ = posterior_modes(linear_posteriors.log_posterior(n), linear_posteriors.grid)
        assert len(points) == 1
        np.testing.assert_allclose(points[0], means[n], atol=linear_posteriors.grid.step)


def test_offset_and_width_against_scipy(rng):
    """d_M against SciPy's Mahalanobis distance; lambda_min, the smallest ratio v'Sq v / v'Sp v, against the
    generalised eigenvalue problem Sq v = lambda Sp v; and a worked case: q half the posterior's width."""
    for q in random_gaussians(rng, 5, np.zeros(2)):
        chol_p = np.array([[np.exp(rng.uniform(-2, -0.5)), 0.0], [rng.uniform(-0.3, 0.3), np.exp(rng.uniform(-2, -0.5))]])
        mean_p, cov_p = rng.standard_normal(2), chol_p @ chol_p.T
        d_M, lambda_min = offset_and_width(q, mean_p, cov_p)
        assert d_M == pytest.approx(mahalanobis(q.mean, mean_p, np.linalg.inv(cov_p)), rel=1e-10)
        assert lambda_min == pytest.approx(linalg.eigh(q.cov, cov_p, eigvals_only=True).min(), rel=1e-10)
    chol_p = np.array([[0.3, 0.0], [0.1, 0.2]])
    d_M, lambda_min = offset_and_width(GaussianQ(np.array([0.6, 0.0]), 0.5 * chol_p), np.zeros(2), chol_p @ chol_p.T)
    # offset (0.6, 0): t = L^-1 (0.6, 0) = (2, -1), |t| = sqrt(5); q's covariance a quarter of the posterior's
    assert d_M == pytest.approx(np.sqrt(5.0), rel=1e-12) and lambda_min == pytest.approx(0.25, rel=1e-12)


def test_elbo_and_kl_of_any_gaussian_against_closed_forms(linear_model, linear_posteriors, rng):
    """Grid rule, t-rule and ``log p(x) - KL(q || posterior)`` (exact) agree for full-covariance q's;
    for diagonal q's also with the closed-form ELBO of exact_models."""
    config, params, x, W, b = linear_model
    means, cov = linear_gaussian_posterior(x, W, b, config.sigma)
    grid = linear_posteriors.grid
    for n in range(len(x)):
        qs = random_gaussians(rng, 6, means[n])
        exact_kl = np.array([gaussian_kl(q.mean, q.cov, means[n], cov) for q in qs])
        exact = linear_posteriors.log_px[n] - exact_kl
        on_grid = np.array([elbo_on_grid(linear_posteriors.log_joint[n], grid, q) for q in qs])
        on_nodes = elbo_on_nodes(params, np.repeat(x[n:n + 1], len(qs), axis=0), config, qs)
        kl_grid = np.array([kl_to_posterior_on_grid(linear_posteriors.log_posterior(n), grid, q) for q in qs])
        np.testing.assert_allclose(on_grid, exact, atol=1e-7)
        np.testing.assert_allclose(on_nodes, exact, atol=1e-7)
        np.testing.assert_allclose(kl_grid, exact_kl, atol=1e-7)
        diagonal = GaussianQ(qs[0].mean, np.diag(np.diag(qs[0].chol)))
        closed = linear_gaussian_elbo(x[n], diagonal.mean, np.log(np.diag(diagonal.cov)), W, b, config.sigma)
        assert elbo_on_grid(linear_posteriors.log_joint[n], grid, diagonal) == pytest.approx(closed, abs=1e-7)


def test_grid_rule_needs_q_resolved_and_mass_says_so(linear_posteriors):
    """The grid rule is accurate for sd >= the spacing; a q four times narrower than the spacing
    shows it in its grid mass, and a q off the grid has mass 0."""
    grid = linear_posteriors.grid
    resolved = GaussianQ(np.array([0.013, -0.021]), STEP * np.eye(2))
    narrow = GaussianQ(np.array([0.013, -0.021]), STEP / 4 * np.eye(2))
    assert q_mass_on_grid(grid, resolved) == pytest.approx(1.0, abs=1e-6)
    assert abs(q_mass_on_grid(grid, narrow) - 1.0) > 0.05
    assert q_mass_on_grid(grid, GaussianQ(np.array([9.0, 0.0]), 0.1 * np.eye(2))) < 1e-100


def test_grid_rule_holds_down_to_seven_tenths_of_the_spacing(linear_model, linear_posteriors):
    """The module's stated resolution: a q whose standard deviations are 0.7 grid spacings still has
    its ELBO to 1e-4 nats (exact: log p(x) - KL); at half a spacing the error is over ten times larger."""
    config, _, x, W, b = linear_model
    means, cov = linear_gaussian_posterior(x, W, b, config.sigma)
    errors = []
    for spacings in (0.7, 0.5):
        q = GaussianQ(means[0] + np.array([0.013, -0.021]), spacings * STEP * np.eye(2))
        exact = linear_posteriors.log_px[0] - gaussian_kl(q.mean, q.cov, means[0], cov)
        errors.append(abs(elbo_on_grid(linear_posteriors.log_joint[0], linear_posteriors.grid, q) - exact))
    assert errors[0] < 1e-4 and errors[1] > 10 * errors[0]
    # normalised by sum_g w_g, the rule is exact for a constant, however poorly the grid holds q
    narrow = GaussianQ(means[0], STEP / 4 * np.eye(2))
    shifted = elbo_on_grid(linear_posteriors.log_joint[0] - 1e4, linear_posteriors.grid, narrow)
    assert shifted == pytest.approx(elbo_on_grid(linear_posteriors.log_joint[0], linear_posteriors.grid, narrow) - 1e4,
                                    abs=1e-7)


def test_standard_nodes_integrate_gaussian_moments():
    t, w = standard_nodes()
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(w @ t, 0.0, atol=1e-14)
    np.testing.assert_allclose((t * w[:, None]).T @ t, np.eye(2), atol=1e-14)
    # the stretch that makes the second moments exact is tiny: the nodes stay a midpoint grid
    np.testing.assert_allclose(np.unique(np.round(t[:, 0], 6)), np.linspace(-4.25, 4.25, 18) * (1 + 6.02e-5),
                               rtol=1e-6)


def test_nodes_in_float32_agree_with_float64(bernoulli_model):
    config, params, x = bernoulli_model
    qs = [GaussianQ(np.array([0.2, -0.3]), np.array([[0.4, 0.0], [0.1, 0.3]]))] * len(x)
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    np.testing.assert_allclose(elbo_on_nodes(params32, x, config, qs), elbo_on_nodes(params, x, config, qs),
                               atol=1e-4)


# ---------------------------------------------------------------- the optimiser
@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_of_the_objective(family, linear_posteriors, rng):
    grid = linear_posteriors.grid
    log_joint = linear_posteriors.log_joint[0]
    z, f = grid.z, log_joint  # all the grid, so that the value is elbo_on_grid's
    theta = theta_from_q(random_gaussians(rng, 1, posterior_moments(log_joint, grid)[0])[0], family)
    value, grad = _negative_elbo_and_grad(theta, family, z, f)
    numeric = numerical_gradient(lambda: _negative_elbo_and_grad(theta, family, z, f)[0], theta)
    assert relative_error(grad, numeric) < 1e-7
    assert value == pytest.approx(-elbo_on_grid(log_joint, grid, q_from_theta(theta, family)), abs=1e-9)


def test_gradient_check_catches_a_wrong_gradient(linear_posteriors):
    """The check above can fail: drop the entropy's gradient and it does."""
    grid = linear_posteriors.grid
    log_joint = linear_posteriors.log_joint[0]
    z, f = grid.z, log_joint
    theta = theta_from_q(q_from_moments(*posterior_moments(log_joint, grid), "full"), "full")
    _, grad = _negative_elbo_and_grad(theta, "full", z, f)
    wrong = grad.copy()
    wrong[[2, 4]] += 1.0  # as if d H / d log L_ii were missing
    numeric = numerical_gradient(lambda: _negative_elbo_and_grad(theta, "full", z, f)[0], theta)
    assert relative_error(wrong, numeric) > 1e-2


def test_best_full_gaussian_is_the_posterior(linear_model, linear_posteriors):
    config, _, x, W, b = linear_model
    means, cov = linear_gaussian_posterior(x, W, b, config.sigma)
    for n in range(len(x)):
        fit = best_gaussian(linear_posteriors.log_joint[n], linear_posteriors.grid, "full")
        np.testing.assert_allclose(fit.q.mean, means[n], atol=1e-5)
        np.testing.assert_allclose(fit.q.cov, cov, atol=1e-5)
        assert linear_posteriors.log_px[n] - fit.elbo == pytest.approx(0.0, abs=1e-8)
        assert fit.converged and fit.mass == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("family", FAMILIES)
def test_best_gaussian_gets_there_from_a_poor_start(family, linear_model, linear_posteriors):
    """The default starts sit on the optimum of a Gaussian posterior already; from a start far off (the
    mean 0.3 away, four times too wide, no correlation) the optimiser has to do the work."""
    config, _, x, W, b = linear_model
    means, cov = linear_gaussian_posterior(x, W, b, config.sigma)
    log_joint, grid = linear_posteriors.log_joint[0], linear_posteriors.grid
    best = best_gaussian(log_joint, grid, family)
    far = GaussianQ(means[0] + 0.3, 4 * np.diag(np.sqrt(np.diag(cov))))
    fit = best_gaussian(log_joint, grid, family, starts=[far])
    assert elbo_on_grid(log_joint, grid, far) < best.elbo - 1.0
    assert fit.converged and fit.elbo == pytest.approx(best.elbo, abs=1e-8)
    np.testing.assert_allclose(fit.q.mean, means[0], atol=1e-5)


def test_best_gaussian_reports_the_whole_grid_not_its_window(linear_posteriors):
    """With a window of 3 nats the optimiser sums over few points; the ELBO and mass it returns are
    still those of the whole grid."""
    log_joint, grid = linear_posteriors.log_joint[0], linear_posteriors.grid
    fit = best_gaussian(log_joint, grid, "full", window=3.0)
    assert fit.elbo == pytest.approx(elbo_on_grid(log_joint, grid, fit.q), abs=1e-9)
    assert fit.mass == pytest.approx(q_mass_on_grid(grid, fit.q), abs=1e-12)


def test_best_diagonal_gaussian_has_the_known_gap(linear_model, linear_posteriors):
    """For a Gaussian posterior N(m, S), the best diagonal q (by KL(q || p)) is N(m, diag(1 / diag(S^-1)))."""
    config, _, x, W, b = linear_model
    means, cov = linear_gaussian_posterior(x, W, b, config.sigma)
    variances = 1.0 / np.diag(np.linalg.inv(cov))
    np.testing.assert_allclose(q_from_moments(means[0], cov, "diagonal").cov, np.diag(variances), rtol=1e-12)
    gap = gaussian_kl(means[0], np.diag(variances), means[0], cov)
    assert gap > 0.3  # the posterior is correlated enough for the test to mean something
    for n in range(len(x)):
        fit = best_gaussian(linear_posteriors.log_joint[n], linear_posteriors.grid, "diagonal")
        np.testing.assert_allclose(fit.q.mean, means[n], atol=1e-5)
        np.testing.assert_allclose(np.diag(fit.q.cov), variances, rtol=1e-5)
        assert linear_posteriors.log_px[n] - fit.elbo == pytest.approx(gap, abs=1e-7)


def test_best_gaussian_beats_a_brute_force_search(bernoulli_model):
    """On a non-Gaussian posterior: no point of a random search over theta beats the optimiser."""
    config, params, x = bernoulli_model
    posteriors = grid_posteriors(params, x, config, radius=4.0, step=0.1)
    rng = np.random.default_rng(0)
    for n in range(len(x)):
        log_joint = posteriors.log_joint[n]
        mean, cov = posterior_moments(log_joint, posteriors.grid)
        for family in FAMILIES:
            fit = best_gaussian(log_joint, posteriors.grid, family)
            centre = theta_from_q(q_from_moments(mean, cov, family), family)
            trials = centre + rng.uniform(-0.5, 0.5, size=(300, len(centre)))
            searched = max(elbo_on_grid(log_joint, posteriors.grid, q_from_theta(t, family)) for t in trials)
            assert fit.elbo >= searched - 1e-9
            assert posteriors.log_px[n] - fit.elbo > 1e-3  # not Gaussian: a gap remains


def test_best_gaussian_stays_on_the_grid_and_flags_a_cut_posterior(linear_model):
    """A grid that cuts the posterior off (its mean lies outside) must not let q run away
    (the mean and the standard deviations are bounded), and the grid mass of q says it is cut."""
    config, params, x, W, b = linear_model
    means, _ = linear_gaussian_posterior(x, W, b, config.sigma)
    radius = float(np.abs(means[0]).max()) - 0.1  # the posterior mean just off the grid
    posteriors = grid_posteriors(params, x[:1], config, radius=radius, step=STEP)
    for family in FAMILIES:
        fit = best_gaussian(posteriors.log_joint[0], posteriors.grid, family)
        assert np.all(np.abs(fit.q.mean) <= radius) and np.all(np.diag(fit.q.chol) <= 1.0)
        assert fit.mass < 0.99


# ---------------------------------------------------------------- the gaps
def test_inference_gaps_on_the_linear_model(linear_model, linear_posteriors):
    config, params, x, W, b = linear_model
    gaps = inference_gaps(params, x, config, posteriors=linear_posteriors)
    means, cov = linear_gaussian_posterior(x, W, b, config.sigma)
    mu, log_var = encode(params, x, config)
    encoder_exact = linear_gaussian_elbo(x, mu, log_var, W, b, config.sigma)
    np.testing.assert_allclose(gaps.elbo_encoder, encoder_exact, atol=1e-6)
    np.testing.assert_allclose(gaps.approximation_gap("full"), 0.0, atol=1e-6)
    diag_kl = gaussian_kl(means[0], np.diag(1.0 / np.diag(np.linalg.inv(cov))), means[0], cov)
    np.testing.assert_allclose(gaps.approximation_gap("diagonal"), diag_kl, atol=1e-6)
    whole = gaps.whole_gap()
    for family in FAMILIES:
        np.testing.assert_allclose(gaps.approximation_gap(family) + gaps.amortisation_gap(family), whole,
                                   atol=1e-12)
        assert np.all(gaps.amortisation_gap(family) > 0)
    # an untrained encoder is far from the posterior: the whole gap is the exact KL
    exact_kl = gaussian_kl(mu, diag_covariance(log_var), means, cov)
    np.testing.assert_allclose(whole, exact_kl, atol=1e-6)


# ---------------------------------------------------------------- log p(x) without the grid
def test_log_evidence_by_importance_against_the_closed_form(linear_model, linear_posteriors):
    """Unbiased, with an honest standard error: the spread over seeds matches it."""
    config, params, x, W, b = linear_model
    exact = linear_gaussian_log_evidence(x, W, b, config.sigma)
    runs = [log_evidence_by_importance(params, x, config, linear_posteriors.mean, linear_posteriors.cov,
                                       np.random.default_rng(seed), n_samples=2000, max_rows=700)
            for seed in range(20)]
    estimates, ses = np.array([r[0] for r in runs]), np.array([r[1] for r in runs])
    assert np.all(np.abs(estimates - exact) <= 4 * ses)
    np.testing.assert_allclose(estimates.mean(axis=0), exact, atol=4 * ses.mean() / np.sqrt(20))
    np.testing.assert_allclose(estimates.std(axis=0, ddof=1), ses.mean(axis=0), rtol=0.4)
    # a proposal far off the posterior is still unbiased, but its standard error says it is poor
    moved, se_moved = log_evidence_by_importance(params, x, config, linear_posteriors.mean + 1.0,
                                                 linear_posteriors.cov, np.random.default_rng(0), n_samples=2000)
    assert np.all(se_moved > 5 * ses.mean(axis=0))


# ---------------------------------------------------------------- importance weights and IWAE_K
def test_log_weights_are_the_cores_and_average_to_the_elbo(linear_model):
    config, params, x, W, b = linear_model
    log_w = log_weights(params, x, config, np.random.default_rng(5), n_samples=4000, max_rows=1000)
    eps = np.random.default_rng(5).standard_normal((3, 333, 2))
    first = log_importance_weights(params, x, config, eps)  # the first chunk, drawn alike
    np.testing.assert_allclose(log_w[:, :333], first, rtol=1e-12)
    mu, log_var = encode(params, x, config)
    elbo = linear_gaussian_elbo(x, mu, log_var, W, b, config.sigma)
    se = log_w.std(axis=1, ddof=1) / np.sqrt(log_w.shape[1])
    assert np.all(np.abs(log_w.mean(axis=1) - elbo) < 5 * se)


def test_weight_tail_onset_follows_the_gaussian_condition(linear_model):
    """Linear-Gaussian model: E_q[w^2] is finite iff 2 S^-1 - (L L^T)^-1 is positive definite.
    With q centred on the posterior the log-integrand is c + u^2 (1/2 - e^T A e) along a ray:
    for a q too narrow it rises from the centre, and stays above the bulk just past u = 4."""
    config, params, x, W, b = linear_model
    means, cov = linear_gaussian_posterior(x, W, b, config.sigma)
    chol = np.linalg.cholesky(cov)
    for n in range(len(x)):
        wide = GaussianQ(means[n], chol)  # lambda = 1
        narrow = GaussianQ(means[n], 0.6 * chol)  # lambda = 0.36 < 1/2
        assert weight_tail_onset(params, x[n], config, wide) == np.inf
        assert weight_tail_onset(params, x[n], config, narrow) == pytest.approx(4.25)
        assert weight_tail_onset(params, x[n], config, GaussianQ(means[n], 0.75 * chol)) == np.inf  # lambda = 0.56


def test_weight_tail_onset_is_where_the_integrand_stays_above(monkeypatch, linear_model):
    """A designed log-likelihood makes log[p(x,z)^2 / q(z)] = h(u) - log 2 pi along every ray of q = N(0, I),
    with h = -u in the bulk, above the bulk's maximum (0) for 5 <= u < 7, below it for 7 <= u < 10, and
    above it for good from u = 10: the onset is 10, not the first crossing at 5."""
    config, params, x, _, _ = linear_model

    def h(u):
        return np.select([u < 5, u < 7, u < 10], [-u, 10.0, -5.0], default=u)

    def designed(params, x, config, z):  # log p(x | z) = (|z|^2 / 2 + h(|z|)) / 2
        u = np.linalg.norm(z, axis=1)
        return ((0.5 * u**2 + h(u)) / 2)[None, :]

    monkeypatch.setattr(inference_gap, "log_likelihood_on_grid", designed)
    q = GaussianQ(np.zeros(2), np.eye(2))
    assert weight_tail_onset(params, x[0], config, q, max_radius=20.0) == 10.0


def test_iwae_bounds_group_the_weights():
    rng = np.random.default_rng(0)
    log_w = rng.normal(-3.0, 1.0, size=(2, 64))
    mean, se = iwae_bounds(log_w, [1, 4, 32])
    np.testing.assert_allclose(mean[:, 0], log_w.mean(axis=1))
    np.testing.assert_allclose(se[:, 0], log_w.std(axis=1, ddof=1) / 8)
    halves = logsumexp(log_w.reshape(2, 2, 32), axis=2) - np.log(32)
    np.testing.assert_allclose(mean[:, 2], halves.mean(axis=1))
    with pytest.raises(ValueError, match="at least 128"):
        iwae_bounds(log_w, [64])


def test_iwae_rises_towards_log_mean_weight():
    """log w ~ N(mu, s^2): log E[w] = mu + s^2 / 2; IWAE_K rises with K and stays below it."""
    rng = np.random.default_rng(1)
    mu, s = -2.0, 1.0
    log_w = rng.normal(mu, s, size=(1, 2 ** 16))
    ks = [1, 8, 64, 512]
    mean, se = iwae_bounds(log_w, ks)
    assert np.all(np.diff(mean[0]) > 0)
    assert np.all(mean[0] < mu + s**2 / 2 + 3 * se[0])
    assert mean[0, -1] == pytest.approx(mu + s**2 / 2, abs=0.05)
