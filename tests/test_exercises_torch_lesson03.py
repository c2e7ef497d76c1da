"""Lesson 03 exercises: the references agree with the package (the wrong answers: exercise_mistakes/torch_lesson03.py)."""

from __future__ import annotations

import torch

from sessrec_course.exercises import torch_lesson03 as ex
from sessrec_course.models import ModelConfig, build_model
from sessrec_course.training.common import TrainConfig
from sessrec_course.training.torch_data import make_loader
from sessrec_course.training.torch_trainer import fit


def test_plain_loss_equals_the_package_loss_and_the_trainers_first_step():
    """Lesson 03's claim: the hand-written loss is what model.loss and the package trainer compute, same batch."""
    torch.manual_seed(0)
    config = ModelConfig(name="mlp", item_cardinality=40, hidden_size=16, max_length=8, dropout=0.0)
    model = build_model(config)
    batch = torch.tensor([[2, 5, 7, 3, 0, 0], [4, 1, 9, 12, 30, 0], [11, 6, 2, 8, 13, 39]])
    with torch.no_grad():
        plain = ex.next_item_loss(model.sequence_hidden(batch), batch, model.item_embedding.weight[:40],
                                  model.output_bias)
        torch.testing.assert_close(model.loss(batch), plain, rtol=1e-5, atol=1e-6)
    loader = make_loader(batch.numpy(), batch_size=3, shuffle=False)
    history = fit(model, loader, TrainConfig(epochs=1, batch_size=3, bf16=False, progress=False))
    assert abs(history.losses[0] - float(plain)) < 1e-5, "the trainer's first step computes the same loss"


def test_window_reference_is_the_hand_computed_window():
    ids = torch.tensor([[4, 6, 0, 0], [2, 8, 5, 9]])
    assert ex.last_window(ids, 3).tolist() == [[0, 4, 6], [8, 5, 9]]
    assert ex.last_window(torch.tensor([[5, 1, 0]]), 3).tolist() == [[0, 5, 1]], "an OOV click is a click"
