"""Checked exercises: ``q1.check(my_function)``, ``q1.hint()``, ``q1.solution()`` (the pattern of Kaggle Learn).

A failed check names the case, expected vs got, how they differ and the mistake it knows; it raises only in strict
mode (``SESSREC_EXERCISES_STRICT=1``, or nbgrader's autograder)."""

from __future__ import annotations

import copy
import functools
import inspect
import linecache
import os
import textwrap
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STRICT_ENV = "SESSREC_EXERCISES_STRICT"


@dataclass
class Case:
    """One hidden case: a label for messages, the arguments, and a hint for when it fails."""

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
        return f"{'✅' if self.passed else '❌'} {self.message}"

    def __repr__(self) -> str:
        return self.message


def numpy(value: Any) -> Any:
    """A torch or TensorFlow tensor as a numpy array (without importing either); anything else unchanged."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value.numpy() if hasattr(value, "numpy") and not isinstance(value, np.ndarray | np.generic) else value


def same(expected: Any, got: Any, atol: float = 1e-6) -> bool:
    """Whether ``got`` equals ``expected``: exact for ints and strings, within ``atol`` for floats, recursive."""
    if isinstance(expected, dict):
        return isinstance(got, dict) and expected.keys() == got.keys() and all(
            same(expected[k], got[k], atol) for k in expected)
    if isinstance(expected, list | tuple) and not _numeric(expected):
        return isinstance(got, list | tuple) and len(got) == len(expected) and all(
            same(e, g, atol) for e, g in zip(expected, got, strict=True))
    try:
        e, g = np.asarray(numpy(expected)), np.asarray(numpy(got))
    except (TypeError, ValueError):
        return False
    if e.shape != g.shape or (e.dtype.kind in "biufc") != (g.dtype.kind in "biufc"):
        return False
    if e.dtype.kind in "biu" and g.dtype.kind not in "biu":  # ids, counts and masks stay integers
        return False
    if e.dtype.kind in "fc" or g.dtype.kind in "fc":
        return bool(np.allclose(g.astype(float), e.astype(float), atol=atol, rtol=1e-5, equal_nan=True))
    return bool(np.array_equal(e, g))


def like(wrong: Callable, compare: Callable[[Any, Any], bool] = same, element: int | None = None,
         **flags: Any) -> Callable[..., bool]:
    """A mistake's test: the answer (or its ``element``) is ``wrong(*args, **flags)``'s, which is not expected."""
    def test(case: Case, expected: Any, got: Any) -> bool:
        answer = wrong(*copy.deepcopy(case.args), **case.kwargs, **flags)
        if element is not None:
            expected, got = expected[element], got[element]
        return not compare(expected, answer) and compare(answer, got)
    return test


def _numeric(value: Sequence) -> bool:
    return all(isinstance(v, int | float | np.number) for v in value)


def show(value: Any) -> str:
    """A short readable form: arrays and tensors as compact numpy, long lists summarised."""
    value = numpy(value)
    if isinstance(value, float | np.floating | np.integer) and not isinstance(value, bool):
        return repr(float(f"{value:.6g}")) if isinstance(value, float | np.floating) else str(int(value))
    if isinstance(value, list | tuple):
        limit = 12 if _numeric(value) else 6
        items = [show(v) for v in value[:limit]] + (["..."] if len(value) > limit else [])
        return ("(%s)" if isinstance(value, tuple) else "[%s]") % ", ".join(items)
    if isinstance(value, np.ndarray):
        value = value.astype(np.int8) if value.dtype == bool else value
        text = np.array2string(value, threshold=12, edgeitems=3, precision=4, max_line_width=10**6)
        return " ".join(text.split()) + (f" (shape {value.shape})" if value.size > 12 else "")
    text = repr(value)
    return text if len(text) <= 120 else f"a {type(value).__name__} ({len(text)} characters)"


def difference(expected: Any, got: Any) -> str:
    """How ``got`` differs from ``expected`` in a few words: type, length, shape, dtype or the first entry."""
    expected, got = numpy(expected), numpy(got)
    if isinstance(expected, list | tuple) and not _numeric(expected):
        if not isinstance(got, list | tuple):
            return f"a {type(expected).__name__} expected, got a {type(got).__name__}"
        if len(got) != len(expected):
            return f"{len(expected)} elements expected, got {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            if not same(e, g):
                return f"element {i}: " + (difference(e, g) or f"expected {show(e)}, got {show(g)}")
        return ""
    e, g = np.asarray(expected), np.asarray(got)
    if e.dtype.kind in "biufc" and g.dtype.kind not in "biufc":
        return f"a number or an array expected, got a {type(got).__name__}"
    if e.shape != g.shape:
        return f"shape {e.shape} expected, got {g.shape}"
    if e.dtype != g.dtype and same(e, g):
        return f"dtype {e.dtype} expected, got {g.dtype}"
    wrong = ~np.isclose(g.astype(float), e.astype(float), rtol=1e-5, atol=1e-6, equal_nan=True)
    if e.ndim == 0 or not wrong.any():
        return ""
    at = tuple(int(i) for i in np.argwhere(wrong)[0])
    return (f"{int(wrong.sum())} of {wrong.size} entries differ, the first at {at if len(at) > 1 else at[0]}: "
            f"expected {show(e[at])}, got {show(g[at])}")


def same_mask(expected: Any, got: Any) -> bool:
    """Masks compare by their pattern: booleans or 0/1 numbers, as a tensor or an array."""
    return same(expected, np.asarray(numpy(got)) != 0)


def _quietly(fn: Callable, *args: Any) -> Any:
    """``fn(*args)``, or None when it raises: a diagnosis or a comparison must not fail on an odd answer."""
    try:
        return fn(*args)
    except Exception:
        return None


def _line_in(fn: Callable, error: BaseException) -> str:
    """`` (line N: `code`)`` of the learner's own code where ``error`` was raised, or ``""``."""
    code = getattr(fn, "__code__", None)
    frames = [(f, n) for f, n in traceback.walk_tb(error.__traceback__)
              if code is not None and f.f_code.co_filename == code.co_filename]
    if not frames:
        return ""
    frame, line = frames[-1]
    text = linecache.getline(frame.f_code.co_filename, line, frame.f_globals).strip()
    return f" (line {line}" + (f": `{text}`)" if text else ")")


class Exercise:
    """An exercise: reference solution, hidden cases, hints, known mistakes (hint -> test(case, expected, got))."""

    def __init__(self, title: str, reference: Callable, cases: Sequence[Case] | Callable[[], Sequence[Case]],
                 hints: Sequence[str], compare: Callable[[Any, Any], bool] | None = None, atol: float = 1e-6,
                 mistakes: dict[str, Callable[..., bool]] | None = None) -> None:
        self.title, self.reference, self._cases, self.hints = title, reference, cases, list(hints)
        self.compare = compare or functools.partial(same, atol=atol)
        self.mistakes = dict(mistakes or {})
        self._hints_shown = 0

    @property
    def function_name(self) -> str:
        """The name the learner's function has in the stub cell."""
        return self.reference.__name__

    def cases(self) -> list[Case]:
        """The hidden cases (built on first use: some need torch or data)."""
        return [case for case, _ in self._expected]

    @functools.cached_property
    def _expected(self) -> list[tuple[Case, Any]]:
        cases = self._cases() if callable(self._cases) else self._cases
        return [(c, self.reference(*copy.deepcopy(c.args), **c.kwargs)) for c in cases]

    def evaluate(self, fn: Callable) -> Outcome:
        """Run ``fn`` on every case and report the first failure, naming the mistake if it is a known one."""
        if not callable(fn):
            return Outcome(False, f"not yet: pass your function, e.g. `check({self.function_name})`.")
        for case, expected in self._expected:
            label = f"case '{case.label}'"
            try:
                got = fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
            except NotImplementedError:
                return Outcome(False, f"not yet: `{getattr(fn, '__name__', 'it')}` still raises "
                                      f"NotImplementedError. Hint: {self.hints[0]}", case.label)
            except Exception as error:  # the learner's code may fail in any way: say where
                return Outcome(False, f"{label}: your function raised {type(error).__name__}: {error}"
                                      f"{_line_in(fn, error)}. Hint: {case.hint or self.hints[0]}", case.label)
            if got is None:
                return Outcome(False, f"{label}: your function returned None: did you forget `return`?", case.label)
            if not _quietly(self.compare, expected, got):
                mistake = (hint for hint, test in self.mistakes.items() if _quietly(test, case, expected, got))
                hint = next(mistake, None) or case.hint or self.hints[0]  # the first known mistake it makes
                how = _quietly(difference, expected, got) or ""
                return Outcome(False, f"{label}: expected {show(expected)}, got {_quietly(show, got) or type(got)}"
                                      f"{'; ' + how if how else ''}. Hint: {hint}", case.label, expected, got)
        return Outcome(True, f"correct: {self.title} ({len(self._expected)} hidden cases pass)")

    def check(self, fn: Callable | None = None) -> Outcome:
        """Check the learner's function; returns the outcome, raises only in strict mode (tests, nbgrader)."""
        outcome = self.evaluate(fn)
        if not outcome.passed and (os.environ.get(STRICT_ENV) or os.environ.get("NBGRADER_EXECUTION")):
            raise AssertionError(outcome.message)
        return outcome

    def hint(self) -> str:
        """The next hint (one more each call, the last one repeats)."""
        self._hints_shown = min(self._hints_shown + 1, len(self.hints))
        text = f"Hint {self._hints_shown}/{len(self.hints)}: {self.hints[self._hints_shown - 1]}"
        return _Markdown(text, f"💡 {text}")

    def solution_source(self) -> str:
        """The reference solution's source, as the learner's cell would hold it."""
        return textwrap.dedent(inspect.getsource(self.reference))

    def solution(self) -> str:
        """Show the reference solution (on request only)."""
        return _Markdown(self.solution_source(), f"```python\n{self.solution_source()}```")

    def __repr__(self) -> str:
        return f"Exercise({self.title!r}: write `{self.function_name}`; .check(fn), .hint(), .solution())"


class _Markdown(str):
    """A hint or a solution: plain text in a console, markdown in Jupyter."""

    def __new__(cls, text: str, markdown: str) -> _Markdown:
        shown = super().__new__(cls, text)
        shown.markdown = markdown
        return shown

    def _repr_markdown_(self) -> str:
        return self.markdown

    __repr__ = str.__str__
