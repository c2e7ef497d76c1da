"""Lesson 05's checks: the reference passes, the stub and typical wrong answers fail with the case and a hint."""

from __future__ import annotations

import pytest
import torch

from sessrec_course.exercises import torch_lesson05 as ex
from sessrec_course.models import ModelConfig, build_model


def stub(*args):
    raise NotImplementedError  # your code here


def test_references_pass_and_stubs_are_not_yet():
    for exercise in (ex.q1, ex.q2, ex.q3):
        assert exercise.check(exercise.reference), exercise.title
        assert exercise.check(stub).message.startswith("not yet")


def _square(ids):
    return torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool)


@pytest.mark.parametrize(("wrong", "hint"), [
    (lambda ids: ex.causal_padding_mask(ids).transpose(1, 2), "transposed"),
    (lambda ids: (ids != 0)[:, None, :].expand(-1, ids.shape[1], -1), "sees the future"),
    (lambda ids: _square(ids).tril().expand(len(ids), -1, -1), "padding columns"),
    (lambda ids: ex.causal_padding_mask(ids) & ~torch.eye(ids.shape[1], dtype=torch.bool), "see itself"),
])
def test_wrong_masks_fail_with_a_hint(wrong, hint):
    outcome = ex.q1.check(wrong)
    assert not outcome and outcome.case == "two sessions, one padded" and hint in outcome.message, outcome.message


def test_a_mask_of_zeros_and_ones_counts_by_its_pattern():
    assert ex.q1.check(lambda ids: ex.causal_padding_mask(ids).int())


def masking_without_the_last(item_ids, chosen, mask_id):
    masked = chosen & (item_ids != 0)
    return torch.where(masked, mask_id, item_ids), torch.where(masked, item_ids, 0)


def masking_padding_too(item_ids, chosen, mask_id):
    inputs, targets = ex.mask_items(item_ids, chosen, mask_id)
    return torch.where(chosen & (item_ids == 0), mask_id, inputs), targets


def every_item_a_target(item_ids, chosen, mask_id):
    return ex.mask_items(item_ids, chosen, mask_id)[0], item_ids


@pytest.mark.parametrize(("wrong", "case", "hint"), [
    (masking_without_the_last, "nothing drawn", "last real item of every session must be masked"),
    (masking_padding_too, "a draw that hits padding", "padding became [MASK]"),
    (every_item_a_target, "nothing drawn", "only masked positions carry a loss"),
])
def test_wrong_masking_fails_with_a_hint(wrong, case, hint):
    outcome = ex.q2.check(wrong)
    assert not outcome and outcome.case == case and hint in outcome.message, outcome.message


def test_the_reference_masking_matches_the_models_mask_items_on_the_same_draw():
    model = build_model(ModelConfig(name="transformer", backbone="bert", item_cardinality=20, hidden_size=8,
                                    num_heads=2, max_length=6))
    ids = torch.tensor([[5, 8, 3, 0, 0], [4, 9, 7, 6, 2]])
    torch.manual_seed(3)
    inputs, targets = model.mask_items(ids)
    torch.manual_seed(3)
    chosen = torch.rand(ids.shape) < model.config.mask_probability
    expected = ex.mask_items(ids, chosen, model.mask_id)
    assert torch.equal(inputs, expected[0]) and torch.equal(targets, expected[1])


def test_wrong_mask_positions_fail_with_a_hint():
    at_the_end = ex.q3.check(lambda ids, m: torch.cat([ids, torch.full_like(ids[:, :1], m)], dim=1))
    assert not at_the_end and "not after the padding" in at_the_end.message

    def replacing_the_last(ids, mask_id):
        last = ((ids != 0).sum(dim=1) - 1).clamp(min=0)
        return torch.cat([ids, torch.zeros_like(ids[:, :1])], dim=1).scatter(1, last[:, None], mask_id)

    replaced = ex.q3.check(replacing_the_last)
    assert not replaced and "replaced the last item" in replaced.message
    same_width = ex.q3.check(lambda ids, m: ids.scatter(1, ((ids != 0).sum(1) - 1).clamp(min=0)[:, None], m))
    assert not same_width and "one column wider" in same_width.message
