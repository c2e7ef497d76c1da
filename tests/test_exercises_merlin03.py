"""Merlin lesson 03 exercises: the references agree with the package (the wrong answers: exercise_mistakes/merlin03.py)."""

from __future__ import annotations

import numpy as np

from sessrec_course.exercises import merlin03 as ex


def test_q1_reference_is_the_mean_of_the_clicked_rows():
    table = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 6.0]])
    assert np.allclose(ex.mean_pool(table, [[1, 2, 0]]), [[2.0, 4.0]])


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
