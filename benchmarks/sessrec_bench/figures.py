"""Figures of the serving load test (`python -m sessrec_bench loadtest --figure`)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def latency_histogram(result, bins: int = 60) -> Figure:
    """Latency histogram per concurrency level of a load test, p50/p99 marked (``LoadTestResult``)."""
    figure = Figure(figsize=(8, 4.2))
    ax = figure.subplots()
    levels = [lv for lv in result.levels if lv.latencies_ms.size]
    if not levels:
        ax.text(0.5, 0.5, "no answered requests", ha="center", va="center", transform=ax.transAxes)
        return figure
    high = max(np.percentile(lv.latencies_ms, 99.5) for lv in levels)
    edges = np.linspace(0.0, high * 1.05, bins + 1)
    for lv in levels:
        (line,) = ax.plot([], [])
        color = line.get_color()
        ax.hist(lv.latencies_ms, bins=edges, histtype="step", linewidth=1.6, color=color,
                label=f"c={lv.concurrency}: {lv.throughput:,.0f}/s, p50 {lv.percentile(50):.2f} ms, "
                      f"p99 {lv.percentile(99):.2f} ms")
        ax.axvline(lv.percentile(99), color=color, linestyle=":", linewidth=1)
    ax.set_xlabel("latency per request (ms), dotted: p99")
    ax.set_ylabel("requests")
    ax.set_title(f"Triton ensemble latency ({result.protocol}, one session per request)")
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def throughput_latency(result) -> Figure:
    """Throughput (bars) and p50/p99 latency (lines) against concurrency for a ``LoadTestResult``."""
    table = result.summary()
    figure = Figure(figsize=(7, 3.6))
    ax = figure.subplots()
    positions = np.arange(len(table))
    ax.bar(positions, table["throughput_per_s"], color="#9ecae1", label="throughput")
    ax.set_xticks(positions, [f"c={c}" for c in table["concurrency"]])
    ax.set_ylabel("inferences / s")
    twin = ax.twinx()
    twin.plot(positions, table["p50_ms"], "o-", color="#3182bd", label="p50")
    twin.plot(positions, table["p99_ms"], "s--", color="#de2d26", label="p99")
    twin.set_ylabel("latency (ms)")
    twin.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper left", fontsize=8)
    ax.set_title("Throughput and latency by concurrency")
    figure.tight_layout()
    return figure
