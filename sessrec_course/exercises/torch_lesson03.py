"""Lesson 03 exercises: the next-item loss by hand, a plain training loop, the MLP's input window.

``from sessrec_course.exercises import torch_lesson03 as ex``; ``ex.q1.check(next_item_loss)``, ``ex.q1.hint()``,
``ex.q1.solution()``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sessrec_course.exercises.core import Case, Exercise, same
from sessrec_course.models import ModelConfig, build_model


def next_item_loss(hidden, item_ids, item_embedding, output_bias):
    """Mean cross-entropy of the next item over the whole catalogue, on real targets only."""
    h = hidden[:, :-1]  # the state after item t ...
    targets = item_ids[:, 1:]  # ... predicts item t + 1
    keep = targets > 1  # no loss where the target is padding (0) or unknown (1)
    logits = h[keep] @ item_embedding.T + output_bias
    return F.cross_entropy(logits, targets[keep])


def _loss_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    n, dim = 12, 4
    embedding, bias = torch.randn(n, dim, generator=g), torch.randn(n, generator=g)

    def case(label, ids, hint=""):
        ids = torch.tensor(ids)
        return Case(label, (torch.randn(*ids.shape, dim, generator=g), ids, embedding, bias), hint)

    return [case("one full session", [[3, 7, 5, 9]], "the hidden state at position t scores item t + 1"),
            case("sessions padded on the right", [[4, 6, 0, 0, 0], [2, 8, 11, 3, 0], [5, 5, 7, 10, 9]],
                 "padding (id 0) is not a next item: drop those targets before the softmax"),
            case("an unknown item in the middle", [[6, 1, 4, 0], [9, 3, 1, 2]],
                 "an OOV target (id 1) teaches nothing either: keep only targets above 1")]


def _loss_variants(hidden, item_ids, embedding, bias) -> dict[str, float]:
    """The classic wrong losses of a case, to recognise them in a learner's answer."""
    def ce(h, t, keep):
        return float(F.cross_entropy(h[keep] @ embedding.T + bias, t[keep]))

    shifted_h, shifted_t = hidden[:, :-1], item_ids[:, 1:]
    return {"unshifted": ce(hidden, item_ids, item_ids > 1),
            "with padding": ce(shifted_h, shifted_t, torch.ones_like(shifted_t, dtype=torch.bool)),
            "with oov": ce(shifted_h, shifted_t, shifted_t > 0)}


def _diagnose_loss(case: Case, expected, got) -> str | None:
    try:
        value = float(got.detach()) if hasattr(got, "detach") else float(got)
    except (TypeError, ValueError, RuntimeError):
        return "return one number: the mean cross-entropy (a 0-d tensor), not a tensor per position"
    variants = _loss_variants(*case.args)
    if abs(value - variants["unshifted"]) < 1e-5:
        return "your loss asks each position for its own item: shift the targets by one (hidden[:, :-1] vs ids[:, 1:])"
    if abs(value - variants["with padding"]) < 1e-5 and abs(variants["with padding"] - float(expected)) > 1e-6:
        return "your loss also scores padding targets (id 0): keep only targets that are real items"
    if abs(value - variants["with oov"]) < 1e-5 and abs(variants["with oov"] - float(expected)) > 1e-6:
        return "padding is dropped, but OOV targets (id 1) still count: keep targets above 1"
    return None


q1 = Exercise(
    "the next-item cross-entropy, by hand",
    next_item_loss, _loss_cases,
    hints=["Pair the hidden state at position t with the item at t + 1, drop pairs whose target is no real item, "
           "then score every catalogue item with a dot product and take the cross-entropy.",
           "Targets of 0 (padding) and 1 (OOV) carry no loss; a boolean mask indexes both sides at once.",
           "Scores are hidden @ item_embedding.T + output_bias; F.cross_entropy averages over the kept rows."],
    compare=lambda expected, got: same(expected, got, atol=1e-5),
    diagnose=_diagnose_loss,
)


def train_losses(model, batches, learning_rate):
    """Plain SGD over ``batches`` (one step each); return the loss of every step as floats."""
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    model.train()
    losses = []
    for batch in batches:
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def _loop_cases() -> list[Case]:
    def model(name: str, seed: int):
        torch.manual_seed(seed)
        return build_model(ModelConfig(name=name, item_cardinality=15, hidden_size=8, max_length=6, dropout=0.0))

    batch = torch.tensor([[2, 5, 7, 3, 0], [4, 4, 9, 0, 0], [11, 6, 2, 8, 13]])
    other = torch.tensor([[3, 8, 0], [12, 2, 5]])
    return [Case("the same batch three times (an MLP)", (model("mlp", 0), [batch, batch, batch], 0.5),
                 "a step must lower the loss of the next one: compute, clear the old gradients, backward, step"),
            Case("two different batches (a GRU)", (model("gru", 1), [batch, other, batch, other], 0.3))]


def _floats(values):
    """A list of losses as plain floats (tensors or numbers); anything else unchanged, for the comparison to refuse."""
    try:
        return [float(v.detach()) if hasattr(v, "detach") else float(v) for v in values]
    except (TypeError, ValueError, RuntimeError):
        return values


def _diagnose_loop(case: Case, expected, got) -> str | None:
    if not isinstance(got, list | tuple) or len(got) != len(expected):
        return f"return a list with one loss per batch ({len(expected)} here)"
    values = _floats(got)
    if not all(isinstance(v, float) for v in values):
        return "each loss should be a number: append loss.item()"
    if abs(values[0] - expected[0]) > 1e-5:
        return "the first loss is already off: compute model.loss(batch) before any update"
    if len(values) > 2 and max(values) - min(values) < 1e-7:
        return "the loss never changes: the weights are not updated (optimizer.step())"
    return ("the first step matches, later ones drift: clear the gradients before each backward "
            "(optimizer.zero_grad()), or they add up across steps")


q2 = Exercise(
    "a plain training loop",
    train_losses, _loop_cases,
    hints=["Make one optimizer for the model's parameters; for each batch: the loss, zero the gradients, "
           "backward, one optimizer step, and keep loss.item().",
           "model.loss(batch) already shifts, drops padding and takes the full-catalogue cross-entropy.",
           "Gradients add up in .grad until something clears them."],
    compare=lambda expected, got: same(expected, _floats(got), atol=1e-5),
    diagnose=_diagnose_loop,
)


def last_window(item_ids, width):
    """The MLP's input at the last click: each session's last ``width`` items, oldest first, zeros in front."""
    lengths = (item_ids != 0).sum(dim=1)
    zeros = torch.zeros(len(item_ids), width, dtype=item_ids.dtype)
    padded = torch.cat([zeros, item_ids], dim=1)  # zeros before the start, as the MLP sees a short session
    index = lengths[:, None] + torch.arange(width)[None, :]  # original positions length - width .. length - 1
    return padded.gather(1, index)


def _window_variants(item_ids, width) -> dict[str, torch.Tensor]:
    """Typical wrong windows of a case, to recognise them in a learner's answer."""
    lengths = (item_ids != 0).sum(dim=1)
    rows = [item_ids[r, max(0, int(n) - width):int(n)] for r, n in enumerate(lengths)]
    left = torch.stack([F.pad(row, (0, width - len(row))) for row in rows])
    early = torch.cat([torch.zeros(len(item_ids), width + 1, dtype=item_ids.dtype), item_ids], dim=1)
    early = early.gather(1, lengths[:, None] + torch.arange(width)[None, :])
    return {"last columns": item_ids[:, -width:], "left aligned": left, "one early": early}


def _diagnose_window(case: Case, expected, got) -> str | None:
    got = torch.as_tensor(got)
    if got.shape != expected.shape:
        return f"one row of {expected.shape[1]} ids per session: shape {tuple(expected.shape)}"
    variants = _window_variants(*case.args)
    if torch.equal(got, variants["last columns"]):
        return "the last columns are padding for a short session: the window ends at its last real click"
    if torch.equal(got, variants["left aligned"]):
        return "right items, wrong side: the newest item sits in the last slot, zeros go in front (before the start)"
    if torch.equal(got, variants["one early"]):
        return "one position off: the window must end at, and include, the last real item"
    return None


q3 = Exercise(
    "the MLP's window at the last click",
    last_window,
    [Case("a session longer than the window", (torch.tensor([[3, 5, 7, 9, 11, 0]]), 3)),
     Case("a session shorter than the window", (torch.tensor([[4, 6, 0, 0], [2, 8, 5, 9]]), 3),
          "a short session has zeros before its first item"),
     Case("a window of one", (torch.tensor([[6, 2, 0], [7, 0, 0]]), 1), "a window of one is the last click")],
    hints=["Find each session's length; the window covers positions length - width .. length - 1, and positions "
           "before 0 read as padding.",
           "Putting `width` zero columns in front of the batch makes every window fit; then gather by index."],
    diagnose=_diagnose_window,
)
