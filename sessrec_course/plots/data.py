"""Figures for the data lessons: session lengths, the popularity long tail, activity over time."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def session_length_histogram(lengths: np.ndarray | pd.Series, max_length: int = 50,
                             title: str = "Session lengths") -> Figure:
    """Histogram of events per session (longer sessions gathered in the last bar)."""
    lengths = np.minimum(np.asarray(lengths, dtype=np.int64), max_length)
    counts = np.bincount(lengths, minlength=max_length + 1)[1:]
    fig = Figure(figsize=(7, 3.2))
    ax = fig.subplots()
    ax.bar(np.arange(1, max_length + 1), counts, width=0.9, color="tab:blue")
    ax.set_xlabel(f"events per session ({max_length} = {max_length} or more)")
    ax.set_ylabel("sessions")
    ax.set_title(f"{title}: mean {np.mean(lengths):.1f}, median {np.median(lengths):.0f}")
    fig.tight_layout()
    return fig


def popularity_long_tail(item_ids: np.ndarray | pd.Series, title: str = "Item popularity") -> Figure:
    """Clicks per item against popularity rank on log-log axes, plus the cumulative share of clicks."""
    counts = np.sort(pd.Series(np.asarray(item_ids)).value_counts().to_numpy())[::-1]
    ranks = np.arange(1, len(counts) + 1)
    fig = Figure(figsize=(9, 3.2))
    left, right = fig.subplots(1, 2)
    left.loglog(ranks, counts, ".", markersize=3)
    left.set_xlabel("item rank")
    left.set_ylabel("clicks")
    left.set_title(f"{title} (log-log)")
    share = np.cumsum(counts) / counts.sum()
    right.plot(ranks / len(ranks) * 100, share * 100)
    top = share[max(len(share) // 10 - 1, 0)] * 100
    right.axvline(10, color="grey", linestyle=":")
    right.set_xlabel("% of items (most popular first)")
    right.set_ylabel("% of clicks")
    right.set_title(f"top 10 % of items get {top:.0f} % of clicks")
    fig.tight_layout()
    return fig


def events_by_time(timestamps: np.ndarray | pd.Series, title: str = "Activity") -> Figure:
    """Events per hour of day, per weekday and per calendar day."""
    ts = pd.Series(pd.to_datetime(np.asarray(timestamps)))
    fig = Figure(figsize=(11, 3.2))
    by_hour, by_weekday, by_day = fig.subplots(1, 3, gridspec_kw={"width_ratios": [2, 1.2, 3]})
    by_hour.bar(range(24), ts.dt.hour.value_counts().reindex(range(24), fill_value=0), color="tab:orange")
    by_hour.set_xlabel("hour of day")
    by_hour.set_ylabel("events")
    by_weekday.bar(WEEKDAYS, ts.dt.weekday.value_counts().reindex(range(7), fill_value=0), color="tab:green")
    by_weekday.set_xlabel("weekday")
    daily = ts.dt.floor("D").value_counts().sort_index()
    by_day.plot(daily.index, daily.to_numpy(), marker=".")
    by_day.set_xlabel("day")
    by_day.tick_params(axis="x", labelrotation=30)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def split_timeline(starts: Mapping[str, np.ndarray | pd.Series], title: str = "Temporal split") -> Figure:
    """Sessions started per day, coloured by split (train / valid / test)."""
    fig = Figure(figsize=(9, 3))
    ax = fig.subplots()
    for name, values in starts.items():
        daily = pd.Series(pd.to_datetime(np.asarray(values))).dt.floor("D").value_counts().sort_index()
        ax.bar(daily.index, daily.to_numpy(), width=0.9, label=f"{name} ({len(values):,} sessions)")
    ax.set_ylabel("sessions started")
    ax.set_title(title)
    ax.legend()
    ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    return fig


def metric_bars(results: Mapping[str, Mapping[str, float]], title: str = "Next-item prediction") -> Figure:
    """Grouped bars: ``{model: {metric: value}}`` (e.g. popularity, Markov, oracle)."""
    models = list(results)
    metrics = list(next(iter(results.values())))
    fig = Figure(figsize=(7, 3.2))
    ax = fig.subplots()
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        values = [results[model][m] for m in metrics]
        bars = ax.bar(np.arange(len(metrics)) + i * width, values, width, label=model)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(np.arange(len(metrics)) + width * (len(models) - 1) / 2, metrics)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig
