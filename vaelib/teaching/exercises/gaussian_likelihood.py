"""Exercises for notebook 03, the Gaussian likelihood: its log-density with sigma, and the best sigma.

References: ``scipy.stats.norm.logpdf`` (the log-likelihood); for the best sigma, the root in
``log sigma`` of the derivative from :func:`vaelib.core.likelihoods.gaussian_nll_backward`, found by
``scipy.optimize.brentq``.
"""

import numpy as np
from scipy import optimize, stats

from vaelib.core.gaussian import LOG_2PI
from vaelib.core.likelihoods import gaussian_nll, gaussian_nll_backward, gaussian_nll_forward

from .grading import Case, Exercise, Mistake


def _grey_pair(seed, batch, n_pixels, noise=0.1, shift=0.0, dtype=np.float64):
    """Grey images ``x`` in [0, 1] and stand-in decoder means ``x + shift + noise``."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch, n_pixels))
    mean = np.clip(x + shift + noise * rng.standard_normal((batch, n_pixels)), -0.5, 1.5)
    return x.astype(dtype), mean.astype(dtype)


# ---------------------------------------------------------------- log N(x | mean, sigma^2 I)
def _log_likelihood_cases():
    x_same, _ = _grey_pair(43, 2, 10)
    return [
        Case("3 images x 16 pixels, sigma = 0.3", dict(zip(("x", "mean"), _grey_pair(41, 3, 16)), sigma=0.3)),
        Case("sigma = 1", dict(zip(("x", "mean"), _grey_pair(42, 2, 8, noise=0.3)), sigma=1.0)),
        Case("x = mean (a perfect reconstruction), sigma = 0.1",
             {"x": x_same, "mean": x_same.copy(), "sigma": 0.1}),
        Case("a batch of one, 784 pixels, sigma = 0.2", dict(zip(("x", "mean"), _grey_pair(44, 1, 784)), sigma=0.2)),
        Case("sigma = 2", dict(zip(("x", "mean"), _grey_pair(45, 3, 5, noise=1.0)), sigma=2.0)),
        Case("float32, 4 images x 784 pixels, sigma = 0.5",
             dict(zip(("x", "mean"), _grey_pair(46, 4, 784, dtype=np.float32)), sigma=0.5)),
        Case("sigma = 0.02, one pixel off by 1 (50 sigma)",
             dict(zip(("x", "mean"), _one_pixel_off(47, 3, 12, noise=0.02)), sigma=0.02)),
        Case("float32, sigma = 0.05, one pixel off by 1 (20 sigma)",
             dict(zip(("x", "mean"), _one_pixel_off(48, 3, 12, noise=0.05, dtype=np.float32)), sigma=0.05)),
    ]


def _one_pixel_off(seed, batch, n_pixels, noise, dtype=np.float64):
    """A close reconstruction, except one pixel per image that is black where the image is white."""
    x, mean = _grey_pair(seed, batch, n_pixels, noise=noise)
    x[:, 0], mean[:, 0] = 1.0, 0.0
    return x.astype(dtype), mean.astype(dtype)


def _log_lik(x, mean, sigma):
    return -gaussian_nll(mean, x, np.log(sigma))


def _squared_error(x, mean):
    return np.sum((x - mean) ** 2, axis=-1)


GAUSSIAN_LOG_LIKELIHOOD = Exercise(
    name="gaussian_log_likelihood",
    title="the Gaussian log-likelihood log N(x | mean, sigma^2 I) per image",
    notebook="03",
    outputs=("log_p",),
    make_cases=_log_likelihood_cases,
    reference=lambda case: stats.norm.logpdf(**dict(zip(("x", "loc", "scale"),
                                                       case.float64_inputs().values()))).sum(axis=-1),
    mistakes=(
        Mistake("notes_one_over_two_sigma",
                "your quadratic term has 1/(2 sigma) where 1/(2 sigma^2) belongs: the notes' slip.",
                lambda x, mean, sigma: _log_lik(x, mean, sigma)
                + _squared_error(x, mean) * (1 / (2 * sigma**2) - 1 / (2 * sigma))),
        Mistake("missing_half", "your quadratic term is missing its factor 1/2.",
                lambda x, mean, sigma: _log_lik(x, mean, sigma) - _squared_error(x, mean) / (2 * sigma**2)),
        Mistake("negative_log_likelihood",
                "you returned -log p(x|z), the reconstruction term of the loss, not the log-likelihood.",
                lambda x, mean, sigma: -_log_lik(x, mean, sigma)),
        Mistake("no_log_sigma", "your log-density leaves out the -D log(sigma) of the normaliser.",
                lambda x, mean, sigma: _log_lik(x, mean, sigma) + x.shape[-1] * np.log(sigma)),
        Mistake("no_2pi", "your log-density leaves out the constant -(D/2) log(2 pi).",
                lambda x, mean, sigma: _log_lik(x, mean, sigma) + 0.5 * x.shape[-1] * LOG_2PI),
        Mistake("mean_over_pixels", "you averaged over the pixels; the log-likelihood of an image is their sum.",
                lambda x, mean, sigma: _log_lik(x, mean, sigma) / x.shape[-1]),
        Mistake("sigma_as_variance", "your log-density treats sigma as the variance, not the standard deviation.",
                lambda x, mean, sigma: -gaussian_nll(mean, x, 0.5 * np.log(sigma))),
        Mistake("batch_size_for_D",
                "your normaliser counts the images where it counts the pixels: len(x) is the batch size, "
                "and D is the length of a row.",
                lambda x, mean, sigma: _log_lik(x, mean, sigma)
                + (x.shape[-1] - len(x)) * (np.log(sigma) + 0.5 * LOG_2PI)),
        Mistake("log_variance_not_halved",
                "your normaliser has -D log(sigma^2): the log of the variance is missing its factor 1/2.",
                lambda x, mean, sigma: _log_lik(x, mean, sigma) - x.shape[-1] * np.log(sigma)),
    ),
    task=(
        "**A. The Gaussian log-likelihood.** Write `gaussian_log_likelihood(x, mean, sigma)`: "
        "$\\log\\mathcal N(x \\mid m, \\sigma^2 I)$ for each image, in nats (section 1), without `scipy.stats` "
        "or `vaelib`."
    ),
    stub='''def gaussian_log_likelihood(x, mean, sigma):
    """log N(x | mean, sigma^2 I) of each image, in nats.

    Parameters
    ----------
    x : ndarray, shape (batch, D)
        Images.
    mean : ndarray, shape (batch, D)
        The decoder's mean for each image.
    sigma : float
        Standard deviation shared by every pixel.

    Returns
    -------
    ndarray, shape (batch,): the log-density of each image (a sum over pixels).
    """
    raise NotImplementedError("write the body of gaussian_log_likelihood")
''',
)
check_gaussian_log_likelihood = GAUSSIAN_LOG_LIKELIHOOD.check


# ---------------------------------------------------------------- the sigma that maximises it
def _best_sigma_cases():
    x_tiny, _ = _grey_pair(56, 2, 30)
    tiny = x_tiny + 1e-4 * np.random.default_rng(57).standard_normal(x_tiny.shape)
    return [
        Case("3 images x 16 pixels", dict(zip(("x", "mean"), _grey_pair(51, 3, 16, noise=0.2)))),
        Case("residuals with a non-zero mean", dict(zip(("x", "mean"), _grey_pair(52, 3, 20, shift=-0.3)))),
        Case("a batch of one, 784 pixels", dict(zip(("x", "mean"), _grey_pair(53, 1, 784)))),
        Case("one pixel per image", dict(zip(("x", "mean"), _grey_pair(54, 4, 1, noise=0.5)))),
        Case("tiny residuals (about 1e-4)", {"x": x_tiny, "mean": tiny}),
        Case("float32, 4 images x 784 pixels", dict(zip(("x", "mean"), _grey_pair(55, 4, 784, dtype=np.float32)))),
        Case("float32, small residuals (about 1e-3)",
             dict(zip(("x", "mean"), _grey_pair(58, 3, 784, noise=1e-3, dtype=np.float32)))),
    ]


def _best_sigma_reference(case):
    """For each image, the root in log sigma of d/d(log sigma) of -log N(x | mean, sigma^2 I)."""
    inputs = case.float64_inputs()
    sigmas = []
    for x, mean in zip(inputs["x"], inputs["mean"]):
        def slope(log_sigma, x=x, mean=mean):
            _, cache = gaussian_nll_forward(mean[None], x[None], log_sigma)
            return float(gaussian_nll_backward(np.ones(1), cache)[1])
        sigmas.append(np.exp(optimize.brentq(slope, -40.0, 40.0, xtol=1e-15, rtol=1e-15)))
    return np.array(sigmas)


def _mean_square(x, mean):
    return np.mean((x - mean) ** 2, axis=-1)


BEST_SIGMA = Exercise(
    name="best_sigma",
    title="the sigma that maximises each image's Gaussian log-likelihood",
    notebook="03",
    outputs=("sigma",),
    make_cases=_best_sigma_cases,
    reference=_best_sigma_reference,
    mistakes=(
        Mistake("variance", "you returned the variance sigma^2, not the standard deviation sigma.",
                lambda x, mean: _mean_square(x, mean)),
        Mistake("root_of_sum", "yours is the root of the squared error summed over pixels, not of its mean.",
                lambda x, mean: np.sqrt(_mean_square(x, mean) * x.shape[-1])),
        Mistake("notes_formula",
                "yours maximises the notes' expression with 1/(2 sigma), which is not the Gaussian's "
                "log-density.",
                lambda x, mean: _mean_square(x, mean) / 2),
        Mistake("np_std",
                "you used np.std of the residuals: it subtracts their mean first, and the maximum-likelihood "
                "sigma of N(x | mean, sigma^2 I) measures the residuals from 0.",
                lambda x, mean: np.std(x - mean, axis=-1)),
        Mistake("one_sigma_for_the_batch", "you returned one sigma for the whole batch; one per image is asked for.",
                lambda x, mean: np.sqrt(np.mean(_mean_square(x, mean)))),
        Mistake("mean_absolute_residual", "you returned the mean absolute residual.",
                lambda x, mean: np.mean(np.abs(x - mean), axis=-1)),
        Mistake("divided_by_the_batch_size",
                "you divided the summed squared residuals by the number of images: len(x) is the batch size, "
                "and D is the length of a row.",
                lambda x, mean: np.sqrt(np.sum((x - mean) ** 2, axis=-1) / len(x))),
        Mistake("divided_by_d_minus_1",
                "you divided the squared residuals by D - 1, the correction of an unbiased variance about an "
                "estimated mean: here the mean is given, not estimated from the residuals.",
                lambda x, mean: np.sqrt(np.sum((x - mean) ** 2, axis=-1) / (x.shape[-1] - 1))),
    ),
    nonfinite_hints={"sigma": "Look for a square root of a number below 0 (nan): a mean square computed as a "
                              "difference of terms (the square expanded) can come out below 0 by round-off, where "
                              "squaring the residuals themselves cannot; or for 0/0."},
    task=(
        "**B. The best $\\sigma$.** Write `best_sigma(x, mean)`: for each image, the $\\sigma$ that maximises "
        "$\\log\\mathcal N(x \\mid m, \\sigma^2 I)$ with $m$ fixed (section 3, the learned-$\\sigma$ paragraph), "
        "in closed form."
    ),
    stub='''def best_sigma(x, mean):
    """For each image, the sigma > 0 that maximises log N(x | mean, sigma^2 I).

    Parameters
    ----------
    x : ndarray, shape (batch, D)
    mean : ndarray, shape (batch, D)

    Returns
    -------
    ndarray, shape (batch,): the maximising standard deviation of each image.
    """
    raise NotImplementedError("write the body of best_sigma")
''',
)
check_best_sigma = BEST_SIGMA.check
