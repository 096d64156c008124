"""A multilayer perceptron built from :mod:`vaelib.layers`.

Layers ``0 .. n-1`` are linear; every layer but the last is followed by the
activation. Parameters live in a flat ``dict`` under ``f"{prefix}.W{i}"`` and
``f"{prefix}.b{i}"``, so an encoder and a decoder share one parameter dict.
"""

import numpy as np

from .layers import ACTIVATIONS, linear_backward, linear_forward


def mlp_param_shapes(sizes, prefix):
    """Shapes of the parameters of an MLP with layer widths ``sizes``.

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
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"{prefix}.W{i}"] = (n_in, n_out)
        shapes[f"{prefix}.b{i}"] = (n_out,)
    return shapes


def init_mlp(sizes, prefix, rng, dtype=np.float64):
    """Initialise weights and biases uniformly in ``±1/sqrt(n_in)``.

    This is the default initialisation of PyTorch's ``nn.Linear``, so a
    comparison with a PyTorch model starts from the same distribution.

    Returns
    -------
    dict of str -> ndarray
    """
    params = {}
    for name, shape in mlp_param_shapes(sizes, prefix).items():
        bound = 1 / np.sqrt(sizes[int(name.rsplit(".", 1)[1][1:])])
        params[name] = rng.uniform(-bound, bound, size=shape).astype(dtype)
    return params


def mlp_forward(x, params, prefix, n_layers, activation="relu"):
    """Forward pass of an MLP.

    Parameters
    ----------
    x : ndarray, shape (batch, n_in)
    params : dict holding ``{prefix}.W{i}``, ``{prefix}.b{i}`` for ``i < n_layers``
    n_layers : int
        Number of linear layers.
    activation : {"relu", "tanh", "sigmoid", "softplus"}

    Returns
    -------
    out : ndarray, shape (batch, n_out)
        Output of the last linear layer (no activation after it).
    cache : list of per-layer caches
    """
    act_forward, _ = ACTIVATIONS[activation]
    cache = []
    h = x
    for i in range(n_layers):
        a, lin_cache = linear_forward(h, params[f"{prefix}.W{i}"], params[f"{prefix}.b{i}"])
        if i < n_layers - 1:
            h, act_cache = act_forward(a)
        else:
            h, act_cache = a, None
        cache.append((lin_cache, act_cache))
    return h, cache


def mlp_backward(dout, cache, prefix, activation="relu", *, need_dx=True, out=None):
    """Backward pass of :func:`mlp_forward`.

    Parameters
    ----------
    dout : ndarray, shape (batch, n_out)
    cache : list from :func:`mlp_forward`
    need_dx : bool
        ``False`` skips the gradient with respect to the input.
    out : dict of str -> ndarray, optional
        Arrays to write the parameter gradients into, keyed like the parameters.

    Returns
    -------
    dx : ndarray, shape (batch, n_in), or None
    grads : dict of str -> ndarray, one entry per parameter
    """
    _, act_backward = ACTIVATIONS[activation]
    grads = {}
    dh = dout
    for i in reversed(range(len(cache))):
        lin_cache, act_cache = cache[i]
        da = dh if act_cache is None else act_backward(dh, act_cache)
        W, b = f"{prefix}.W{i}", f"{prefix}.b{i}"
        dh, grads[W], grads[b] = linear_backward(
            da, lin_cache, need_dx=need_dx or i > 0, out=None if out is None else (out[W], out[b])
        )
    return dh, grads
