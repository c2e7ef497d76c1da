"""Course-side speed on generated events: the ETL (SessionWorkflow) and one transformer's training throughput.

The same files feed the Merlin side (:mod:`.peers`), so both sides do the same work on the same events:
:func:`write_events` generates a click log and splits it in time (sessions starting in the last
``test_fraction`` of the period are the test set), written as parquet with the canonical columns.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

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


def course_training(folder: str | Path, n_items: int, preset: str = "xlnet", hidden_size: int = 64, max_length: int = 20,
                    epochs: int = 1, batch_size: int = 256, seed: int = 42, num_layers: int = 2,
                    num_heads: int = 2) -> dict:
    """Train course preset ``preset`` on ``folder/course/train.parquet``; sessions/s and last-item test metrics."""
    import torch

    from sessrec_course.evaluation import evaluate, last_item
    from sessrec_course.training.common import MODEL_PRESETS, TrainConfig, model_config
    from sessrec_course.training.torch_data import read_sessions
    from sessrec_course.training.torch_pipeline import fit_model
    from sessrec_course.training.torch_recommender import TorchRecommender

    folder = Path(folder) / "course"
    train_ids = read_sessions(folder / "train.parquet", max_length)
    test_ids = read_sessions(folder / "test.parquet", max_length)
    n_items = max(int(n_items), int(train_ids.max()) + 1, int(test_ids.max()) + 1)
    shape = {"num_layers": num_layers, "num_heads": num_heads} if MODEL_PRESETS[preset]["name"] == "transformer" else {}
    config = model_config(preset, {"item_cardinality": n_items, "max_length": max_length}, hidden_size=hidden_size,
                          **shape)  # the preset's dropout, as the course trains it
    tconfig = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=2e-3, seed=seed, progress=False,
                          patience=epochs + 1)
    timing: dict[str, float] = {}

    def start_clock(model, loader, train):
        timing["start"], timing["sessions"] = time.perf_counter(), len(loader.dataset)
        return loader

    model, history = fit_model(config, train_ids, None, tconfig, before_fit=start_clock)
    train_s = time.perf_counter() - timing["start"]
    prefixes, targets = last_item([row[row != 0] for row in test_ids], max_length=max_length)
    metrics = evaluate(TorchRecommender(model), prefixes, targets, ks=(20,), progress=False)
    sessions = timing["sessions"] * len(history.epochs)
    kind = "causal" if config.causal else "masked"
    return {"model": f"course {preset} ({config.backbone if config.name == 'transformer' else config.name}, {kind})",
            "preset": preset,
            "train_s": train_s,
            "sessions": sessions, "sessions_per_s": sessions / train_s, "Recall@20": 100 * metrics["Recall@20"],
            "MRR@20": 100 * metrics["MRR@20"], "test_cases": int(len(targets)), "threads": torch.get_num_threads(),
            "parameters": int(sum(p.numel() for p in model.parameters())), "epochs": len(history.epochs),
            "hidden_size": hidden_size, "num_layers": num_layers, "num_heads": num_heads, "max_length": max_length,
            "batch_size": batch_size, "n_items": n_items, "test_lengths": np.bincount((test_ids != 0).sum(1)).tolist()}
