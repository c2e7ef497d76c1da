"""Lesson 05: learners' wrong answers, and the mutants of the references that are equivalent to them."""

from __future__ import annotations

import torch

from exercise_mistakes import mistake
from sessrec_course.exercises import torch_lesson05 as ex

EQUIVALENT: dict[str, dict[str, str]] = {}


# ---- q1: the causal mask -------------------------------------------------------------------------------------------
@mistake("torch_lesson05.q1", "transposed")
def transposed(item_ids):
    return ex.causal_padding_mask(item_ids).transpose(1, 2)


@mistake("torch_lesson05.q1", "sees the future")
def padding_only(item_ids):
    return (item_ids != 0)[:, None, :].expand(-1, item_ids.shape[1], -1)


@mistake("torch_lesson05.q1", "see itself")
def strictly_earlier(item_ids):
    n = item_ids.shape[1]
    return torch.ones(n, n, dtype=torch.bool).tril(-1)[None] & (item_ids != 0)[:, None, :]


@mistake("torch_lesson05.q1", "wrong axis")
def padding_rows(item_ids):
    n = item_ids.shape[1]
    return torch.tril(torch.ones(n, n)).bool() & (item_ids != 0).unsqueeze(2)


@mistake("torch_lesson05.q1", "OOV click (id 1) is a real item")
def oov_as_padding(item_ids):
    n = item_ids.shape[1]
    return torch.tril(torch.ones(n, n, dtype=torch.bool)).unsqueeze(0) & (item_ids > 1).unsqueeze(1)


@mistake("torch_lesson05.q1", "padding columns are looked at")
def causal_only(item_ids):
    n = item_ids.shape[1]
    return torch.ones(len(item_ids), n, n).tril().int()


# ---- q2: masking ---------------------------------------------------------------------------------------------------
@mistake("torch_lesson05.q2", "last real item of every session")
def no_last(item_ids, chosen, mask_id):
    masked = chosen & (item_ids != 0)
    return torch.where(masked, mask_id, item_ids), torch.where(masked, item_ids, 0)


@mistake("torch_lesson05.q2", "padding became [MASK]")
def masks_padding(item_ids, chosen, mask_id):
    inputs, targets = ex.mask_items(item_ids, chosen, mask_id)
    return torch.where(chosen & (item_ids == 0), mask_id, inputs), targets


@mistake("torch_lesson05.q2", "targets hold every item")
def every_target(item_ids, chosen, mask_id):
    return ex.mask_items(item_ids, chosen, mask_id)[0], item_ids


@mistake("torch_lesson05.q2", "can be the last one")
def oov_is_no_item(item_ids, chosen, mask_id):
    inputs, targets = item_ids.clone(), torch.zeros_like(item_ids)
    for r in range(len(item_ids)):
        real = item_ids[r] > 1
        pick = chosen[r] & real
        if real.any():
            pick[real.nonzero().max()] = True
        inputs[r][pick] = mask_id
        targets[r][pick] = item_ids[r][pick]
    return inputs, targets


@mistake("torch_lesson05.q2")
def targets_minus_100(item_ids, chosen, mask_id):
    inputs, targets = ex.mask_items(item_ids, chosen, mask_id)
    return inputs, torch.where(inputs == mask_id, targets, -100)


# ---- q3: append [MASK] ---------------------------------------------------------------------------------------------
@mistake("torch_lesson05.q3", "not after the padding")
def at_the_end(item_ids, mask_id):
    return torch.cat([item_ids, torch.full_like(item_ids[:, :1], mask_id)], dim=1)


@mistake("torch_lesson05.q3", "replaced the last item")
def replaces_the_last(item_ids, mask_id):
    last = ((item_ids != 0).sum(dim=1) - 1).clamp(min=0)
    return torch.cat([item_ids, torch.zeros_like(item_ids[:, :1])], dim=1).scatter(1, last[:, None], mask_id)


@mistake("torch_lesson05.q3", "one column wider")
def same_width(item_ids, mask_id):
    out = item_ids.clone()
    for r, n in enumerate((item_ids != 0).sum(1).tolist()):
        out[r, min(n, out.shape[1] - 1)] = mask_id
    return out


@mistake("torch_lesson05.q3", "only padding (0) ends a session")
def oov_ends_the_session(item_ids, mask_id):
    out = torch.nn.functional.pad(item_ids, (0, 1))
    out[torch.arange(len(out)), (item_ids > 1).sum(1)] = mask_id
    return out


@mistake("torch_lesson05.q3")
def mask_id_one_off(item_ids, mask_id):
    out = torch.nn.functional.pad(item_ids, (0, 1))
    out[torch.arange(len(out)), (item_ids != 0).sum(1)] = mask_id - 1
    return out
