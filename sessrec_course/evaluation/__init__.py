"""Evaluation shared by every model, baseline and framework in the course (numpy only).

``evaluate(recommender, prefixes, targets, ks=(10, 20))`` returns ``{"Recall@20": ..., "MRR@20": ...}``;
the protocols build ``(prefixes, targets)`` from sessions; ``results_table`` lines models up.
"""

from sessrec_course.evaluation.metrics import (
    MISS_RANK,
    as_score_fn,
    compute_ranks,
    evaluate,
    item_counts,
    metrics_from_ranks,
    ranks_from_scores,
    top_k_from_scores,
)
from sessrec_course.evaluation.protocols import (
    all_prefixes,
    last_item,
    to_ragged,
)
from sessrec_course.evaluation.table import metric_curves, results_table
from sessrec_course.ids import FIRST_ID, OOV_ID, PAD_ID

__all__ = [
    "FIRST_ID",
    "MISS_RANK",
    "OOV_ID",
    "PAD_ID",
    "all_prefixes",
    "as_score_fn",
    "compute_ranks",
    "evaluate",
    "item_counts",
    "last_item",
    "metric_curves",
    "metrics_from_ranks",
    "ranks_from_scores",
    "results_table",
    "to_ragged",
    "top_k_from_scores",
]
