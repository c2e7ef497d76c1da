"""Lesson 04: learners' wrong answers, and the mutants of the references that are equivalent to them."""

from __future__ import annotations

import torch

from exercise_mistakes import mistake
from sessrec_course.exercises import torch_lesson04 as ex

EQUIVALENT = {
    "torch_lesson04.q3": {"seen = torch.zeros_like(scores)": "a float 0/1 mark adds the same bonus"},
    "torch_lesson04.q4": {"gate = torch.where(total[:, -1] > 0, gate, torch.zeros_like(gate))[:, None]":
                          "total has one column: -1 and 0 are the same"},
}


# ---- q1: cases -----------------------------------------------------------------------------------------------------
@mistake("torch_lesson04.q1", "one case per session")
def one_per_session(item_ids):
    return len(item_ids)


@mistake("torch_lesson04.q1", "has no next click")
def every_click(item_ids):
    return int((item_ids != 0).sum())


@mistake("torch_lesson04.q1", "padding positions are no cases")
def every_position(item_ids):
    return item_ids.shape[0] * (item_ids.shape[1] - 1)


@mistake("torch_lesson04.q1", "OOV click (id 1) is a click")
def oov_is_padding(item_ids):
    return int(((item_ids > 1).sum(1) - 1).clamp(min=0).sum())


@mistake("torch_lesson04.q1", "not -1")
def negative_for_empty(item_ids):
    return int(((item_ids != 0).sum(dim=1) - 1).sum())


@mistake("torch_lesson04.q1")
def nonzero_next_items_of_the_first_row(item_ids):
    return int((item_ids[0, 1:] != 0).sum()) * len(item_ids)


# ---- q2: the last state --------------------------------------------------------------------------------------------
@mistake("torch_lesson04.q2", "last column is padding")
def last_column(states, item_ids):
    return states[:, -1]


@mistake("torch_lesson04.q2", "one position too far")
def one_too_far(states, item_ids):
    return states[torch.arange(len(item_ids)), (item_ids != 0).sum(1).clamp(max=item_ids.shape[1] - 1)]


@mistake("torch_lesson04.q2", "OOV click (id 1) is a click")
def oov_is_no_click(states, item_ids):
    last = ((item_ids > 1).sum(dim=1) - 1).clamp(min=0)
    return states[torch.arange(len(states)), last]


@mistake("torch_lesson04.q2", "not -1")
def empty_reads_the_end(states, item_ids):
    rows = []
    for r in range(len(states)):
        n = int((item_ids[r] != 0).sum())
        rows.append(states[r, n - 1])
    return torch.stack(rows)


@mistake("torch_lesson04.q2")
def argmin_of_the_ids(states, item_ids):
    last = (item_ids == 0).int().argmax(dim=1) - 1  # the first padding, minus one
    return states[torch.arange(len(states)), last.clamp(min=0)]


# ---- q3: repeat bonus ----------------------------------------------------------------------------------------------
@mistake("torch_lesson04.q3", "padding got the bonus")
def bonus_on_padding(scores, item_ids, bonus):
    seen = torch.zeros_like(scores, dtype=torch.bool).scatter(1, item_ids, True)
    return scores + bonus * seen


@mistake("torch_lesson04.q3", "got the bonus twice")
def bonus_per_click(scores, item_ids, bonus):
    added = scores.scatter_add(1, item_ids, torch.full(item_ids.shape, float(bonus)))
    added[:, 0] = scores[:, 0]
    return added


@mistake("torch_lesson04.q3", "not multiplied")
def bonus_as_a_factor(scores, item_ids, bonus):
    out = scores.clone()
    for r, row in enumerate(item_ids):
        for item in set(row.tolist()) - {0}:
            out[r, item] = scores[r, item] * bonus
    return out


@mistake("torch_lesson04.q3")
def bonus_on_positions(scores, item_ids, bonus):
    out = scores.clone()
    out[:, : item_ids.shape[1]] += bonus * (item_ids != 0)  # the positions, not the items
    return out


# ---- q4: mixture ---------------------------------------------------------------------------------------------------
@mistake("torch_lesson04.q4", "q counts clicks")
def distinct_items(probs, item_ids, gate):
    seen = torch.zeros_like(probs).scatter(1, item_ids, 1.0)
    seen[:, 0] = 0.0
    share = seen / seen.sum(dim=1, keepdim=True).clamp(min=1.0)
    gate = torch.where(seen.sum(dim=1) > 0, gate, torch.zeros_like(gate))[:, None]
    return gate * share + (1 - gate) * probs


@mistake("torch_lesson04.q4", "sum to 1")
def sum_not_mixture(probs, item_ids, gate):
    return ex.repeat_or_explore(probs, item_ids, gate) + gate[:, None] * probs


@mistake("torch_lesson04.q4", "probs alone")
def gate_on_empty(probs, item_ids, gate):
    clicks = torch.zeros_like(probs).scatter_add(1, item_ids, torch.ones_like(item_ids, dtype=probs.dtype))
    clicks[:, 0] = 0.0
    share = clicks / clicks.sum(dim=1, keepdim=True).clamp(min=1.0)
    return gate[:, None] * share + (1 - gate[:, None]) * probs


@mistake("torch_lesson04.q4", "OOV click (id 1) is a click")
def oov_clicks_are_not_counted(probs, item_ids, gate):
    out = probs.clone()
    for r, row in enumerate(item_ids):
        clicks = row[row > 1]
        if len(clicks):
            q = torch.bincount(clicks, minlength=probs.shape[1]).to(probs.dtype) / len(clicks)
            out[r] = gate[r] * q + (1 - gate[r]) * probs[r]
    return out


@mistake("torch_lesson04.q4")
def divides_by_the_width(probs, item_ids, gate):
    clicks = torch.zeros_like(probs).scatter_add(1, item_ids, torch.ones_like(item_ids, dtype=probs.dtype))
    clicks[:, 0] = 0.0
    gate = torch.where(clicks.sum(1) > 0, gate, torch.zeros_like(gate))[:, None]
    return gate * clicks / item_ids.shape[1] + (1 - gate) * probs
