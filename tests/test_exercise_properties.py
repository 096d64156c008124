"""Properties of every exercise check, drawn by Hypothesis: simple corruptions of the right answer are
always caught, and the right answer, in any harmless form, always passes.

A corruption changes one output of the reference solution on every case: a sign flip, a constant
factor (2, 1/2 or any other away from 1), an added constant (a constant dropped or added), the rows
reversed or the axes transposed, or one entry moved by more than the check's tolerance. The draws are
derandomized, so every run tries the same examples.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vaelib.teaching import exercise_solutions as solutions
from vaelib.teaching.exercises import CORRECT, EXERCISES, WRONG, grade

NAMES = list(EXERCISES)
OUTPUTS = [(name, k) for name in NAMES for k in range(len(EXERCISES[name].outputs))]
DRAWS = settings(derandomize=True, max_examples=10, deadline=None, database=None)


def _ids(pairs):
    return [f"{name}.{EXERCISES[name].outputs[k]}" for name, k in pairs]


def _as_tuple(name, value):
    return tuple(value) if len(EXERCISES[name].outputs) > 1 else (value,)


def _from_tuple(name, values):
    return tuple(values) if len(EXERCISES[name].outputs) > 1 else values[0]


def _is_float32(args):
    return any(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in args)


def _bound(name, args, value):
    """The check's tolerance at each entry of ``value`` (a right output) for a call on ``args``."""
    tolerance = EXERCISES[name].tolerances[1 if _is_float32(args) else 0]
    return tolerance.bound(value)


def corrupted(name, k, change):
    """The reference solution with output ``k`` replaced by ``change(output, args)`` (a float64 copy)."""
    def answer(*args):
        outputs = [np.array(o, dtype=np.float64) for o in _as_tuple(name, getattr(solutions, name)(*args))]
        outputs[k] = change(outputs[k], args)
        return _from_tuple(name, outputs)
    return answer


def _caught(name, answer):
    with np.errstate(all="ignore"):
        return grade(name, answer).status == WRONG


def _output_ndims(name, k):
    return {np.ndim(_as_tuple(name, getattr(solutions, name)(*case.copied_inputs().values()))[k])
            for case in EXERCISES[name].cases}


# ---------------------------------------------------------------- corruptions are caught
@pytest.mark.parametrize("name, k", OUTPUTS, ids=_ids(OUTPUTS))
def test_a_sign_flip_is_caught(name, k):
    assert _caught(name, corrupted(name, k, lambda o, args: -o))


FACTORS = st.one_of(st.sampled_from([2.0, 0.5, -1.0, 10.0]), st.floats(1.001, 100.0), st.floats(0.01, 0.999),
                    st.floats(-100.0, -0.01))


@pytest.mark.parametrize("name, k", OUTPUTS, ids=_ids(OUTPUTS))
@DRAWS
@given(factor=FACTORS)
def test_a_constant_factor_is_caught(name, k, factor):
    assert _caught(name, corrupted(name, k, lambda o, args: factor * o))


@pytest.mark.parametrize("name, k", OUTPUTS, ids=_ids(OUTPUTS))
@DRAWS
@given(size=st.floats(1e-3, 1e3), sign=st.sampled_from([-1.0, 1.0]))
def test_an_added_or_dropped_constant_is_caught(name, k, size, sign):
    assert _caught(name, corrupted(name, k, lambda o, args: o + sign * size))


ARRAYS = [(name, k) for name, k in OUTPUTS if max(_output_ndims(name, k)) >= 1]
MATRICES = [(name, k) for name, k in OUTPUTS if max(_output_ndims(name, k)) >= 2]


@pytest.mark.parametrize("name, k", ARRAYS, ids=_ids(ARRAYS))
def test_rows_in_the_wrong_order_are_caught(name, k):
    assert _caught(name, corrupted(name, k, lambda o, args: o[::-1] if o.ndim else o))


@pytest.mark.parametrize("name, k", MATRICES, ids=_ids(MATRICES))
def test_a_transposed_output_is_caught(name, k):
    assert _caught(name, corrupted(name, k, lambda o, args: o.T))


@pytest.mark.parametrize("name, k", MATRICES, ids=_ids(MATRICES))
def test_an_output_reduced_over_the_wrong_axis_is_caught(name, k):
    """Summed over the other axis, and broadcast back: the shape is right, the numbers are not."""
    assert _caught(name, corrupted(name, k, lambda o, args: np.broadcast_to(
        np.sum(o, axis=0, keepdims=True) / o.shape[0], o.shape) if o.ndim == 2 else o))


def _moved(index, times, sign):
    """One entry (at flat ``index``, wrapped to the size) moved by ``times`` the check's tolerance there."""
    def change(o, args, name):
        flat = o.reshape(-1).copy()
        i = index % flat.size
        flat[i] += sign * times * _bound(name, args, o).reshape(-1)[i]
        return flat.reshape(o.shape)
    return change


@pytest.mark.parametrize("name, k", OUTPUTS, ids=_ids(OUTPUTS))
@DRAWS
@given(index=st.integers(0, 10**6), times=st.floats(3.0, 1e3), sign=st.sampled_from([-1.0, 1.0]))
def test_one_entry_moved_beyond_the_tolerance_is_caught(name, k, index, times, sign):
    change = _moved(index, times, sign)
    assert _caught(name, corrupted(name, k, lambda o, args: change(o, args, name)))


# ---------------------------------------------------------------- the right answer always passes
FORMS = {
    "as returned": lambda o: o,
    "as float64": lambda o: np.asarray(o, dtype=np.float64),
    "as a 0-d array or an array": lambda o: np.array(o),
    "as a list, or a Python float": lambda o: np.asarray(o).tolist(),
}


@pytest.mark.parametrize("name", NAMES)
@DRAWS
@given(form=st.sampled_from(sorted(FORMS)), container=st.sampled_from([tuple, list]), index=st.integers(0, 10**6),
       times=st.floats(0.0, 0.5), sign=st.sampled_from([-1.0, 1.0]))
def test_the_reference_passes_in_any_harmless_form(name, form, container, index, times, sign):
    """The right numbers, in another array type or container, or moved by at most half the tolerance."""
    within = _moved(index, times, sign)

    def answer(*args):
        outputs = _as_tuple(name, getattr(solutions, name)(*args))
        outputs = [FORMS[form](within(np.array(o, dtype=np.float64), args, name)) for o in outputs]
        return container(outputs) if len(outputs) > 1 else outputs[0]

    assert grade(name, answer).status == CORRECT


@pytest.mark.parametrize("name", NAMES)
def test_the_reference_passes_as_written(name):
    assert grade(name, getattr(solutions, name)).status == CORRECT


# ---------------------------------------------------------------- answers that are right in their numbers only
@DRAWS
@given(shift=st.one_of(st.sampled_from([-100.0, -120.0, -500.0, -800.0]), st.floats(-200.0, 0.0),
                       st.floats(-3000.0, 1000.0)))
def test_log_mean_exp_shifted_by_any_constant_fails(shift):
    """Exact on paper for every shift; in floating point only each row's largest log-weight keeps all rows in range."""
    def shifted(log_w):
        return shift + np.log(np.mean(np.exp(log_w - shift), axis=1))
    assert _caught("iwae_estimate", shifted)


ARRAY_INPUTS = [(name, input_name) for name in NAMES for input_name, value in EXERCISES[name].cases[0].inputs.items()
                if isinstance(value, np.ndarray)]


@pytest.mark.parametrize("name, input_name", ARRAY_INPUTS, ids=[f"{n}.{i}" for n, i in ARRAY_INPUTS])
@DRAWS
@given(index=st.integers(0, 10**6), change=st.floats(1e-3, 1e3), sign=st.sampled_from([-1.0, 1.0]),
       before=st.booleans())
def test_writing_into_any_input_is_reported(name, input_name, index, change, sign, before):
    """One entry of one input changed in place, before or after the right outputs are computed: named."""
    position = list(EXERCISES[name].cases[0].inputs).index(input_name)

    def writes(*args):
        target = args[position].reshape(-1)          # a view: writing into it writes into the input
        if before:
            saved = args[position].copy()
            target[index % target.size] += sign * change
            args = args[:position] + (saved,) + args[position + 1:]
            return getattr(solutions, name)(*args)
        out = getattr(solutions, name)(*(np.copy(a) if isinstance(a, np.ndarray) else a for a in args))
        target[index % target.size] += sign * change
        return out

    result = grade(name, writes)
    assert result.status == WRONG and result.modified == [input_name]


def _case_index(name, args):
    """Which case of the exercise ``args`` are the inputs of."""
    for i, case in enumerate(EXERCISES[name].cases):
        if all(np.array_equal(np.asarray(a), np.asarray(v)) if isinstance(v, np.ndarray) else a == v
               for a, v in zip(args, case.inputs.values())):
            return i
    raise LookupError("not a case of the exercise")


@pytest.mark.parametrize("name", NAMES)
@DRAWS
@given(data=st.data())
def test_an_answer_unwritten_on_some_cases_is_graded_on_the_others(name, data):
    n = len(EXERCISES[name].cases)
    unwritten = sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n - 1)))

    def partly_written(*args):
        if _case_index(name, args) in unwritten:
            raise NotImplementedError
        return getattr(solutions, name)(*args)

    result = grade(name, partly_written)
    assert result.status == WRONG and result.failing_cases == unwritten and result.unwritten == unwritten
    assert "every other case is right" in " ".join(result.report().split())
