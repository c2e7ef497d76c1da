"""Lesson 07: learners' wrong answers, and the mutants of the references that are equivalent to them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from exercise_mistakes import mistake

_FLOAT = "the losses and counts come as exact numbers: float32 or int arithmetic gives the same mean to 1e-6"
EQUIVALENT = {
    "lesson07.q1": {"total = pd.concat(partition_counts).groupby(level=-1).sum()":
                    "the counts have one index level: -1 is level 0"},
    "lesson07.q2": {
        "losses, counts = (np.asarray(rank_losses), np.asarray(rank_counts, dtype=np.float64))": _FLOAT,
        "losses, counts = (np.asarray(rank_losses, dtype=np.float64), np.asarray(rank_counts))": _FLOAT,
        "losses, counts = (np.asarray(rank_losses, dtype=np.float32), np.asarray(rank_counts, dtype=np.float64))":
            _FLOAT,
        "losses, counts = (np.asarray(rank_losses, dtype=np.float64), np.asarray(rank_counts, dtype=np.float32))":
            _FLOAT,
    },
}


# ---- q1: the vocabulary --------------------------------------------------------------------------------------------
@mistake("lesson07.q1", "can be frequent overall")
def threshold_per_partition(partition_counts, min_count):
    kept = [counts[counts >= min_count] for counts in partition_counts]
    total = pd.concat(kept).groupby(level=0).sum()
    return np.array(sorted(total.index, key=lambda item: (-total[item], item)), dtype=np.int64)


@mistake("lesson07.q1", "not its largest count")
def largest_count(partition_counts, min_count):
    total = pd.concat(partition_counts).groupby(level=0).max()
    total = total[total >= min_count]
    return np.array(sorted(total.index, key=lambda item: (-total[item], item)))


@mistake("lesson07.q1", "unstable")
def default_sort(partition_counts, min_count):
    total = pd.concat(partition_counts).groupby(level=0).sum()
    return total[total >= min_count].sort_values(ascending=False).index.to_numpy()


@mistake("lesson07.q1")
def union_in_partition_order(partition_counts, min_count):
    seen = {}
    for counts in partition_counts:
        for item, n in counts.sort_values(ascending=False, kind="stable").items():
            seen[item] = seen.get(item, 0) + n
    return np.array([item for item, n in seen.items() if n >= min_count])


@mistake("lesson07.q1")
def least_frequent_first(partition_counts, min_count):
    total = pd.concat(partition_counts).groupby(level=0).sum()
    total = total[total >= min_count]
    return np.array(sorted(total.index, key=lambda item: (total[item], item)))


# ---- q2: the loss --------------------------------------------------------------------------------------------------
@mistake("lesson07.q2", "weighs every rank alike")
def mean_of_means(rank_losses, rank_counts):
    return float(np.nanmean(rank_losses))


@mistake("lesson07.q2", "NaN × 0")
def nan_rank_counts(rank_losses, rank_counts):
    return float(np.dot(rank_losses, rank_counts) / np.sum(rank_counts))


@mistake("lesson07.q2")
def weighted_by_the_other_rank(rank_losses, rank_counts):
    weights = np.asarray(rank_counts, dtype=float)[::-1]
    return float(np.nansum(np.asarray(rank_losses) * weights) / weights.sum())


@mistake("lesson07.q2")
def sum_of_means(rank_losses, rank_counts):
    return float(np.nansum(rank_losses))
