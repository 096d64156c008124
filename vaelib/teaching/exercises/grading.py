"""Grading a learner's function on fixed cases, and naming the classic mistake it makes.

An :class:`Exercise` holds

- **cases**: the inputs the learner's function is run on, edge cases and float32 among them;
- **a reference**: the right outputs, computed from :mod:`vaelib.core` or :mod:`scipy`
  (never from a module of solutions);
- **a catalogue of mistakes**: wrong implementations with the same signature, each with a
  name and a one-line description of what was done wrong.

:meth:`Exercise.grade` calls the learner's function on every case (positionally, on copies of
the inputs) and compares each output with the reference, at a tolerance set by the case's
dtype. An output that is wrong is then compared with the same output of every catalogued
mistake, on all the cases: a mistake is named only when it reproduces the learner's output in
every case (raising where the learner's function raised). :meth:`Exercise.check` prints the
report, and never raises: a function that still raises ``NotImplementedError`` is "not
attempted yet", any other exception is reported with its type and message.

The report says which case failed, the expected and the obtained value at the (three, or two per
output) entries that differ most, and the mistake, if one matches. It prints numbers and the mistake's
description, never source code or the formula of the answer.
"""

import textwrap
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np

NOT_ATTEMPTED = "not attempted"
WRONG = "wrong"
CORRECT = "correct"

#: Entries shown for a failing output, the ones that differ most: for a function of one output, of several.
SHOWN_ENTRIES = (3, 2)


@dataclass(frozen=True)
class Tolerance:
    """``|yours - expected| <= rtol * |expected| + atol * (1 + max |expected|)``, entry by entry."""

    rtol: float
    atol: float

    def bound(self, expected):
        finite = expected[np.isfinite(expected)]
        scale = 1.0 + (np.max(np.abs(finite)) if finite.size else 0.0)
        return self.rtol * np.abs(expected) + self.atol * scale


FLOAT64 = Tolerance(rtol=1e-7, atol=1e-9)
FLOAT32 = Tolerance(rtol=1e-4, atol=1e-5)


@dataclass(frozen=True)
class Case:
    """One call of the learner's function.

    Parameters
    ----------
    label : str
        What is special about the case, shown to the learner (``"log_var = 0"``).
    inputs : dict
        Argument name -> value, in the order of the function's parameters.
    facts : dict
        Known values that are not inputs (``log p(x)`` of the model, say), for sanity messages.
    """

    label: str
    inputs: dict
    facts: dict = field(default_factory=dict)

    @property
    def is_float32(self):
        return any(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in self.inputs.values())

    def copied_inputs(self):
        """Fresh copies of the inputs, so that a function writing into them spoils nothing."""
        return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in self.inputs.items()}

    def float64_inputs(self):
        """Copies with every floating array in float64: what the reference computes on."""
        return {k: v.astype(np.float64) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
                for k, v in self.copied_inputs().items()}


@dataclass(frozen=True)
class Mistake:
    """A named wrong implementation.

    Parameters
    ----------
    key : str
        Short identifier, unique within the exercise.
    description : str
        What the wrong implementation did, in words, for the learner. It names the slip; it
        does not state the right formula.
    wrong : callable
        Same signature as the exercise's function; returns the wrong outputs.
    affects : tuple of str
        The outputs it changes (empty: all of them).
    """

    key: str
    description: str
    wrong: Callable
    affects: tuple = ()


@dataclass
class Run:
    """What one function returned on one case: its outputs as float64 arrays, or why it has none."""

    outputs: tuple = None
    dtypes: tuple = ()
    error: str = None


class NotAttempted(Exception):
    """The function is still the placeholder."""


@dataclass
class Result:
    """The grade of one function: its status, and everything the report says."""

    exercise: "Exercise"
    status: str
    failing_cases: list = field(default_factory=list)  # case indices
    first_failure: str = ""  # the detail of the first failing case
    mistakes: list = field(default_factory=list)  # (Mistake, [output names])
    diagnostics: list = field(default_factory=list)
    remarks: list = field(default_factory=list)

    @property
    def mistake_keys(self):
        return [m.key for m, _ in self.mistakes]

    def report(self):
        ex = self.exercise
        if self.status == NOT_ATTEMPTED:
            return (f"not attempted yet: `{ex.name}` is still the placeholder.\n"
                    "Write its body, then run this cell again.")
        labels = [case.label for case in ex.cases]
        if self.status == CORRECT:
            lines = [f"correct: `{ex.name}` gives {ex.title} in all {len(labels)} cases "
                     f"({'; '.join(labels)})."] + self.remarks
            return "\n".join(_wrap(line) for line in lines)
        lines = [f"not yet right: {ex.title}.", _which_fail(labels, self.failing_cases),
                 f"first failing case, '{labels[self.failing_cases[0]]}':"]
        prose = []
        for mistake, outputs in self.mistakes:
            where = f" ({', '.join(outputs)})" if len(ex.outputs) > 1 else ""
            prose.append(f"known mistake{where}: {mistake.description}")
        if not self.mistakes:
            prose.append("it matches none of the mistakes in the catalogue.")
        prose += self.diagnostics
        lines = [_wrap(line) for line in lines] + [self.first_failure] + [_wrap(line) for line in prose]
        lines.append(f'to try that case: inputs = exercises.case_inputs("{ex.name}", {self.failing_cases[0]})')
        return "\n".join(lines)


@dataclass(eq=False)
class Exercise:
    """An exercise: the function to write, its cases, its reference and its catalogue of mistakes.

    Parameters
    ----------
    name : str
        The function the learner writes (and the stub defines).
    title : str
        What it computes, in a few words ("the closed-form KL per row").
    notebook : str
        The notebook it belongs to, by number ("05").
    outputs : tuple of str
        Names of the values it returns, in order.
    make_cases : callable
        ``make_cases() -> list of Case``; deterministic.
    reference : callable
        ``reference(case) -> outputs`` (one value, or a tuple for several outputs).
    mistakes : tuple of Mistake
    task : str
        Markdown stating the task, for the notebook.
    stub : str
        Python source of the function with its docstring and a placeholder body.
    nonfinite_hint : str
        Said when the learner's output is not finite where the reference is.
    sanity : callable or None
        ``sanity(case, outputs) -> str or None``: a message when an output is impossible
        (a negative KL, an ELBO above log p(x)), whatever the mistake.
    tolerances : (Tolerance, Tolerance)
        For float64 and float32 cases.
    """

    name: str
    title: str
    notebook: str
    outputs: tuple
    make_cases: Callable
    reference: Callable
    mistakes: tuple
    task: str
    stub: str
    nonfinite_hint: str = ""
    sanity: Callable = None
    tolerances: tuple = (FLOAT64, FLOAT32)

    # ------------------------------------------------------------ fixed data, computed once
    @cached_property
    def cases(self):
        return list(self.make_cases())

    @cached_property
    def expected(self):
        """The reference outputs per case, as tuples of float64 arrays."""
        with np.errstate(all="ignore"):
            return [tuple(np.asarray(v, dtype=np.float64) for v in self._as_tuple(self.reference(case)))
                    for case in self.cases]

    @cached_property
    def mistake_runs(self):
        """Each mistake's outputs per case, computed on the case's own dtype, as a learner's would be."""
        return {m.key: [self._run(m.wrong, case, raise_not_implemented=False) for case in self.cases]
                for m in self.mistakes}

    @property
    def check_source(self):
        """The notebook's check cell."""
        return f"from vaelib.teaching import exercises\nexercises.check_{self.name}({self.name})"

    def tolerance(self, case):
        return self.tolerances[1] if case.is_float32 else self.tolerances[0]

    # ------------------------------------------------------------ running a function
    def _as_tuple(self, value):
        return tuple(value) if len(self.outputs) > 1 else (value,)

    def _run(self, fn, case, raise_not_implemented=True):
        """Call ``fn`` on a copy of the case's inputs; never raises, except NotAttempted."""
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = fn(*case.copied_inputs().values())
        except NotImplementedError:
            if raise_not_implemented:
                raise NotAttempted from None
            return Run(error="raised NotImplementedError")
        except Exception as error:  # the learner's bug, reported rather than raised
            message = str(error) if len(str(error)) <= 200 else str(error)[:200] + " ..."
            return Run(error=f"raised {type(error).__name__}: {message}")
        if value is Ellipsis or value is NotImplemented:
            if raise_not_implemented:
                raise NotAttempted
            return Run(error="returned a placeholder")
        return self._outputs_of(value)

    def _outputs_of(self, value):
        if value is None:
            return Run(error="returned None: is a `return` missing?")
        n = len(self.outputs)
        if n > 1 and (not isinstance(value, (tuple, list)) or len(value) != n):
            got = f"{len(value)} values" if isinstance(value, (tuple, list)) else f"one {type(value).__name__}"
            return Run(error=f"returned {got} where {n} are expected: {', '.join(self.outputs)}")
        arrays, dtypes = [], []
        for name, v in zip(self.outputs, self._as_tuple(value)):
            try:
                a = np.asarray(v)
            except Exception:  # ragged lists and the like
                a = np.asarray(None)
            if a.dtype.kind not in "biuf":
                return Run(error=f"returned {type(v).__name__} for {name} where numbers are expected")
            dtypes.append(a.dtype if isinstance(v, (np.ndarray, np.generic)) else None)
            arrays.append(a.astype(np.float64))
        return Run(outputs=tuple(arrays), dtypes=tuple(dtypes))

    # ------------------------------------------------------------ grading
    def grade(self, fn):
        """Run ``fn`` on every case and grade it. Returns a :class:`Result`; never raises."""
        try:
            runs = [self._run(fn, case) for case in self.cases]
        except NotAttempted:
            return Result(self, NOT_ATTEMPTED)
        failures = [self._case_failure(i, run) for i, run in enumerate(runs)]
        failing = [i for i, f in enumerate(failures) if f is not None]
        if not failing:
            return Result(self, CORRECT, remarks=self._dtype_remarks(runs))
        wrong_outputs = sorted({k for i in failing for k in failures[i][1]})
        mistakes = []
        for m in self.mistakes:
            outs = [self.outputs[k] for k in wrong_outputs
                    if (not m.affects or self.outputs[k] in m.affects)
                    and self._reproduces(runs, self.mistake_runs[m.key], k)]
            if outs:
                mistakes.append((m, outs))
        diagnostics = self._sanity_messages(runs)
        matched = {name for _, outs in mistakes for name in outs}
        for k in wrong_outputs:
            if self.outputs[k] not in matched:
                diagnostics += self._generic_diagnostics(runs, k, failing)
        return Result(self, WRONG, failing_cases=failing, first_failure=failures[failing[0]][0],
                      mistakes=mistakes, diagnostics=diagnostics)

    def check(self, fn):
        """Grade ``fn`` and print the report (nothing is returned, nothing is raised)."""
        print(self.grade(fn).report())

    def _case_failure(self, i, run):
        """``None`` if the run is right on case ``i``, else ``(text, indices of the wrong outputs)``."""
        if run.error is not None:
            return f"    your function {run.error}", list(range(len(self.outputs)))
        texts, wrong = [], []
        tol = self.tolerance(self.cases[i])
        for k, (got, exp) in enumerate(zip(run.outputs, self.expected[i])):
            shown = SHOWN_ENTRIES[len(self.outputs) > 1]
            text = _compare(self._label(k), got, exp, tol, shown)
            if text:
                texts.append(text)
                wrong.append(k)
        return ("\n".join(texts), wrong) if wrong else None

    def _label(self, k):
        return self.outputs[k] if len(self.outputs) > 1 else "your result"

    def _reproduces(self, runs, mistake_runs, k):
        """Does the mistake give the learner's output ``k`` in every case (raising where it raised)?"""
        for case, run, wrong in zip(self.cases, runs, mistake_runs):
            if (run.error is None) != (wrong.error is None):
                return False
            if run.error is None and not _same(run.outputs[k], wrong.outputs[k], self.tolerance(case)):
                return False
        return True

    def _sanity_messages(self, runs):
        if self.sanity is None:
            return []
        messages = []
        for case, run in zip(self.cases, runs):
            if run.error is None:
                message = self.sanity(case, run.outputs if len(self.outputs) > 1 else run.outputs[0])
                if message and message not in messages:
                    messages.append(message)
        return messages[:2]

    def _generic_diagnostics(self, runs, k, failing):
        """Patterns across all the cases: a fault only in float32, a value that is not finite, a constant factor."""
        name = self._label(k)
        if all(self.cases[i].is_float32 for i in failing) and not all(c.is_float32 for c in self.cases):
            return [f"{name} is right in every float64 case and wrong only in float32: look for an "
                    "overflow or underflow, or a step that loses precision."]
        if self.nonfinite_hint and any(
                run.error is None and run.outputs[k].shape == exp[k].shape
                and np.any(~np.isfinite(run.outputs[k]) & np.isfinite(exp[k]))
                for run, exp in zip(runs, self.expected)):
            return [self.nonfinite_hint]
        factor = self._constant_factor(runs, k)
        if factor is not None:
            return [f"{name} is {factor:.6g} times the expected value in every case."]
        return []

    def _constant_factor(self, runs, k):
        """``c != 1`` if output ``k`` is ``c`` times the expected one in every case (at its tolerance), else None.

        ``c`` is estimated on the float64 cases, where the ratios scatter by round-off only.
        """
        ratios = []
        for case, run, exp in zip(self.cases, runs, self.expected):
            if run.error is not None or run.outputs[k].shape != exp[k].shape:
                return None
            if not case.is_float32:
                use = np.abs(exp[k]) > 1e-6 * (1 + np.max(np.abs(exp[k]), initial=0))
                ratios.append(run.outputs[k][use] / exp[k][use])
        ratios = np.concatenate(ratios) if ratios else np.array([])
        if ratios.size < 2 or not np.all(np.isfinite(ratios)):
            return None
        factor = float(np.median(ratios))
        if abs(factor - 1) <= 1e-6 or np.any(np.abs(ratios - factor) > 1e-6 * abs(factor)):
            return None
        if all(_same(run.outputs[k], factor * exp[k], self.tolerance(case))
               for case, run, exp in zip(self.cases, runs, self.expected)):
            return factor
        return None

    def _dtype_remarks(self, runs):
        for case, run in zip(self.cases, runs):
            if case.is_float32 and run.error is None and any(
                    d == np.float64 for d, o in zip(run.dtypes, run.outputs) if o.ndim > 0):
                return ["(remark: your function returns float64 for float32 inputs. vaelib keeps float32 in "
                        "float32; a NumPy float64 scalar, such as np.log(2 * np.pi), promotes the result. "
                        "A Python float does not.)"]
        return []


def _wrap(line, width=110):
    """One line of prose, folded at ``width`` with its continuation indented."""
    return textwrap.fill(line, width=width, subsequent_indent="    ", break_on_hyphens=False)


def _which_fail(labels, failing):
    quoted = lambda indices: ", ".join(f"'{labels[i]}'" for i in indices)
    passing = [i for i in range(len(labels)) if i not in failing]
    if not passing:
        return f"All {len(labels)} cases fail."
    verb = lambda indices: "passes" if len(indices) == 1 else "pass"  # noqa: E731
    if len(passing) < len(failing):
        return f"{len(failing)} of {len(labels)} cases fail; {quoted(passing)} {verb(passing)}."
    return f"{len(failing)} of {len(labels)} cases {'fails' if len(failing) == 1 else 'fail'}: {quoted(failing)}."


# ---------------------------------------------------------------- comparing arrays
def _compare(name, got, expected, tol, shown=SHOWN_ENTRIES[0]):
    """A few lines saying how ``got`` differs from ``expected``, or ``""`` if it is within ``tol``."""
    if got.shape != expected.shape:
        return f"    {name} has shape {got.shape} where {expected.shape} is expected. {_shape_hint(got, expected)}"
    bad = ~np.isfinite(got) & np.isfinite(expected)
    if bad.any():
        index = tuple(np.argwhere(bad)[0])
        return f"    {_at(name, index)}: expected {expected[index]:.6g}, yours {got[index]} (not finite)"
    diff = np.abs(got - expected)
    if np.all(diff <= tol.bound(expected)):
        return ""
    order = np.argsort(-diff, axis=None, kind="stable")[:shown]
    lines = []
    for flat in order:
        index = np.unravel_index(flat, diff.shape)
        if diff[index] > tol.bound(expected)[index]:
            lines.append(f"    {_at(name, index)}: expected {expected[index]:.6g}, yours {got[index]:.6g}")
    n_bad = int(np.sum(diff > tol.bound(expected)))
    if n_bad > len(lines):
        lines.append(f"    ({n_bad} of {diff.size} entries of {name} differ; "
                     f"the {len(lines)} largest differences are shown)")
    return "\n".join(lines)


def _at(name, index):
    return f"{name}[{', '.join(str(int(i)) for i in index)}]" if len(index) else name


def _shape_hint(got, expected):
    if got.ndim == 0 and expected.ndim > 0:
        return "A single number where one value per row is expected: is a reduction over the batch too many?"
    if got.ndim > expected.ndim and got.shape[: expected.ndim] == expected.shape:
        return "An extra axis: is a reduction missing?"
    if got.ndim == expected.ndim and got.shape == expected.shape[::-1]:
        return "The transpose of the expected shape."
    if got.ndim < expected.ndim:
        return "An axis too few: is there a reduction too many?"
    return ""


def _same(a, b, tol):
    """``a`` reproduces ``b``: the same shape, non-finite in the same places, close elsewhere."""
    if a.shape != b.shape:
        return False
    fa, fb = np.isfinite(a), np.isfinite(b)
    if np.any(fa != fb):
        return False
    return bool(np.all(np.abs(a[fa] - b[fb]) <= tol.bound(b)[fb]))
