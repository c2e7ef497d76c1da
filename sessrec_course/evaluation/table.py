"""Comparison tables and metric curves that every notebook uses to line models up."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from sessrec_course.evaluation.metrics import metrics_from_ranks


def results_table(
    results: Mapping[str, Mapping[str, float]], columns: Iterable[str] | None = None, sort_by: str | None = None
) -> pd.DataFrame:
    """One row per model of ``{"model": {"Recall@20": ...}}``: ``columns`` picks metrics (default: all, first-seen
    order), ``sort_by`` sorts best first; a missing metric is NaN."""
    if not results:
        raise ValueError("results is empty: give {model name: {metric: value}}")
    if columns is None:
        columns = list(dict.fromkeys(key for metrics in results.values() for key in metrics))
    else:
        columns = list(columns)
    table = pd.DataFrame(
        [[float(metrics.get(c, np.nan)) for c in columns] for metrics in results.values()],
        index=pd.Index(list(results), name="model"),
        columns=columns,
    )
    if sort_by is not None:
        if sort_by not in table.columns:
            raise KeyError(f"cannot sort by {sort_by!r}: the table has columns {list(table.columns)}")
        table = table.sort_values(sort_by, ascending=False)
    return table


def metric_curves(ranks: np.ndarray, max_k: int = 50) -> pd.DataFrame:
    """Return Recall@K, MRR@K and NDCG@K for K = 1..``max_k`` from ranks (index ``K``)."""
    rows = []
    for k in range(1, max_k + 1):
        m = metrics_from_ranks(ranks, k)
        rows.append({"K": k, "Recall": m[f"Recall@{k}"], "MRR": m[f"MRR@{k}"], "NDCG": m[f"NDCG@{k}"]})
    return pd.DataFrame(rows).set_index("K")
