"""Headline figures: notebooks record them, ``make course`` collects them into its summary table.

A notebook calls ``record("Recall@20", 0.41, model="GRU")``. When ``$SESSREC_RESULTS_FILE`` is set
(the course runner sets it per notebook) the figure is appended there as one JSON line; either way it
is returned so a cell can display it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

RESULTS_ENV = "SESSREC_RESULTS_FILE"


def record(metric: str, value: float, **labels: str) -> dict:
    """Record one headline figure (e.g. ``record("MRR@20", 0.18, model="GRU")``) and return it."""
    entry = {"metric": metric, "value": float(value), **{k: str(v) for k, v in labels.items()}}
    target = os.environ.get(RESULTS_ENV)
    if target:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
    return entry


def read_records(path: str | Path) -> list[dict]:
    """Return the figures recorded in ``path`` (missing file: empty list)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
