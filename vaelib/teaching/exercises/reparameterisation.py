"""Exercises for notebook 04, reparameterisation: the sample, and its log-density through the Jacobian.

References: :func:`vaelib.core.reparam.reparam_forward` (the sample) and
:func:`vaelib.core.gaussian.log_normal` evaluated at that sample (the log-density, computed without
the change of variables).
"""

import numpy as np

from vaelib.core.gaussian import LOG_2PI, log_normal, log_std_normal
from vaelib.core.reparam import reparam_forward

from .grading import Case, Exercise, Mistake


def _cases(seed, many_latents=False):
    rng = np.random.default_rng(seed)

    def inputs(batch, n_latent, log_var=None, dtype=np.float64):
        mu = rng.normal(size=(batch, n_latent))
        lv = rng.normal(size=(batch, n_latent)) if log_var is None else np.full((batch, n_latent), log_var)
        eps = rng.standard_normal((batch, n_latent))
        return {k: v.astype(dtype) for k, v in {"mu": mu, "log_var": lv, "eps": eps}.items()}

    return [Case("random, 4 x 3", inputs(4, 3)),
            Case("log_var = 0", inputs(3, 2, log_var=0.0)),
            Case("a batch of one", inputs(1, 4)),
            Case("small variances (log_var = -12)", inputs(3, 2, log_var=-12.0)),
            Case("large variances (log_var = 5)", inputs(2, 3, log_var=5.0)),
            Case("float32, 6 x 4", inputs(6, 4, dtype=np.float32)),
            Case("float32, 100 latents, log_var = -8", inputs(2, 100, log_var=-8.0, dtype=np.float32))] + (
        [Case("1000 latents, log_var = -8", inputs(2, 1000, log_var=-8.0))] if many_latents else [])


# ---------------------------------------------------------------- the sample
REPARAM_SAMPLE = Exercise(
    name="reparam_sample",
    title="the reparameterised sample z",
    notebook="04",
    outputs=("z",),
    make_cases=lambda: _cases(61),
    reference=lambda case: reparam_forward(**case.float64_inputs())[0],
    mistakes=(
        Mistake("exp_log_var_as_std",
                "you scaled the noise by exp(log_var), the variance, not the standard deviation (the notes' "
                "mu + Sigma e): the variance of your z is exp(log_var)^2.",
                lambda mu, log_var, eps: reparam_forward(mu, 2 * log_var, eps)[0]),
        Mistake("log_var_as_std", "you scaled the noise by log_var itself.",
                lambda mu, log_var, eps: mu + log_var * eps),
        Mistake("divided_by_std", "you divided the noise by the standard deviation instead of multiplying.",
                lambda mu, log_var, eps: reparam_forward(mu, -log_var, eps)[0]),
        Mistake("no_mean", "your z leaves out the mean mu.",
                lambda mu, log_var, eps: reparam_forward(np.zeros_like(mu), log_var, eps)[0]),
        Mistake("noise_not_scaled", "your z adds the noise eps without scaling it by the standard deviation.",
                lambda mu, log_var, eps: reparam_forward(mu, np.zeros_like(log_var), eps)[0]),
    ),
    task=(
        "**A. The sample.** Write `reparam_sample(mu, log_var, eps)`: a sample $z \\sim q = "
        "\\mathcal N(\\mu, \\operatorname{diag} e^{\\ell})$ as a function of the standard normal noise "
        "$\\varepsilon$ (section 1), without calling `reparam_forward`."
    ),
    stub='''def reparam_sample(mu, log_var, eps):
    """A sample z ~ N(mu, diag(exp(log_var))) made from noise eps ~ N(0, I).

    Parameters
    ----------
    mu, log_var : ndarray, shape (batch, n_latent)
        Mean and log-variance of q.
    eps : ndarray, shape (batch, n_latent)
        Standard normal noise.

    Returns
    -------
    z : ndarray, shape (batch, n_latent)
    """
    raise NotImplementedError("write the body of reparam_sample")
''',
)
check_reparam_sample = REPARAM_SAMPLE.check


# ---------------------------------------------------------------- its log-density through the Jacobian
def _log_q_reference_of(mu, log_var, eps):
    """q's log-density evaluated at the sample directly, with no change of variables."""
    z, _ = reparam_forward(mu, log_var, eps)
    return log_normal(z, mu, log_var)


def _log_q_reference(case):
    return _log_q_reference_of(**case.float64_inputs())


LOG_Q_OF_SAMPLE = Exercise(
    name="log_q_of_sample",
    title="log q(z) at the sample z, through the change of variables",
    notebook="04",
    outputs=("log_q",),
    make_cases=lambda: _cases(62, many_latents=True),   # products over 1000 latents leave even float64's range
    reference=_log_q_reference,
    mistakes=(
        Mistake("inverted_jacobian",
                "you multiplied by the Jacobian where the change of variables divides by it (the notes' "
                "du = de / Sigma): such a density integrates to sigma^2 per dimension, not 1.",
                lambda mu, log_var, eps: log_std_normal(eps) + 0.5 * np.sum(log_var, axis=-1)),
        Mistake("exp_log_var_jacobian",
                "your Jacobian takes exp(log_var) as the standard deviation; this is also the notes' final "
                "formula, with the variance Sigma in the normaliser 1/(Sigma sqrt(2 pi)).",
                lambda mu, log_var, eps: log_std_normal(eps) - np.sum(log_var, axis=-1)),
        Mistake("no_jacobian", "you returned log p(eps): the Jacobian term is missing.",
                lambda mu, log_var, eps: log_std_normal(eps)),
        Mistake("density_at_eps", "you evaluated q's density at the noise eps instead of at the sample z.",
                lambda mu, log_var, eps: log_normal(eps, mu, log_var)),
        Mistake("prior_at_z", "you evaluated the prior N(0, I) at z, not q.",
                lambda mu, log_var, eps: log_std_normal(reparam_forward(mu, log_var, eps)[0])),
        Mistake("not_summed", "you returned one value per latent dimension; the log-density of z sums them.",
                lambda mu, log_var, eps: log_normal(reparam_forward(mu, log_var, eps)[0][..., None],
                                                    mu[..., None], log_var[..., None])),
        Mistake("no_2pi", "your log-density leaves out the constant -(L/2) log(2 pi) of log p(eps).",
                lambda mu, log_var, eps: _log_q_reference_of(mu, log_var, eps) + 0.5 * mu.shape[-1] * LOG_2PI),
        Mistake("log_of_a_product",
                "you took the log of a product over the latent dimensions (of the densities, or of the standard "
                "deviations in the Jacobian's determinant): over many latents it underflows to 0 (below about "
                "1e-45 in float32, 1e-323 in float64) or overflows, and its log is infinite. A sum of logs does "
                "not.",
                lambda mu, log_var, eps: log_std_normal(eps) - np.log(np.prod(np.exp(0.5 * log_var), axis=-1))),
    ),
    nonfinite_hints={"log_q": "Look for a product over many latent dimensions (of densities, or of standard "
                              "deviations): it underflows to 0 or overflows to inf, even in float64, and its log is "
                              "infinite (add the logs instead); or for exp of a large number, or 0/0."},
    task=(
        "**B. Its log-density, through the Jacobian.** Write `log_q_of_sample(mu, log_var, eps)`: "
        "$\\log q(z)$ at $z = \\mu + \\sigma \\odot \\varepsilon$, from $\\log p(\\varepsilon)$ and the Jacobian "
        "of $\\varepsilon \\mapsto z$ (section 2), without evaluating $q$'s density at $z$ directly."
    ),
    stub='''def log_q_of_sample(mu, log_var, eps):
    """log q(z) at z = mu + exp(0.5 * log_var) * eps, by a change of variables.

    Parameters
    ----------
    mu, log_var : ndarray, shape (batch, n_latent)
    eps : ndarray, shape (batch, n_latent)
        Standard normal noise; p(eps) = N(0, I).

    Returns
    -------
    ndarray, shape (batch,): log q(z) of each row, in nats.
    """
    raise NotImplementedError("write the body of log_q_of_sample")
''',
)
check_log_q_of_sample = LOG_Q_OF_SAMPLE.check
