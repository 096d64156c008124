"""The fused kernels against independent NumPy references, with the error bounds their module states."""

import numpy as np
import pytest
from scipy.special import expit

from vaelib.fast.kernels import (
    bernoulli_nll_and_grad,
    inplace_adam_update,
    inplace_bias_relu,
    inplace_relu_backward_bias_grad,
)

DTYPES = [np.float32, np.float64]
EXTENDED = np.finfo(np.longdouble).eps < 1e-18  # an 80-bit long double: a reference for float64 at the ulp level
needs_extended = pytest.mark.skipif(not EXTENDED, reason="the float64 references need an extended long double")


def dtype_params():
    return [np.float32, pytest.param(np.float64, marks=needs_extended)]


# ---------------------------------------------------------------- references, in long double
def softplus_ref(l):
    return np.logaddexp(0, l.astype(np.longdouble))


def sigmoid_ref(l):
    return expit(l.astype(np.longdouble))


def bernoulli_term_ref(l, x):
    """``softplus(l) - x l``, written as ``(1 - x) softplus(l) + x softplus(-l)``: no cancellation."""
    l, x = l.astype(np.longdouble), x.astype(np.longdouble)
    return (1 - x) * np.logaddexp(0, l) + x * np.logaddexp(0, -l)


def assert_relative_error_below(got, ref, n_eps, dtype):
    """``|got - ref| <= n_eps * eps * |ref|``, or two steps of the smallest subnormal, ``2 eps tiny``, if more."""
    eps, tiny = np.finfo(dtype).eps, np.finfo(dtype).tiny
    assert_absolute_error_below(got, ref, np.maximum(n_eps * eps * np.abs(ref), 2 * eps * tiny))


def assert_absolute_error_below(got, ref, allowed):
    err = np.abs(got.astype(np.longdouble) - ref)
    allowed = np.broadcast_to(allowed, err.shape)
    worst = np.unravel_index(np.argmax(err / allowed), err.shape)
    assert np.all(err <= allowed), (f"error {float(err[worst]):.3g} > allowed {float(allowed[worst]):.3g} "
                                    f"at {worst}: got {got[worst]!r}, reference {float(ref[worst])!r}")


def logits_to_test(dtype):
    """A dense grid over [-100, 100] and the extremes, both signs: every regime of exp(-|l|)."""
    fi = np.finfo(dtype)
    extremes = [0.0, fi.smallest_subnormal, fi.tiny, 1e-30, 1e-8, 0.5, 15, 17, 36.7, 87.3, 88.8, 103.2, 103.97,
                104, 104.5, 708.4, 709.8, 745.1, 746, 1e4, 1e30, fi.max]
    grid = np.linspace(-100, 100, 200_001)
    l = np.concatenate([grid, extremes, np.negative(extremes)]).astype(dtype)
    return l[np.isfinite(l)]


def per_pixel(l, x=None):
    """The kernel on one pixel per image: ``nll`` is then each pixel's term, ``dlogits`` each ``sigmoid - x``."""
    n = l.size
    x = np.zeros_like(l) if x is None else x
    dlogits = np.empty((n, 1), l.dtype)
    nll = bernoulli_nll_and_grad(l.reshape(n, 1), x.reshape(n, 1), np.ones(n, l.dtype), dlogits)
    return nll, dlogits[:, 0]


def in_rows(a, width=781):
    """``a`` laid out in rows of ``width``, padded with zeros: the kernel's vectorised loop.

    781 is a multiple of no vector width, so each row also ends in the loop's shorter tails.
    """
    return np.pad(a, (0, -a.size % width)).reshape(-1, width)


# ---------------------------------------------------------------- Bernoulli
@pytest.mark.parametrize("dtype", dtype_params())
def test_softplus_within_3_eps_relative_at_every_logit(dtype):
    l = logits_to_test(dtype)
    softplus, _ = per_pixel(l)
    assert_relative_error_below(softplus, softplus_ref(l), 3, dtype)


@pytest.mark.parametrize("dtype", dtype_params())
def test_sigmoid_within_1_eps_absolute_at_every_logit(dtype):
    """Checked one pixel per image and in rows of 781 pixels (the vectorised loop)."""
    eps = np.finfo(dtype).eps
    l = logits_to_test(dtype)
    _, sigmoid = per_pixel(l)
    assert_absolute_error_below(sigmoid, sigmoid_ref(l), eps)
    rows = in_rows(l)
    dlogits = np.empty_like(rows)
    bernoulli_nll_and_grad(rows, np.zeros_like(rows), np.ones(len(rows), dtype), dlogits)
    assert_absolute_error_below(dlogits, sigmoid_ref(rows), eps)


@pytest.mark.parametrize("dtype", dtype_params())
@pytest.mark.parametrize("targets", ["binary", "grey"])
def test_nll_and_dlogits_within_the_stated_bounds(dtype, targets, rng):
    """Each pixel's term within 3 eps relative; each row's nll adds float64 summation rounding
    (below n_pixels * 2**-53 relative); dlogits within 2 eps |dnll[i]|, with dnll varying by row."""
    eps = np.finfo(dtype).eps
    l = logits_to_test(dtype)
    x = (rng.random(l.size) < 0.5) if targets == "binary" else rng.random(l.size)
    x = x.astype(dtype)
    term, _ = per_pixel(l, x)
    assert_relative_error_below(term, bernoulli_term_ref(l, x), 3, dtype)

    rows, x_rows = in_rows(l), in_rows(x)
    dnll = rng.uniform(-3, 3, len(rows)).astype(dtype)
    dlogits = np.empty_like(rows)
    nll = bernoulli_nll_and_grad(rows, x_rows, dnll, dlogits)
    assert nll.dtype == np.float64 and nll.shape == (len(rows),)
    ref = bernoulli_term_ref(rows, x_rows).sum(axis=1)
    beyond_float64 = ref > np.finfo(np.float64).max  # rows holding +-max of float64: the sum overflows, rightly
    assert np.all(np.isposinf(nll[beyond_float64]))
    assert_relative_error_below(nll[~beyond_float64], ref[~beyond_float64], 3 + rows.shape[1] * 2.0**-53 / eps, dtype)
    dlogits_ref = dnll[:, None].astype(np.longdouble) * (sigmoid_ref(rows) - x_rows)
    assert_absolute_error_below(dlogits, dlogits_ref, 2 * eps * np.abs(dnll[:, None]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_logits_by_hand(dtype):
    """No overflow and nothing lost to cancellation: softplus(l) - x l is l (1 - x) for huge positive l,
    -l x for huge negative l, ln 2 at 0; the sigmoid is 1 or 0 out there."""
    big = np.finfo(dtype).max
    l = np.array([[big, -big, 1e30, -1e30, 0.0, -0.0, big]], dtype)
    x = np.array([[1, 0, 0.25, 0.75, 1, 0, 0.5]], dtype)
    dlogits = np.empty_like(l)
    nll = bernoulli_nll_and_grad(l, x, np.ones(1, dtype), dlogits)
    expected = 0 + 0 + 0.75e30 + 0.75e30 + np.log(2) + np.log(2) + float(big) / 2
    assert nll[0] == pytest.approx(expected, rel=1e-6)
    np.testing.assert_array_equal(dlogits, [[0, 0, 0.75, -0.75, -0.5, 0.5, 0.5]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_nan_logit_propagates_to_its_image(dtype):
    l = np.array([[np.nan, 1.0], [1.0, 2.0]], dtype)
    dlogits = np.empty_like(l)
    nll = bernoulli_nll_and_grad(l, np.zeros_like(l), np.ones(2, dtype), dlogits)
    assert np.isnan(nll[0]) and np.isnan(dlogits[0, 0])
    assert np.all(np.isfinite(nll[1:])) and np.all(np.isfinite(dlogits.ravel()[1:]))


def test_hand_worked_example():
    """l = (0, ln 3), x = (1, 0): nll = ln 2 + ln 4, dlogits = (0.5 - 1, 0.75 - 0)."""
    l = np.array([[0.0, np.log(3)]])
    dlogits = np.empty_like(l)
    nll = bernoulli_nll_and_grad(l, np.array([[1.0, 0.0]]), np.array([1.0]), dlogits)
    np.testing.assert_allclose(nll, [np.log(2) + np.log(4)], rtol=1e-15)
    np.testing.assert_allclose(dlogits, [[-0.5, 0.75]], rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bernoulli_writes_dlogits_and_leaves_its_inputs_alone(dtype, rng):
    logits = (4 * rng.standard_normal((16, 784))).astype(dtype)
    x = rng.random((16, 784)).astype(dtype)
    dnll = rng.random(16).astype(dtype)
    before = [a.copy() for a in (logits, x, dnll)]
    dlogits = np.full_like(logits, np.nan)
    bernoulli_nll_and_grad(logits, x, dnll, dlogits)
    assert np.all(np.isfinite(dlogits))
    for a, b in zip((logits, x, dnll), before):
        np.testing.assert_array_equal(a, b)


def test_bernoulli_rejects_mismatched_shapes():
    a = np.zeros((4, 5))
    with pytest.raises(ValueError):
        bernoulli_nll_and_grad(a, np.zeros((4, 6)), np.zeros(4), np.empty_like(a))
    with pytest.raises(ValueError):
        bernoulli_nll_and_grad(a, a, np.zeros(3), np.empty_like(a))


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_bernoulli_tolerances_bite(dtype, rng):
    """An nll or a dlogits off by one part in 1e4 fails the bounds the tests above use."""
    eps = np.finfo(dtype).eps
    logits = (4 * rng.standard_normal((8, 784))).astype(dtype)
    x = rng.random((8, 784)).astype(dtype)
    dnll = np.ones(8, dtype)
    dlogits = np.empty_like(logits)
    nll = bernoulli_nll_and_grad(logits, x, dnll, dlogits)
    ref = bernoulli_term_ref(logits, x).sum(axis=1)
    assert_relative_error_below(nll, ref, 3 + 784 * 2.0**-53 / eps, dtype)
    with pytest.raises(AssertionError):
        assert_relative_error_below(nll * (1 + 1e-4), ref, 3 + 784 * 2.0**-53 / eps, dtype)
    dlogits_ref = sigmoid_ref(logits) - x
    assert_absolute_error_below(dlogits, dlogits_ref, 2 * eps)
    with pytest.raises(AssertionError):
        assert_absolute_error_below(dlogits + 1e-4 * np.abs(dlogits).max(), dlogits_ref, 2 * eps)


# ---------------------------------------------------------------- bias and ReLU
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [784, 400, 13])
def test_bias_relu_is_numpy_maximum_exactly(dtype, n, rng):
    a = rng.standard_normal((128, n)).astype(dtype)
    a[0, :3] = [np.nan, np.inf, -np.inf]
    b = rng.standard_normal(n).astype(dtype)
    expected = np.maximum(a + b, 0)
    b_before = b.copy()
    out = inplace_bias_relu(a, b)
    assert out is a
    np.testing.assert_array_equal(a, expected)  # NaN where NumPy has NaN
    np.testing.assert_array_equal(b, b_before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [784, 400, 13])
def test_relu_backward_and_bias_grad(dtype, n, rng):
    """dh * (h > 0) exactly; db the column sums, accumulated row after row in the dtype,
    and within the recursive-summation bound (batch - 1) (eps / 2) sum |dh| of the float64 sums."""
    h = np.maximum(rng.standard_normal((128, n)), 0).astype(dtype)
    dh = rng.standard_normal((128, n)).astype(dtype)
    h_before, expected = h.copy(), dh * (h > 0)
    running = np.zeros(n, dtype)
    for row in expected:
        running += row
    db = np.full(n, np.nan, dtype)
    out = inplace_relu_backward_bias_grad(dh, h, db)
    assert out is dh
    np.testing.assert_array_equal(dh, expected)
    np.testing.assert_array_equal(h, h_before)
    np.testing.assert_array_equal(db, running)
    exact = expected.astype(np.float64).sum(axis=0)
    bound = 127 * np.finfo(dtype).eps / 2 * np.abs(expected).astype(np.float64).sum(axis=0)
    assert np.all(np.abs(db - exact) <= bound)


def test_relu_backward_keeps_numpy_semantics_for_non_finite_and_negative_zero():
    dh = np.array([[np.nan, np.inf, -2.0, -3.0]])
    h = np.array([[0.0, 0.0, 0.0, 1.0]])
    with np.errstate(invalid="ignore"):
        expected = dh * (h > 0)
    inplace_relu_backward_bias_grad(dh, h, np.empty(4))
    np.testing.assert_array_equal(dh, expected)
    assert np.signbit(dh[0, 2])  # -2 * 0 = -0, as in NumPy


def test_relu_kernels_reject_mismatched_shapes():
    with pytest.raises(ValueError):
        inplace_bias_relu(np.zeros((2, 3)), np.zeros(4))
    with pytest.raises(ValueError):
        inplace_relu_backward_bias_grad(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(2))


# ---------------------------------------------------------------- Adam
def adam_numpy(p, g, m, v, lr_t, eps_t, one_minus_b1, one_minus_b2):
    """The update written out in NumPy, every operand in the arrays' dtype."""
    m += one_minus_b1 * (g - m)
    v += one_minus_b2 * (g * g - v)
    p -= lr_t * m / (np.sqrt(v) + eps_t)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_equals_its_numpy_formula_exactly(dtype, rng):
    n = 10_000
    p, m = rng.standard_normal(n).astype(dtype), np.zeros(n, dtype)
    v = np.zeros(n, dtype)
    fast = [p.copy(), m.copy(), v.copy()]
    for t in range(1, 4):
        g = rng.standard_normal(n).astype(dtype)
        g_before = g.copy()
        correction = np.sqrt(1 - 0.999**t)
        scalars = [dtype(1e-3 * correction / (1 - 0.9**t)), dtype(1e-8 * correction), dtype(1 - 0.9), dtype(1 - 0.999)]
        adam_numpy(p, g, m, v, *scalars)
        inplace_adam_update(fast[0], g, fast[1], fast[2], *scalars, np.finfo(dtype).tiny)
        np.testing.assert_array_equal(g, g_before)
    for got, expected in zip(fast, (p, m, v)):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, expected)


def test_adam_computes_in_float32_even_given_python_floats(rng):
    """The scalars are converted to the arrays' dtype: Python floats give the float32 numbers,
    which a float64 detour (computing in float64, rounding at the end) would not."""
    p0 = rng.standard_normal(1000).astype(np.float32)
    g = rng.standard_normal(1000).astype(np.float32)
    m0 = (0.1 * rng.standard_normal(1000)).astype(np.float32)
    v0 = (0.1 * rng.random(1000)).astype(np.float32)
    scalars = (1e-3, 1e-8, 0.1, 0.001)
    expected = [p0.copy(), m0.copy(), v0.copy()]
    adam_numpy(expected[0], g, expected[1], expected[2], *map(np.float32, scalars))
    fast = [p0.copy(), m0.copy(), v0.copy()]
    inplace_adam_update(fast[0], g, fast[1], fast[2], *scalars, 1.1754944e-38)
    for got, want in zip(fast, expected):
        np.testing.assert_array_equal(got, want)
    detour = [a.astype(np.float64) for a in (p0, m0, v0)]
    adam_numpy(detour[0], g.astype(np.float64), detour[1], detour[2], *scalars)
    assert not np.array_equal(detour[0].astype(np.float32), expected[0])


def test_adam_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        inplace_adam_update(np.zeros(3), np.zeros(4), np.zeros(3), np.zeros(3), 1e-3, 1e-8, 0.1, 0.001, 1e-38)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_never_leaves_a_subnormal_moment_estimate(dtype):
    """Where NumPy's formula would leave a subnormal m or v (a gradient of 0 shrinking a tiny m, a tiny
    v decaying), the kernel leaves 0 or a normal number; everything else is NumPy's number, and p too."""
    tiny = np.finfo(dtype).tiny
    m = np.array([1.05 * tiny, 20 * tiny, -1.05 * tiny, 0.3], dtype)
    v = np.array([1.0005 * tiny, 1e-6, 2 * tiny, 0.2], dtype)
    g = np.array([0.0, 0.0, 0.0, 0.5], dtype)
    p = np.ones(4, dtype)
    scalars = [dtype(1e-3), dtype(1e-8), dtype(0.1), dtype(0.001)]
    expected = [p.copy(), m.copy(), v.copy()]
    adam_numpy(*expected[:1], g, *expected[1:], *scalars)
    inplace_adam_update(p, g, m, v, *scalars, tiny)
    subnormal = lambda a: (a != 0) & (np.abs(a) < tiny)
    assert subnormal(expected[1]).any() and subnormal(expected[2]).any()  # NumPy's formula does make them
    assert not subnormal(m).any() and not subnormal(v).any()
    np.testing.assert_array_equal(m[[1, 3]], expected[1][[1, 3]])
    np.testing.assert_array_equal(v[[1, 3]], expected[2][[1, 3]])
    np.testing.assert_array_equal(p, expected[0])  # updates of 1e-33 and less vanish in p's rounding


def test_adam_leaves_numpys_subnormal_arithmetic_as_it_was():
    """The flush-to-zero mode is the kernel's alone: after it returns, NumPy still keeps subnormal numbers."""
    tiny = np.finfo(np.float32).tiny
    inplace_adam_update(np.ones(8, np.float32), np.zeros(8, np.float32), np.full(8, 1.05 * tiny, np.float32),
                        np.zeros(8, np.float32), 1e-3, 1e-8, 0.1, 0.001, tiny)
    assert np.float32(tiny) * np.float32(0.5) > 0
