"""Figures for the evaluation lessons: Recall@K / MRR@K curves, a model comparison, a ranking example."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sessrec_course.arrays import order_desc


def metric_curves_figure(curves: Mapping[str, pd.DataFrame], metrics: Sequence[str] = ("Recall", "MRR"),
                         title: str = "Metrics against the cut-off K") -> Figure:
    """Plot ``Recall@K`` and ``MRR@K`` (a panel each) for K = 1..max of ``{model: metric_curves frame}``."""
    if not curves:
        raise ValueError("curves is empty: give {model name: metric_curves(ranks)}")
    fig = Figure(figsize=(4.6 * len(metrics), 3.4))
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, metric in zip(axes, metrics, strict=True):
        for name, frame in curves.items():
            if metric not in frame.columns:
                raise KeyError(f"curve of {name!r} has no column {metric!r}; it has {list(frame.columns)}")
            ax.plot(frame.index, frame[metric], label=name)
        ax.axvline(20, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("K (length of the recommendation list)")
        ax.set_ylabel(f"{metric}@K")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def results_bar_chart(table: pd.DataFrame, metrics: Sequence[str] = ("Recall@20", "MRR@20"),
                      title: str = "Models compared") -> Figure:
    """Grouped horizontal bars of a few metrics per model (rows of :func:`evaluation.results_table`)."""
    missing = [m for m in metrics if m not in table.columns]
    if missing:
        raise KeyError(f"results table lacks {missing}; it has {list(table.columns)}")
    fig = Figure(figsize=(7, 0.5 + 0.45 * len(table) * len(metrics) / 1.5))
    ax = fig.subplots()
    height = 0.8 / len(metrics)
    y = np.arange(len(table))
    for i, metric in enumerate(metrics):
        bars = ax.barh(y + i * height, table[metric].to_numpy(), height=height, label=metric)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
    ax.set_yticks(y + height * (len(metrics) - 1) / 2, labels=list(table.index))
    ax.invert_yaxis()
    ax.set_xlim(0, min(1.0, float(table[list(metrics)].to_numpy().max()) * 1.25 + 1e-9))
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def rank_example_figure(scores: np.ndarray, target: int, k: int, title: str = "Ranking one prefix") -> Figure:
    """Bar chart of one score row over the real items (ids >= 2): the top-k shaded, the target in red."""
    scores = np.asarray(scores, dtype=np.float64)
    ids = np.arange(2, len(scores))
    order = order_desc(scores[2:])
    ranked_ids, ranked_scores = ids[order], scores[2:][order]
    fig = Figure(figsize=(7, 3))
    ax = fig.subplots()
    colors = ["tab:red" if i == target else ("tab:blue" if r < k else "lightgrey")
              for r, i in enumerate(ranked_ids)]
    ax.bar(np.arange(1, len(ranked_ids) + 1), ranked_scores, color=colors)
    ax.set_xticks(np.arange(1, len(ranked_ids) + 1), labels=[str(i) for i in ranked_ids], fontsize=7)
    ax.set_xlabel("item id, in rank order (ties: smaller id first)")
    ax.set_ylabel("score")
    ax.axvline(k + 0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_title(f"{title}: target {target} (red), top-{k} in blue")
    fig.tight_layout()
    return fig
