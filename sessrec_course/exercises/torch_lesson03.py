"""Lesson 03 exercises: the next-item loss by hand, a plain training loop, the MLP's input window."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sessrec_course.exercises.core import Case, Exercise, like, same
from sessrec_course.models import ModelConfig, build_model


def next_item_loss(hidden, item_ids, item_embedding, output_bias):
    """Mean cross-entropy of the next item over the whole catalogue, on real targets only."""
    h = hidden[:, :-1]  # the state after item t ...
    targets = item_ids[:, 1:]  # ... predicts item t + 1
    keep = targets > 1  # no loss where the target is padding (0) or unknown (1)
    logits = h[keep] @ item_embedding.T + output_bias
    return F.cross_entropy(logits, targets[keep])


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


def last_window(item_ids, width):
    """The MLP's input at the last click: each session's last ``width`` items, oldest first, zeros in front."""
    lengths = (item_ids != 0).sum(dim=1)
    zeros = torch.zeros(len(item_ids), width, dtype=item_ids.dtype)
    padded = torch.cat([zeros, item_ids], dim=1)  # zeros before the start, as the MLP sees a short session
    index = lengths[:, None] + torch.arange(width)[None, :]  # original positions length - width .. length - 1
    return padded.gather(1, index)


def _loss(hidden, item_ids, embedding, bias, shift=1, lowest=2, bias_scale=1):
    h, targets = hidden[:, : hidden.shape[1] - shift], item_ids[:, shift:]
    keep = targets >= lowest
    return F.cross_entropy(h[keep] @ embedding.T + bias * bias_scale, targets[keep])


def _loss_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    embedding, bias = torch.randn(12, 4, generator=g), torch.randn(12, generator=g)
    return [Case(label, (torch.randn(*torch.tensor(ids).shape, 4, generator=g), torch.tensor(ids), embedding, bias))
            for label, ids in [("one full session", [[3, 7, 5, 9]]),
                               ("sessions padded on the right", [[4, 6, 0, 0, 0], [2, 8, 11, 3, 0], [5, 2, 7, 10, 9]]),
                               ("an unknown item in the middle", [[6, 1, 4, 0], [9, 3, 1, 2]])]]


q1 = Exercise(
    "the next-item cross-entropy, by hand", next_item_loss, _loss_cases, atol=1e-5,
    hints=["Pair the state at position t with the item at t + 1, keep the pairs whose target is a real item, score "
           "every catalogue item with a dot product, and take the mean cross-entropy.",
           "Targets 0 (padding) and 1 (OOV) carry no loss."],
    mistakes={"your loss asks each position for its own item: the state at t predicts the next": like(_loss, shift=0),
              "your loss also scores padding targets (id 0): keep real items only": like(_loss, lowest=0),
              "OOV targets (id 1) still count: an unknown item cannot be named": like(_loss, lowest=1),
              "the scores need the output bias too": like(_loss, bias_scale=0)})


def _loop(model, batches, learning_rate, clear=True, step=True):
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    losses = []
    for batch in batches:
        loss = model.loss(batch)
        optimizer.zero_grad() if clear else None
        loss.backward()
        optimizer.step() if step else None
        losses.append(loss.item())
    return losses


def _floats(values):
    """Losses as plain floats (tensors or numbers); anything else unchanged, for the comparison to refuse."""
    try:
        return [float(v.detach()) if hasattr(v, "detach") else float(v) for v in values]
    except (TypeError, ValueError, RuntimeError):
        return values


def _same_losses(expected, got) -> bool:
    return same(expected, _floats(got), atol=1e-5)


def _loop_cases() -> list[Case]:
    def model(name: str, seed: int):
        torch.manual_seed(seed)
        return build_model(ModelConfig(name=name, item_cardinality=15, hidden_size=8, max_length=6, dropout=0.0))

    batch = torch.tensor([[2, 5, 7, 3, 0], [4, 4, 9, 0, 0], [11, 6, 2, 8, 13]])
    other = torch.tensor([[3, 8, 0], [12, 2, 5]])
    return [Case("the same batch three times (an MLP)", (model("mlp", 0), [batch, batch, batch], 0.5)),
            Case("two different batches (a GRU)", (model("gru", 1), [batch, other, batch, other], 0.3))]


q2 = Exercise(
    "a plain training loop", train_losses, _loop_cases, compare=_same_losses,
    hints=["One optimizer for the model's parameters; for each batch: the loss, clear the old gradients, "
           "backward, one optimizer step, and keep the loss as a number.",
           "The model's own loss method already shifts, drops padding and takes the full-catalogue cross-entropy.",
           "Gradients add up in .grad until something clears them."],
    mistakes={"the weights are never updated (the optimizer's step)": like(_loop, _same_losses, step=False),
              "clear the gradients (zero_grad) before each backward": like(_loop, _same_losses, clear=False),
              "the first loss is already off: record the loss of each batch before its update":
                  lambda case, expected, got: abs(_floats(got)[0] - expected[0]) > 1e-5,
              "the first loss matches and later ones differ: the update is not plain SGD with learning_rate":
                  lambda case, expected, got: len(got) == len(expected)})


def _window(item_ids, width, lowest=1, end=0, left=False):
    lengths = (item_ids >= lowest).sum(dim=1) + end
    rows = [item_ids[r, max(0, int(n) - width):int(n)] for r, n in enumerate(lengths)]
    return torch.stack([F.pad(row, (0, width - len(row)) if left else (width - len(row), 0)) for row in rows])


q3 = Exercise(
    "the MLP's window at the last click", last_window,
    [Case("a session longer than the window", (torch.tensor([[3, 5, 7, 9, 11, 0]]), 3)),
     Case("a session shorter than the window", (torch.tensor([[4, 6, 0, 0], [2, 8, 5, 9]]), 3),
          "a short session has zeros before its first item"),
     Case("OOV clicks", (torch.tensor([[5, 1, 7, 1, 0, 0], [1, 1, 0, 0, 0, 0]]), 3), "an OOV click is a click"),
     Case("a window of one", (torch.tensor([[6, 2, 0], [7, 0, 0]]), 1))],
    hints=["Find each session's length; the window covers positions length - width to length - 1, and positions "
           "before 0 read as padding.",
           "A few columns of zeros in front of the batch make every window fit."],
    mistakes={"the last columns are padding for a short session: the window ends at its last real click":
                  lambda case, expected, got: torch.equal(torch.as_tensor(got), case.args[0][:, -case.args[1]:]),
              "right items, wrong side: zeros go in front, the newest item last": like(_window, left=True),
              "one position off: the window must end at, and include, the last real item": like(_window, end=-1),
              "an OOV click (id 1) is still a click: only padding (0) ends a session": like(_window, lowest=2)})
