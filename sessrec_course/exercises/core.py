"""Checked exercises: ``q1.check(my_function)``, ``q1.hint()``, ``q1.solution()`` (the pattern of Kaggle Learn).

An :class:`Exercise` holds a reference solution, cases the learner has not seen and hints. ``check`` runs the
learner's function on every case and compares with the reference; on the first mismatch it names the case, what
was expected and what came back, and a hint that points at the mistake without giving the answer. It never raises
in a lesson (an unsolved stub prints "not yet"), unless strict mode is on: ``SESSREC_EXERCISES_STRICT=1`` (the
test suite) or nbgrader's autograder (``NBGRADER_EXECUTION``), where a failed check raises ``AssertionError`` so
a grader counts it.
"""

from __future__ import annotations

import inspect
import os
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STRICT_ENV = "SESSREC_EXERCISES_STRICT"


@dataclass
class Case:
    """One hidden test case: a label for messages, the positional arguments, and a hint for when it fails."""

    label: str
    args: tuple
    hint: str = ""
    kwargs: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """What one ``check`` found: passed or not, the failing case, what was expected and what came back."""

    passed: bool
    message: str
    case: str | None = None
    expected: Any = None
    got: Any = None

    def __bool__(self) -> bool:
        return self.passed

    def _repr_markdown_(self) -> str:
        mark = "✅" if self.passed else "❌"
        return f"{mark} {self.message}"

    def __repr__(self) -> str:
        return self.message


def same(expected: Any, got: Any, atol: float = 1e-6) -> bool:
    """Whether ``got`` equals ``expected``: exact for ints and strings, within ``atol`` for floats, recursive."""
    if isinstance(expected, dict):
        return isinstance(got, dict) and expected.keys() == got.keys() and all(
            same(expected[k], got[k], atol) for k in expected)
    if hasattr(expected, "equals") and hasattr(expected, "columns"):  # a pandas DataFrame
        import pandas as pd

        try:
            pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True),
                                          check_dtype=False, atol=atol)
        except (AssertionError, AttributeError, TypeError, ValueError):
            return False
        return True
    if isinstance(expected, list | tuple) and not _is_numeric_array(expected):
        return isinstance(got, list | tuple) and len(got) == len(expected) and all(
            same(e, g, atol) for e, g in zip(expected, got, strict=True))
    try:
        e, g = _as_array(expected), _as_array(got)
    except (TypeError, ValueError):
        return False
    if e.shape != g.shape or (e.dtype.kind in "biufc") != (g.dtype.kind in "biufc"):
        return False
    if e.dtype.kind in "fc" or g.dtype.kind in "fc":
        return bool(np.allclose(g.astype(float), e.astype(float), atol=atol, rtol=1e-5, equal_nan=True))
    return bool(np.array_equal(e, g))


def _is_numeric_array(value: Sequence) -> bool:
    return all(isinstance(v, int | float | np.number) for v in value)


def _as_array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # a TensorFlow tensor
        value = value.numpy()
    return np.asarray(value)


def _short(value: Any, width: int = 300) -> str:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    text = np.array2string(value, threshold=40) if isinstance(value, np.ndarray) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


class Exercise:
    """One exercise of a lesson: the function to write, its reference solution, hidden cases and hints."""

    def __init__(self, title: str, reference: Callable, cases: Sequence[Case] | Callable[[], Sequence[Case]],
                 hints: Sequence[str], compare: Callable[[Any, Any], bool] = same,
                 diagnose: Callable[[Case, Any, Any], str | None] | None = None) -> None:
        self.title = title
        self.reference = reference
        self._cases = cases
        self.hints = list(hints)
        self.compare = compare
        self.diagnose = diagnose
        self._hints_shown = 0

    @property
    def function_name(self) -> str:
        """The name the learner's function has in the stub cell."""
        return self.reference.__name__

    def cases(self) -> list[Case]:
        """The hidden cases (built lazily: some need torch or data)."""
        return list(self._cases() if callable(self._cases) else self._cases)

    def evaluate(self, fn: Callable) -> Outcome:
        """Run ``fn`` on every case and return the first mismatch (or a pass); never raises."""
        if not callable(fn):
            return Outcome(False, f"not yet: pass your function, e.g. `check({self.function_name})`.")
        cases = self.cases()
        for case in cases:
            expected = self.reference(*_copy(case.args), **case.kwargs)
            try:
                got = fn(*_copy(case.args), **case.kwargs)
            except NotImplementedError:
                return Outcome(False, f"not yet: `{fn.__name__}` still raises NotImplementedError. "
                                      f"Hint: {self.hints[0]}", case.label)
            except Exception as error:  # the learner's code may fail in any way; report it as a hint
                return Outcome(False, f"case '{case.label}' raised {type(error).__name__}: {error}. "
                                      f"Hint: {case.hint or self.hints[0]}", case.label)
            if not self.compare(expected, got):
                extra = self.diagnose(case, expected, got) if self.diagnose else None
                hint = extra or case.hint or self.hints[0]
                return Outcome(False, f"case '{case.label}': expected {_short(expected)}, got {_short(got)}. "
                                      f"Hint: {hint}", case.label, expected, got)
        return Outcome(True, f"correct: {self.title} ({len(cases)} hidden cases pass)")

    def check(self, fn: Callable | None = None) -> Outcome:
        """Check the learner's function; prints the outcome, raises only in strict mode (tests, nbgrader)."""
        outcome = self.evaluate(fn)
        if not outcome.passed and (os.environ.get(STRICT_ENV) or os.environ.get("NBGRADER_EXECUTION")):
            raise AssertionError(outcome.message)
        return outcome

    def hint(self) -> str:
        """The next hint (one more each call, the last one repeats)."""
        text = self.hints[min(self._hints_shown, len(self.hints) - 1)]
        self._hints_shown += 1
        return _Text(f"Hint {min(self._hints_shown, len(self.hints))}/{len(self.hints)}: {text}")

    def solution_source(self) -> str:
        """The reference solution's source, as the learner's cell would hold it."""
        return textwrap.dedent(inspect.getsource(self.reference))

    def solution(self) -> str:
        """Show the reference solution (on request only)."""
        return _Code(self.solution_source())

    def __repr__(self) -> str:
        return f"Exercise({self.title!r}: write `{self.function_name}`; .check(fn), .hint(), .solution())"


def _copy(args: tuple) -> tuple:
    """Fresh copies of mutable arguments, so a learner's in-place edit cannot change the reference's input."""
    import copy

    return tuple(copy.deepcopy(a) for a in args)


class _Text(str):
    def _repr_markdown_(self) -> str:
        return f"💡 {self}"


class _Code(str):
    def _repr_markdown_(self) -> str:
        return f"```python\n{self}```"

    def __repr__(self) -> str:
        return str(self)
