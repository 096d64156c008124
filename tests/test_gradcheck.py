"""The checker itself: it must pass a right derivative and fail a wrong one."""

import numpy as np
import pytest

from vaelib.core.gradcheck import check_gradients, directional_check, numerical_gradient, relative_error


def test_numerical_gradient_of_known_function(rng):
    x = rng.standard_normal(5)
    g = numerical_gradient(lambda: float(np.sum(np.sin(x) * x)), x)
    assert relative_error(g, np.cos(x) * x + np.sin(x)) < 1e-9


def test_numerical_gradient_restores_input(rng):
    x = rng.standard_normal((3, 2))
    before = x.copy()
    numerical_gradient(lambda: float(np.sum(x**3)), x)
    np.testing.assert_array_equal(x, before)


def test_float32_is_refused():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda: 0.0, np.zeros(2, dtype=np.float32))


def test_checker_fails_a_wrong_derivative(rng):
    params = {"w": rng.standard_normal(4)}
    f = lambda p: float(np.sum(np.exp(p["w"])))
    right = {"w": np.exp(params["w"])}
    wrong = {"w": np.exp(params["w"]) * 1.01}  # a 1% mistake
    assert check_gradients(f, params, right)["w"] < 1e-8
    assert check_gradients(f, params, wrong)["w"] > 1e-3
    assert directional_check(f, params, right, rng) < 1e-8
    assert directional_check(f, params, wrong, rng) > 1e-3


def test_checker_notices_a_missing_gradient(rng):
    with pytest.raises(ValueError, match="different tensors"):
        check_gradients(lambda p: 0.0, {"a": np.zeros(1), "b": np.zeros(1)}, {"a": np.zeros(1)})


def test_relative_error_is_scale_free():
    assert relative_error([1e-9, 2e-9], [1e-9, 2e-9]) == 0
    assert relative_error([1.0], [2.0]) == pytest.approx(0.5)
    assert relative_error([0.0], [0.0]) == 0
