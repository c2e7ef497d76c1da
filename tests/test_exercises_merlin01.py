"""Merlin lesson 01 exercises: each check passes the reference, fails the stub and typical wrong answers with a hint."""

from __future__ import annotations

import pytest

from sessrec_course.exercises import merlin01 as ex


def _stub(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2], ids=lambda e: e.function_name)
def test_reference_passes_and_stub_is_not_yet(exercise):
    assert exercise.check(exercise.reference), exercise.title
    outcome = exercise.check(_stub)
    assert not outcome and outcome.message.startswith("not yet")


def test_q1_course_offsets_fail_with_the_nvtabular_layout_hint():
    def from_two(unique, sessions):  # the course's layout (items from 2): off by one
        return [[int(unique[c - 2]) if 2 <= c < len(unique) + 2 else -1 for c in s] for s in sessions]

    outcome = ex.q1.check(from_two)
    assert not outcome and "Hint:" in outcome.message and "3" in outcome.message


def test_q2_keeping_nvtabular_ids_fails():
    outcome = ex.q2.check(lambda unique, course_raw, sessions: [list(s) for s in sessions])
    assert not outcome and "raw id" in outcome.message
