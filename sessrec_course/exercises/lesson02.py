"""Lesson 02 exercises: the rank of a target with the tie rule, NDCG@K from ranks, S-POP scores.

Reference solutions are what ``q1.solution()`` shows; the hidden cases are small arrays built here. numpy only.
"""

from __future__ import annotations

import numpy as np

from sessrec_course.evaluation import MISS_RANK
from sessrec_course.exercises.core import Case, Exercise


def target_ranks(scores, targets):
    """1-based rank of each target in its score row; ties to the lower id; pad (0) / OOV (1) never ranked."""
    ranks = []
    for row, target in zip(scores, targets, strict=True):
        if target < 2:  # a padding or OOV target can never be recommended: always a miss
            ranks.append(MISS_RANK)
            continue
        real = row[2:]  # padding and OOV are never recommended, whatever they score
        own = row[target]
        higher = (real > own).sum()
        tied_before = (real[: target - 2] == own).sum()  # equal scores with a smaller id come first
        ranks.append(1 + int(higher) + int(tied_before))
    return np.array(ranks, dtype=np.int64)


def ndcg_at_k(ranks, k):
    """Mean NDCG@K over cases: 1 / log2(rank + 1) when rank <= K, else 0."""
    ranks = np.asarray(ranks, dtype=np.float64)
    gains = np.where(ranks <= k, 1.0 / np.log2(np.minimum(ranks, 2.0**52) + 1.0), 0.0)
    return float(gains.mean())


def spop_scores(item_ids, popularity):
    """S-POP: occurrences of each item in the prefix + 0.5 x popularity / max popularity; pad and OOV score 0."""
    popularity = np.asarray(popularity, dtype=np.float64).copy()
    popularity[:2] = 0.0  # padding and OOV are never recommended
    scores = np.repeat(0.5 * popularity[None, :] / popularity.max(), len(item_ids), axis=0)
    for row, prefix in enumerate(item_ids):
        for item in prefix:
            if item >= 2:  # padding (0) and OOV (1) are not items of the session
                scores[row, item] += 1.0
    return scores.astype(np.float32)


# ---------------------------------------------------------------------------------------------- hidden cases
def _rank_cases() -> list[Case]:
    row = np.array([7.0, 7.0, 0.3, 0.9, 0.3, 0.1, 0.3], dtype=np.float32)
    return [
        Case("no ties", (np.array([[0.0, 0.0, 0.2, 0.8, 0.5]], np.float32), np.array([4])),
             hint="rank 1 is the top: count the real items scored higher, then add one"),
        Case("padding and OOV score highest", (np.repeat(row[None], 2, axis=0), np.array([3, 5])),
             hint="ids 0 (padding) and 1 (OOV) are never recommended: leave them out of the ranking"),
        Case("a three-way tie", (np.repeat(row[None], 3, axis=0), np.array([2, 4, 6])),
             hint="equal scores: the smaller id comes first, so it takes the better rank"),
        Case("an OOV and a padding target", (np.repeat(row[None], 3, axis=0), np.array([1, 0, 3])),
             hint="a target that is padding or OOV is always a miss: give it MISS_RANK"),
    ]


def _diagnose_ranks(case: Case, expected, got) -> str | None:
    got = np.asarray(got)
    if got.shape != expected.shape:
        return "return one rank per target, as an int array"
    real = expected != MISS_RANK
    if (got[~real] != MISS_RANK).any():
        return "a padding or OOV target is always a miss: give it MISS_RANK"
    if np.array_equal(got[real], expected[real] - 1):
        return "your ranks are one too low: rank 1 is the top (count the items above, then add one)"
    if np.array_equal(got[real], expected[real] + 1):
        return "your ranks are one too high: the best item has rank 1"
    if (got[real] > expected[real]).any() and (got[real] - expected[real] <= 2).all():
        return "some ranks are too high: padding and OOV must not count, and a tied item with a larger id comes after"
    return None


def _ndcg_cases() -> list[Case]:
    return [
        Case("a hit at the top", (np.array([1, 1, 1]), 10), hint="a hit at rank 1 gains 1 / log2(2) = 1"),
        Case("hits and misses", (np.array([1, 3, 30, 2]), 10),
             hint="a miss (rank > K) gains 0 but still counts in the mean"),
        Case("a hit at exactly K", (np.array([5, 6, 4]), 5), hint="rank == K is still inside the list"),
        Case("OOV targets are misses", (np.array([2, MISS_RANK, MISS_RANK]), 20),
             hint="MISS_RANK is larger than any K: it gains 0"),
    ]


def _diagnose_ndcg(case: Case, expected, got) -> str | None:
    try:
        got = float(got)
    except (TypeError, ValueError):
        return "return one number, the mean over all cases"
    ranks, k = case.args
    hits = ranks <= k
    if hits.any() and np.isclose(got, float(np.mean(1.0 / np.log2(ranks[hits] + 1.0)))):
        return "you averaged over hits only: a miss counts as 0 in the mean"
    if not np.isfinite(got):
        return "log2(rank) is 0 at rank 1: the discount is log2(rank + 1)"
    return None


def _spop_cases() -> list[Case]:
    counts = np.array([0, 0, 8, 4, 2, 2, 1], dtype=np.int64)
    return [
        Case("one prefix, no repeats", (np.array([[4, 6, 0]]), counts),
             hint="an item of the session scores 1 per occurrence, plus half its scaled popularity"),
        Case("a repeated item", (np.array([[5, 3, 5, 0, 0]]), counts),
             hint="count every occurrence: an item seen twice in the session scores about 2"),
        Case("padding and OOV in the prefix", (np.array([[1, 4, 0, 0], [0, 0, 0, 0]]), counts),
             hint="padding (0) and OOV (1) are not session items, and they are never recommended: score 0"),
        Case("popularity counts for pad and OOV", (np.array([[6, 2]]), np.array([50, 40, 8, 4, 2, 2, 1])),
             hint="ignore whatever popularity padding and OOV have: they always score 0"),
        Case("a batch of three", (np.array([[2, 2, 2], [3, 4, 0], [6, 0, 0]]), counts),
             hint="each row of the batch is its own session"),
    ]


def _diagnose_spop(case: Case, expected, got) -> str | None:
    got = np.asarray(got, dtype=np.float64)
    if got.shape != expected.shape:
        return f"return a (batch, n_items) matrix, {expected.shape} here"
    if (got[:, :2] != 0).any():
        return "padding (0) and OOV (1) get a score: they would be recommended. Set their columns to 0"
    if np.allclose(got, np.round(expected)) or np.allclose(got, np.floor(expected)):
        return "you left out the popularity tie-break: add half the popularity scaled to [0, 1]"
    return None


q1 = Exercise("the rank of a target, with the tie rule", target_ranks, _rank_cases, diagnose=_diagnose_ranks,
              hints=["rank = 1 + (real items scored higher) + (real items scored equal with a smaller id)",
                     "only columns 2 and up are real items; slice them off before counting",
                     "a target below 2 is padding or OOV: return MISS_RANK for it"])
q2 = Exercise("NDCG@K from ranks", ndcg_at_k, _ndcg_cases, diagnose=_diagnose_ndcg,
              hints=["each case gains 1 / log2(rank + 1) if its rank is at most K, else 0; return the mean",
                     "the mean runs over every case, misses included",
                     "MISS_RANK is huge: compare with K before computing the log, or clip the rank"])
q3 = Exercise("S-POP scores", spop_scores, _spop_cases, diagnose=_diagnose_spop,
              hints=["start every row from 0.5 x popularity / its maximum, then add 1 per occurrence in the prefix",
                     "padding and OOV are neither session items nor recommendations",
                     "np.add.at(scores, (rows, items), 1.0) counts repeats; a plain fancy-index += does not"])
