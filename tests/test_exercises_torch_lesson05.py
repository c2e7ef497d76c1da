"""Lesson 05 exercises: the references agree with the package (the wrong answers: exercise_mistakes/torch_lesson05.py)."""

from __future__ import annotations

import torch

from sessrec_course.exercises import torch_lesson05 as ex
from sessrec_course.models import ModelConfig, build_model


def test_a_mask_of_zeros_and_ones_counts_by_its_pattern():
    assert ex.q1.check(lambda ids: ex.causal_padding_mask(ids).int())


def test_the_reference_masking_matches_the_models_mask_items_on_the_same_draw():
    model = build_model(ModelConfig(name="transformer", backbone="bert", item_cardinality=20, hidden_size=8,
                                    num_heads=2, max_length=6))
    ids = torch.tensor([[5, 8, 3, 0, 0], [4, 9, 7, 6, 2], [6, 1, 0, 0, 0]])  # an OOV click is masked too
    torch.manual_seed(3)
    inputs, targets = model.mask_items(ids)
    torch.manual_seed(3)
    chosen = torch.rand(ids.shape) < model.config.mask_probability
    expected = ex.mask_items(ids, chosen, model.mask_id)
    assert torch.equal(inputs, expected[0]) and torch.equal(targets, expected[1])


