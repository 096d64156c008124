"""Exercise for notebook 08, the trade-off explorer: the decoder sigma that a KL weight beta corresponds to.

A Gaussian VAE with fixed ``sigma`` and KL weight ``beta`` is trained like one with another ``sigma'``
and KL weight 1. The reference finds ``sigma'`` from :func:`vaelib.core.vae.loss_and_grads` alone, with
no formula for it: on a small model, the loss's gradient is ``a * R + b * K``, with ``R`` the gradient of
the reconstruction term at ``sigma = 1`` (beta = 0) and ``K`` that of the KL; least squares gives
``a`` and ``b``, and a model with KL weight 1 has ``a / b = 1 / sigma'^2``.
"""

from dataclasses import replace

import numpy as np

from vaelib.core.vae import VAEConfig, init_params, loss_and_grads

from .grading import Case, Exercise, Mistake, Tolerance


def _sigma_cases():
    rows = [("beta = 4, sigma = 1", 4.0, 1.0, 16, "sum"),
            ("beta = 0.01 (near an autoencoder)", 0.01, 1.0, 16, "sum"),
            ("beta = 2, sigma = 0.5", 2.0, 0.5, 16, "sum"),
            ("beta = 1, sigma = 0.2: nothing to change", 1.0, 0.2, 16, "sum"),
            ("MSE + KL: mean over 784 pixels, sigma^2 = 1/2", 1.0, float(np.sqrt(0.5)), 784, "mean"),
            ("mean over 12 pixels, beta = 0.25, sigma = 0.3", 0.25, 0.3, 12, "mean")]
    return [Case(label, {"beta": beta, "sigma": sigma, "n_pixels": n, "pixel_reduction": reduction})
            for label, beta, sigma, n, reduction in rows]


def _flat(grads):
    return np.concatenate([grads[k].ravel() for k in sorted(grads)])


def _equivalent_sigma(beta, sigma, n_pixels, pixel_reduction):
    """The sigma' of the module docstring, by least squares on the gradients of a small model."""
    base = VAEConfig(n_pixels=n_pixels, hidden=(3,), n_latent=2, activation="tanh", likelihood="gaussian")
    rng = np.random.default_rng(91)
    params = init_params(base, rng)
    x, eps = rng.random((3, n_pixels)), rng.standard_normal((3, 2))
    grad = lambda config: _flat(loss_and_grads(params, x, eps, config)[1])  # noqa: E731
    g = grad(replace(base, sigma=sigma, beta=beta, pixel_reduction=pixel_reduction))
    R = grad(replace(base, sigma=1.0, beta=0.0))
    K = grad(replace(base, sigma=1.0, beta=1.0)) - R
    (a, b), *_ = np.linalg.lstsq(np.column_stack([R, K]), g, rcond=None)
    return np.sqrt(b / a)


def _root_of_beta_times(beta, n_pixels, pixel_reduction):
    return np.sqrt(beta * (n_pixels if pixel_reduction == "mean" else 1))


SIGMA_FOR_BETA = Exercise(
    name="sigma_for_beta",
    title="the decoder sigma that trains like the KL weight beta",
    notebook="08",
    outputs=("sigma",),
    make_cases=_sigma_cases,
    reference=lambda case: _equivalent_sigma(**case.inputs),
    mistakes=(
        Mistake("variance", "you returned the variance sigma'^2, not the standard deviation sigma'.",
                lambda beta, sigma, n, red: _equivalent_sigma(beta, sigma, n, red) ** 2),
        Mistake("no_square_root", "your sigma' is proportional to beta itself, as if the weight were sigma rather than "
                "sigma^2 (the notes' 1/(2 sigma) would give that).",
                lambda beta, sigma, n, red: sigma * _root_of_beta_times(beta, n, red) ** 2),
        Mistake("inverted", "your sigma falls as beta grows.",
                lambda beta, sigma, n, red: sigma / _root_of_beta_times(beta, n, red)),
        Mistake("sigma_ignored", "your answer does not depend on the sigma the model started with.",
                lambda beta, sigma, n, red: _equivalent_sigma(beta, 1.0, n, red)),
        Mistake("reduction_ignored",
                "your answer ignores the reduction over pixels: a mean over D pixels changes the weight of the "
                "reconstruction term by 1/D.",
                lambda beta, sigma, n, red: _equivalent_sigma(beta, sigma, n, "sum")),
        Mistake("reduction_inverted", "your answer moves the wrong way for a mean over the pixels.",
                lambda beta, sigma, n, red: sigma * np.sqrt(beta / (n if red == "mean" else 1))),
    ),
    task=(
        "**A. The $\\sigma$ of a $\\beta$.** Write `sigma_for_beta(beta, sigma, n_pixels, pixel_reduction)`: the "
        "decoder standard deviation $\\sigma'$ such that a Gaussian VAE with fixed $\\sigma'$ and KL weight 1 is "
        "trained exactly like one with $\\sigma$ and KL weight $\\beta$ (the same minimisers; gradients that "
        "differ by a positive factor; section 4, and notebook 03, section 3). The check compares the gradients of "
        "the two losses with `vaelib.core.vae.loss_and_grads`."
    ),
    stub='''def sigma_for_beta(beta, sigma=1.0, n_pixels=784, pixel_reduction="sum"):
    """The sigma' of a Gaussian VAE with KL weight 1 that trains like one
    with decoder sigma and KL weight beta.

    Parameters
    ----------
    beta : float, > 0
        The KL weight of the model given.
    sigma : float, > 0
        Its fixed decoder standard deviation.
    n_pixels : int
        D, the number of pixels.
    pixel_reduction : {"sum", "mean"}
        How that model reduces its reconstruction term over the pixels
        (the model with sigma' sums).

    Returns
    -------
    float: sigma', the equivalent standard deviation (KL weight 1, pixels
    summed).
    """
    raise NotImplementedError("write the body of sigma_for_beta")
''',
    tolerances=(Tolerance(rtol=1e-6, atol=1e-9), Tolerance(rtol=1e-4, atol=1e-5)),
)
check_sigma_for_beta = SIGMA_FOR_BETA.check
