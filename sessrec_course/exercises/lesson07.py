"""Lesson 07 exercises: the vocabulary as a sum of partitions' counts, and the whole batch's loss from the ranks'."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sessrec_course.exercises.core import Case, Exercise, like


def merged_vocabulary(partition_counts, min_count):
    """Raw ids in encoded order (id 2 first) from each partition's item counts: sum first, then the threshold."""
    total = pd.concat(partition_counts).groupby(level=0).sum()  # counts of disjoint sessions add up
    kept = total[total >= min_count].sort_index()  # ties go to the lower raw id ...
    return kept.sort_values(ascending=False, kind="stable").index.to_numpy(np.int64)  # ... kept by a stable sort


def global_mean_loss(rank_losses, rank_counts):
    """The whole batch's mean loss from each rank's mean loss and its number of predicted clicks."""
    losses, counts = np.asarray(rank_losses, dtype=np.float64), np.asarray(rank_counts, dtype=np.float64)
    total = (losses * counts)[counts > 0].sum()  # a rank without a click has a NaN mean and adds nothing
    return float(total / counts.sum())


def _counts(*parts: dict[int, int]) -> list[pd.Series]:
    return [pd.Series(part, dtype=np.int64) for part in parts]


def _merged(partition_counts, min_count, per_partition=False, how="sum"):
    parts = [p[p >= min_count] for p in partition_counts] if per_partition else partition_counts
    total = pd.concat(parts).groupby(level=0).agg(how).sort_index()
    total = total[total >= min_count]
    return total.sort_values(ascending=False, kind="stable").index.to_numpy(np.int64)


def _ties_misplaced(case: Case, expected, got) -> bool:
    """The right items, most frequent first, but equal counts in another order."""
    total, got = pd.concat(case.args[0]).groupby(level=0).sum(), np.ravel(got)
    return sorted(got.tolist()) == sorted(expected.tolist()) and total[got].is_monotonic_decreasing


q1 = Exercise(
    "the vocabulary from partitions' counts", merged_vocabulary,
    lambda: [Case("two partitions", (_counts({12: 1, 10: 2}, {11: 3, 12: 3}), 1), "an item's count is its sum"),
             Case("a threshold across partitions", (_counts({5: 3, 6: 4}, {5: 3, 7: 2}, {7: 2}), 3),
                  "the threshold applies to the whole log"),
             Case("equal counts", (_counts({9: 2, 4: 1}, {4: 1, 8: 2, 3: 2}), 1), "ties go to the lower raw id"),
             Case("1,000 items seen 1 to 3 times", (_counts({i: 1 + i % 3 for i in range(999, 0, -2)},
                                                            {i: 1 + i // 2 % 3 for i in range(0, 999, 2)}), 1),
                  "thousands of equal counts are common"),
             Case("raw ids that are large", (_counts({2**40: 2}, {7: 2, 2**40 + 1: 3}), 2))],
    hints=["Add up each item's counts over the partitions, then keep the items counted at least min_count times.",
           "Most frequent first; equal counts go to the lower raw id, whatever order the partitions came in."],
    mistakes={"an item's count is the sum over the partitions, not its largest count in one": like(_merged, how="max"),
              "the threshold is applied to the whole log: an item rare in each partition can be frequent overall":
                  like(_merged, per_partition=True),
              "equal counts go to the lower raw id first; a default (unstable) sort puts them in any order":
                  _ties_misplaced})


q2 = Exercise(
    "the whole batch's loss from the ranks' losses", global_mean_loss,
    [Case("two ranks, as many clicks", ([2.0, 4.0], [30, 30])),
     Case("two ranks, other click counts", ([2.0, 4.0], [10, 30]), "a rank with more clicks weighs more"),
     Case("four ranks", ([3.1, 2.7, 2.9, 3.5], [41, 18, 33, 25])),
     Case("a rank without a click", ([2.5, float("nan"), 3.0], [12, 0, 4]),
          "a mean over no click is NaN: that rank adds nothing"),
     Case("counts as a list of ints", ([1.5, 2.5], [3, 1]))],
    hints=["Each rank's mean times its number of clicks is its sum of losses; add the sums, divide by all clicks.",
           "A rank without a click has no loss to add, and its mean is NaN.",
           "Averaging the ranks' means is what DDP does to gradients: exact only for equal click counts."],
    mistakes={"the mean of the ranks' means weighs every rank alike: weigh each by its number of clicks":
                  like(lambda losses, counts: float(np.nanmean(losses))),
              "a rank without a click has a NaN mean: leave it out of the sum (NaN × 0 is NaN)":
                  lambda case, expected, got: np.isnan(got) and not np.isnan(expected)})
