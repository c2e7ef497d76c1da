"""Figures for the introduction: the course pipeline at a glance."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

PIPELINE = (
    ("01 Data & ETL", "click log → sessions\ncuDF or pandas", "#4C72B0"),
    ("02 Evaluation", "metrics + baselines\nPOP · Markov · kNN", "#55A868"),
    ("03–05 Models", "MLP → GRU →\nTransformer", "#C44E52"),
    ("06 Serving", "ETL + model as a\nTriton ensemble", "#8172B2"),
)


def pipeline_figure(stages=PIPELINE) -> Figure:
    """Draw the course as a left-to-right pipeline of coloured boxes joined by arrows."""
    fig = Figure(figsize=(11, 2.4))
    ax = fig.subplots()
    width, gap = 2.2, 0.6
    for i, (title, body, colour) in enumerate(stages):
        x = i * (width + gap)
        ax.add_patch(FancyBboxPatch((x, 0), width, 1.4, boxstyle="round,pad=0.05,rounding_size=0.15",
                                    facecolor=colour, alpha=0.15, edgecolor=colour, linewidth=2))
        ax.text(x + width / 2, 1.05, title, ha="center", va="center", fontsize=12, weight="bold", color=colour)
        ax.text(x + width / 2, 0.5, body, ha="center", va="center", fontsize=10)
        if i < len(stages) - 1:
            ax.add_patch(FancyArrowPatch((x + width + 0.08, 0.7), (x + width + gap - 0.08, 0.7),
                                         arrowstyle="-|>", mutation_scale=18, color="0.3"))
    ax.set_xlim(-0.2, len(stages) * (width + gap) - gap + 0.2)
    ax.set_ylim(-0.2, 1.6)
    ax.axis("off")
    fig.tight_layout()
    return fig
