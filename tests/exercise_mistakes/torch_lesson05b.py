"""Lesson 05b: learners' wrong answers, and the mutants of the references that are equivalent to them."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from exercise_mistakes import mistake

EQUIVALENT = {
    "torch_lesson05b.q1": {"weights = torch.where(keep, F.silu(q @ k.transpose(2, 1)) / n, 0.0)":
                           "transpose(2, 1) swaps the same two axes as transpose(1, 2)"},
    "torch_lesson05b.q2": {"return w[distance.clamp(-1, len(w) - 1)].tril()":
                           "a distance of -1 is a key after its query: above the diagonal, zeroed by tril"},
}


def _mask(item_ids, real):
    n = item_ids.shape[1]
    return torch.tril(torch.ones(n, n)).bool() & real[:, None, :] & real[:, :, None]


# ---- q1: pointwise attention ---------------------------------------------------------------------------------------
@mistake("torch_lesson05b.q1", "softmax")
def softmax_attention(q, k, v, item_ids, n):
    mask = _mask(item_ids, item_ids != 0)
    weights = torch.softmax((q @ k.transpose(-1, -2)).masked_fill(~mask, -1e9), dim=-1) * mask
    return weights / n @ v


@mistake("torch_lesson05b.q1", "sees later clicks")
def no_causal_mask(q, k, v, item_ids, n):
    real = item_ids != 0
    mask = real[:, None, :] & real[:, :, None]
    return torch.where(mask, F.silu(q @ k.mT), 0) / n @ v


@mistake("torch_lesson05b.q1", "reads itself")
def strictly_earlier(q, k, v, item_ids, n):
    length = item_ids.shape[1]
    real = (item_ids != 0).float()
    mask = torch.ones(length, length).tril(-1) * real[:, None, :] * real[:, :, None]
    return (F.silu(torch.bmm(q, k.transpose(1, 2))) * mask / n) @ v


@mistake("torch_lesson05b.q1", "batch's width")
def divides_by_width(q, k, v, item_ids, n):
    mask = _mask(item_ids, item_ids != 0)
    return F.silu(q @ k.mT) * mask / item_ids.shape[1] @ v


@mistake("torch_lesson05b.q1", "that is a mean")
def mean_over_keys(q, k, v, item_ids, n):
    mask = _mask(item_ids, item_ids != 0)
    weights = F.silu(q @ k.mT) * mask
    return weights / mask.sum(-1, keepdim=True).clamp(min=1) @ v


@mistake("torch_lesson05b.q1", "padding key was read")
def causal_only(q, k, v, item_ids, n):
    return F.silu(q @ k.mT).tril() / n @ v


@mistake("torch_lesson05b.q1", "padding position reads nothing")
def padding_rows_read(q, k, v, item_ids, n):
    length = item_ids.shape[1]
    mask = torch.tril(torch.ones(length, length, dtype=torch.bool)) & (item_ids != 0).unsqueeze(1)
    return torch.where(mask, F.silu(q @ k.mT) / n, torch.zeros(())) @ v


@mistake("torch_lesson05b.q1", "masked as a query only")
def query_mask_only(q, k, v, item_ids, n):
    length = item_ids.shape[1]
    mask = torch.tril(torch.ones(length, length, dtype=torch.bool)) & (item_ids != 0).unsqueeze(2)
    return torch.where(mask, F.silu(q @ k.mT) / n, torch.zeros(())) @ v


@mistake("torch_lesson05b.q1", "OOV click (id 1) is a click")
def oov_as_padding(q, k, v, item_ids, n):
    mask = _mask(item_ids, item_ids > 1)
    return F.silu(q @ k.mT) * mask / n @ v


@mistake("torch_lesson05b.q1", "NaN")
def minus_infinity_before_silu(q, k, v, item_ids, n):
    mask = _mask(item_ids, item_ids != 0)
    return F.silu((q @ k.mT).masked_fill(~mask, float("-inf"))) / n @ v


@mistake("torch_lesson05b.q1")
def forgot_v(q, k, v, item_ids, n):
    return F.silu(q @ k.mT) * _mask(item_ids, item_ids != 0) / n


# ---- q2: the relative position bias --------------------------------------------------------------------------------
@mistake("torch_lesson05b.q2", "not j - i")
def key_minus_query(w, length):
    pos = torch.arange(length)
    return w[(pos[None, :] - pos[:, None]).clamp(0, len(w) - 1)]


@mistake("torch_lesson05b.q2", "off by one")
def distance_from_one(w, length):
    bias = torch.zeros(length, length)
    for i in range(length):
        for j in range(i + 1):
            bias[i, j] = w[min(i - j + 1, len(w) - 1)]
    return bias


@mistake("torch_lesson05b.q2", "absolute position")
def query_position(w, length):
    return w[torch.arange(length).clamp(max=len(w) - 1)][:, None].expand(length, length)


@mistake("torch_lesson05b.q2", "past the table's end")
def no_clamp(w, length):
    bias = torch.zeros(length, length)
    for i in range(length):
        for j in range(i + 1):
            bias[i, j] = w[i - j]
    return bias


@mistake("torch_lesson05b.q2", "the bias is 0")
def nothing_above_zeroed(w, length):
    pos = torch.arange(length)
    return w[(pos[:, None] - pos[None, :]).clamp(min=0, max=len(w) - 1)]


@mistake("torch_lesson05b.q2")
def key_position(w, length):
    return w[torch.arange(length).clamp(max=len(w) - 1)][None, :].expand(length, length)
