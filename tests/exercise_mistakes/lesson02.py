"""Lesson 02: learners' wrong answers, and the mutants of the references that are equivalent to them."""

# ruff: noqa: B905 - written as learners write them

from __future__ import annotations

import numpy as np

from exercise_mistakes import mistake
from sessrec_course.evaluation import MISS_RANK

EQUIVALENT = {
    "lesson02.q1": {
        "for row, target in zip(scores, targets):": "scores and targets have as many rows in every case",
        "for row, target in zip(scores, targets, strict=False):": "scores and targets have as many rows in every case",
        "return np.array(ranks)": "numpy's default integer is int64",
        "ranks.append(1 + int(higher) + float(tied_before))": "the int64 array turns the exact float back",
        "ranks.append(1 + float(higher) + int(tied_before))": "the int64 array turns the exact float back",
    },
    "lesson02.q2": {
        "ranks = np.asarray(ranks)": "integer ranks compare and take log2(rank + 1.0) the same",
        "ranks = np.asarray(ranks, dtype=np.float32)": "float32 holds these gains to 1e-7",
    },
    "lesson02.q3": {
        "popularity = np.asarray(popularity).copy()": "integer counts divide to the same floats",
        "popularity = np.asarray(popularity, dtype=np.float32).copy()": "float32 holds these scores to 1e-7",
        "return scores.astype(np.float64)": "the check compares values; float64 holds the same scores",
    },
}


# ---- q1: ranks -----------------------------------------------------------------------------------------------------
@mistake("lesson02.q1", "unstable")
def argsort_position(scores, targets):
    ranks = []
    for row, target in zip(scores, targets):
        if target < 2:
            ranks.append(MISS_RANK)
        else:
            order = np.argsort(-row[2:])  # best first
            ranks.append(int(np.where(order == target - 2)[0][0]) + 1)
    return np.array(ranks)


@mistake("lesson02.q1", "one too low")
def zero_based(scores, targets):
    out = []
    for row, t in zip(scores, targets):
        real = row[2:]
        out.append(MISS_RANK if t < 2 else (real > row[t]).sum() + (real[:t - 2] == row[t]).sum())
    return np.array(out)


@mistake("lesson02.q1", "one too high")
def position_plus_two(scores, targets):
    ranks = []
    for row, t in zip(scores, targets):
        order = np.argsort(-row[2:], kind="stable").tolist()
        ranks.append(MISS_RANK if t < 2 else order.index(t - 2) + 2)  # +2 for the two special ids
    return np.array(ranks)


@mistake("lesson02.q1", "columns 0 and 1")
def pad_and_oov_compete(scores, targets):
    return np.array([MISS_RANK if t < 2 else 1 + int((row > row[t]).sum()) + int((row[:t] == row[t]).sum())
                     for row, t in zip(scores, targets)])


@mistake("lesson02.q1", "smaller id comes first")
def ties_share_the_best_rank(scores, targets):
    return np.array([MISS_RANK if t < 2 else 1 + int((row[2:] > row[t]).sum()) for row, t in zip(scores, targets)])


@mistake("lesson02.q1", "smaller id comes first")
def ties_to_the_larger_id(scores, targets):
    return np.array([MISS_RANK if t < 2 else 1 + int((row[2:] > row[t]).sum()) + int((row[t + 1:] == row[t]).sum())
                     for row, t in zip(scores, targets)])


@mistake("lesson02.q1", "always a miss")
def ranks_oov_like_an_item(scores, targets):
    out = []
    for row, t in zip(scores, targets):
        if t == 0:
            out.append(MISS_RANK)
        else:
            out.append(1 + int((row[2:] > row[t]).sum()) + int((row[2:t] == row[t]).sum()))
    return np.array(out)


# ---- q2: NDCG ------------------------------------------------------------------------------------------------------
@mistake("lesson02.q2", "hits only")
def mean_over_hits(ranks, k):
    ranks = np.asarray(ranks, dtype=float)
    return float(np.mean(1 / np.log2(ranks[ranks <= k] + 1)))


@mistake("lesson02.q2", "not infinity")
def log_of_the_rank(ranks, k):
    ranks = np.asarray(ranks, dtype=float)
    with np.errstate(divide="ignore"):
        return float(np.mean(np.where(ranks <= k, 1 / np.log2(ranks), 0)))


@mistake("lesson02.q2", "exactly K")
def k_excluded(ranks, k):
    return float(np.mean([1 / np.log2(r + 1) if r < k else 0.0 for r in ranks]))


@mistake("lesson02.q2", "base-2")
def natural_log(ranks, k):
    return float(np.mean([1 / np.log(r + 1) if r <= k else 0.0 for r in ranks]))


@mistake("lesson02.q2", "mean gain")
def sum_of_gains(ranks, k):
    return float(sum(1 / np.log2(r + 1) for r in ranks if r <= k))


# ---- q3: S-POP -----------------------------------------------------------------------------------------------------
@mistake("lesson02.q3", "Their columns stay 0")
def recommends_padding(item_ids, popularity):
    popularity = np.asarray(popularity, dtype=float)
    scores = np.tile(0.5 * popularity / popularity.max(), (len(item_ids), 1))
    for row, prefix in enumerate(item_ids):
        for item in prefix:
            scores[row, item] += 1
    return scores


@mistake("lesson02.q3", "popularity tie-break")
def no_tie_break(item_ids, popularity):
    scores = np.zeros((len(item_ids), len(popularity)))
    for row, prefix in enumerate(item_ids):
        for item in prefix[prefix >= 2]:
            scores[row, item] += 1
    return scores


@mistake("lesson02.q3", "count every occurrence")
def presence_only(item_ids, popularity):
    popularity = np.array(popularity, dtype=float)
    popularity[:2] = 0
    scores = np.repeat(0.5 * popularity[None] / popularity.max(), len(item_ids), axis=0)
    for row, prefix in enumerate(item_ids):
        scores[row, prefix[prefix > 1]] += 1  # fancy-index += adds once per distinct item
    return scores


@mistake("lesson02.q3", "*half*")
def whole_popularity(item_ids, popularity):
    popularity = np.array(popularity, dtype=float)
    popularity[:2] = 0
    scores = np.repeat(popularity[None] / popularity.max(), len(item_ids), axis=0)
    for row, prefix in enumerate(item_ids):
        np.add.at(scores[row], prefix[prefix > 1], 1.0)
    return scores


@mistake("lesson02.q3")
def scaled_by_the_sum(item_ids, popularity):
    popularity = np.array(popularity, dtype=float)
    popularity[:2] = 0
    scores = np.repeat(0.5 * popularity[None] / popularity.sum(), len(item_ids), axis=0)
    for row, prefix in enumerate(item_ids):
        np.add.at(scores[row], prefix[prefix > 1], 1.0)
    return scores


@mistake("lesson02.q3")
def max_over_all_counts(item_ids, popularity):
    popularity = np.array(popularity, dtype=float)
    scores = np.repeat(0.5 * popularity[None] / popularity.max(), len(item_ids), axis=0)
    scores[:, :2] = 0
    for row, prefix in enumerate(item_ids):
        np.add.at(scores[row], prefix[prefix > 1], 1.0)
    return scores
