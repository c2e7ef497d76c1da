"""Figures for the training lessons: learning curves, nearest items in embedding space, attention."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from sessrec_course.arrays import order_desc


def _as_dict(history) -> dict:
    return history if isinstance(history, Mapping) else history.to_dict()


def learning_curves(histories, metric: str = "MRR@20", reference: Mapping[str, float] | None = None) -> Figure:
    """Smoothed loss per step and validation ``metric`` per epoch of ``{label: history}`` (or one history);
    ``reference`` draws baselines, e.g. ``{"Markov": 0.33}``."""
    if not isinstance(histories, Mapping) or "losses" in histories:
        histories = {"model": histories}
    fig = Figure(figsize=(11, 3.8))
    ax_loss, ax_metric = fig.subplots(1, 2)
    for label, history in histories.items():
        h = _as_dict(history)
        losses = np.asarray(h["losses"], dtype=float)
        if len(losses):
            window = max(1, len(losses) // 50)
            smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
            ax_loss.plot(np.asarray(h["steps"])[window - 1 :], smooth, label=label)
    scores = {label: [(e["epoch"], e[metric]) for e in _as_dict(h)["epochs"] if metric in e]
              for label, h in histories.items()}
    single = max((len(v) for v in scores.values()), default=0) <= 1  # one evaluation each: a dot would not read
    if single:
        _metric_bars(ax_metric, scores, [*(reference or {}).values()])
    else:
        for label, points in scores.items():
            if points:
                ax_metric.plot(*zip(*points, strict=True), marker="o", label=label)
        ax_metric.set(xlabel="epoch")
        ax_metric.xaxis.get_major_locator().set_params(integer=True)
    for name, value in (reference or {}).items():
        ax_metric.axhline(value, linestyle="--", color="grey", linewidth=1)
        ax_metric.annotate(name, (ax_metric.get_xlim()[1], value), textcoords="offset points", xytext=(-4, 3),
                           ha="right", fontsize=8, color="grey")  # the right end: clear of the first bar or point
    ax_loss.set(title="training loss (cross-entropy)", xlabel="step", ylabel="loss")
    ax_metric.set(title=f"validation {metric}", ylabel=metric)
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
    ax_loss.legend(fontsize=8)
    if not single:
        ax_metric.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _metric_bars(ax, scores: Mapping[str, list[tuple[int, float]]], lines: list[float]) -> None:
    """One labelled bar per run on an axis from 0 (room above for the bars and the reference ``lines``)."""
    labels = [label for label, points in scores.items() if points]
    values = [scores[label][-1][1] for label in labels]
    bars = ax.bar(labels, values, color=[f"C{i}" for i in range(len(labels))], width=0.5)
    ax.bar_label(bars, fmt="%.4f", fontsize=8)
    ax.set_ylim(0, 1.2 * max([*values, *lines, 1e-3]))
    epochs = sorted({scores[label][-1][0] for label in labels})
    ax.set(xlabel=f"after epoch {', '.join(map(str, epochs))}" if labels else "no validation yet")


def nearest_items(
    embeddings: np.ndarray,
    queries: Sequence[int],
    k: int = 8,
    item_category: np.ndarray | None = None,
    labels: Mapping[int, str] | None = None,
) -> Figure:
    """A row per query item: its ``k`` nearest items by cosine similarity, labelled with id (and category)."""
    emb = np.asarray(embeddings, dtype=np.float64)
    norm = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    sims = norm[list(queries)] @ norm.T
    sims[:, :2] = -np.inf  # padding and OOV are not items
    for row, query in enumerate(queries):
        sims[row, query] = -np.inf
    top = order_desc(sims, axis=1)[:, :k]
    values = np.take_along_axis(sims, top, axis=1)
    fig = Figure(figsize=(1.1 * k + 2, 0.55 * len(queries) + 1.2))
    ax = fig.subplots()
    image = ax.imshow(values, cmap="viridis", aspect="auto", vmin=min(0.0, float(values.min())), vmax=1.0)

    def name(item: int) -> str:
        text = labels.get(item, str(item)) if labels else str(item)
        return f"{text}\nc{item_category[item]}" if item_category is not None else text

    for (row, col), item in np.ndenumerate(top):
        ax.text(col, row, name(int(item)), ha="center", va="center", fontsize=7,
                color="white" if values[row, col] < 0.6 else "black")
    ax.set_yticks(range(len(queries)), [f"item {name(int(q))}".replace("\n", " ") for q in queries], fontsize=8)
    ax.set_xticks(range(k), [f"#{i + 1}" for i in range(k)])
    ax.set_title("nearest items in the learnt embedding space (cosine similarity)")
    fig.colorbar(image, ax=ax, fraction=0.03)
    fig.tight_layout()
    return fig


def attention_map(weights: np.ndarray, tokens: Sequence[str], title: str = "attention") -> Figure:
    """Heatmaps of attention weights ``(layers, heads, L, L)`` of one session (rows: query positions)."""
    weights = np.asarray(weights)
    layers, heads = weights.shape[:2]
    fig = Figure(figsize=(2.9 * heads + 0.5, 2.7 * layers + 0.4))
    axes = fig.subplots(layers, heads, squeeze=False)
    n = len(tokens)
    for layer in range(layers):
        for head in range(heads):
            ax = axes[layer, head]
            ax.imshow(weights[layer, head, :n, :n], cmap="Blues", vmin=0, vmax=1)
            ax.set_xticks(range(n), tokens, rotation=90, fontsize=7)
            ax.set_yticks(range(n), tokens, fontsize=7)
            ax.set_title(f"layer {layer + 1}, head {head + 1}", fontsize=9)
    fig.suptitle(f"{title} (row: position that looks, column: position looked at)", fontsize=10)
    fig.tight_layout()
    return fig

