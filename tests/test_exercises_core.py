"""The exercise machinery: check passes the reference, names the failing case, never raises unless strict."""

from __future__ import annotations

import nbformat
import numpy as np
import pytest
import sessrec_bench.solved_lessons as exnb

from sessrec_course.exercises import Case, Exercise, same
from sessrec_course.exercises.core import difference, like, show


def _reference_mean(values):
    return float(np.mean(values))


def _toy() -> Exercise:
    cases = [Case("three numbers", ([1.0, 2.0, 6.0],), hint="add them, then divide by how many there are"),
             Case("one number", ([5.0],))]
    return Exercise("a mean", _reference_mean, cases, hints=["sum / count", "np.mean does it"])


def test_check_passes_the_reference_and_a_correct_variant():
    assert _toy().check(_reference_mean)
    assert _toy().check(lambda v: sum(v) / len(v)).passed


def test_check_names_the_case_expected_got_and_hint_without_raising(monkeypatch):
    monkeypatch.delenv("SESSREC_EXERCISES_STRICT", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    outcome = _toy().check(lambda v: sum(v) / (len(v) + 1))
    assert not outcome
    assert outcome.case == "three numbers" and outcome.expected == 3.0 and outcome.got == 2.25
    assert "expected 3.0, got 2.25" in outcome.message and "divide by how many" in outcome.message
    assert "np.mean" not in outcome.message, "a failed check gives a hint, never the solution"


def test_an_untouched_stub_is_not_yet_and_strict_mode_raises(monkeypatch):
    def stub(values):
        raise NotImplementedError

    monkeypatch.delenv("SESSREC_EXERCISES_STRICT", raising=False)
    assert _toy().check(stub).message.startswith("not yet")
    assert "raised ZeroDivisionError" in _toy().check(lambda v: 1 / 0).message
    monkeypatch.setenv("SESSREC_EXERCISES_STRICT", "1")
    with pytest.raises(AssertionError, match="not yet"):
        _toy().check(stub)
    monkeypatch.delenv("SESSREC_EXERCISES_STRICT")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError, match="three numbers"):
        _toy().check(lambda v: 0.0)


def test_learner_cannot_change_the_reference_input_in_place():
    def sneaky(values):
        values.clear()
        return 0.0

    assert not _toy().check(sneaky)
    assert _toy().check(_reference_mean)


def test_hints_advance_and_solution_is_the_reference_source():
    ex = _toy()
    assert ex.hint().startswith("Hint 1/2") and ex.hint().startswith("Hint 2/2") and ex.hint().startswith("Hint 2/2")
    assert ex.solution_source().startswith("def _reference_mean(values):")
    assert "```python" in ex.solution()._repr_markdown_()


@pytest.mark.parametrize(("expected", "got", "equal"), [
    (np.array([1, 2]), [1, 2], True), (np.array([1, 2]), [2, 1], False), (np.array([1, 2]), [1, 2, 3], False),
    (0.5, 0.5 + 1e-9, True), (0.5, 0.51, False), ({"a": [1]}, {"a": [1]}, True), ({"a": 1}, {"b": 1}, False),
    ([[1, 2], [3]], [[1, 2], [3]], True), ([[1, 2], [3]], [[1, 2], [4]], False), (1.0, "x", False),
])
def test_same_compares_arrays_floats_dicts_and_ragged_lists(expected, got, equal):
    assert same(expected, got) is equal


def test_solved_copy_replaces_only_the_stub_cells(tmp_path):
    import sessrec_course.exercises as package

    package.toy = type("M", (), {"q1": _toy()})  # a stand-in lesson module, reached through lookup()
    try:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("x = 1"),
                    nbformat.v4.new_code_cell("from sessrec_course.exercises import toy as ex",
                                              metadata={"tags": [exnb.SETUP_TAG]}),
                    nbformat.v4.new_code_cell("def _reference_mean(values):\n    raise NotImplementedError",
                                              metadata=exnb.stub_metadata("toy.q1")),
                    nbformat.v4.new_code_cell("ex.q1.check(_reference_mean)", metadata=exnb.check_metadata("toy.q1"))]
        solved = exnb.with_solutions(nb)
        assert "np.mean" in solved.cells[2].source and solved.cells[3].source == nb.cells[3].source
        assert "NotImplementedError" in nb.cells[2].source, "the original stays untouched"
        assert [c.source for c in exnb.section(nb).cells] == [c.source for c in nb.cells[1:]]
        assert exnb.exercise_ids(nb) == ["toy.q1"]
        assert nb.cells[2].metadata["nbgrader"]["solution"] and nb.cells[3].metadata["nbgrader"]["grade"]
    finally:
        del package.toy
    with pytest.raises(KeyError, match="no exercise"):
        exnb.lookup("core.Case")


def test_a_missing_return_and_an_error_get_a_message_naming_them_and_the_line():
    def forgot_return(values):
        sum(values) / len(values)

    def typo(values):
        total = sum(values)
        return total / len(valeus)  # noqa: F821 - the learner's typo

    assert "returned None: did you forget `return`?" in _toy().check(forgot_return).message
    message = _toy().check(typo).message
    assert "raised NameError: name 'valeus' is not defined" in message
    assert "`return total / len(valeus)  # noqa: F821 - the learner's typo`" in message, message


def test_a_known_mistake_gets_its_own_hint_and_the_rest_the_case_hint():
    exercise = _toy()
    exercise.mistakes = {"divide by how many values there are, not one more":
                         like(lambda values: sum(values) / (len(values) + 1))}
    assert "not one more" in exercise.check(lambda v: sum(v) / (len(v) + 1)).message
    other = exercise.check(lambda v: max(v)).message
    assert "not one more" not in other and "divide by how many there are" in other


def test_show_and_difference_are_short_and_say_how_an_answer_differs():
    big = np.arange(5000)
    assert show(big) == "[ 0 1 2 ... 4997 4998 4999] (shape (5000,))"
    assert show(np.array([[True, False]])) == "[[1 0]]"
    assert difference(big, big.astype(np.int32)) == "dtype int64 expected, got int32"
    assert difference(np.zeros((2, 3)), np.zeros((3, 2))) == "shape (2, 3) expected, got (3, 2)"
    assert difference(np.array([1, 2, 3]), np.array([1, 5, 3])) == "1 of 3 entries differ, the first at 1: expected 2, got 5"
    assert difference([[1, 2], [3]], [[1, 2], [4]]).startswith("element 1: 1 of 1 entries differ")
    assert difference(np.array([1.0]), "x") == "a number or an array expected, got a str"

