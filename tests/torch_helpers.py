"""Tiny ETL-contract parquet files for the PyTorch tests (written for real, read back by the package)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

N_ITEMS = 30  # encoded ids 2..31 → item_cardinality 32
ITEM_CARDINALITY = N_ITEMS + 2
N_CATEGORIES = 4  # categories 1..3, 0 = padding → category_cardinality 4
MAX_LENGTH = 8


def chain_sessions(n_sessions: int, seed: int) -> list[list[int]]:
    """Sessions that walk the catalogue in steps of +1 (mod N_ITEMS): the next item is always predictable."""
    rng = np.random.default_rng(seed)
    sessions = []
    for _ in range(n_sessions):
        start, length = int(rng.integers(0, N_ITEMS)), int(rng.integers(2, MAX_LENGTH + 3))
        sessions.append([2 + (start + step) % N_ITEMS for step in range(length)])
    return sessions


def write_split(path: Path, sessions: list[list[int]]) -> None:
    """Write sessions as an ETL output parquet file (list columns, int32 ids)."""
    cats = [[1 + (i % 3) for i in s] for s in sessions]
    table = pa.table({
        "session_id": pa.array(np.arange(len(sessions), dtype=np.int64)),
        "item_id_list": pa.array([s[-MAX_LENGTH:] for s in sessions], type=pa.list_(pa.int32())),
        "category_list": pa.array([c[-MAX_LENGTH:] for c in cats], type=pa.list_(pa.int32())),
        "time_delta_list": pa.array([[0.0] + [10.0] * (len(s[-MAX_LENGTH:]) - 1) for s in sessions],
                                    type=pa.list_(pa.float32())),
        "length": pa.array([min(len(s), MAX_LENGTH) for s in sessions], type=pa.int32()),
    })
    pq.write_table(table, path)


def write_tiny_dataset(folder: Path, n_train: int = 300) -> Path:
    """Write train/valid/test parquet + schema.json following docs/design.md; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train", n_train, 0), ("valid", 60, 1), ("test", 60, 2)):
        write_split(folder / f"{name}.parquet", chain_sessions(n, seed))
    schema = {"item_cardinality": ITEM_CARDINALITY, "category_cardinality": N_CATEGORIES, "max_length": MAX_LENGTH,
              "pad_id": 0, "oov_id": 1}
    (folder / "schema.json").write_text(json.dumps(schema), encoding="utf-8")
    return folder
