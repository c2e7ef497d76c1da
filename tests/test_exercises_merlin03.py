"""Merlin lesson 03 exercises: each check passes the reference, fails the stub and typical wrong answers with a hint."""

from __future__ import annotations

import numpy as np
import pytest

from sessrec_course.exercises import merlin03 as ex


def _stub(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3], ids=lambda e: e.function_name)
def test_reference_passes_and_stub_is_not_yet(exercise):
    assert exercise.check(exercise.reference), exercise.title
    outcome = exercise.check(_stub)
    assert not outcome and outcome.message.startswith("not yet")


def test_q1_reference_is_the_mean_of_the_clicked_rows():
    table = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 6.0]])
    assert np.allclose(ex.mean_pool(table, [[1, 2, 0]]), [[2.0, 4.0]])


def test_q1_averaging_in_the_padding_fails_with_its_hint():
    def with_padding(table, sessions):
        return np.asarray(table, dtype=float)[np.asarray(sessions)].mean(1)

    outcome = ex.q1.check(with_padding)
    assert not outcome and "padding" in outcome.message and outcome.case == "padded sessions"


def test_q1_the_sum_fails_with_its_hint():
    def summed(table, sessions):
        sessions = np.asarray(sessions)
        return (np.asarray(table, dtype=float)[sessions] * (sessions != 0)[:, :, None]).sum(1)

    outcome = ex.q1.check(summed)
    assert not outcome and "sum" in outcome.message


def test_q2_last_column_as_target_fails_on_padded_sessions():
    def last_column(sessions):
        sessions = np.asarray(sessions)
        return sessions[:, :-1], sessions[:, -1]

    outcome = ex.q2.check(last_column)
    assert not outcome and outcome.case == "padded sessions" and "last non-zero" in outcome.message


def test_q2_reference_on_a_padded_session():
    inputs, targets = ex.predict_last([[4, 5, 0, 0], [7, 8, 9, 3]])
    assert inputs.tolist() == [[4, 0, 0], [7, 8, 9]] and targets.tolist() == [5, 3]


def test_q3_unshifted_targets_fail_and_padding_is_masked():
    outcome = ex.q3.check(lambda sessions: (np.asarray(sessions)[:, :-1], np.asarray(sessions)[:, :-1]))
    assert not outcome and "Hint:" in outcome.message
    outcome = ex.q3.check(lambda sessions: (np.asarray(sessions)[:, :-1], np.asarray(sessions)[:, 1:]))
    assert not outcome and outcome.case == "padded sessions"
    inputs, targets = ex.predict_next([[4, 5, 0]])
    assert inputs.tolist() == [[4, 0]] and targets.tolist() == [[5, 0]]
