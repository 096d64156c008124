"""Exercises for notebook 02, the KL decomposition, on the linear-Gaussian model.

The model: ``z ~ N(0, I_L)``, ``x | z ~ N(W z + b, sigma^2 I_D)``. References: ``log p(x)`` from
``scipy.stats.multivariate_normal``; the ELBO through the identity ``ELBO = log p(x) - KL(q || p(z|x))``,
with the KL to the exact posterior from :mod:`vaelib.teaching.exact_models` (which never computes the
ELBO that way).
"""

import numpy as np
from scipy import stats

from vaelib.core.gaussian import LOG_2PI, kl_std_normal
from vaelib.teaching.exact_models import (diag_covariance, gaussian_kl, linear_gaussian_elbo,
                                          linear_gaussian_posterior)

from .grading import Case, Exercise, Mistake


def _model(seed, n_pixels, n_latent, sigma, dtype=np.float64):
    """``W, b`` and an ``x`` drawn from the model."""
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(n_pixels, n_latent)), rng.normal(size=n_pixels)
    x = W @ rng.normal(size=n_latent) + b + sigma * rng.normal(size=n_pixels)
    return x.astype(dtype), W.astype(dtype), b.astype(dtype)


def _log_evidence(x, W, b, sigma, cov_noise=None):
    """``log N(x | b, W W^T + cov_noise I)`` by scipy; ``cov_noise`` defaults to ``sigma^2``."""
    cov_noise = sigma**2 if cov_noise is None else cov_noise
    return stats.multivariate_normal(b, W @ W.T + cov_noise * np.eye(len(b))).logpdf(x)


def _quadratic_forms(x, W, b, sigma):
    """``(x - b)^T C^{-1} (x - b)`` and ``(x - b)^T C (x - b)``, ``C = W W^T + sigma^2 I``."""
    C = W @ W.T + sigma**2 * np.eye(len(b))
    r = x - b
    return r @ np.linalg.solve(C, r), r @ C @ r


# ---------------------------------------------------------------- log p(x)
def _evidence_cases():
    section_5 = (np.array([1.2, 0.3]), np.array([[1.0], [0.5]]), np.zeros(2))
    W10 = np.linspace(-1.0, 1.0, 10)[:, None]
    x10 = (W10 @ np.array([0.8]) + 0.05 * np.random.default_rng(24).normal(size=10))
    x3, W3, b3 = _model(23, 3, 1, 0.3)
    return [
        Case("5 pixels, 2 latents, sigma = 0.5", dict(zip("xWb", _model(21, 5, 2, 0.5)), sigma=0.5)),
        Case("sigma = 1", dict(zip("xWb", _model(22, 4, 2, 1.0)), sigma=1.0)),
        Case("the model of section 5 (D = 2, L = 1)", dict(zip("xWb", section_5), sigma=0.7)),
        Case("x = b", {"x": b3.copy(), "W": W3, "b": b3, "sigma": 0.3}),
        Case("sigma = 0.05, 10 pixels: log p(x) > 0", {"x": x10, "W": W10, "b": np.zeros(10), "sigma": 0.05}),
        Case("float32, 6 pixels, 3 latents", dict(zip("xWb", _model(25, 6, 3, 0.4, np.float32)), sigma=0.4)),
        Case("2 pixels, 3 latents: W W^T alone is invertible", dict(zip("xWb", _model(26, 2, 3, 0.5)), sigma=0.5)),
        Case("200 pixels, sigma = 0.05: det C = 1e-511", dict(zip("xWb", _model(27, 200, 2, 0.05)), sigma=0.05)),
        Case("float32, 60 pixels, sigma = 0.1: det C below float32's range",
             dict(zip("xWb", _model(28, 60, 3, 0.1, np.float32)), sigma=0.1)),
    ]


def _invertible_without_noise(extra_rank):
    """Cases where ``W W^T`` plus a matrix of rank ``extra_rank`` can be invertible: ``D <= L + extra_rank``."""
    return lambda case: case.inputs["W"].shape[0] <= case.inputs["W"].shape[1] + extra_rank


def _log_normal_of(r, C, det_factor=0.5, quad_factor=0.5):
    """``-(D/2) log 2 pi - det_factor log det C - quad_factor r^T C^{-1} r``, by NumPy."""
    return (-0.5 * len(r) * LOG_2PI - det_factor * np.linalg.slogdet(C)[1]
            - quad_factor * r @ np.linalg.solve(C, r))


def _evidence_covariance(W, sigma):
    return W @ W.T + sigma**2 * np.eye(len(W))


LOG_EVIDENCE_CLOSED_FORM = Exercise(
    name="log_evidence_closed_form",
    title="log p(x) of the linear-Gaussian model",
    notebook="02",
    outputs=("log_px",),
    make_cases=_evidence_cases,
    reference=lambda case: _log_evidence(*case.float64_inputs().values()),
    mistakes=(
        Mistake("sigma_for_variance", "your covariance has sigma where the noise variance sigma^2 belongs.",
                lambda x, W, b, sigma: _log_evidence(x, W, b, sigma, cov_noise=sigma)),
        Mistake("no_prior_spread",
                "your covariance leaves out W W^T: that is log p(x | z = 0), the likelihood at the prior's "
                "mean, not the evidence, which integrates over z.",
                lambda x, W, b, sigma: stats.multivariate_normal(b, sigma**2 * np.eye(len(b))).logpdf(x)),
        Mistake("no_half_on_log_det", "your log-determinant term is missing its factor 1/2.",
                lambda x, W, b, sigma: _log_evidence(x, W, b, sigma)
                - 0.5 * np.linalg.slogdet(W @ W.T + sigma**2 * np.eye(len(b)))[1]),
        Mistake("no_2pi", "your log-density leaves out the constant -(D/2) log(2 pi).",
                lambda x, W, b, sigma: _log_evidence(x, W, b, sigma) + 0.5 * len(b) * LOG_2PI),
        Mistake("covariance_not_inverted", "your quadratic form uses the covariance where its inverse belongs.",
                lambda x, W, b, sigma: _log_evidence(x, W, b, sigma)
                + 0.5 * np.subtract(*_quadratic_forms(x, W, b, sigma))),
        Mistake("no_noise",
                "your covariance is W W^T alone: the decoder's noise sigma^2 I is missing (where D > L, W W^T "
                "is singular and the density does not exist).",
                lambda x, W, b, sigma: _log_normal_of(x - b, W @ W.T), defined_on=_invertible_without_noise(0)),
        Mistake("noise_on_every_entry",
                "your covariance adds sigma^2 to every entry of W W^T, not only to its diagonal: a number added "
                "to a matrix is broadcast to all its entries.",
                lambda x, W, b, sigma: _log_normal_of(x - b, W @ W.T + sigma**2),
                defined_on=_invertible_without_noise(1)),
        Mistake("no_bias", "your residual leaves out b: the mean of x is b, not 0.",
                lambda x, W, b, sigma: _log_evidence(x, W, np.zeros_like(b), sigma)),
        Mistake("no_half_on_quadratic", "your quadratic term is missing its factor 1/2.",
                lambda x, W, b, sigma: _log_normal_of(x - b, _evidence_covariance(W, sigma), quad_factor=1.0)),
        Mistake("no_half_at_all",
                "your log-density is twice the right one: the factor 1/2 in front of the whole bracket is missing.",
                lambda x, W, b, sigma: 2 * _log_evidence(x, W, b, sigma)),
        Mistake("log_of_det",
                "you took the log of det C: det C, a product of D eigenvalues, underflows to 0 (or overflows) "
                "with many pixels or a small sigma, and its log is infinite.",
                lambda x, W, b, sigma: _log_evidence(x, W, b, sigma) + 0.5 * np.linalg.slogdet(
                    _evidence_covariance(W, sigma))[1] - 0.5 * np.log(np.linalg.det(_evidence_covariance(W, sigma))),
                defined_on=lambda case: not case.is_float32),
    ),
    task=(
        "**A. The evidence.** Write `log_evidence_closed_form(x, W, b, sigma)`: $\\log p(x)$ of the "
        "linear-Gaussian model of section 2, in closed form, with NumPy (`np.linalg.slogdet` and "
        "`np.linalg.solve` help), without `scipy.stats` or `vaelib.teaching.exact_models`."
    ),
    stub='''def log_evidence_closed_form(x, W, b, sigma):
    """log p(x) for z ~ N(0, I_L), x | z ~ N(W z + b, sigma^2 I_D), in nats.

    Parameters
    ----------
    x : ndarray, shape (D,)
    W : ndarray, shape (D, L)
    b : ndarray, shape (D,)
    sigma : float
        Standard deviation of the decoder's noise, shared by every pixel.

    Returns
    -------
    float: log p(x), the log of the marginal density of x (z integrated out).
    """
    raise NotImplementedError("write the body of log_evidence_closed_form")
''',
)
check_log_evidence_closed_form = LOG_EVIDENCE_CLOSED_FORM.check


# ---------------------------------------------------------------- the ELBO, graded by the identity
def _elbo_cases():
    x1, W1, b1 = np.array([1.2, 0.3]), np.array([[1.0], [0.5]]), np.zeros(2)
    m1, S1 = linear_gaussian_posterior(x1, W1, b1, 0.7)
    W10 = np.linspace(-1.0, 1.0, 10)[:, None]
    x10 = (W10 @ np.array([0.8]) + 0.05 * np.random.default_rng(34).normal(size=10))
    m10, S10 = linear_gaussian_posterior(x10, W10, np.zeros(10), 0.05)

    def case(label, model, mu, log_var, sigma, dtype=np.float64):
        x, W, b = model
        inputs = {"x": x, "mu": np.asarray(mu, dtype), "log_var": np.asarray(log_var, dtype), "W": W, "b": b,
                  "sigma": sigma}
        log_px = _log_evidence(*(np.asarray(v, float) for v in (x, W, b)), sigma)
        return Case(label, inputs, facts={"log_px": log_px})

    return [
        case("5 pixels, 2 latents, sigma = 0.5", _model(31, 5, 2, 0.5), [0.5, -1.0], [-1.0, 0.5], 0.5),
        case("q = p(z|x): the bound is tight (section 5)", (x1, W1, b1), m1, np.log(np.diag(S1)), 0.7),
        case("log_var = 0", _model(32, 4, 2, 0.3), [0.2, 0.4], [0.0, 0.0], 0.3),
        case("sigma = 1", _model(33, 4, 3, 1.0), [0.1, -0.3, 0.6], [-0.5, 0.2, -1.0], 1.0),
        case("sigma = 0.05, 10 pixels: ELBO > 0", (x10, W10, np.zeros(10)), m10 + 0.01,
             np.log(np.diag(S10)) + 0.1, 0.05),
        case("float32, 6 pixels, 3 latents", _model(35, 6, 3, 0.4, np.float32), [0.3, -0.2, 0.1],
             [-1.5, -0.5, 0.3], 0.4, np.float32),
        case("float32, 100 pixels, 40 latents, q near p(z|x)", _model(36, 100, 40, 0.3, np.float32),
             *_q_near_posterior(37, _model(36, 100, 40, 0.3), 0.3), 0.3, np.float32),
    ]


def _q_near_posterior(seed, model, sigma):
    """A diagonal q close to the exact posterior: its mean and log-variances, each moved a little."""
    rng = np.random.default_rng(seed)
    mean, cov = linear_gaussian_posterior(*model, sigma)
    return (mean + 0.1 * np.sqrt(np.diag(cov)) * rng.standard_normal(len(mean)),
            np.log(np.diag(cov)) + 0.2 * rng.standard_normal(len(mean)))


def _elbo_by_identity(x, mu, log_var, W, b, sigma):
    """``log p(x) - KL(q || p(z|x))``, every term computed without the ELBO's formula."""
    post_mean, post_cov = linear_gaussian_posterior(x, W, b, sigma)
    return _log_evidence(x, W, b, sigma) - gaussian_kl(mu, diag_covariance(log_var), post_mean, post_cov)


def _elbo_sanity(case, elbo):
    log_px = case.facts["log_px"]
    if elbo > log_px + 1e-6 * (1 + abs(log_px)):
        return (f"in case '{case.label}' your ELBO ({float(elbo):.6g}) is above log p(x) ({log_px:.6g}): "
                "no q can do that, since log p(x) - ELBO is a KL divergence.")
    return None


def _spread(log_var, W, sigma):
    """The expected log-likelihood's spread term, ``sum_j exp(l_j) |W_j|^2 / (2 sigma^2)``."""
    return np.sum(np.exp(log_var) * np.sum(W * W, axis=0)) / (2 * sigma**2)


def _kl_to_prior(mu, log_var):
    return kl_std_normal(mu[None], log_var[None])[0]


ELBO_CLOSED_FORM = Exercise(
    name="elbo_closed_form",
    title="the ELBO of a diagonal Gaussian q on the linear-Gaussian model",
    notebook="02",
    outputs=("elbo",),
    make_cases=_elbo_cases,
    reference=lambda case: _elbo_by_identity(*case.float64_inputs().values()),
    mistakes=(
        Mistake("no_spread",
                "your expected log-likelihood leaves out the spread of q: it is the log-likelihood at "
                "z = mu alone.",
                lambda x, mu, lv, W, b, s: linear_gaussian_elbo(x, mu, lv, W, b, s) + _spread(lv, W, s)),
        Mistake("plus_kl", "your ELBO adds the KL to the prior where the ELBO subtracts it.",
                lambda x, mu, lv, W, b, s: linear_gaussian_elbo(x, mu, lv, W, b, s) + 2 * _kl_to_prior(mu, lv)),
        Mistake("notes_one_over_two_sigma",
                "your Gaussian log-likelihood has 1/(2 sigma) where 1/(2 sigma^2) belongs (the notes' slip).",
                lambda x, mu, lv, W, b, s: linear_gaussian_elbo(x, mu, lv, W, b, s)
                + (np.sum((x - mu @ W.T - b) ** 2) / (2 * s**2) + _spread(lv, W, s)) * (1 - s)),
        Mistake("exp_log_var_as_std", "your ELBO uses exp(log_var) as the standard deviation of q.",
                lambda x, mu, lv, W, b, s: linear_gaussian_elbo(x, mu, 2 * lv, W, b, s)),
        Mistake("no_normaliser",
                "your Gaussian log-likelihood leaves out its normalising constant -(D/2) log(2 pi sigma^2).",
                lambda x, mu, lv, W, b, s: linear_gaussian_elbo(x, mu, lv, W, b, s)
                + 0.5 * len(b) * (LOG_2PI + 2 * np.log(s))),
        Mistake("no_bias", "your expected log-likelihood leaves out b: the decoder's mean is W z + b.",
                lambda x, mu, lv, W, b, s: linear_gaussian_elbo(x, mu, lv, W, np.zeros_like(b), s)),
        Mistake("spread_without_W",
                "your spread term sums the variances of q alone: each variance enters through W, weighted by the "
                "squared norm of its column of W.",
                lambda x, mu, lv, W, b, s: linear_gaussian_elbo(x, mu, lv, W, b, s) + _spread(lv, W, s)
                - np.sum(np.exp(lv)) / (2 * s**2)),
        Mistake("no_kl", "your ELBO leaves out the KL to the prior: it is the expected log-likelihood alone.",
                lambda x, mu, lv, W, b, s: linear_gaussian_elbo(x, mu, lv, W, b, s) + _kl_to_prior(mu, lv)),
    ),
    task=(
        "**B. The ELBO, checked by the identity.** Write `elbo_closed_form(x, mu, log_var, W, b, sigma)`: "
        "the ELBO of $q = \\mathcal N(\\mu, \\operatorname{diag} e^{\\ell})$ in closed form (section 3), without "
        "calling `vaelib.teaching.exact_models`. The check compares it with $\\log p(x) - "
        "\\mathrm{KL}(q\\,\\|\\,p(z\\mid x))$, computed from the exact posterior: if the identity holds, they agree."
    ),
    stub='''def elbo_closed_form(x, mu, log_var, W, b, sigma):
    """ELBO(q) = E_q[log p(x|z)] - KL(q || p(z)), in nats.

    q = N(mu, diag(exp(log_var))).

    The model: z ~ N(0, I_L), x | z ~ N(W z + b, sigma^2 I_D).

    Parameters
    ----------
    x : ndarray, shape (D,)
    mu, log_var : ndarray, shape (L,)
        Mean and log-variance of q; std = exp(0.5 * log_var).
    W : ndarray, shape (D, L)
    b : ndarray, shape (D,)
    sigma : float

    Returns
    -------
    float: the ELBO, in closed form (no sampling).
    """
    raise NotImplementedError("write the body of elbo_closed_form")
''',
    sanity=_elbo_sanity,
)
check_elbo_closed_form = ELBO_CLOSED_FORM.check
