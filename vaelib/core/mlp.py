"""A multilayer perceptron built from :mod:`vaelib.core.layers`.

Layer ``i`` maps width ``sizes[i]`` to ``sizes[i + 1]``; every linear layer
but the last is followed by the activation. Parameters live in a flat
``dict`` under ``f"{prefix}.W{i}"`` and ``f"{prefix}.b{i}"``, so an encoder
and a decoder share one parameter dict.
"""

from typing import NamedTuple

import numpy as np

from .layers import ACTIVATIONS, linear_backward, linear_forward


def layer_pairs(sizes):
    """``[(n_in, n_out), ...]``, one pair per linear layer, from ``(n_in, n_hidden..., n_out)``."""
    return list(zip(sizes[:-1], sizes[1:]))


def mlp_param_shapes(sizes, prefix):
    """Name -> shape of every parameter of an MLP with layer widths ``sizes``.

    Parameters
    ----------
    sizes : sequence of int
        ``(n_in, n_hidden_1, ..., n_out)``.
    prefix : str

    Returns
    -------
    dict of str -> tuple
    """
    shapes = {}
    for i, (n_in, n_out) in enumerate(layer_pairs(sizes)):
        shapes[f"{prefix}.W{i}"] = (n_in, n_out)
        shapes[f"{prefix}.b{i}"] = (n_out,)
    return shapes


def init_mlp(sizes, prefix, rng, dtype=np.float64):
    """Weights and biases drawn uniformly from ``±1/sqrt(n_in)``.

    This is the default initialisation of PyTorch's ``nn.Linear``, so a
    comparison with a PyTorch model starts from the same distribution.

    Returns
    -------
    dict of str -> ndarray
    """
    params = {}
    for i, (n_in, n_out) in enumerate(layer_pairs(sizes)):
        bound = 1 / np.sqrt(n_in)
        params[f"{prefix}.W{i}"] = rng.uniform(-bound, bound, size=(n_in, n_out)).astype(dtype)
        params[f"{prefix}.b{i}"] = rng.uniform(-bound, bound, size=(n_out,)).astype(dtype)
    return params


class MLPCache(NamedTuple):
    prefix: str
    activation: str
    linear: list  # one LinearCache per layer
    act: list  # one activation cache per hidden layer


def mlp_forward(x, params, prefix, n_layers, activation="relu"):
    """Forward pass of an MLP.

    Parameters
    ----------
    x : ndarray, shape (batch, n_in)
    params : dict holding ``{prefix}.W{i}``, ``{prefix}.b{i}`` for ``i < n_layers``
    prefix : str
    n_layers : int
        Number of linear layers.
    activation : {"relu", "tanh", "sigmoid", "softplus"}

    Returns
    -------
    out : ndarray, shape (batch, n_out)
        Output of the last linear layer (no activation after it).
    cache : MLPCache
    """
    act_forward, _ = ACTIVATIONS[activation]
    cache = MLPCache(prefix, activation, [], [])
    h = x
    for i in range(n_layers):
        a, linear_cache = linear_forward(h, params[f"{prefix}.W{i}"], params[f"{prefix}.b{i}"])
        cache.linear.append(linear_cache)
        if i < n_layers - 1:
            h, act_cache = act_forward(a)
            cache.act.append(act_cache)
        else:
            h = a
    return h, cache


def mlp_backward(dout, cache):
    """Backward pass of :func:`mlp_forward`.

    Parameters
    ----------
    dout : ndarray, shape (batch, n_out)
    cache : MLPCache

    Returns
    -------
    dx : ndarray, shape (batch, n_in)
    grads : dict of str -> ndarray, one entry per parameter
    """
    _, act_backward = ACTIVATIONS[cache.activation]
    grads = {}
    dh = dout
    for i in reversed(range(len(cache.linear))):
        da = dh if i == len(cache.linear) - 1 else act_backward(dh, cache.act[i])
        dh, grads[f"{cache.prefix}.W{i}"], grads[f"{cache.prefix}.b{i}"] = linear_backward(da, cache.linear[i])
    return dh, grads
