"""Gradient checking by central finite differences, in float64.

Used by the tests and by the notebooks. The error measure is norm-wise::

    relative_error(a, b) = |a - b| / max(|a|, |b|)      (Euclidean norms)

With central differences and ``h = 1e-6`` a correct float64 gradient of a
smooth function scores between about 1e-10 and 1e-8; a wrong one scores
near 1. Functions with kinks (ReLU) can fail a correct gradient when a
perturbation carries a unit across zero: check them with smooth activations.
"""

import numpy as np


def relative_error(a, b):
    """Norm-wise relative error between two arrays of the same shape (0 if both are 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def numerical_gradient(f, x, h=1e-6):
    """Central-difference gradient of a scalar function, one coordinate at a time.

    Parameters
    ----------
    f : callable
        ``f()`` returns a float and reads ``x``.
    x : ndarray, float64
        Perturbed in place coordinate by coordinate and restored exactly.
    h : float

    Returns
    -------
    ndarray, shape of ``x``: ``(f(x + h e_i) - f(x - h e_i)) / 2h``.
    """
    if x.dtype != np.float64:
        raise TypeError(f"gradient checks need float64, got {x.dtype}")
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        f_plus = f()
        flat[i] = old - h
        f_minus = f()
        flat[i] = old
        gflat[i] = (f_plus - f_minus) / (2 * h)
    return grad


def check_gradients(f, params, grads, h=1e-6):
    """Relative error of every analytic gradient against central differences.

    Parameters
    ----------
    f : callable
        ``f(params)`` returns the scalar loss.
    params : dict of str -> float64 ndarray
    grads : dict of str -> ndarray
        Analytic gradients, same keys and shapes.

    Returns
    -------
    dict of str -> float
        The relative error for each parameter tensor.
    """
    if set(params) != set(grads):
        raise ValueError(f"params and grads name different tensors: {sorted(set(params) ^ set(grads))}")
    errors = {}
    for name, value in params.items():
        numeric = numerical_gradient(lambda: f(params), value, h)
        errors[name] = relative_error(grads[name], numeric)
    return errors


def directional_check(f, params, grads, rng, h=1e-6):
    """Check the whole gradient along one random direction ``v``.

    Compares ``(f(p + h v) - f(p - h v)) / 2h`` with ``sum_k <grads_k, v_k>``:
    two function evaluations instead of one per coordinate, so it scales to
    the full model.

    With ReLU, a step that carries a unit across its kink makes a correct
    gradient look wrong (errors ~1e-4); use smooth activations to check.

    Returns
    -------
    float : relative error of the two directional derivatives.
    """
    direction = {k: rng.standard_normal(np.shape(v)) for k, v in params.items()}
    shifted = lambda s: {k: params[k] + s * h * direction[k] for k in params}
    numeric = (f(shifted(1)) - f(shifted(-1))) / (2 * h)
    analytic = sum(float(np.sum(grads[k] * direction[k])) for k in params)
    return relative_error(analytic, numeric)
