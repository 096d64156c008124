"""Grading a learner's function on fixed cases, and naming the classic mistake it makes.

An :class:`Exercise` holds

- **cases**: the inputs the learner's function is run on, edge cases and float32 among them;
- **a reference**: the right outputs, computed from :mod:`vaelib.core` or :mod:`scipy`
  (never from a module of solutions);
- **a catalogue of mistakes**: wrong implementations with the same signature, each with a
  name and a one-line description of what was done wrong.

:meth:`Exercise.grade` calls the learner's function on every case (positionally, on copies of
the inputs, :mod:`.running`) and compares each output with the reference, at a tolerance set by
the case's dtype (:mod:`.comparison`). A case fails when an output is wrong, when the function
raised or returned something that is not numbers, or when it wrote into one of its inputs. An
output that is wrong is then compared with the same output of every catalogued mistake, on all the
cases: a mistake is named only when it reproduces the learner's output in every case (raising
where the learner's function raised; cases the learner has not written yet, and cases where the
mistake is not defined, are left out).

A function that raises ``NotImplementedError`` (or returns ``...``) on every case is "not attempted
yet" when it is still the placeholder, and "not finished yet" when code was written before the
placeholder's line; one that does so on some cases only is graded on the others, and one that returns
``...`` (or ``None``) for some of its outputs is graded on the others. :meth:`Exercise.check` prints the
report, one message, and never raises.

The report says which case failed, the expected and the obtained value at the (three, or two per
output) entries that differ most, and the mistake, if one matches. It prints numbers and the mistake's
description, never source code or the formula of the answer.
"""

import textwrap
import warnings
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Callable

import numpy as np
from threadpoolctl import ThreadpoolController

from .comparison import FLOAT32, FLOAT64, SHOWN_ENTRIES, Tolerance, differences, same
from .running import Run, run

__all__ = ["CORRECT", "NOT_ATTEMPTED", "WRONG", "Case", "Exercise", "Mistake", "Result", "Run", "Tolerance",
           "FLOAT32", "FLOAT64"]

#: What to look for when an output is not finite, unless the exercise says more.
NONFINITE_HINT = ("Look for exp of a large number (it overflows to inf), a log of a number that underflowed to 0, "
                  "or 0/0.")

NOT_ATTEMPTED = "not attempted"
WRONG = "wrong"
CORRECT = "correct"


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
    defined_on : callable or None
        ``defined_on(case) -> bool``: the cases on which the slip has a definite value. Elsewhere
        (a singular matrix, say) any output of the learner's, or an exception, is consistent with it.
    """

    key: str
    description: str
    wrong: Callable
    affects: tuple = ()
    defined_on: Callable = None

    def compares_on(self, case):
        return self.defined_on is None or bool(self.defined_on(case))


@dataclass
class Result:
    """The grade of one function: its status, and everything the report says."""

    exercise: "Exercise"
    status: str
    failing_cases: list = field(default_factory=list)  # case indices
    shown_case: int = None  # the failing case whose detail is shown
    first_failure: str = ""  # that detail
    mistakes: list = field(default_factory=list)  # (Mistake, [output names])
    diagnostics: list = field(default_factory=list)
    remarks: list = field(default_factory=list)
    wrong_outputs: list = field(default_factory=list)  # output names
    wrong_numbers: bool = False  # some failing case returned numbers (not only errors or in-place writes)
    modified: list = field(default_factory=list)  # input names the function wrote into
    unwritten: list = field(default_factory=list)  # case indices that reach a NotImplementedError
    written: bool = False  # not attempted, but the function is not the placeholder itself
    unfinished_outputs: list = field(default_factory=list)  # output names returned as ... or None
    unfinished_cases: list = field(default_factory=list)  # case indices where some output is ... or None

    @property
    def mistake_keys(self):
        return [m.key for m, _ in self.mistakes]

    def report(self):
        if self.status == NOT_ATTEMPTED and self.written:
            return _wrap(f"not finished yet: `{self.exercise.name}` still raises NotImplementedError (or returns "
                         "a placeholder) in every case, so nothing it computes can be checked. Replace what is left "
                         "of the placeholder with code too, then run this cell again.")
        if self.status == NOT_ATTEMPTED:
            return (f"not attempted yet: `{self.exercise.name}` is still the placeholder.\n"
                    "Write its body, then run this cell again.")
        if self.status == CORRECT:
            return self._correct_report()
        return self._wrong_report()

    def _correct_report(self):
        ex, labels = self.exercise, [case.label for case in self.exercise.cases]
        lines = [f"correct: `{ex.name}` gives {ex.title} in all {len(labels)} cases ({'; '.join(labels)})."]
        return "\n".join(_wrap(line) for line in lines + self.remarks)

    def _wrong_report(self):
        ex, labels = self.exercise, [case.label for case in self.exercise.cases]
        which = "first failing case" if self.shown_case == self.failing_cases[0] else \
            "first failing case that your function handles"
        lines = [f"not yet right: {ex.title}.", _which_fail(labels, self.failing_cases),
                 f"{which}, '{labels[self.shown_case]}':"]
        lines = [_wrap(line) for line in lines] + [self.first_failure]
        lines += [_wrap(line) for line in self._prose(labels)]
        lines.append(f'to try that case: inputs = exercises.case_inputs("{ex.name}", {self.shown_case})')
        return "\n".join(lines)

    def _prose(self, labels):
        prose = []
        if self.modified:
            prose.append(_modified_message(self.modified))
        if self.unwritten:
            prose.append(_unwritten_message(self.unwritten, labels, others_right=not self.wrong_outputs))
        if self.unfinished_outputs:
            prose.append(self._unfinished_message())
        for mistake, outputs in self.mistakes:
            where = f" ({', '.join(outputs)})" if len(self.exercise.outputs) > 1 else ""
            prose.append(f"known mistake{where}: {mistake.description}")
        if self.wrong_numbers and not self.mistakes:
            prose.append("it matches none of the mistakes in the catalogue.")
        return prose + self.diagnostics


    def _unfinished_message(self):
        """Which outputs are still placeholders, and which of the others are right."""
        missing = self.unfinished_outputs
        right = [o for o in self.exercise.outputs if o not in self.wrong_outputs]
        n, total = len(self.unfinished_cases), len(self.exercise.cases)
        where = "in every case" if n == total else f"in {n} of {total} cases"
        verb = "is" if len(missing) == 1 else "are"
        text = f"{_names(missing)} {verb} not written yet {where} (a placeholder, or None)"
        if right:
            where = "every case" if not self.unwritten else "every other case"
            return text + f"; {_names(right)} {'is' if len(right) == 1 else 'are'} right in {where}."
        return text + "."


def _names(names):
    """```a```, ```a` and `b```, ```a`, `b` and `c```."""
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def _unwritten_message(unwritten, labels, others_right):
    n = len(unwritten)
    reach = "reaches" if n == 1 else "reach"
    graded = "every other case is right." if others_right else "the other cases are graded."
    return (f"{n} of {len(labels)} cases still {reach} a part of your function that raises NotImplementedError "
            f"({', '.join(repr(labels[i]) for i in unwritten)}); {graded}")


def _modified_message(names):
    quoted = ", ".join(f"`{n}`" for n in names)
    s = "s" if len(names) > 1 else ""
    return (f"your function writes into its input{s} {quoted} (an in-place operation on an argument, such as "
            f"`{names[0]} -= ...`, `{names[0]} *= ...` or `{names[0]}[...] = ...`): the caller's array{s} "
            f"change{'' if s else 's'} too. Compute the result in new arrays instead.")


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
    nonfinite_hints : dict
        Output name -> what to look for when that output is not finite where the reference is (said
        after the case is named). Outputs without one get :data:`NONFINITE_HINT`.
    sanity : callable or None
        ``sanity(case, outputs) -> str or None``: a message when an output is impossible
        (a negative KL, an ELBO above log p(x)), whatever the mistake. Called only on outputs of the
        expected shapes.
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
    nonfinite_hints: dict = field(default_factory=dict)
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
        return {m.key: [run(m.wrong, case, self.outputs) for case in self.cases] for m in self.mistakes}

    @property
    def check_source(self):
        """The notebook's check cell."""
        return f"from vaelib.teaching import exercises\nexercises.check_{self.name}({self.name})"

    def tolerance(self, case):
        return self.tolerances[1] if case.is_float32 else self.tolerances[0]

    def _as_tuple(self, value):
        return tuple(value) if len(self.outputs) > 1 else (value,)

    def _label(self, k):
        return self.outputs[k] if len(self.outputs) > 1 else "your result"

    # ------------------------------------------------------------ grading
    def grade(self, fn):
        """Run ``fn`` on every case and grade it. Returns a :class:`Result`; never raises.

        BLAS runs on one thread: the cases' matrices are small, and on a busy machine several
        threads make a check many times slower.
        """
        one_thread = _blas_controller().limit(limits=1, user_api="blas")
        with np.errstate(all="ignore"), warnings.catch_warnings(), one_thread:
            warnings.simplefilter("ignore")
            runs = [run(fn, case, self.outputs) for case in self.cases]
            if all(r.placeholder for r in runs):
                return Result(self, NOT_ATTEMPTED, written=not self._is_placeholder_code(fn))
            return self._grade_runs(runs)

    @cached_property
    def _stub_code(self):
        namespace = {}
        exec(self.stub, namespace)  # noqa: S102, the exercise's own placeholder source
        return namespace[self.name].__code__

    def _is_placeholder_code(self, fn):
        """Is ``fn`` the stub, as the notebook defines it (its docstring or its message changed, at most)?

        Anything else that raises ``NotImplementedError`` in every case has code before the raise (or is not
        a plain function): the report says it is not finished, not that it is the placeholder.
        """
        try:
            stub = self._stub_code
        except Exception:  # a stub that does not compile is the exercise's fault: say what it always said
            return True
        try:
            code = fn.__code__
            return code.co_code == stub.co_code and code.co_names == stub.co_names
        except Exception:  # not a plain function (a partial, a callable object): not the placeholder either
            return False

    def check(self, fn):
        """Grade ``fn`` and print the report (nothing is returned, nothing is raised)."""
        try:
            report = self.grade(fn).report()
        except Exception as error:  # a fault of the check's own, never the learner's: still no traceback
            report = (f"the check could not grade `{self.name}`: {type(error).__name__} inside the check "
                      "itself, whatever your function does. Please report it.")
        print(report)

    def _grade_runs(self, runs):
        failures = [self._case_failure(i, r) for i, r in enumerate(runs)]
        failing = [i for i, f in enumerate(failures) if f is not None]
        if not failing:
            return Result(self, CORRECT, remarks=self._dtype_remarks(runs))
        wrong_outputs = sorted({k for i in failing if not runs[i].placeholder for k in failures[i][1]})
        mistakes = self._matching_mistakes(runs, wrong_outputs)
        handled = [i for i in failing if not runs[i].placeholder]
        shown = handled[0] if handled else failing[0]
        unfinished = sorted({k for r in runs if r.partial is not None for k, o in enumerate(r.partial) if o is None})
        wrong_numbers = any(any(_given(runs[i], k) is not None for k in failures[i][1]) for i in failing)
        return Result(self, WRONG, failing_cases=failing, shown_case=shown, first_failure=failures[shown][0],
                      mistakes=mistakes, diagnostics=self._diagnostics(runs, wrong_outputs, mistakes, failures),
                      wrong_outputs=[self.outputs[k] for k in wrong_outputs], wrong_numbers=wrong_numbers,
                      modified=[n for n in self.cases[0].inputs if any(n in r.modified for r in runs)],
                      unwritten=[i for i, r in enumerate(runs) if r.placeholder],
                      unfinished_outputs=[self.outputs[k] for k in unfinished],
                      unfinished_cases=[i for i, r in enumerate(runs) if r.partial is not None])

    def _case_failure(self, i, r):
        """``None`` if the run is right on case ``i``, else ``(text, indices of the wrong outputs)``."""
        texts, wrong = [], []
        if r.error is not None:
            texts.append(f"    your function {r.error}")
            wrong = [k for k in range(len(self.outputs)) if _given(r, k) is None]
        if r.error is None or r.partial is not None:
            tol, shown = self.tolerance(self.cases[i]), SHOWN_ENTRIES[len(self.outputs) > 1]
            for k, exp in enumerate(self.expected[i]):
                got = _given(r, k)
                text = "" if got is None else differences(self._label(k), got, exp, tol, shown)
                if text:
                    texts.append(text)
                    wrong.append(k)
            wrong.sort()
        if r.modified:
            texts.append(f"    your function changed {', '.join(f'`{n}`' for n in r.modified)} in place.")
        return ("\n".join(texts), wrong) if texts else None

    # ------------------------------------------------------------ naming a mistake
    def _matching_mistakes(self, runs, wrong_outputs):
        """``[(Mistake, [output names])]``: the catalogued mistakes that reproduce the learner's wrong outputs."""
        mistakes = []
        for m in self.mistakes:
            outs = [self.outputs[k] for k in wrong_outputs
                    if (not m.affects or self.outputs[k] in m.affects) and self._reproduces(runs, m, k)]
            if outs:
                mistakes.append((m, outs))
        return mistakes

    def _reproduces(self, runs, mistake, k):
        """Does the mistake give the learner's output ``k`` in every case where both are defined?"""
        compared = 0
        for case, r, wrong in zip(self.cases, runs, self.mistake_runs[mistake.key]):
            if r.placeholder or not mistake.compares_on(case):
                continue
            got = _given(r, k)
            if got is None:
                if r.partial is None and wrong.error is None:  # the learner's raised where the mistake's did not
                    return False
                continue                                      # output k not written yet: it says nothing
            if wrong.error is not None or not same(got, wrong.outputs[k], self.tolerance(case)):
                return False
            compared += 1
        return compared > 0

    # ------------------------------------------------------------ what else the report can say
    def _diagnostics(self, runs, wrong_outputs, mistakes, failures):
        """Impossible values, then a pattern for each wrong output that no catalogued mistake explains."""
        matched = {name for _, outs in mistakes for name in outs}
        diagnostics = self._sanity_messages(runs)
        swapped = self._swapped_outputs(runs, wrong_outputs)
        for k, j in swapped:
            diagnostics.append(f"your {self.outputs[k]} and {self.outputs[j]} are each other's expected values in "
                               f"every case: return the outputs in the order {', '.join(self.outputs)}.")
        in_a_swap = {k for pair in swapped for k in pair}
        for k in wrong_outputs:
            # output k is wrong, or the function raised, somewhere it is not merely still a placeholder
            faulty = any(f is not None and k in f[1] and not runs[i].placeholder
                         and not (runs[i].partial is not None and runs[i].partial[k] is None)
                         for i, f in enumerate(failures))
            if self.outputs[k] not in matched and k not in in_a_swap and faulty:
                diagnostics += self._generic_diagnostics(runs, k, failures)
        return diagnostics

    def _swapped_outputs(self, runs, wrong_outputs):
        """``[(k, j)]``, ``k < j``: outputs ``k`` and ``j`` are each other's expected values in every case."""
        def is_expected(k, j):  # output k is the expected output j wherever it was returned
            given = [(case, _given(r, k), exp[j]) for case, r, exp in zip(self.cases, runs, self.expected)]
            given = [(case, got, exp) for case, got, exp in given if got is not None]
            return bool(given) and all(same(got, exp, self.tolerance(case)) for case, got, exp in given)

        return [(k, j) for k in wrong_outputs for j in wrong_outputs
                if k < j and is_expected(k, j) and is_expected(j, k)]

    def _sanity_messages(self, runs):
        if self.sanity is None:
            return []
        messages = []
        for case, r, exp in zip(self.cases, runs, self.expected):
            if r.error is not None or any(o.shape != e.shape for o, e in zip(r.outputs, exp)):
                continue
            try:
                message = self.sanity(case, r.outputs if len(self.outputs) > 1 else r.outputs[0])
            except Exception:  # an output the sanity rule cannot read: nothing to say
                message = None
            if message and message not in messages:
                messages.append(message)
        return messages[:2]

    def _generic_diagnostics(self, runs, k, failures):
        """Patterns across all the cases: a fault only in float32, a value that is not finite, a constant factor."""
        name = self._label(k)
        float64 = [i for i, case in enumerate(self.cases) if not case.is_float32]
        right_in_float64 = all(_given(runs[i], k) is not None and (failures[i] is None or k not in failures[i][1])
                               for i in float64)
        if float64 and len(float64) < len(self.cases) and right_in_float64:
            return [f"{name} is right in every float64 case and wrong only in float32: look for an "
                    "overflow or underflow, or a step that loses precision."]
        label = self._first_nonfinite_case(runs, k)
        if label is not None:
            return [f"{name} is not finite in case '{label}', where the expected value is finite. "
                    + self.nonfinite_hints.get(self.outputs[k], NONFINITE_HINT)]
        factor = self._constant_factor(runs, k)
        if factor is not None:
            return [f"{name} is {factor:.6g} times the expected value in every case."]
        return []

    def _first_nonfinite_case(self, runs, k):
        """The label of the first case where output ``k`` is not finite where the reference is, or None."""
        for case, r, exp in zip(self.cases, runs, self.expected):
            got = _given(r, k)
            if got is not None and got.shape == exp[k].shape and np.any(~np.isfinite(got) & np.isfinite(exp[k])):
                return case.label
        return None

    def _constant_factor(self, runs, k):
        """``c != 1`` if output ``k`` is ``c`` times the expected one in every case (at its tolerance), else None.

        ``c`` is estimated on the float64 cases, where the ratios scatter by round-off only.
        """
        ratios = []
        for case, r, exp in zip(self.cases, runs, self.expected):
            if r.error is not None or r.outputs[k].shape != exp[k].shape:
                return None
            if not case.is_float32:
                use = np.abs(exp[k]) > 1e-6 * (1 + np.max(np.abs(exp[k]), initial=0))
                ratios.append(r.outputs[k][use] / exp[k][use])
        ratios = np.concatenate(ratios) if ratios else np.array([])
        if ratios.size < 2 or not np.all(np.isfinite(ratios)):
            return None
        factor = float(np.median(ratios))
        if abs(factor - 1) <= 1e-6 or np.any(np.abs(ratios - factor) > 1e-6 * abs(factor)):
            return None
        if all(same(r.outputs[k], factor * exp[k], self.tolerance(case))
               for case, r, exp in zip(self.cases, runs, self.expected)):
            return factor
        return None

    def _dtype_remarks(self, runs):
        for case, r in zip(self.cases, runs):
            if case.is_float32 and any(d == np.float64 for d, o in zip(r.dtypes, r.outputs) if o.ndim > 0):
                return ["(remark: your function returns float64 for float32 inputs. vaelib keeps float32 in "
                        "float32; a NumPy float64 scalar, such as np.log(2 * np.pi), promotes the result. "
                        "A Python float does not.)"]
        return []


def _given(r, k):
    """Output ``k`` of the run ``r`` as a float64 array, or None where the run does not give it."""
    if r.error is None:
        return r.outputs[k]
    return r.partial[k] if r.partial is not None else None


@lru_cache(maxsize=1)
def _blas_controller():
    """The BLAS libraries NumPy loaded, found once (finding them reads the process's memory map)."""
    return ThreadpoolController()


def _wrap(line, width=110):
    """One line of prose, folded at ``width`` with its continuation indented."""
    return textwrap.fill(line, width=width, subsequent_indent="    ", break_on_hyphens=False)


def _which_fail(labels, failing):
    quoted = lambda indices: ", ".join(f"'{labels[i]}'" for i in indices)  # noqa: E731
    passing = [i for i in range(len(labels)) if i not in failing]
    if not passing:
        return f"All {len(labels)} cases fail."
    verb = lambda indices: "passes" if len(indices) == 1 else "pass"  # noqa: E731
    if len(passing) < len(failing):
        return f"{len(failing)} of {len(labels)} cases fail; {quoted(passing)} {verb(passing)}."
    return f"{len(failing)} of {len(labels)} cases {'fails' if len(failing) == 1 else 'fail'}: {quoted(failing)}."
