"""Lesson 03: learners' wrong answers, and the mutants of the references that are equivalent to them."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from exercise_mistakes import mistake

EQUIVALENT = {
    "torch_lesson03.q2": {
        "deleted: model.train()": "the cases' models have no dropout and a new module is already in training mode",
    },
}


# ---- q1: the loss --------------------------------------------------------------------------------------------------
@mistake("torch_lesson03.q1", "its own item")
def unshifted(hidden, item_ids, item_embedding, output_bias):
    keep = item_ids > 1
    return F.cross_entropy(hidden[keep] @ item_embedding.T + output_bias, item_ids[keep])


@mistake("torch_lesson03.q1", "padding targets")
def with_padding(hidden, item_ids, item_embedding, output_bias):
    logits = hidden[:, :-1] @ item_embedding.T + output_bias
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), item_ids[:, 1:].reshape(-1))


@mistake("torch_lesson03.q1", "OOV targets (id 1) still count")
def with_oov(hidden, item_ids, item_embedding, output_bias):
    targets = item_ids[:, 1:]
    keep = targets != 0
    return F.cross_entropy(hidden[:, :-1][keep] @ item_embedding.T + output_bias, targets[keep])


@mistake("torch_lesson03.q1", "output bias")
def no_bias(hidden, item_ids, item_embedding, output_bias):
    targets = item_ids[:, 1:]
    keep = targets > 1
    return F.cross_entropy(hidden[:, :-1][keep] @ item_embedding.T, targets[keep])


@mistake("torch_lesson03.q1")
def shifted_the_wrong_way(hidden, item_ids, item_embedding, output_bias):
    targets = item_ids[:, :-1]
    keep = targets > 1
    return F.cross_entropy(hidden[:, 1:][keep] @ item_embedding.T + output_bias, targets[keep])


@mistake("torch_lesson03.q1")
def softmax_twice(hidden, item_ids, item_embedding, output_bias):
    targets = item_ids[:, 1:]
    keep = targets > 1
    probs = torch.softmax(hidden[:, :-1][keep] @ item_embedding.T + output_bias, dim=-1)
    return F.cross_entropy(probs, targets[keep])


# ---- q2: the loop --------------------------------------------------------------------------------------------------
@mistake("torch_lesson03.q2", "never updated")
def no_step(model, batches, learning_rate):
    return [model.loss(batch).item() for batch in batches]


@mistake("torch_lesson03.q2", "zero_grad")
def no_zero_grad(model, batches, learning_rate):
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    losses = []
    for batch in batches:
        loss = model.loss(batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@mistake("torch_lesson03.q2", "not plain SGD")
def adam(model, batches, learning_rate):
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    losses = []
    for batch in batches:
        optimizer.zero_grad()
        loss = model.loss(batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@mistake("torch_lesson03.q2", "not plain SGD")
def fixed_learning_rate(model, batches, learning_rate):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    out = []
    for batch in batches:
        optimizer.zero_grad()
        loss = model.loss(batch)
        loss.backward()
        optimizer.step()
        out.append(loss.item())
    return out


@mistake("torch_lesson03.q2", "before its update")
def loss_after_the_step(model, batches, learning_rate):
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    losses = []
    for batch in batches:
        optimizer.zero_grad()
        model.loss(batch).backward()
        optimizer.step()
        losses.append(model.loss(batch).item())
    return losses


# ---- q3: the window ------------------------------------------------------------------------------------------------
@mistake("torch_lesson03.q3", "last columns are padding")
def last_columns(item_ids, width):
    return item_ids[:, -width:]


@mistake("torch_lesson03.q3", "zeros go in front")
def left_aligned(item_ids, width):
    rows = [r[r != 0][-width:] for r in item_ids]
    return torch.stack([F.pad(r, (0, width - len(r))) for r in rows])


@mistake("torch_lesson03.q3", "include, the last real item")
def one_early(item_ids, width):
    padded = F.pad(item_ids, (width + 1, 0))
    return padded.gather(1, (item_ids != 0).sum(1, keepdim=True) + torch.arange(width))


@mistake("torch_lesson03.q3", "OOV click (id 1) is still a click")
def oov_is_no_click(item_ids, width):
    lengths = (item_ids > 1).sum(dim=1)
    padded = torch.cat([torch.zeros(len(item_ids), width, dtype=item_ids.dtype), item_ids], dim=1)
    return padded.gather(1, lengths[:, None] + torch.arange(width)[None, :])


@mistake("torch_lesson03.q3", "an OOV click is a click")
def drops_oov_clicks(item_ids, width):
    out = torch.zeros(len(item_ids), width, dtype=torch.long)
    for r, row in enumerate(item_ids):
        items = row[row > 1][-width:]  # forgets that OOV clicks are clicks
        if len(items):
            out[r, width - len(items):] = items
    return out


@mistake("torch_lesson03.q3")
def newest_first(item_ids, width):
    padded = F.pad(item_ids, (width, 0))
    index = (item_ids != 0).sum(1, keepdim=True) + torch.arange(width - 1, -1, -1)
    return padded.gather(1, index)


@mistake("torch_lesson03.q3")
def first_items(item_ids, width):
    return F.pad(item_ids, (width, 0))[:, width:2 * width]
