"""Lesson 05b exercises: HSTU's pointwise attention (SiLU, causal, 1/n) and its relative position bias."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sessrec_course.exercises.core import Case, Exercise, like, same


def pointwise_attention(q, k, v, item_ids, n):
    """HSTU's attention ``SiLU(q kᵀ) / n`` (key j ≤ query i, both clicks; else 0) times ``v`` → ``(B, L, d)``."""
    length = item_ids.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool).tril()  # query i reads keys j ≤ i, never later ones
    click = item_ids != 0  # padding neither reads nor is read; an OOV click (1) is a click
    keep = causal[None] & click[:, None, :] & click[:, :, None]
    weights = torch.where(keep, F.silu(q @ k.transpose(1, 2)) / n, 0.0)  # zeroed after SiLU, no softmax
    return weights @ v


def relative_bias(w, length):
    """``(L, L)`` bias ``w[i - j]`` of query i and key j ≤ i (0 above the diagonal); the table's end repeats."""
    position = torch.arange(length)
    distance = position[:, None] - position[None, :]  # how many clicks back key j is from query i
    return w[distance.clamp(0, len(w) - 1)].tril()  # a key after its query is never read: 0 there


def _attention(q, k, v, item_ids, n, activation="silu", causal=True, divide="n", lowest=1, keys=True,
               queries=True, diagonal=0):
    length = item_ids.shape[1]
    seen = torch.ones(length, length, dtype=torch.bool).tril(diagonal) if causal else torch.ones(length, length) > 0
    click = item_ids >= lowest
    keep = seen[None] & (click[:, None, :] if keys else True) & (click[:, :, None] if queries else True)
    scores = q @ k.transpose(1, 2)
    if activation == "softmax":
        weights = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1).nan_to_num(0.0)
    else:
        weights = torch.where(keep, F.silu(scores), 0.0)
    count = {"n": n, "width": length, "keys": keep.sum(-1, keepdim=True).clamp(min=1)}[divide]
    return (weights / count) @ v


def _batch(ids, d, n, seed, scale=1.5):
    ids = torch.tensor(ids)
    generator = torch.Generator().manual_seed(seed)
    q, k, v = (scale * torch.randn(*ids.shape, d, generator=generator) for _ in range(3))
    return q, k, v, ids, n


def _attention_cases() -> list[Case]:
    return [Case("two sessions, one padded", _batch([[4, 7, 2, 0], [5, 3, 8, 6]], 3, 20, 0)),
            Case("one click", _batch([[9]], 2, 10, 1), "a single click reads itself"),
            Case("OOV clicks", _batch([[1, 6, 1, 0, 0], [3, 1, 0, 0, 0]], 4, 20, 2), "an OOV click is a click"),
            Case("a left-padded batch", _batch([[0, 0, 4, 6, 2], [0, 5, 3, 8, 9]], 3, 8, 3),
                 "padding may sit anywhere: a padding key is never read, whatever its position"),
            Case("n equal to the width", _batch([[2, 5, 7, 0], [6, 0, 0, 0]], 2, 4, 4))]


q1 = Exercise(
    "HSTU's pointwise attention", pointwise_attention, _attention_cases,
    hints=["Scores q·kᵀ for every (query i, key j) pair, SiLU on each score on its own (no softmax), divided by n; "
           "keep a weight only where j ≤ i and both positions are clicks, 0 elsewhere; then weights @ v.",
           "The mask is a lower-triangular (L, L) matrix combined by broadcasting with the 'is a click' matrix "
           "along the key axis and along the query axis.",
           "Zero the masked weights after SiLU: SiLU(-inf) is -inf·0, which is NaN."],
    atol=1e-5,
    mistakes={"softmax: HSTU applies SiLU to each score on its own, so the weights need not sum to 1":
                  like(_attention, activation="softmax"),
              "a query sees later clicks: keep only keys j ≤ i (the causal mask)": like(_attention, causal=False),
              "each position also reads itself (j = i): the diagonal is kept": like(_attention, diagonal=-1),
              "divide by n, the model's window, not by the batch's width": like(_attention, divide="width"),
              "divide by n, not by the number of keys a query reads (that is a mean, and forgets how many there "
              "were)": like(_attention, divide="keys"),
              "a padding key was read: only clicks are keys": like(_attention, lowest=0),
              "a padding position reads nothing: its row of weights is 0": like(_attention, queries=False),
              "padding is masked as a query only: it must never be read as a key either": like(_attention, keys=False),
              "an OOV click (id 1) is a click: only padding (0) is masked": like(_attention, lowest=2),
              "NaN: a -inf mask before SiLU gives -inf·0; zero the masked weights after SiLU":
                  lambda case, expected, got: bool(torch.isnan(torch.as_tensor(got)).any())})


def _bias(w, length, sign=1, shift=0, absolute=False):
    position = torch.arange(length)
    distance = position[:, None].expand(length, length) if absolute else sign * (position[:, None] - position[None, :]) + shift
    return w[distance.clamp(0, len(w) - 1)].tril()


def _lower(expected, got) -> bool:
    """The same below and on the diagonal (the pairs attention reads), whatever stands above it."""
    got = torch.as_tensor(got)
    return got.shape == expected.shape and same(expected.tril(), got.tril())


def _bias_cases() -> list[Case]:
    return [Case("a table as long as the session", (torch.tensor([0.5, -0.2, 0.1, 0.3]), 4)),
            Case("a short session", (torch.tensor([0.9, 0.4, -0.3, 0.2, -0.1, 0.6]), 3)),
            Case("a session longer than the table", (torch.tensor([0.7, -0.5, 0.25]), 6),
                 "distances past the table's end read its last entry"),
            Case("one click", (torch.tensor([1.5, 2.5]), 1))]


q2 = Exercise(
    "the relative position bias", relative_bias, _bias_cases,
    hints=["Entry (i, j) is w at the distance i - j: how many clicks back key j is from query i. Above the "
           "diagonal (j > i, a key after its query) put 0.",
           "Build the (L, L) distances from two broadcast position vectors, clamp them into the table, index w "
           "with the whole matrix at once, then zero what lies above the diagonal."],
    mistakes={"above the diagonal (a key after its query, never read) the bias is 0":
                  lambda case, expected, got: _lower(expected, got),
              "the distance is i - j (query minus key), not j - i": like(_bias, _lower, sign=-1),
              "the diagonal (a click and itself, distance 0) reads w[0]: the distance is off by one":
                  like(_bias, _lower, shift=1),
              "the bias of a pair depends on their distance, not on the query's absolute position":
                  like(_bias, _lower, absolute=True)})
