"""Course-side speed on generated events: the ETL (SessionWorkflow) and one transformer's training throughput.

The same files feed the Merlin side (:mod:`.peers`), so both sides do the same work on the same events:
:func:`write_events` generates a click log and splits it in time (sessions starting in the last
``test_fraction`` of the period are the test set), written as parquet with the canonical columns.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def write_events(folder: str | Path, n_events: int, seed: int = 42, test_fraction: float = 0.1) -> dict:
    """Generate ``n_events`` clicks, split sessions by start time, write ``train_events``/``test_events.parquet``."""
    from sessrec_course.data.synthetic import generate_events

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    events = generate_events(n_events, n_items=max(1_000, n_events // 100), n_categories=50, n_days=28, seed=seed)
    events = events[["session_id", "item_id", "timestamp", "category"]].copy()
    events["category"] = events["category"].fillna(-1).astype("int64")
    start = events.groupby("session_id")["timestamp"].transform("min")
    cut = events["timestamp"].min() + (1 - test_fraction) * (events["timestamp"].max() - events["timestamp"].min())
    paths = {"train": folder / "train_events.parquet", "test": folder / "test_events.parquet"}
    for name, part in (("train", events[start < cut]), ("test", events[start >= cut])):
        part = part.sample(frac=1.0, random_state=seed)  # a real log is not sorted by session
        part.reset_index(drop=True).to_parquet(paths[name], index=False)
    logger.info("wrote %d events to %s", len(events), folder)
    return {"events": int(len(events)), "train_events": int((start < cut).sum()), "paths": {k: str(v) for k, v in paths.items()},
            "items": int(events["item_id"].nunique()), "sessions": int(events["session_id"].nunique())}


def course_etl(folder: str | Path, max_length: int = 20) -> dict:
    """Time the course workflow on ``folder``'s events: fit on train, transform train and test; write parquet."""
    import pandas as pd
    import pyarrow.parquet as pq

    from sessrec_course.etl import SessionWorkflow

    folder = Path(folder)
    train = pd.read_parquet(folder / "train_events.parquet")
    test = pd.read_parquet(folder / "test_events.parquet")
    cpu0, start = time.process_time(), time.perf_counter()
    workflow = SessionWorkflow(max_length=max_length, min_length=2).fit(train)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    train_out, test_out = workflow.transform_arrow(train), workflow.transform_arrow(test)
    transform_s = time.perf_counter() - start
    cpu_s = time.process_time() - cpu0
    start = time.perf_counter()
    out = folder / "course"
    out.mkdir(exist_ok=True)
    pq.write_table(train_out, out / "train.parquet")
    pq.write_table(test_out, out / "test.parquet")
    parquet_s = time.perf_counter() - start
    return {"fit_s": fit_s, "transform_s": transform_s, "cpu_s": cpu_s, "parquet_s": parquet_s,
            "events": int(len(train) + len(test)), "train_sessions": train_out.num_rows,
            "test_sessions": test_out.num_rows, "item_cardinality": workflow.item_cardinality}


