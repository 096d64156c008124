"""The compiled Adam: the same numbers as its NumPy formula, and the core's Adam within rounding."""

import numpy as np
import pytest

from vaelib.core.optim import Adam
from vaelib.fast.adam import FastAdam


def test_float32_update_is_the_folded_formula_in_float32_exactly(rng):
    """The loop computes in the parameters' dtype: the same float32 numbers as the folded
    update written out in NumPy with float32 arrays, not a float64 detour."""
    p0, grads = rng.standard_normal(1000).astype(np.float32), rng.standard_normal((3, 1000)).astype(np.float32)
    params, opt = {"w": p0.copy()}, FastAdam(lr=0.01)
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        opt.inplace_step(params, {"w": g})
        correction = np.sqrt(1 - 0.999**t)
        m += np.float32(1 - 0.9) * (g - m)
        v += np.float32(1 - 0.999) * (g * g - v)
        p -= np.float32(0.01 * correction / (1 - 0.9**t)) * m / (np.sqrt(v) + np.float32(1e-8 * correction))
    assert params["w"].dtype == np.float32
    np.testing.assert_array_equal(params["w"], p)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_equals_the_core_adam_within_rounding(dtype, rtol, rng):
    """Folding the bias corrections into the step size changes only the rounding.

    Tolerance: a few units in the last place of each step, over 20 steps of size ~lr.
    """
    p0 = rng.standard_normal(500).astype(dtype)
    core, fast = {"w": p0.copy()}, {"w": p0.copy()}
    core_opt, fast_opt = Adam(lr=0.01), FastAdam(lr=0.01)
    for _ in range(20):
        g = rng.standard_normal(500).astype(dtype)
        core_opt.inplace_step(core, {"w": g})
        fast_opt.inplace_step(fast, {"w": g})
    moved = np.abs(core["w"] - p0).max()
    assert moved > 0.1  # the parameters did move
    np.testing.assert_allclose(fast["w"], core["w"], rtol=rtol, atol=rtol * moved)
    for k in ("m", "v"):
        np.testing.assert_allclose(getattr(fast_opt, k)["w"], getattr(core_opt, k)["w"], rtol=rtol * 10)


def test_continues_the_core_adams_state(rng):
    """One state format: a FastAdam loaded with a core Adam's state takes the same next step."""
    p0, g1, g2 = rng.standard_normal((3, 50))
    core, opt = {"w": p0.copy()}, Adam(lr=0.05)
    opt.inplace_step(core, {"w": g1})
    fast, fast_opt = {"w": core["w"].copy()}, FastAdam(lr=0.05)
    fast_opt.load_state_dict(opt.state_dict())
    opt.inplace_step(core, {"w": g2})
    fast_opt.inplace_step(fast, {"w": g2})
    np.testing.assert_allclose(fast["w"], core["w"], rtol=1e-12)


def test_refuses_mixed_dtypes():
    with pytest.raises(ValueError, match="one dtype"):
        FastAdam().inplace_step({"w": np.zeros(3, np.float32)}, {"w": np.zeros(3)})
