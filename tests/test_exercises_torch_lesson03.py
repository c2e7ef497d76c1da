"""Lesson 03's checks: the reference passes, the stub and typical wrong answers fail with the case and a hint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sessrec_course.exercises import torch_lesson03 as ex
from sessrec_course.models import ModelConfig, build_model
from sessrec_course.training.common import TrainConfig
from sessrec_course.training.torch_data import make_loader
from sessrec_course.training.torch_trainer import fit


def stub_loss(hidden, item_ids, item_embedding, output_bias):
    raise NotImplementedError  # your code here


def unshifted_loss(hidden, item_ids, item_embedding, output_bias):
    keep = item_ids > 1
    return F.cross_entropy(hidden[keep] @ item_embedding.T + output_bias, item_ids[keep])


def loss_with_padding(hidden, item_ids, item_embedding, output_bias):
    logits = hidden[:, :-1] @ item_embedding.T + output_bias
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), item_ids[:, 1:].reshape(-1))


def loss_with_oov(hidden, item_ids, item_embedding, output_bias):
    keep = item_ids[:, 1:] > 0
    return F.cross_entropy(hidden[:, :-1][keep] @ item_embedding.T + output_bias, item_ids[:, 1:][keep])


def test_loss_reference_passes_and_the_stub_is_not_yet():
    assert ex.q1.check(ex.next_item_loss)
    assert ex.q1.check(stub_loss).message.startswith("not yet")


@pytest.mark.parametrize(("wrong", "case", "hint"), [
    (unshifted_loss, "one full session", "shift the targets"),
    (loss_with_padding, "sessions padded on the right", "padding targets"),
    (loss_with_oov, "an unknown item in the middle", "OOV targets"),
])
def test_typical_wrong_losses_name_the_case_and_a_hint(wrong, case, hint):
    outcome = ex.q1.check(wrong)
    assert not outcome and outcome.case == case and hint in outcome.message, outcome.message
    assert "hidden[:, :-1][keep]" not in outcome.message, "a hint, never the solution"


def stub_loop(model, batches, learning_rate):
    raise NotImplementedError  # your code here


def loop_without_step(model, batches, learning_rate):
    return [model.loss(batch).item() for batch in batches]


def loop_without_zero_grad(model, batches, learning_rate):
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    losses = []
    for batch in batches:
        loss = model.loss(batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_loop_reference_passes_and_wrong_loops_fail_with_a_hint():
    assert ex.q2.check(ex.train_losses)
    assert ex.q2.check(stub_loop).message.startswith("not yet")
    no_step = ex.q2.check(loop_without_step)
    assert not no_step and "optimizer.step()" in no_step.message and "three times" in no_step.message
    no_zero = ex.q2.check(loop_without_zero_grad)
    assert not no_zero and "zero_grad" in no_zero.message


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


def test_window_reference_is_the_hand_computed_window_and_wrong_windows_fail_with_a_hint():
    ids = torch.tensor([[4, 6, 0, 0], [2, 8, 5, 9]])
    assert ex.last_window(ids, 3).tolist() == [[0, 4, 6], [8, 5, 9]]
    assert ex.q3.check(ex.last_window)
    assert ex.q3.check(lambda item_ids, width: stub_loss(None, item_ids, None, None)).message.startswith("not yet")
    last_columns = ex.q3.check(lambda item_ids, width: item_ids[:, -width:])
    assert not last_columns and "padding for a short session" in last_columns.message

    def left_aligned(item_ids, width):
        rows = [r[r != 0][-width:] for r in item_ids]
        return torch.stack([F.pad(r, (0, width - len(r))) for r in rows])

    left = ex.q3.check(left_aligned)
    assert not left and left.case == "a session shorter than the window" and "zeros go in front" in left.message

    def one_early(item_ids, width):
        padded = F.pad(item_ids, (width + 1, 0))
        return padded.gather(1, (item_ids != 0).sum(1, keepdim=True) + torch.arange(width))

    early = ex.q3.check(one_early)
    assert not early and "include, the last real item" in early.message
