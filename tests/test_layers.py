"""Every layer: float64 gradient checks, and what each function means."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vaelib.core import layers
from vaelib.core.gradcheck import numerical_gradient, relative_error
from vaelib.core.mlp import init_mlp, mlp_backward, mlp_forward


def check_layer(forward, backward, inputs, rng):
    """Gradient of sum(out * r) for a random r, for every input of a layer."""
    out, cache = forward(*inputs)
    r = rng.standard_normal(out.shape)
    analytic = backward(r, cache)
    analytic = analytic if isinstance(analytic, tuple) else (analytic,)
    for x, g in zip(inputs, analytic):
        numeric = numerical_gradient(lambda: float(np.sum(forward(*inputs)[0] * r)), x)
        assert relative_error(g, numeric) < 1e-7


def test_linear_gradients(rng):
    x, W, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(5)
    check_layer(layers.linear_forward, layers.linear_backward, (x, W, b), rng)


def test_linear_by_hand():
    """A 1x2 input through a 2x2 layer, worked on paper."""
    x, W, b = np.array([[1.0, 2.0]]), np.array([[1.0, -1.0], [0.5, 3.0]]), np.array([0.25, 0.0])
    out, cache = layers.linear_forward(x, W, b)
    np.testing.assert_array_equal(out, [[2.25, 5.0]])
    dx, dW, db = layers.linear_backward(np.array([[1.0, 2.0]]), cache)
    np.testing.assert_array_equal(dx, [[-1.0, 6.5]])
    np.testing.assert_array_equal(dW, [[1.0, 2.0], [2.0, 4.0]])
    np.testing.assert_array_equal(db, [1.0, 2.0])


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "softplus"])
def test_smooth_activation_gradients(name, rng):
    forward, backward = layers.ACTIVATIONS[name]
    check_layer(forward, backward, (rng.standard_normal((4, 6)) * 3,), rng)


def test_relu_gradient_away_from_kink(rng):
    a = rng.standard_normal((4, 6))
    a[np.abs(a) < 0.1] = 0.5  # keep finite differences off the kink
    check_layer(layers.relu_forward, layers.relu_backward, (a,), rng)


def test_backward_does_not_modify_its_arguments(rng):
    for name, (forward, backward) in layers.ACTIVATIONS.items():
        a = rng.standard_normal((3, 4))
        out, cache = forward(a)
        dout = rng.standard_normal(out.shape)
        copies = (dout.copy(), np.copy(cache))
        backward(dout, cache)
        np.testing.assert_array_equal(dout, copies[0], err_msg=name)
        np.testing.assert_array_equal(cache, copies[1], err_msg=name)


def test_activation_values():
    a = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(layers.relu_forward(a)[0], [0, 0, 3])
    np.testing.assert_allclose(layers.sigmoid(a), 1 / (1 + np.exp(-a)))
    np.testing.assert_allclose(layers.softplus(a), np.log(1 + np.exp(a)))


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, 8, elements=st.floats(-1e4, 1e4)))
def test_sigmoid_and_softplus_never_overflow(a):
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is harmless
        s, sp = layers.sigmoid(a), layers.softplus(a)
    assert np.all((s >= 0) & (s <= 1))
    assert np.all(sp >= 0) and np.all(sp >= a - 1e-12)


@pytest.mark.parametrize("activation", ["tanh", "softplus"])
def test_mlp_gradients(activation, rng):
    sizes = (5, 4, 3, 2)
    params = init_mlp(sizes, "net", rng)
    x = rng.standard_normal((6, 5))
    out, cache = mlp_forward(x, params, "net", 3, activation)
    r = rng.standard_normal(out.shape)
    dx, grads = mlp_backward(r, cache)
    f = lambda: float(np.sum(mlp_forward(x, params, "net", 3, activation)[0] * r))
    assert relative_error(dx, numerical_gradient(f, x)) < 1e-7
    for name in params:
        assert relative_error(grads[name], numerical_gradient(f, params[name])) < 1e-7, name


def test_mlp_parameters_come_from_pairs_of_sizes(rng):
    params = init_mlp((5, 4, 3), "net", rng)
    assert {k: v.shape for k, v in params.items()} == {
        "net.W0": (5, 4), "net.b0": (4,), "net.W1": (4, 3), "net.b1": (3,)}


def test_mlp_init_bounds_match_pytorch_default(rng):
    params = init_mlp((784, 400, 40), "enc", rng)
    assert np.abs(params["enc.W0"]).max() <= 1 / np.sqrt(784)
    assert np.abs(params["enc.W1"]).max() <= 1 / np.sqrt(400)
    # uniform on ±b has standard deviation b / sqrt(3)
    assert params["enc.W0"].std() == pytest.approx(1 / np.sqrt(784) / np.sqrt(3), rel=0.01)
