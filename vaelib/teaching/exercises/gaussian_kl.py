"""Exercises for notebook 05, the Gaussian KL: the closed form, and its gradients.

References: :func:`vaelib.core.gaussian.kl_std_normal` and :func:`~vaelib.core.gaussian.kl_std_normal_backward`.
The catalogued mistakes are written as changes of those functions' inputs or outputs.
"""

import numpy as np

from vaelib.core.gaussian import kl_std_normal, kl_std_normal_backward, kl_std_normal_forward

from .grading import Case, Exercise, Mistake


def _kl_cases():
    rng = np.random.default_rng(5)
    mu, log_var = rng.normal(size=(2, 4, 3))
    return [
        Case("random, 4 x 3", {"mu": mu, "log_var": 1.5 * log_var}),
        Case("log_var = 0", {"mu": rng.normal(size=(3, 2)), "log_var": np.zeros((3, 2))}),
        Case("q = p in row 0",
             {"mu": np.array([[0.0, 0.0], [0.5, -1.0]]), "log_var": np.array([[0.0, 0.0], [0.3, -0.2]])}),
        Case("a batch of one", {"mu": rng.normal(size=(1, 5)), "log_var": rng.normal(size=(1, 5))}),
        Case("large |log_var|",
             {"mu": rng.normal(size=(2, 3)), "log_var": np.array([[-8.0, 6.0, -3.0], [4.0, -6.0, 0.5]])}),
        Case("float32",
             {"mu": rng.normal(size=(6, 4)).astype(np.float32),
              "log_var": rng.normal(size=(6, 4)).astype(np.float32)}),
        Case("float32, 64 latents, log_var near -4",
             {"mu": rng.normal(size=(3, 64)).astype(np.float32),
              "log_var": (-4 + 0.5 * rng.standard_normal((3, 64))).astype(np.float32)}),
    ]


def _reverse_kl(mu, log_var):
    """KL(p || q) of each row, p = N(0, I): the divergence taken the other way round."""
    return 0.5 * np.sum((1 + mu**2) * np.exp(-log_var) - 1 + log_var, axis=-1)


def _kl_from_a_product(mu, log_var):
    """The closed form with sum(log_var) computed as the log of the product of the variances."""
    log_det = np.log(np.prod(np.exp(log_var), axis=-1))
    return kl_std_normal(mu, log_var) + 0.5 * (np.sum(log_var, axis=-1) - log_det)


def _kl_sanity(case, kl):
    if np.any(kl < -1e-6):
        return f"in case '{case.label}' your KL is negative ({np.min(kl):.4g} nats): a KL divergence never is."
    return None


KL_CLOSED_FORM = Exercise(
    name="kl_closed_form",
    title="the closed-form KL(q || p) per row",
    notebook="05",
    outputs=("kl",),
    make_cases=_kl_cases,
    reference=lambda case: kl_std_normal(**case.float64_inputs()),
    mistakes=(
        Mistake("exp_log_var_as_std",
                "your KL equals the one you get with exp(log_var) as the standard deviation "
                "(log_var is the log of the variance).",
                lambda mu, log_var: kl_std_normal(mu, 2 * log_var)),
        Mistake("std_for_variance",
                "your KL equals the one you get with the standard deviation where the variance belongs.",
                lambda mu, log_var: kl_std_normal(mu, 0.5 * log_var)),
        Mistake("missing_half", "your KL is twice the closed form: the factor 1/2 is missing.",
                lambda mu, log_var: 2 * kl_std_normal(mu, log_var)),
        Mistake("negative", "you returned -KL (the term as it appears in the ELBO), not the KL.",
                lambda mu, log_var: -kl_std_normal(mu, log_var)),
        Mistake("mean_over_latents",
                "you averaged over the latent dimensions; the KL of a diagonal Gaussian is their sum.",
                lambda mu, log_var: kl_std_normal(mu, log_var) / mu.shape[-1]),
        Mistake("summed_over_batch", "you also summed over the batch: one value per row is expected.",
                lambda mu, log_var: np.sum(kl_std_normal(mu, log_var))),
        Mistake("missing_minus_one",
                "the -1 inside the bracket is missing: your KL is L/2 too large, and not 0 when q = p.",
                lambda mu, log_var: kl_std_normal(mu, log_var) + 0.5 * mu.shape[-1]),
        Mistake("reverse_kl",
                "yours is KL(p || q), the divergence from the prior to q: the KL is not symmetric, and the one "
                "in the ELBO is KL(q || p).",
                _reverse_kl),
        Mistake("summed_over_the_batch_axis",
                "you summed over the batch axis (axis 0), not over the latent dimensions: one value per row is "
                "expected.",
                lambda mu, log_var: np.sum(kl_std_normal(mu.T[..., None], log_var.T[..., None]), axis=-1)),
        Mistake("log_var_sign", "the log_var term enters your KL with the wrong sign.",
                lambda mu, log_var: kl_std_normal(mu, log_var) + np.sum(log_var, axis=-1)),
        Mistake("log_of_a_product",
                "you took the log of the product of the variances: over many latents the product underflows to "
                "0 (in float32 below about 1e-45) or overflows, and its log is infinite. A sum of logs does not.",
                _kl_from_a_product),
    ),
    task=(
        "**A. The closed-form KL.** Write `kl_closed_form(mu, log_var)`: the KL divergence from "
        "$q = \\mathcal N(\\mu, \\operatorname{diag} e^{\\ell})$ to $p = \\mathcal N(0, I)$ for every row, "
        "in nats (section 1), without calling `kl_std_normal`."
    ),
    stub='''def kl_closed_form(mu, log_var):
    """KL( N(mu, diag(exp(log_var))) || N(0, I) ) for every row, in nats.

    Parameters
    ----------
    mu, log_var : ndarray, shape (batch, n_latent)
        Mean and log-variance of q; std = exp(0.5 * log_var).

    Returns
    -------
    ndarray, shape (batch,): the KL of each row (a sum over latent dimensions).
    """
    raise NotImplementedError("write the body of kl_closed_form")
''',
    sanity=_kl_sanity,
)
check_kl_closed_form = KL_CLOSED_FORM.check


def _kl_grads(mu, log_var):
    """``(dmu, dlog_var)`` of the sum over rows of the closed-form KL, from vaelib.core."""
    _, cache = kl_std_normal_forward(mu, log_var)
    return kl_std_normal_backward(np.ones(len(mu), dtype=mu.dtype), cache)


def _with_dlog_var(change):
    """A mistake in ``dlog_var`` alone: ``(dmu, change(mu, log_var))``."""
    return lambda mu, log_var: (_kl_grads(mu, log_var)[0], change(mu, log_var))


KL_GRADIENTS = Exercise(
    name="kl_gradients",
    title="the gradients of the closed-form KL with respect to mu and log_var",
    notebook="05",
    outputs=("dmu", "dlog_var"),
    make_cases=_kl_cases,
    reference=lambda case: _kl_grads(**case.float64_inputs()),
    mistakes=(
        Mistake("dlog_var_missing_half", "your dlog_var is twice the right one: the factor 1/2 is missing.",
                _with_dlog_var(lambda mu, log_var: 2 * _kl_grads(mu, log_var)[1]), affects=("dlog_var",)),
        Mistake("derivative_wrt_std",
                "your dlog_var is the derivative with respect to the standard deviation, not log_var "
                "(the chain-rule factor d std / d log_var is missing).",
                _with_dlog_var(lambda mu, log_var: _kl_grads(mu, log_var)[1] * 2 / np.exp(0.5 * log_var)),
                affects=("dlog_var",)),
        Mistake("gradient_of_minus_kl", "your gradients have the wrong sign: they are those of -KL.",
                lambda mu, log_var: tuple(-g for g in _kl_grads(mu, log_var))),
        Mistake("minus_log_var_not_differentiated",
                "your dlog_var misses the derivative of the -log_var term in the KL.",
                _with_dlog_var(lambda mu, log_var: _kl_grads(mu, log_var)[1] + 0.5), affects=("dlog_var",)),
        Mistake("dmu_twice", "your dmu is twice the right one: the 1/2 in front of mu^2 was dropped.",
                lambda mu, log_var: (2 * _kl_grads(mu, log_var)[0], _kl_grads(mu, log_var)[1]), affects=("dmu",)),
        Mistake("exp_log_var_as_std",
                "your dlog_var is the gradient of the KL computed with exp(log_var) as the standard deviation.",
                _with_dlog_var(lambda mu, log_var: 2 * _kl_grads(mu, 2 * log_var)[1]), affects=("dlog_var",)),
        Mistake("derivative_wrt_variance",
                "your dlog_var is the derivative with respect to the variance, not log_var (the chain-rule "
                "factor d variance / d log_var is missing).",
                _with_dlog_var(lambda mu, log_var: _kl_grads(mu, log_var)[1] / np.exp(log_var)),
                affects=("dlog_var",)),
        Mistake("gradients_of_reverse_kl",
                "your gradients are those of KL(p || q), the divergence taken the other way round.",
                lambda mu, log_var: (mu * np.exp(-log_var), 0.5 * (1 - (1 + mu**2) * np.exp(-log_var)))),
        Mistake("gradients_of_the_batch_mean",
                "your gradients are divided by the batch size: they are those of the batch mean of the KL, "
                "where the sum over rows is asked for.",
                lambda mu, log_var: tuple(g / len(mu) for g in _kl_grads(mu, log_var))),
    ),
    task=(
        "**B. Its gradients.** Write `kl_gradients(mu, log_var)`: the gradients of the sum over rows of "
        "the KL with respect to `mu` and to `log_var` (section 3), without calling `kl_std_normal_backward`."
    ),
    stub='''def kl_gradients(mu, log_var):
    """Gradients of sum_rows KL( N(mu, diag(exp(log_var))) || N(0, I) ).

    Parameters
    ----------
    mu, log_var : ndarray, shape (batch, n_latent)

    Returns
    -------
    dmu, dlog_var : ndarray, shape (batch, n_latent)
        d KL / d mu and d KL / d log_var, entry by entry.
    """
    raise NotImplementedError("write the body of kl_gradients")
''',
)
check_kl_gradients = KL_GRADIENTS.check
