"""Lesson 04's checks: the reference passes, the stub and typical wrong answers fail with the case and a hint."""

from __future__ import annotations

import pytest
import torch

from sessrec_course.exercises import torch_lesson04 as ex


def stub(*args):
    raise NotImplementedError  # your code here


def test_references_pass_and_stubs_are_not_yet():
    for exercise in (ex.q1, ex.q2, ex.q3, ex.q4):
        assert exercise.check(exercise.reference), exercise.title
        assert exercise.check(stub).message.startswith("not yet")


@pytest.mark.parametrize(("wrong", "hint"), [
    (lambda ids: len(ids), "one case per session"),
    (lambda ids: int((ids != 0).sum()), "n - 1 cases"),
    (lambda ids: ids.shape[0] * (ids.shape[1] - 1), "padding positions are no cases"),
])
def test_wrong_case_counts_fail_with_a_hint(wrong, hint):
    outcome = ex.q1.check(wrong)
    assert not outcome and outcome.case == "three sessions" and hint in outcome.message, outcome.message


def test_an_empty_row_must_not_count_negative():
    outcome = ex.q1.check(lambda ids: int(((ids != 0).sum(dim=1) - 1).sum()))
    assert not outcome and outcome.case == "an empty padding row", outcome.message


def test_reading_the_wrong_state_fails_with_a_hint():
    last_column = ex.q2.check(lambda states, ids: states[:, -1])
    assert not last_column and "last column is padding" in last_column.message
    one_too_far = ex.q2.check(lambda states, ids: states[torch.arange(len(ids)),
                                                         (ids != 0).sum(1).clamp(max=ids.shape[1] - 1)])
    assert not one_too_far and "one position too far" in one_too_far.message


def bonus_on_padding(scores, item_ids, bonus):
    seen = torch.zeros_like(scores, dtype=torch.bool).scatter(1, item_ids, True)
    return scores + bonus * seen


def bonus_per_click(scores, item_ids, bonus):
    added = scores.scatter_add(1, item_ids, torch.full(item_ids.shape, float(bonus)))
    added[:, 0] = scores[:, 0]
    return added


def test_wrong_repeat_scores_fail_with_a_hint():
    padding = ex.q3.check(bonus_on_padding)
    assert not padding and padding.case == "no repeats" and "padding got the bonus" in padding.message
    twice = ex.q3.check(bonus_per_click)
    assert not twice and twice.case == "an item clicked twice" and "once per item" in twice.message


def _distinct_items(probs, item_ids, gate):  # q uniform over distinct items: ignores click counts
    seen = torch.zeros_like(probs).scatter(1, item_ids, 1.0)
    seen[:, 0] = 0.0
    share = seen / seen.sum(dim=1, keepdim=True).clamp(min=1.0)
    gate = torch.where(seen.sum(dim=1) > 0, gate, torch.zeros_like(gate))[:, None]
    return gate * share + (1 - gate) * probs


def _sum_not_mixture(probs, item_ids, gate):  # forgets the (1 - gate) on the explore side
    return ex.repeat_or_explore(probs, item_ids, gate) + gate[:, None] * probs


def _gate_on_empty(probs, item_ids, gate):  # an empty session loses its explore mass
    clicks = torch.zeros_like(probs).scatter_add(1, item_ids, torch.ones_like(item_ids, dtype=probs.dtype))
    clicks[:, 0] = 0.0
    share = clicks / clicks.sum(dim=1, keepdim=True).clamp(min=1.0)
    return gate[:, None] * share + (1 - gate[:, None]) * probs


@pytest.mark.parametrize(("wrong", "case", "hint"), [
    (_distinct_items, "an item clicked twice", "q counts clicks"),
    (_sum_not_mixture, "one click each", "each row must still sum to 1"),
    (_gate_on_empty, "an empty session", "each row must still sum to 1"),
])
def test_wrong_mixtures_fail_with_a_hint(wrong, case, hint):
    outcome = ex.q4.check(wrong)
    assert not outcome and outcome.case == case and hint in outcome.message, outcome.message
