"""Lesson 02 exercises: the rank of a target with the tie rule, NDCG@K from ranks, S-POP scores."""

from __future__ import annotations

import numpy as np

from sessrec_course.evaluation import MISS_RANK
from sessrec_course.exercises.core import Case, Exercise, like


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
    gains = np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)
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


def _all_columns(scores, targets):
    return np.array([MISS_RANK if t < 2 else 1 + (row > row[t]).sum() + (row[:t] == row[t]).sum()
                     for row, t in zip(scores, targets, strict=True)])


def _tie_misplaced(case: Case, expected, got) -> bool:
    """Every wrong rank lies in its target's group of equal scores: the tie rule is broken, nothing else."""
    scores, targets = case.args
    got, wrong = np.asarray(got), np.flatnonzero(np.asarray(got) != expected)
    rows = [(scores[i, 2:], scores[i, targets[i]], got[i]) for i in wrong if targets[i] >= 2]
    return len(rows) == len(wrong) > 0 and all((r > s).sum() < g <= (r >= s).sum() for r, s, g in rows)


_tied = np.random.default_rng(2).integers(0, 3, (1, 5002)).astype(np.float32)  # thousands of ties per score
_row = np.array([7.0, 7.0, 0.3, 0.9, 0.3, 0.1, 0.3], dtype=np.float32)
_negative = np.array([[0.0, 0.0, -2.5, -0.5, -1.0, -0.5, -3.0]], dtype=np.float32)
q1 = Exercise(
    "the rank of a target, with the tie rule", target_ranks,
    [Case("no ties", (np.array([[0.0, 0.0, 0.2, 0.8, 0.5]], np.float32), np.array([4]))),
     Case("padding and OOV score highest", (np.repeat(_row[None], 2, axis=0), np.array([3, 5]))),
     Case("a three-way tie", (np.repeat(_row[None], 3, axis=0), np.array([2, 4, 6]))),
     Case("an OOV and a padding target", (np.repeat(_row[None], 3, axis=0), np.array([1, 0, 3]))),
     Case("negative scores", (np.repeat(_negative, 3, axis=0), np.array([3, 5, 6]))),
     Case("5,000 items on 3 score levels", (np.repeat(_tied, 3, axis=0), np.array([2, 2600, 5001])))],
    hints=["A rank counts the real items (ids 2 and up) that come before the target, plus one.",
           "Before the target come the items scored higher, and those scored equal with a smaller id.",
           "A target that is padding or OOV can never be recommended."],
    mistakes={"a padding or OOV target is always a miss: give it MISS_RANK":
                  lambda case, expected, got: (np.asarray(got)[expected == MISS_RANK] != MISS_RANK).any(),
              "your ranks are one too low: rank 1 is the top": like(lambda s, t: target_ranks(s, t) - (t >= 2)),
              "your ranks are one too high: the best item has rank 1": like(lambda s, t: target_ranks(s, t) + (t >= 2)),
              "padding and OOV take places in your ranking: leave columns 0 and 1 out": like(_all_columns),
              "equal scores: the smaller id comes first. A default (unstable) sort puts tied items in any "
              "order, and thousands of equal scores are common": _tie_misplaced})


def _ndcg(ranks, k, log=np.log2, over_hits=False, at_k=True):
    ranks = np.asarray(ranks, dtype=np.float64)
    hit = ranks <= k if at_k else ranks < k
    gains = 1.0 / log(ranks[hit] + 1.0)
    return float(gains.mean() if over_hits else gains.sum() / len(ranks))


q2 = Exercise(
    "NDCG@K from ranks", ndcg_at_k,
    [Case("a hit at the top", (np.array([1, 1, 1]), 10)),
     Case("hits and misses", (np.array([1, 3, 30, 2]), 10), "a miss gains 0 but still counts"),
     Case("a hit at exactly K", (np.array([5, 6, 4]), 5)),
     Case("a list of ranks", ([1, 3, 30], 10)),
     Case("OOV targets are misses", (np.array([2, MISS_RANK, MISS_RANK]), 20))],
    hints=["Each case gains 1 / log2(rank + 1) if its rank is at most K, else 0; NDCG@K is the mean gain.",
           "The mean runs over every case, misses included."],
    mistakes={"you averaged over hits only: a miss counts as 0 in the mean": like(_ndcg, over_hits=True),
              "the discount is log2(rank + 1): rank 1 gains 1, not infinity":
                  lambda case, expected, got: not np.isfinite(float(got)),
              "NDCG@K is the mean gain: divide by the number of cases": like(lambda r, k: ndcg_at_k(r, k) * len(r)),
              "the discount is the base-2 logarithm": like(_ndcg, log=np.log),
              "a rank of exactly K is still in the top K": like(_ndcg, at_k=False)})


def _spop(item_ids, popularity, repeats=True, weight=0.5):
    popularity = np.asarray(popularity, dtype=np.float64).copy()
    popularity[:2] = 0.0
    scores = np.repeat(weight * popularity[None] / popularity.max(), len(item_ids), axis=0)
    for row, prefix in enumerate(item_ids):
        for item in (prefix if repeats else set(prefix)):
            scores[row, item] += item >= 2
    return scores


_counts = np.array([0, 0, 8, 4, 2, 2, 1], dtype=np.int64)
q3 = Exercise(
    "S-POP scores", spop_scores,
    [Case("one prefix, no repeats", (np.array([[4, 6, 0]]), _counts)),
     Case("a repeated item", (np.array([[5, 3, 5, 0, 0]]), _counts), "count every occurrence"),
     Case("padding and OOV in the prefix", (np.array([[1, 4, 0, 0], [0, 0, 0, 0]]), _counts),
          "padding (0) and OOV (1) are not session items"),
     Case("popularity counts for pad and OOV", (np.array([[6, 2]]), np.array([50, 40, 8, 4, 2, 2, 1]))),
     Case("popularity as a list", (np.array([[3, 3, 0]]), [0, 0, 3, 4, 1])),
     Case("a batch of three", (np.array([[2, 2, 2], [3, 4, 0], [6, 0, 0]]), _counts))],
    hints=["Start every row from half the popularity scaled to [0, 1], then add 1 per occurrence in the prefix.",
           "Padding and OOV are neither session items nor recommendations, whatever their counts."],
    mistakes={"padding (0) or OOV (1) gets a score: it would be recommended. Their columns stay 0":
                  lambda case, expected, got: (np.asarray(got)[:, :2] != 0).any(),
              "you left out the popularity tie-break: add half the popularity scaled to [0, 1]":
                  like(_spop, weight=0.0),
              "count every occurrence: an item seen twice in the session scores about 2": like(_spop, repeats=False),
              "the tie-break is *half* the scaled popularity": like(_spop, weight=1.0)})
