"""Exercise for notebook 07, training on digits: the importance-weighted (IWAE) estimate of log p(x).

Reference: ``scipy.special.logsumexp``. The log-weights of the cases are of the size a trained
784-400-20 model gives real digits (about -100 nats), and beyond.
"""

import numpy as np
from scipy.special import logsumexp

from .grading import Case, Exercise, Mistake


def _rows_at(levels, K, rng, dtype=np.float64):
    """One row of ``K`` log-weights around each level: images whose log p(x) differ by hundreds of nats."""
    return (np.array(levels)[:, None] + 3 * rng.standard_normal((len(levels), K))).astype(dtype)


def _spread_rows(rng):
    """float32 rows whose largest log-weight, last, is 100-180 nats above the others (and above their mean)."""
    rest = -120 - rng.uniform(100, 180, size=(3, 5))
    return np.column_stack([rest, -120 + rng.standard_normal(3)]).astype(np.float32)


def _iwae_cases():
    rng = np.random.default_rng(81)
    dominant = np.full((2, 6), -130.0)
    dominant[:, 0] = -100.0
    return [
        Case("4 images x 10 samples, log w near -100", {"log_w": -100 + 2 * rng.standard_normal((4, 10))}),
        Case("K = 1", {"log_w": -90 + 5 * rng.standard_normal((3, 1))}),
        Case("log w near -800", {"log_w": -800 + 3 * rng.standard_normal((3, 5))}),
        Case("a batch of one, K = 1000", {"log_w": -95 + 4 * rng.standard_normal((1, 1000))}),
        Case("one weight dominates", {"log_w": dominant}),
        Case("float32, 5 images x 20 samples",
             {"log_w": (-100 + 3 * rng.standard_normal((5, 20))).astype(np.float32)}),
        Case("rows near -60, -900 and -2000 nats", {"log_w": _rows_at([-60, -900, -2000], 8, rng)}),
        Case("float32, rows near -60 and -900 nats", {"log_w": _rows_at([-60, -900], 10, rng, np.float32)}),
        Case("float32, log w near -400", {"log_w": _rows_at([-400, -405, -395], 6, rng, np.float32)}),
        Case("float32, the largest log w 100-180 nats above the others", {"log_w": _spread_rows(rng)}),
    ]


def _iwae(log_w):
    return logsumexp(log_w, axis=1) - np.log(log_w.shape[1])


def _shifted(log_w, shift):
    """``log mean exp`` with the exponentials taken of ``log_w - shift``, in the input's dtype."""
    return np.reshape(shift, (-1,)) + np.log(np.mean(np.exp(log_w - shift), axis=1))


IWAE_ESTIMATE = Exercise(
    name="iwae_estimate",
    title="the importance-weighted estimate log (1/K) sum_k w_k of each image",
    notebook="07",
    outputs=("log_px",),
    make_cases=_iwae_cases,
    reference=lambda case: _iwae(**case.float64_inputs()),
    mistakes=(
        Mistake("mean_of_log_weights",
                "you averaged the log-weights: that is the ELBO, the K = 1 bound, whatever K is.",
                lambda log_w: np.mean(log_w, axis=1)),
        Mistake("no_log_k", "yours is the log of the sum of the weights, not of their mean.",
                lambda log_w: logsumexp(log_w, axis=1)),
        Mistake("exp_underflows",
                "you exponentiated the log-weights directly: exp(-800) underflows to 0 (in float32 already "
                "below about -104), and log 0 = -inf.",
                lambda log_w: np.log(np.mean(np.exp(log_w), axis=1))),
        Mistake("largest_log_weight", "you returned the largest log-weight.",
                lambda log_w: np.max(log_w, axis=1)),
        Mistake("divided_by_k_outside_the_log",
                "you divided the log of the sum of the weights by K.",
                lambda log_w: logsumexp(log_w, axis=1) / log_w.shape[1]),
        Mistake("over_images", "you combined the weights over the images (axis 0), not over the samples (axis 1).",
                lambda log_w: _iwae(log_w.T)),
        Mistake("log_of_the_batch_size",
                "you subtracted the log of the number of images, not of the number of samples K: len(log_w) "
                "counts the rows.",
                lambda log_w: logsumexp(log_w, axis=1) - np.log(log_w.shape[0])),
        Mistake("global_max_shift",
                "you shifted every row by the largest log-weight of the whole batch: the weights of a row "
                "hundreds of nats below it underflow to 0, and log 0 = -inf. Each row needs a shift of its own.",
                lambda log_w: _shifted(log_w, np.max(log_w))),
        Mistake("shift_below_the_row_max",
                "you shifted each row by a value below its largest log-weight (its mean, say): a weight far "
                "above the shift overflows exp (in float32 from 89 nats above it) to inf.",
                lambda log_w: _shifted(log_w, np.mean(log_w, axis=1, keepdims=True))),
    ),
    task=(
        "**A. The IWAE estimate.** Write `iwae_estimate(log_w)`: from the log-weights "
        "$\\log w_k = \\log p(x, z_k) - \\log q(z_k\\mid x)$ of $K$ samples per image, the estimate "
        "$\\log \\frac1K \\sum_k w_k$ of each image (section 6). It must work for log-weights near $-800$."
    ),
    stub='''def iwae_estimate(log_w):
    """The importance-weighted estimate log((1/K) sum_k w_k) of each image.

    Parameters
    ----------
    log_w : ndarray, shape (batch, K)
        log w_k = log p(x, z_k) - log q(z_k | x), for K samples z_k ~ q(z|x)
        of each image, in nats.

    Returns
    -------
    ndarray, shape (batch,)
    """
    raise NotImplementedError("write the body of iwae_estimate")
''',
    nonfinite_hints={"log_px": (
        "Below about -745 (in float32 -104) exp underflows to 0, and log 0 = -inf; above about 709 (in float32 89) "
        "it overflows to inf. A shift that keeps one row in range may push another row out of it.")},
)
check_iwae_estimate = IWAE_ESTIMATE.check
