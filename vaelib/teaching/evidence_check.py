r"""A computed ``log p(x)`` against Monte Carlo estimates of it, one image at a time.

Quadrature (:mod:`vaelib.teaching.quadrature`) gives ``log p(x)`` to a measured error
``delta`` per image. Two kinds of Monte Carlo estimate can check it, each with its own
standard error ``se`` per image:

- an **estimate** of ``log p(x)``, such as importance sampling from a proposal that covers the
  posterior (:func:`~vaelib.teaching.inference_gap.log_evidence_by_importance`). It must agree
  in both directions: ``|estimate - log p(x)| <= n_se * se + delta``;
- a **lower bound**, such as ``IWAE_K`` with the encoder's ``q(z|x)`` as proposal. It may lie
  below ``log p(x)`` by any amount (the encoder can miss the posterior), and above it only by
  noise: ``estimate - log p(x) <= n_se * se + delta``. Such a check cannot see a ``log p(x)``
  that is too high; the first kind can.

:func:`log_mean_weight` gives an importance-sampling estimate and its standard error from the
log-weights; :func:`excess_beyond_noise` says by how much each image fails its check.
All values are per image, in nats.
"""

import numpy as np


def log_mean_weight(log_w):
    r"""``log((1/S) sum_s w_s)`` for each image, and its standard error, from log-weights.

    The mean weight is an unbiased estimate of ``p(x)`` whatever the proposal. Its logarithm has
    the standard error (delta method)

    .. math:: \mathrm{se} = \frac{\mathrm{sd}(w)}{\bar w \sqrt S},

    meaningful when the weights have a finite variance. The weights are scaled by each row's
    largest before they are exponentiated, so log-weights of any size are safe.

    Parameters
    ----------
    log_w : ndarray, shape (n, S)
        ``log w_s = log p(x, z_s) - log r(z_s)`` for ``S >= 2`` independent draws ``z_s ~ r``.

    Returns
    -------
    estimate, se : ndarray, shape (n,), nats
    """
    log_w = np.asarray(log_w, dtype=np.float64)
    if log_w.ndim != 2 or log_w.shape[1] < 2:
        raise ValueError(f"log_w must have shape (n, S) with S >= 2, got {log_w.shape}")
    peak = log_w.max(axis=1, keepdims=True)
    w = np.exp(log_w - peak)  # (n, S), the largest of each row is 1
    mean = w.mean(axis=1)
    return np.log(mean) + peak[:, 0], w.std(axis=1, ddof=1) / (mean * np.sqrt(log_w.shape[1]))


def excess_beyond_noise(estimate, se, log_px, delta, n_se=4.0, lower_bound=False):
    """How far each estimate lies from ``log p(x)`` beyond what noise and quadrature allow.

    ``excess = |estimate - log_px| - (n_se * se + delta)``, or, for a lower bound,
    ``excess = (estimate - log_px) - (n_se * se + delta)``. The check passes for an image
    when its excess is at most 0.

    Parameters
    ----------
    estimate, se : ndarray, shape (n,)
        Monte Carlo estimates and their standard errors, nats.
    log_px : ndarray, shape (n,)
        The ``log p(x)`` under test, nats.
    delta : ndarray, shape (n,), or float
        The quadrature error allowed for each image, nats.
    n_se : float
        Standard errors allowed.
    lower_bound : bool
        ``estimate`` is a lower bound on ``log p(x)`` (such as ``IWAE_K``): only an estimate
        above ``log_px`` counts against it.

    Returns
    -------
    ndarray, shape (n,), nats
    """
    difference = np.asarray(estimate, dtype=np.float64) - np.asarray(log_px, dtype=np.float64)
    allowed = n_se * np.asarray(se, dtype=np.float64) + np.asarray(delta, dtype=np.float64)
    return (difference if lower_bound else np.abs(difference)) - allowed
