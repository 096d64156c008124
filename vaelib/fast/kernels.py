"""Fused element-wise loops for the training step (Numba, CPU, float32 and float64).

Each kernel does in one pass over memory what the core does in several NumPy
passes, one per operation:

- :func:`bernoulli_nll_and_grad`: the Bernoulli likelihood's forward *and*
  backward, ``softplus(l) - x l`` summed per image and ``dnll (sigmoid(l) - x)``,
  from one ``exp`` and one ``log1p`` per pixel (the core: fifteen passes);
- :func:`inplace_bias_relu`: ``a + b`` then ``max(., 0)`` (two passes and a new array);
- :func:`inplace_relu_backward_bias_grad`: ReLU's backward and the bias gradient
  (column sums) of the layer below it (three passes);
- :func:`inplace_adam_update`: an Adam step (twelve passes);
- :func:`inplace_scale_rows_flush`: each row times its weight, subnormal results
  set to 0 (the IWAE's normalised importance weights, see :mod:`vaelib.fast.iwae`).

Why loops of our own: at a batch of 128 these arrays fit in cache, so the cost
is the number of passes and the arithmetic, not memory bandwidth. LLVM
vectorises a Numba loop only if nothing in it can raise, hence
``error_model="numpy"`` (the default error model checks every division for a
zero divisor, and that check blocks vectorisation). The llvmlite wheels on PyPI
have no Intel SVML, so ``np.exp`` and ``np.log1p`` inside a loop are scalar
library calls, about ten times slower than NumPy's own: the Bernoulli kernel
computes ``exp`` and ``log1p`` itself, in the arrays' dtype, by a range
reduction and a Taylor polynomial, which the compiler vectorises. Its only
departures from strict IEEE arithmetic are ``fastmath={"contract"}`` (fused
multiply-adds where the CPU has them, which lose no accuracy in these
formulas: the bounds below held on the test grid with and without them) and,
in the float64 sum over pixels alone, ``"reassoc"`` so that the sum can use
vector lanes.
Reassociation must never reach the range reduction, which it would undo.
Adam and the ReLU kernels are strict IEEE and give the same numbers as their
formulas written out in NumPy in the same dtype; Adam also flushes moment
estimates below the smallest normal number to zero (see
:func:`inplace_adam_update`).

Everything runs on the calling thread (no ``parallel=True``): BLAS owns the
cores. Each kernel is compiled on first use for the dtypes it meets and cached
on disk.

Accuracy of :func:`bernoulli_nll_and_grad` at every finite logit, with
``eps = np.finfo(dtype).eps`` (2**-23 in float32, 2**-52 in float64), checked by
``tests/test_fast_kernels.py`` on a dense grid over [-100, 100] and the extremes:

- ``softplus(l)`` and each pixel's ``softplus(l) - x l``, for ``x`` in [0, 1]:
  relative error below ``3 eps``, or absolute error below ``2 eps tiny`` (two
  steps of the smallest subnormal) where that is larger; ``nll[i]``, a sum of
  such non-negative terms, adds the float64 sum's rounding, below
  ``n_pixels 2**-53`` relative;
- ``sigmoid(l)``: absolute error below ``eps``; ``dlogits``: absolute error
  below ``2 eps |dnll[i]|``.

Over every finite float32 logit (all 2**32 bit patterns, against float64
references), the worst errors were 2.34 eps for softplus and 0.75 eps for the
sigmoid.

Speed on this project's 2-core machine, 2026-12-02, one thread (BLAS pinned to
one thread with threadpoolctl), float32: each kernel against the NumPy passes it
replaces, medians of 500 interleaved repeats, three runs while other jobs
loaded the machine (the ranges are those runs):

=================================  ============================  ============================
kernel                             128 x 784                     128 x 400
=================================  ============================  ============================
bernoulli_nll_and_grad             3.6x (82 us; NumPy 299 us)    4.1x (38 us; NumPy 156 us)
                                   3.56 - 3.69x                  4.06 - 4.35x
inplace_bias_relu                  4.3x (8.1 us; NumPy 35 us)    4.4x (4.6 us; NumPy 19 us)
                                   3.8 - 4.8x                    4.1 - 5.0x
inplace_relu_backward_bias_grad    3.1x (16 us; NumPy 50 us)     2.9x (7.6 us; NumPy 23 us)
                                   3.1 - 3.4x                    2.7 - 3.1x
=================================  ============================  ============================

:func:`inplace_adam_update` on the 652,824 parameters of the 784-400-20 VAE:
6.0x on a quiet machine (381 us; NumPy 2.28 ms), 4 - 17x in the loaded runs
(NumPy's temporaries suffer most); and as fast as the ``parallel=True`` loop
it replaces, run on one thread (1.00 - 1.05x). A kernel for a bias gradient
alone (column sums) beat ``np.sum(axis=0)`` by 1.4 - 2x but would save about
3 us a step, under 0.2% of an epoch, so there is none.
"""

import platform
from math import factorial

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

_STRICT = dict(cache=True, error_model="numpy")
_FMA = dict(_STRICT, fastmath={"contract"})


# ---------------------------------------------------------------- flush to zero, for one loop
# x86's MXCSR register: bit 15 (FTZ) writes 0 for a subnormal result, bit 6 (DAZ) reads a
# subnormal input as 0. Arithmetic that meets subnormal numbers otherwise takes a slow path,
# tens of times slower per operation. The register belongs to the thread; the kernels that set
# it restore it before they return, so NumPy keeps its IEEE behaviour.
_FTZ_DAZ = 0x8040
X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


def _mxcsr_call(builder, name, slot):
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [ir.PointerType(ir.IntType(8))]), name)
    builder.call(fn, [builder.bitcast(slot, ir.PointerType(ir.IntType(8)))])


@intrinsic
def _read_mxcsr(typingctx):
    """The x86 floating-point control register, as uint32 (``llvm.x86.sse.stmxcsr``)."""

    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
        return builder.load(slot)

    return types.uint32(), codegen


@intrinsic
def _write_mxcsr(typingctx, value):
    """Set the x86 floating-point control register (``llvm.x86.sse.ldmxcsr``)."""

    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        builder.store(args[0], slot)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()

    return types.void(types.uint32), codegen


if X86:
    @numba.njit(cache=True)
    def _flush_to_zero_on():
        """Turn on FTZ and DAZ for this thread; returns the previous register, for :func:`_restore`."""
        saved = _read_mxcsr()
        _write_mxcsr(saved | numba.uint32(_FTZ_DAZ))
        return saved

    @numba.njit(cache=True)
    def _restore(saved):
        _write_mxcsr(saved)
else:  # elsewhere the loop runs without the hardware flush (the explicit one below still applies)
    @numba.njit(cache=True)
    def _flush_to_zero_on():
        return numba.uint32(0)

    @numba.njit(cache=True)
    def _restore(saved):
        pass


# ---------------------------------------------------------------- exp(-a) and log1p(e), vectorisable
def _in_halves(coeffs):
    """A polynomial's coefficients, given lowest power first, as two tuples for :func:`_polynomial`."""
    highest_first = tuple(coeffs)[::-1]
    half = len(highest_first) // 2
    assert half >= 2, "at least 4 coefficients"
    return highest_first[:half], highest_first[half:]


# Taylor series: exp(r) = sum_k r**k / k!;  2 atanh(s) = s sum_k 2 z**k / (2k + 1), with z = s**2
_EXP_TAYLOR_F32 = _in_halves(np.float32(1 / factorial(k)) for k in range(8))
_EXP_TAYLOR_F64 = _in_halves(1 / factorial(k) for k in range(14))
_ATANH_TAYLOR_F32 = _in_halves(np.float32(2 / (2 * k + 1)) for k in range(7))
_ATANH_TAYLOR_F64 = _in_halves(2 / (2 * k + 1) for k in range(17))


@numba.njit(**_FMA)
def _polynomial(halves, r):
    """A polynomial at ``r`` by Horner's rule, highest power first; ``halves`` from :func:`_in_halves`.

    Two loops over constant tuples, of at most 9 steps each, which the compiler
    unrolls: a single loop of 17 steps it leaves rolled, and a rolled loop
    inside stops the loop over pixels from being vectorised.
    """
    upper, lower = halves
    p = upper[0]
    for c in upper[1:]:
        p = p * r + c
    for c in lower:
        p = p * r + c
    return p


@intrinsic
def _pow2_from_rounded(typingctx, y):
    """The float with exponent field ``k``, ``2**(k - bias)``, from ``y = 1.5 * 2**m + k``, an integer.

    ``m`` is 23 in float32 (bias 127), 52 in float64 (bias 1023). Where floats
    are spaced 1 apart, ``k`` sits in the low bits of ``y``; shifted ``m``
    places left they fill the exponent field, and the higher bits of ``y`` fall
    off the end. Needs ``0 < k < 256`` (float32) or ``0 < k < 2048`` (float64).
    """
    int_type, shift = {types.float32: (types.int32, 23), types.float64: (types.int64, 52)}[y]

    def codegen(context, builder, signature, args):
        bits = builder.bitcast(args[0], context.get_value_type(int_type))
        bits = builder.shl(bits, context.get_constant(int_type, shift))
        return builder.bitcast(bits, context.get_value_type(y))

    return y(y), codegen


@numba.njit(**_FMA)
def _exp_neg_f32(a):
    """``exp(-a)`` for ``a >= 0``, float32.

    Write ``-a = n ln2 + r`` with integer ``n`` and ``|r| <= ln2 / 2``; then
    ``exp(-a) = exp(r) 2**(n + 64) 2**-64``, with ``exp(r)`` from its Taylor
    polynomial of degree 7 (truncation error below ``0.06 eps``). The first
    product is exact; the second rounds once, into the subnormals where the
    result is that small. ``a`` is capped at 104, past which ``exp(-a)``
    rounds to 0.
    """
    shift = np.float32(1.5 * 2**23 + 127 + 64)  # y - shift = n gives the scale 2**(n + 64); 127: the bias
    t = min(a, np.float32(104))
    y = shift - t * np.float32(1.4426950408889634)  # rounds to shift + n, n = round(-t / ln2)
    n = y - shift
    r = (-t - n * np.float32(0.693359375)) - n * np.float32(-2.12194440e-4)  # ln2 in two parts, n * first exact
    return (_polynomial(_EXP_TAYLOR_F32, r) * _pow2_from_rounded(y)) * np.float32(2.0**-64)


@numba.njit(**_FMA)
def _exp_neg_f64(a):
    """``exp(-a)`` for ``a >= 0``, float64: :func:`_exp_neg_f32` with degree 13 (below ``0.03 eps``), capped at 746."""
    shift = 1.5 * 2**52 + 1023 + 64
    t = min(a, 746.0)
    y = shift - t * 1.4426950408889634
    n = y - shift
    r = (-t - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10
    return (_polynomial(_EXP_TAYLOR_F64, r) * _pow2_from_rounded(y)) * 2.0**-64


@numba.njit(**_FMA)
def _log1p_unit_f32(e):
    """``log1p(e)`` for ``e`` in [0, 1], float32.

    ``log1p(e) = 2 atanh(s)`` with ``s = e / (2 + e)`` in [0, 1/3], and
    ``2 atanh(s) = s (2 + 2 s**2 / 3 + 2 s**4 / 5 + ...)``, to ``s**12``
    (truncation error below ``0.13 eps``).
    """
    s = e / (np.float32(2) + e)
    return s * _polynomial(_ATANH_TAYLOR_F32, s * s)


@numba.njit(**_FMA)
def _log1p_unit_f64(e):
    """``log1p(e)`` for ``e`` in [0, 1], float64: :func:`_log1p_unit_f32` to ``s**32`` (below ``0.01 eps``)."""
    s = e / (2.0 + e)
    return s * _polynomial(_ATANH_TAYLOR_F64, s * s)


def _exp_neg(a):
    """``exp(-a)`` in ``a``'s dtype; compiled code only (see the overload below)."""


def _log1p_unit(e):
    """``log1p(e)`` for ``e`` in [0, 1] in ``e``'s dtype; compiled code only."""


@overload(_exp_neg)
def _exp_neg_by_dtype(a):
    impl = {types.float32: _exp_neg_f32, types.float64: _exp_neg_f64}[a]
    return lambda a: impl(a)


@overload(_log1p_unit)
def _log1p_unit_by_dtype(e):
    impl = {types.float32: _log1p_unit_f32, types.float64: _log1p_unit_f64}[e]
    return lambda e: impl(e)


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _sum_float64(a):
    """``sum(a)`` accumulated in float64, in vector lanes: in an order of the compiler's choosing."""
    total = 0.0
    for k in range(a.size):
        total += a[k]
    return total


# ---------------------------------------------------------------- the kernels
@numba.njit(**_FMA)
def bernoulli_nll_and_grad(logits, x, dnll, dlogits):
    r"""Bernoulli negative log-likelihood per image and its gradient, in one pass.

    .. math:: \mathrm{nll}_i = \sum_d \mathrm{softplus}(\ell_{id}) - x_{id}\ell_{id},
              \qquad \frac{\partial\,\mathrm{nll}_i}{\partial\ell_{id}} = \sigma(\ell_{id}) - x_{id}

    With ``e = exp(-|l|)``, in (0, 1], ``softplus(l) = max(l, 0) + log1p(e)``
    and ``sigmoid(l) = 1 / (1 + e)`` if ``l >= 0`` else ``e / (1 + e)``: one
    ``exp`` and one ``log1p`` per pixel, no overflow at any finite logit. Each
    pixel's term is computed as ``|l| (1 - x if l >= 0 else x) + log1p(e)``,
    the same number written as a sum of two non-negative parts for ``x`` in
    [0, 1], so nothing cancels. Error bounds: the module docstring.

    Parameters
    ----------
    logits : ndarray, shape (batch, n_pixels), float32 or float64
    x : ndarray, shape (batch, n_pixels), same dtype
        Targets in [0, 1]; grey values are allowed.
    dnll : ndarray, shape (batch,), same dtype
        Upstream gradient, one weight per image.
    dlogits : ndarray, shape (batch, n_pixels), same dtype
        Output, overwritten with ``dnll[i] * (sigmoid(logits) - x)``.

    Returns
    -------
    nll : ndarray, shape (batch,), float64
        Summed over pixels in float64, in nats.
    """
    batch, n_pixels = logits.shape
    if x.shape != logits.shape or dlogits.shape != logits.shape or dnll.shape != (batch,):
        raise ValueError("bernoulli_nll_and_grad: x and dlogits must have logits' shape, dnll (batch,)")
    dtype = logits.dtype.type
    one, zero = dtype(1), dtype(0)
    nll = np.empty(batch)
    term = np.empty(n_pixels, logits.dtype)
    for i in range(batch):
        weight = dtype(dnll[i])
        for d in range(n_pixels):
            l, xd = logits[i, d], dtype(x[i, d])
            e = _exp_neg(abs(l))
            term[d] = abs(l) * (one - xd if l >= zero else xd) + _log1p_unit(e)
            sigmoid = (one if l >= zero else e) / (one + e)
            dlogits[i, d] = weight * (sigmoid - xd)
        nll[i] = _sum_float64(term)
    return nll


@numba.njit(**_STRICT)
def inplace_bias_relu(a, b):
    """``a = max(a + b, 0)``, in place: a linear layer's bias and the ReLU after it.

    Same numbers as ``np.maximum(a + b, 0)``, NaN included.

    Parameters
    ----------
    a : ndarray, shape (batch, n), overwritten
    b : ndarray, shape (n,), same dtype

    Returns
    -------
    a : ndarray, shape (batch, n)
    """
    if b.shape != (a.shape[1],):
        raise ValueError("inplace_bias_relu: b must have shape (a.shape[1],)")
    zero = a.dtype.type(0)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            a[i, j] = np.maximum(a[i, j] + b[j], zero)
    return a


@numba.njit(**_STRICT)
def inplace_relu_backward_bias_grad(dh, h, db):
    """ReLU's backward ``dh = dh * (h > 0)`` in place, and the bias gradient ``db = sum_batch dh``.

    ``h`` is the ReLU's output. Same numbers as ``dh * (h > 0)`` (the core's
    :func:`~vaelib.core.layers.relu_backward`); ``db`` is accumulated in ``dh``'s
    dtype, one row after another, as ``np.sum(dh, axis=0)`` does.

    Parameters
    ----------
    dh : ndarray, shape (batch, n), overwritten
    h : ndarray, shape (batch, n), same dtype
    db : ndarray, shape (n,), same dtype, overwritten

    Returns
    -------
    dh : ndarray, shape (batch, n)
    """
    if h.shape != dh.shape or db.shape != (dh.shape[1],):
        raise ValueError("inplace_relu_backward_bias_grad: h must have dh's shape, db (dh.shape[1],)")
    one, zero = dh.dtype.type(1), dh.dtype.type(0)
    db[:] = zero
    for i in range(dh.shape[0]):
        for j in range(dh.shape[1]):
            dh[i, j] *= one if h[i, j] > zero else zero
            db[j] += dh[i, j]
    return dh


@numba.njit(**_STRICT)
def inplace_adam_update(p, g, m, v, lr_t, eps_t, one_minus_b1, one_minus_b2, tiny):
    """One Adam step on flat arrays, in place, with the bias corrections folded into ``lr_t`` and ``eps_t``.

    ``m += (1 - b1) (g - m)``; ``v += (1 - b2) (g**2 - v)``;
    ``p -= lr_t m / (sqrt(v) + eps_t)``. Strict IEEE arithmetic in the arrays'
    dtype: the same numbers as these three lines in NumPy, except that a moment
    estimate smaller in magnitude than ``tiny`` is set to 0 (flush to zero).
    The scalars are converted to that dtype first (a float64 scalar inside the
    loop would turn every float32 operation into a float64 one).

    Why flush: a weight whose gradient is always 0 (the first layer's weight
    from a pixel that is off in every image, as MNIST's border pixels are) has
    its ``m`` shrink by ``b1`` every step, below float32's smallest normal number
    after about 830 steps; tiny gradients make ``g * g`` subnormal at once.
    Arithmetic on subnormal numbers is many times slower on x86 CPUs: on
    binarised MNIST, 61,000 of the 652,824 ``m`` entries were subnormal after 4
    epochs and a step of this loop took 2.5 ms instead of 0.41 ms; on made-up
    gradients spread over 1e-25 to 1e-1 it took 5.3 ms instead of 0.37 ms. So
    the loop runs with x86's flush-to-zero mode on (subnormal results and
    inputs count as 0; the mode is restored on return), and, on any CPU, stores
    0 for a moment estimate below ``tiny``. Either changes an update by less
    than ``lr_t * tiny / eps_t`` (about 1e-33 in float32), far below the
    rounding of the update itself.

    Parameters
    ----------
    p, g, m, v : ndarray, shape (n,), one dtype
        Parameters, gradient, first and second moment estimates; ``p``, ``m``
        and ``v`` are overwritten.
    lr_t, eps_t, one_minus_b1, one_minus_b2 : scalars
    tiny : scalar
        Moment estimates below this in magnitude become 0:
        ``np.finfo(dtype).tiny``, the smallest normal number.
    """
    if g.shape != p.shape or m.shape != p.shape or v.shape != p.shape:
        raise ValueError("inplace_adam_update: p, g, m and v must have one shape")
    dtype = p.dtype.type
    step, eps, c1, c2, floor = dtype(lr_t), dtype(eps_t), dtype(one_minus_b1), dtype(one_minus_b2), dtype(tiny)
    zero = dtype(0)
    saved = _flush_to_zero_on()
    for k in range(p.size):
        mk = m[k] + c1 * (g[k] - m[k])
        vk = v[k] + c2 * (g[k] * g[k] - v[k])
        mk = zero if abs(mk) < floor else mk
        vk = zero if vk < floor else vk
        m[k] = mk
        v[k] = vk
        p[k] -= step * mk / (np.sqrt(vk) + eps)
    _restore(saved)


@numba.njit(**_STRICT)
def inplace_scale_rows_flush(a, w, tiny):
    """``a[i, :] *= w[i]`` in place, and 0 wherever the product is smaller in magnitude than ``tiny``.

    Strict IEEE products in ``a``'s dtype, as ``a * w[:, None].astype(a.dtype)``,
    except that results below ``tiny`` (``np.finfo(dtype).tiny``, the smallest
    normal number) become 0; the loop runs with x86's flush-to-zero mode on, as
    :func:`inplace_adam_update` does. Why: an IWAE row whose normalised weight is
    1e-30 gives a gradient row of subnormal numbers, and the matrix products of
    the decoder's backward pass then take the CPU's slow path (measured in
    ``benchmarks/README.md``).

    Parameters
    ----------
    a : ndarray, shape (n, m), overwritten
    w : ndarray, shape (n,)
    tiny : scalar

    Returns
    -------
    a : ndarray, shape (n, m)
    """
    if w.shape != (a.shape[0],):
        raise ValueError("inplace_scale_rows_flush: w must have shape (a.shape[0],)")
    dtype = a.dtype.type
    floor, zero = dtype(tiny), dtype(0)
    saved = _flush_to_zero_on()
    for i in range(a.shape[0]):
        wi = dtype(w[i])
        for j in range(a.shape[1]):
            v = a[i, j] * wi
            a[i, j] = zero if abs(v) < floor else v
    _restore(saved)
    return a
