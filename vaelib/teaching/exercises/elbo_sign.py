"""Exercises for notebook 01, the sign of the ELBO: the loss from the ELBO's terms, and a Monte Carlo ELBO.

References: :func:`vaelib.core.vae.negative_elbo_forward` on small models (the loss), and
:func:`vaelib.core.gaussian.log_normal` / :func:`~vaelib.core.gaussian.log_std_normal` (the ELBO).
"""

import numpy as np

from vaelib.core.gaussian import kl_std_normal, log_normal, log_std_normal
from vaelib.core.vae import VAEConfig, init_params, negative_elbo_forward

from .grading import Case, Exercise, Mistake


# ---------------------------------------------------------------- the loss from the terms
def _loss_cases():
    """Terms of a small Bernoulli VAE on random binary images; the loss it reports is the reference."""
    cases = []
    for label, beta, batch, dtype, seed in [("beta = 1", 1.0, 6, np.float64, 0),
                                            ("beta = 4", 4.0, 5, np.float64, 1),
                                            ("beta = 0.5", 0.5, 4, np.float64, 2),
                                            ("beta = 0 (an autoencoder)", 0.0, 4, np.float64, 3),
                                            ("a batch of one, beta = 2", 2.0, 1, np.float64, 4),
                                            ("float32, beta = 3", 3.0, 8, np.float32, 5)]:
        rng = np.random.default_rng(100 + seed)
        config = VAEConfig(n_pixels=16, hidden=(8,), n_latent=2, activation="tanh", beta=beta)
        params = init_params(config, rng, dtype)
        x = (rng.random((batch, 16)) < 0.4).astype(dtype)
        eps = rng.standard_normal((batch, 2)).astype(dtype)
        loss, terms, _ = negative_elbo_forward(params, x, eps, config)
        cases.append(Case(label, {"log_px_given_z": -terms["reconstruction"], "kl": terms["kl"], "beta": beta},
                          facts={"loss": loss}))
    cases.append(_gaussian_decoder_case())
    return cases


def _gaussian_decoder_case():
    """A Gaussian decoder (sigma = 0.1) that reconstructs closely: a density can exceed 1, so log p(x|z) > 0 for
    some images and the loss is below 0 (notebook 03, section 5)."""
    rng = np.random.default_rng(106)
    config = VAEConfig(n_pixels=16, hidden=(8,), n_latent=2, activation="tanh", beta=2.0, likelihood="gaussian",
                       sigma=0.1)
    params = init_params(config, rng, np.float64)
    target = rng.random(16)
    params["dec.W1"], params["dec.b1"] = 0.01 * params["dec.W1"], target      # decoder mean close to target
    x = target + np.array([0.01, 0.03, 0.1, 0.2])[:, None] * rng.standard_normal((4, 16))
    eps = rng.standard_normal((4, 2))
    loss, terms, _ = negative_elbo_forward(params, x, eps, config)
    return Case("a Gaussian decoder, beta = 2: log p(x|z) > 0, a loss below 0",
                {"log_px_given_z": -terms["reconstruction"], "kl": terms["kl"], "beta": 2.0}, facts={"loss": loss})


def _loss_mistake(per_image):
    """A mistake in the per-image terms: ``mean_batch(per_image(log_px_given_z, kl, beta))``."""
    return lambda log_px_given_z, kl, beta: np.mean(per_image(log_px_given_z, kl, beta))


LOSS_FROM_ELBO_TERMS = Exercise(
    name="loss_from_elbo_terms",
    title="the loss (with the KL weight beta) from the ELBO's two terms",
    notebook="01",
    outputs=("loss",),
    make_cases=_loss_cases,
    reference=lambda case: case.facts["loss"],
    mistakes=(
        Mistake("returned_elbo",
                "you returned the ELBO-side objective (to be maximised), not the loss (to be minimised): "
                "the two differ by a factor -1.",
                _loss_mistake(lambda lp, kl, beta: lp - beta * kl)),
        Mistake("minus_kl",
                "the KL enters your loss with a minus sign: that is the notes' substitution "
                "E_q[log p(z)/q(z|x)] = +KL, and such a loss rewards a large KL.",
                _loss_mistake(lambda lp, kl, beta: -lp - beta * kl)),
        Mistake("plus_log_likelihood",
                "the log-likelihood enters your loss with a plus sign: the loss minimises the reconstruction "
                "term, which is the negative log-likelihood (>= 0 for binary pixels).",
                _loss_mistake(lambda lp, kl, beta: lp + beta * kl)),
        Mistake("absolute_log_likelihood",
                "your reconstruction term is |log p(x|z)|: that equals -log p(x|z) only where log p(x|z) <= 0, as "
                "for binary pixels. A Gaussian decoder's density can exceed 1, and then the sign matters.",
                _loss_mistake(lambda lp, kl, beta: np.abs(lp) + beta * kl)),
        Mistake("beta_on_reconstruction", "your beta weights the reconstruction term instead of the KL.",
                _loss_mistake(lambda lp, kl, beta: -beta * lp + kl)),
        Mistake("beta_ignored", "your loss does not change with beta: the KL weight is missing.",
                _loss_mistake(lambda lp, kl, beta: -lp + kl)),
        Mistake("summed_over_batch", "you summed over the batch; the loss is the batch mean.",
                lambda lp, kl, beta: -np.mean(lp - beta * kl) * len(lp)),
        Mistake("per_image", "you returned one loss per image; the loss is one number, the batch mean.",
                lambda lp, kl, beta: -(lp - beta * kl)),
    ),
    task=(
        "**A. The loss from the ELBO's terms.** Write `loss_from_elbo_terms(log_px_given_z, kl, beta)`: the "
        "number that gradient *descent* minimises, with KL weight $\\beta$, from the two per-image terms of the "
        "ELBO (section 1), in nats per image."
    ),
    stub='''def loss_from_elbo_terms(log_px_given_z, kl, beta):
    """The loss that training minimises, with KL weight beta, nats per image.

    Parameters
    ----------
    log_px_given_z : ndarray, shape (batch,)
        One-sample log-likelihood log p(x|z) of each image (<= 0 for binary x).
    kl : ndarray, shape (batch,)
        KL(q(z|x) || p(z)) of each image (>= 0).
    beta : float
        Weight of the KL term (beta = 1: the loss is minus the ELBO).

    Returns
    -------
    float: the loss, averaged over the batch.
    """
    raise NotImplementedError("write the body of loss_from_elbo_terms")
''',
)
check_loss_from_elbo_terms = LOSS_FROM_ELBO_TERMS.check


# ---------------------------------------------------------------- the Monte Carlo ELBO
def _elbo_cases():
    def case(label, n_samples, batch, n_latent, seed, log_var_scale=1.0, dtype=np.float64, mu_shift=0.0,
             log_var_shift=0.0):
        rng = np.random.default_rng(seed)
        mu = rng.normal(size=(batch, n_latent)) + mu_shift
        log_var = log_var_scale * rng.normal(size=(batch, n_latent)) + log_var_shift
        z = mu + np.exp(0.5 * log_var) * rng.standard_normal((n_samples, batch, n_latent))
        log_px_given_z = -10.0 - 5.0 * rng.random((n_samples, batch))
        inputs = {"log_px_given_z": log_px_given_z, "z": z, "mu": mu, "log_var": log_var}
        return Case(label, {k: v.astype(dtype) for k, v in inputs.items()})

    far_out = np.array([[40.0, 0.0], [0.0, 0.0], [-3.0, 1.0]])
    return [case("random, 20 samples x 3 images x 2 latents", 20, 3, 2, 11),
            case("one sample", 1, 4, 3, 12),
            case("a batch of one, 50 samples", 50, 1, 2, 13),
            case("log_var = 0", 10, 3, 2, 14, log_var_scale=0.0),
            case("float32, 30 samples x 5 images", 30, 5, 4, 15, dtype=np.float32),
            case("q far out in the prior's tail (mu = 40 in image 0)", 10, 3, 2, 16, mu_shift=far_out),
            case("float32, 100 latents, log_var near -8", 5, 2, 100, 17, log_var_scale=0.5, dtype=np.float32,
                 log_var_shift=-8.0)]


def _elbo_terms(log_px_given_z, z, mu, log_var, log_var_of_q=None):
    """The three log-densities per sample, shape (S, B) each, with q's log-variance replaceable."""
    log_var_of_q = log_var if log_var_of_q is None else log_var_of_q
    return log_px_given_z, log_std_normal(z), log_normal(z, mu[None], log_var_of_q[None])


def _elbo(combine, log_var_of_q=lambda log_var: log_var, reduce=lambda values: np.mean(values, axis=0)):
    """``reduce(combine(log p(x|z), log p(z), log q(z|x)))``: the ELBO and its mistakes."""
    return lambda lp, z, mu, log_var: reduce(combine(*_elbo_terms(lp, z, mu, log_var, log_var_of_q(log_var))))


_RIGHT = lambda lpx, lpz, lqz: lpx + lpz - lqz  # noqa: E731, the definition of the ELBO's integrand

MONTE_CARLO_ELBO = Exercise(
    name="monte_carlo_elbo",
    title="the Monte Carlo ELBO of each image",
    notebook="01",
    outputs=("elbo",),
    make_cases=_elbo_cases,
    reference=lambda case: _elbo(_RIGHT)(*case.float64_inputs().values()),
    mistakes=(
        Mistake("plus_kl",
                "your estimate adds the KL where the ELBO subtracts it: E_q[log p(z) - log q(z|x)] is -KL.",
                _elbo(lambda lpx, lpz, lqz: lpx - lpz + lqz)),
        Mistake("returned_loss", "you returned minus the ELBO (the loss), not the ELBO.",
                _elbo(lambda lpx, lpz, lqz: -(lpx + lpz - lqz))),
        Mistake("sum_over_samples", "you summed over the samples; a Monte Carlo estimate takes their mean.",
                _elbo(_RIGHT, reduce=lambda values: np.sum(values, axis=0))),
        Mistake("exp_log_var_as_std", "your log q(z|x) uses exp(log_var) as the standard deviation.",
                _elbo(_RIGHT, log_var_of_q=lambda log_var: 2 * log_var)),
        Mistake("no_prior", "your estimate leaves out log p(z), the prior's log-density at the samples.",
                _elbo(lambda lpx, lpz, lqz: lpx - lqz)),
        Mistake("mean_over_images", "you averaged over the images (axis 1), not over the samples (axis 0).",
                _elbo(_RIGHT, reduce=lambda values: np.mean(values, axis=1))),
        Mistake("closed_form_kl",
                "you subtracted the closed-form KL from the mean log-likelihood: a valid estimate of the ELBO, "
                "but not the Monte Carlo estimate from the samples that is asked for (the two differ for every "
                "finite number of samples).",
                lambda lp, z, mu, log_var: np.mean(lp, axis=0) - kl_std_normal(mu, log_var)),
    ),
    task=(
        "**B. A Monte Carlo ELBO.** Write `monte_carlo_elbo(log_px_given_z, z, mu, log_var)`: the estimate of "
        "each image's ELBO from $S$ samples $z^{(s)} \\sim q(z|x)$, from its definition, Kingma & Welling's "
        "equation (2) (section 2). You may use `scipy.stats.norm` or `vaelib.core.gaussian` for the densities."
    ),
    stub='''def monte_carlo_elbo(log_px_given_z, z, mu, log_var):
    """Monte Carlo estimate of the ELBO of each image, in nats.

    Parameters
    ----------
    log_px_given_z : ndarray, shape (n_samples, batch)
        log p(x|z) at each sample z of each image.
    z : ndarray, shape (n_samples, batch, n_latent)
        The samples, z ~ q(z|x) = N(mu, diag(exp(log_var))).
    mu, log_var : ndarray, shape (batch, n_latent)
        The encoder's output for each image; the prior is p(z) = N(0, I).

    Returns
    -------
    ndarray, shape (batch,): the estimate of each image's ELBO.
    """
    raise NotImplementedError("write the body of monte_carlo_elbo")
''',
)
check_monte_carlo_elbo = MONTE_CARLO_ELBO.check
