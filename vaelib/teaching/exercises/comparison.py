"""Comparing a learner's output with the expected one: tolerances, and the few lines that say how they differ.

Every function here takes float64 arrays (what :mod:`.running` makes of any output) and never raises.
"""

from dataclasses import dataclass

import numpy as np

#: Entries shown for a failing output, the ones that differ most: for a function of one output, of several.
SHOWN_ENTRIES = (3, 2)


@dataclass(frozen=True)
class Tolerance:
    """``|yours - expected| <= rtol * |expected| + atol * (1 + max |expected|)``, entry by entry.

    A non-finite expected entry (an infinite log-density, say) must be matched exactly.
    """

    rtol: float
    atol: float

    def bound(self, expected):
        finite = expected[np.isfinite(expected)]
        scale = 1.0 + (np.max(np.abs(finite)) if finite.size else 0.0)
        return self.rtol * np.abs(expected) + self.atol * scale

    def within(self, got, expected):
        """Entry by entry: is ``got`` within the tolerance of ``expected``? Same shapes assumed."""
        with np.errstate(all="ignore"):
            close = np.abs(got - expected) <= self.bound(expected)
        exact = (got == expected) | (np.isnan(got) & np.isnan(expected))
        return np.where(np.isfinite(expected), close, exact)


FLOAT64 = Tolerance(rtol=1e-7, atol=1e-9)
FLOAT32 = Tolerance(rtol=1e-4, atol=1e-5)


def same(a, b, tol):
    """``a`` reproduces ``b``: the same shape, non-finite in the same places, close elsewhere.

    Which non-finite value (inf, -inf or nan) is not compared: two ways of writing one slip may give
    ``log 0`` in one and ``0 * log 0`` in the other.
    """
    if a.shape != b.shape:
        return False
    finite = np.isfinite(b)
    if np.any(np.isfinite(a) != finite):
        return False
    return bool(np.all(tol.within(a[finite], b[finite])))


def differences(name, got, expected, tol, shown=SHOWN_ENTRIES[0]):
    """A few lines saying how ``got`` differs from ``expected``, or ``""`` if it is within ``tol``."""
    if got.shape != expected.shape:
        return f"    {name} has shape {got.shape} where {expected.shape} is expected. {shape_hint(got, expected)}"
    not_finite = ~np.isfinite(got) & np.isfinite(expected)
    if not_finite.any():
        index = tuple(np.argwhere(not_finite)[0])
        return f"    {_at(name, index)}: expected {expected[index]:.6g}, yours {got[index]} (not finite)"
    wrong = ~tol.within(got, expected)
    if not wrong.any():
        return ""
    with np.errstate(all="ignore"):
        diff = np.where(wrong, np.abs(got - expected), -1.0)
    diff = np.where(np.isnan(diff), np.inf, diff)
    order = np.argsort(-diff, axis=None, kind="stable")[:min(shown, int(wrong.sum()))]
    lines = []
    for flat in order:
        index = np.unravel_index(flat, diff.shape)
        lines.append(f"    {_at(name, index)}: expected {expected[index]:.6g}, yours {got[index]:.6g}")
    if wrong.sum() > len(lines):
        lines.append(f"    ({int(wrong.sum())} of {diff.size} entries of {name} differ; "
                     f"the {len(lines)} largest differences are shown)")
    return "\n".join(lines)


def _at(name, index):
    return f"{name}[{', '.join(str(int(i)) for i in index)}]" if len(index) else name


def shape_hint(got, expected):
    """A guess at the slip behind a wrong shape."""
    if got.ndim == 0 and expected.ndim > 0:
        return "A single number where one value per row is expected: is a reduction over the batch too many?"
    if expected.ndim == 0 and got.size == 1 and got.ndim >= 2:
        return ("A 1 x 1 array where a single number is expected: a product of column vectors (shape (n, 1)) "
                "gives one. Use 1-D vectors.")
    if got.shape == (1,) + expected.shape:
        return ("A leading axis of length 1: a trailing comma after `return`, a pair of brackets too many, or "
                "keepdims=True in a reduction?")
    if got.shape == expected.shape + (1,):
        return "An extra axis of length 1 at the end: keepdims=True in a reduction, or a [:, None] too many?"
    if expected.ndim == 1 and got.shape == expected.shape * 2:
        return ("A square array: is a reduction missing, or was an array of shape (n, 1) (keepdims=True, "
                "[:, None]) combined with one of shape (n,)? The two broadcast to (n, n).")
    if got.ndim > expected.ndim and got.shape[: expected.ndim] == expected.shape:
        return "An extra axis: is a reduction missing?"
    if got.ndim > expected.ndim and got.shape[got.ndim - expected.ndim:] == expected.shape:
        return ("An extra leading axis: is a reduction over axis 0 missing, or several arrays returned where one "
                "is expected?")
    if got.ndim == expected.ndim and got.shape == expected.shape[::-1]:
        return "The transpose of the expected shape."
    if got.ndim < expected.ndim:
        return "An axis too few: is there a reduction too many?"
    return ""
