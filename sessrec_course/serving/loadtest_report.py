"""Render load-test tables as GitHub markdown (no extra dependency), as docs/benchmarks.md shows them."""

from __future__ import annotations

import pandas as pd


def markdown_table(frame: pd.DataFrame) -> str:
    """Return ``frame`` as a GitHub markdown table (no extra dependency)."""
    rows = [list(map(str, frame.columns))] + [[f"{v:,}" if isinstance(v, int) else str(v) for v in row]
                                              for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(frame.columns))
    return "\n".join(lines)
