"""Calling a learner's function on one case, whatever it returns or raises.

:func:`run` calls the function on fresh copies of a case's inputs and returns a :class:`Run`: the
outputs as float64 arrays, or the reason there are none (an exception, ``None``, a string, a
placeholder). It also records which inputs the function wrote into. It never raises, except
``KeyboardInterrupt``: that is the learner stopping the cell, and it must stop it.
"""

import warnings
from dataclasses import dataclass

import numpy as np

#: Longest exception message quoted in a report.
MESSAGE_LENGTH = 200


@dataclass
class Run:
    """What one function did on one case.

    Attributes
    ----------
    outputs : tuple of ndarray (float64), or None
        The outputs, one per name, when the function returned numbers.
    dtypes : tuple
        The dtype of each output that was a NumPy array or scalar (``None`` for Python numbers and lists).
    error : str or None
        Why there are no outputs ("raised ValueError: ...", "returned None ..."), for the report.
    placeholder : bool
        The function has not been written for this case: it raised ``NotImplementedError``, or
        returned ``...`` or ``NotImplemented``.
    modified : tuple of str
        The inputs the function changed in place.
    partial : tuple or None
        When some outputs are placeholders (or ``None``) and the others are numbers: one float64 array
        per output, ``None`` for each that is not written yet; ``error`` names the first of those.
    """

    outputs: tuple = None
    dtypes: tuple = ()
    error: str = None
    placeholder: bool = False
    modified: tuple = ()
    partial: tuple = None


def run(fn, case, output_names):
    """Call ``fn`` on a copy of ``case``'s inputs: a :class:`Run`, whatever ``fn`` does."""
    inputs = case.copied_inputs()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = _call(fn, inputs, output_names)
    result.modified = tuple(name for name, value in case.inputs.items()
                            if isinstance(value, np.ndarray) and not _unchanged(inputs[name], value))
    return result


def _call(fn, inputs, output_names):
    try:
        value = fn(*inputs.values())
    except KeyboardInterrupt:
        raise
    except NotImplementedError as error:
        return Run(error=f"raised NotImplementedError{_message(error, ': ')}", placeholder=True)
    except BaseException as error:  # noqa: B036, the learner's bug (even a SystemExit) is reported, not raised
        return Run(error=f"raised {type(error).__name__}{_message(error, ': ')}")
    try:
        return outputs_of(value, output_names)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: B036, an output whose conversion runs the learner's code and fails
        return Run(error=f"returned a {type(value).__name__} that could not be read "
                         f"({type(error).__name__}{_message(error, ': ')})")


def _message(error, prefix):
    """The exception's message, shortened, after ``prefix``; ``""`` if it has none or cannot be shown."""
    try:
        text = str(error)
    except BaseException:  # noqa: B036, a learner's exception class with a broken __str__
        return ""
    if not text:
        return ""
    return prefix + (text if len(text) <= MESSAGE_LENGTH else text[:MESSAGE_LENGTH] + " ...")


def _is_placeholder(value):
    return value is Ellipsis or value is NotImplemented


def outputs_of(value, output_names):
    """A :class:`Run` holding ``value`` read as one float64 array per output name, or saying why it cannot be."""
    if _is_placeholder(value):
        return Run(error="returned a placeholder", placeholder=True)
    if value is None:
        return Run(error="returned None: is a `return` missing?")
    n = len(output_names)
    if n > 1:
        if not isinstance(value, (tuple, list)) or len(value) != n:
            got = f"{len(value)} values" if isinstance(value, (tuple, list)) else f"one {type(value).__name__}"
            return Run(error=f"returned {got} where {n} are expected: {', '.join(output_names)}")
        values = tuple(value)
        if all(_is_placeholder(v) for v in values):
            return Run(error="returned placeholders", placeholder=True)
    else:
        values = (value,)
    arrays, dtypes, problems = [], [], []
    for name, v in zip(output_names, values):
        array, problem = _as_float64(v)
        arrays.append(array)
        dtypes.append(v.dtype if isinstance(v, (np.ndarray, np.generic)) else None)
        if problem:
            problems.append((name, v, problem))
    if problems:
        name, _, problem = problems[0]
        error = f"returned {problem} for {name} where numbers are expected"
        unwritten = all(v is None or _is_placeholder(v) for _, v, _ in problems) and len(problems) < n
        return Run(error=error, partial=tuple(arrays) if unwritten else None)
    return Run(outputs=tuple(arrays), dtypes=tuple(dtypes))


def _as_float64(value):
    """``(array, None)``, or ``(None, what value is)`` when it is not an array of real numbers."""
    if _is_placeholder(value):
        return None, "a placeholder (...)" if value is Ellipsis else "a placeholder (NotImplemented)"
    if value is None:
        return None, "None"
    try:
        array = np.asarray(value)
    except Exception:  # ragged lists, objects whose __array__ raises
        return None, f"a {type(value).__name__} that NumPy cannot read as an array"
    if array.dtype.kind == "O":
        if any(v is None for v in array.flat):  # NumPy would read None as nan
            return None, f"a {type(value).__name__} holding None"
        try:
            array = array.astype(np.float64)
        except Exception:
            return None, f"a {type(value).__name__}"
    if array.dtype.kind not in "biuf":
        kind = "complex numbers" if array.dtype.kind == "c" else f"a {type(value).__name__}"
        return None, kind
    return array.astype(np.float64), None


def _unchanged(after, before):
    """Does the copy the function received still hold the case's values, in shape, dtype and content?"""
    if not isinstance(after, np.ndarray) or after.shape != before.shape or after.dtype != before.dtype:
        return False
    if before.dtype.kind in "fc":
        return bool(np.all((after == before) | (np.isnan(after) & np.isnan(before))))
    return bool(np.all(after == before))
