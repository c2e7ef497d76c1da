"""Headline figures: a notebook calls ``record("Recall@20", 0.41, model="GRU")``; the course runner sets
``$SESSREC_RESULTS_FILE`` per notebook and collects the JSON lines into its summary table."""

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
