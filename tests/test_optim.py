"""Optimisers: the update rule by hand, state round trip, and the flat-vector shortcut."""

import numpy as np
import pytest

from vaelib.flat import flat_views, flatten
from vaelib.optim import SGD, Adam


def test_adam_matches_the_paper_update(rng):
    """Three steps of the paper's m_hat / (sqrt(v_hat) + eps) form, written out."""
    p0, grads = rng.standard_normal(5), rng.standard_normal((3, 5))
    params, opt = {"w": p0.copy()}, Adam(lr=0.1, eps=1e-3)
    p, m, v = p0.copy(), np.zeros(5), np.zeros(5)
    for t, g in enumerate(grads, start=1):
        opt.inplace_step(params, {"w": g})
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        p = p - 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-3)
    np.testing.assert_allclose(params["w"], p, rtol=1e-12)


def test_float32_adam_gives_the_numpy_float32_numbers(rng):
    """The compiled loop computes in the parameters' dtype: the same float32 numbers as
    the update written out in NumPy with float32 arrays, not a float64 detour."""
    p0, grads = rng.standard_normal(1000).astype(np.float32), rng.standard_normal((3, 1000)).astype(np.float32)
    params, opt = {"w": p0.copy()}, Adam(lr=0.01)
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        opt.inplace_step(params, {"w": g})
        correction = np.sqrt(1 - 0.999**t)
        m += np.float32(1 - 0.9) * (g - m)
        v += np.float32(1 - 0.999) * (g * g - v)
        p -= np.float32(0.01 * correction / (1 - 0.9**t)) * m / (np.sqrt(v) + np.float32(1e-8 * correction))
    assert params["w"].dtype == np.float32
    np.testing.assert_array_equal(params["w"], p)


def test_first_adam_step_moves_each_coordinate_by_lr(rng):
    params = {"w": np.zeros(4)}
    Adam(lr=0.01).inplace_step(params, {"w": np.array([3.0, -0.2, 1e-3, -50.0])})
    np.testing.assert_allclose(params["w"], [-0.01, 0.01, -0.01, 0.01], rtol=1e-4)


def test_sgd_with_and_without_momentum():
    params = {"w": np.array([1.0])}
    SGD(lr=0.5).inplace_step(params, {"w": np.array([2.0])})
    assert params["w"][0] == 0.0
    params, opt = {"w": np.array([0.0])}, SGD(lr=1.0, momentum=0.5)
    for _ in range(2):
        opt.inplace_step(params, {"w": np.array([1.0])})
    assert params["w"][0] == -(1 + 1.5)


@pytest.mark.parametrize("make", [lambda: Adam(lr=0.05), lambda: SGD(lr=0.05, momentum=0.9)])
def test_state_round_trip_continues_identically(make, rng):
    grads = rng.standard_normal((6, 3))
    a, pa = make(), {"w": np.ones(3)}
    for g in grads[:3]:
        a.inplace_step(pa, {"w": g})
    b, pb = make(), {"w": pa["w"].copy()}
    b.load_state_dict({k: v.copy() for k, v in a.state_dict().items()})
    for g in grads[3:]:
        a.inplace_step(pa, {"w": g})
        b.inplace_step(pb, {"w": g})
    np.testing.assert_array_equal(pa["w"], pb["w"])


def test_one_flat_vector_gives_the_same_update_as_named_tensors(rng):
    shapes = {"W": (3, 2), "b": (2,)}
    params = {k: rng.standard_normal(s) for k, s in shapes.items()}
    grads = {k: rng.standard_normal(s) for k, s in shapes.items()}
    theta, views = flatten(params, shapes)
    gvec, _ = flatten(grads, shapes)
    named, flat = Adam(), Adam()
    named.inplace_step(params, grads)
    flat.inplace_step({"theta": theta}, {"theta": gvec})
    for k in shapes:
        np.testing.assert_allclose(views[k], params[k], rtol=1e-15)


def test_flat_views_share_memory_and_check_size():
    buf = np.zeros(8)
    views = flat_views({"a": (2, 3), "b": (2,)}, buf)
    views["a"][1, 2] = 5.0
    assert buf[5] == 5.0
    with pytest.raises(ValueError, match="does not hold"):
        flat_views({"a": (3,)}, np.zeros(4))


@pytest.mark.parametrize("make", [lambda: Adam(lr=0), lambda: Adam(b1=1.0), lambda: SGD(lr=-1), lambda: SGD(momentum=1.0)])
def test_bad_settings_are_refused(make):
    with pytest.raises(ValueError):
        make()
