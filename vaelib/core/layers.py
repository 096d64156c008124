"""Layers, each a forward/backward pair.

Contract (the cs231n layer contract)::

    out, cache = <layer>_forward(inputs..., params...)
    d_inputs..., d_params... = <layer>_backward(dout, cache)

``backward`` reads only ``dout`` and ``cache`` and never writes into either.
Shapes use ``batch`` for the leading dimension; every function works for any
floating dtype (float64 for gradient checks, float32 for training).
"""

from typing import NamedTuple

import numpy as np


# ---------------------------------------------------------------- linear
class LinearCache(NamedTuple):
    x: np.ndarray
    W: np.ndarray


def linear_forward(x, W, b):
    """Affine map ``out = x @ W + b``.

    Parameters
    ----------
    x : ndarray, shape (batch, n_in)
    W : ndarray, shape (n_in, n_out)
    b : ndarray, shape (n_out,)

    Returns
    -------
    out : ndarray, shape (batch, n_out)
    cache : LinearCache
    """
    return x @ W + b, LinearCache(x, W)


def linear_backward(dout, cache):
    """Gradients of a linear layer: ``dx = dout @ W.T``, ``dW = x.T @ dout``, ``db = sum_batch dout``.

    Parameters
    ----------
    dout : ndarray, shape (batch, n_out)
    cache : LinearCache

    Returns
    -------
    dx : ndarray, shape (batch, n_in)
    dW : ndarray, shape (n_in, n_out)
    db : ndarray, shape (n_out,)
    """
    x, W = cache
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)


# ---------------------------------------------------------------- activations
def relu_forward(a):
    """``max(a, 0)``. Shape preserved. Cache: the output."""
    out = np.maximum(a, 0)
    return out, out


def relu_backward(dout, cache):
    """``d a = dout * [a > 0]`` (the subgradient 0 is used at ``a = 0``)."""
    out = cache
    return dout * (out > 0)


def tanh_forward(a):
    """``tanh(a)``. Cache: the output."""
    out = np.tanh(a)
    return out, out


def tanh_backward(dout, cache):
    """``d a = dout * (1 - tanh(a)**2)``."""
    out = cache
    return dout * (1 - out * out)


def sigmoid(a):
    """Logistic function ``1 / (1 + exp(-a))``, computed as ``(1 + tanh(a/2)) / 2``.

    The two are equal for every ``a``; the tanh form never overflows. Its
    absolute error is at the level of machine epsilon (far in the negative
    tail it returns 0 rather than a number below epsilon).
    """
    return 0.5 + 0.5 * np.tanh(0.5 * a)


def sigmoid_forward(a):
    """``sigmoid(a)``. Cache: the output."""
    out = sigmoid(a)
    return out, out


def sigmoid_backward(dout, cache):
    """``d a = dout * s * (1 - s)`` with ``s = sigmoid(a)``."""
    s = cache
    return dout * s * (1 - s)


def softplus(a):
    """``log(1 + exp(a))``, computed as ``max(a, 0) + log1p(exp(-|a|))`` so it never overflows."""
    return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))


def softplus_forward(a):
    """``softplus(a)``. Cache: the input."""
    return softplus(a), a


def softplus_backward(dout, cache):
    """``d a = dout * sigmoid(a)``: the derivative of softplus is the sigmoid."""
    a = cache
    return dout * sigmoid(a)


#: name -> (forward, backward)
ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "softplus": (softplus_forward, softplus_backward),
}
