"""Optimisers: the update rule by hand, and the state round trip."""

import numpy as np
import pytest

from vaelib.core.optim import SGD, Adam


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


def test_float32_adam_stays_float32(rng):
    params = {"w": rng.standard_normal(10).astype(np.float32)}
    opt = Adam(lr=0.01)
    opt.inplace_step(params, {"w": rng.standard_normal(10).astype(np.float32)})
    assert params["w"].dtype == opt.m["w"].dtype == opt.v["w"].dtype == np.float32


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


@pytest.mark.parametrize("make", [lambda: Adam(lr=0), lambda: Adam(b1=1.0), lambda: SGD(lr=-1), lambda: SGD(momentum=1.0)])
def test_bad_settings_are_refused(make):
    with pytest.raises(ValueError):
        make()
