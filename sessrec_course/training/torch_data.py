"""From the ETL parquet to padded tensors: read once into a numpy matrix, then slice batches.

The whole split is turned into one right-padded ``int64`` matrix up front (vectorised, no Python loop
per session). A batch is a fancy-index of that matrix, trimmed to its longest session, so loading
costs microseconds per batch and is never the bottleneck.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from sessrec_course.arrays import pad_right
from sessrec_course.etl.workflow import ITEM_COLUMN


def read_sessions(path: str | Path, max_length: int, column: str = ITEM_COLUMN) -> np.ndarray:
    """Read one list column of an ETL parquet file as a right-padded ``int64`` matrix ``(N, max_length)``."""
    path = Path(path)
    table = pq.read_table(path, columns=None)
    if column not in table.column_names:
        raise ValueError(f"{path}: no column {column!r} (columns: {table.column_names})")
    if not pa.types.is_list(table.schema.field(column).type) and not pa.types.is_large_list(
        table.schema.field(column).type
    ):
        raise ValueError(f"{path}: column {column!r} is {table.schema.field(column).type}, expected a list")
    return pad_right(table.column(column), max_length)


class SessionBatches(Dataset):
    """Dataset whose items are whole batches: ``dataset[indices]`` → ``(b, longest)`` int64 tensor."""

    def __init__(self, item_ids: np.ndarray, min_length: int = 2) -> None:
        lengths = (item_ids != 0).sum(axis=1)
        self.keep = lengths >= min_length
        self.item_ids = torch.from_numpy(np.ascontiguousarray(item_ids[self.keep], dtype=np.int64))
        self.lengths = torch.from_numpy(lengths[self.keep])

    def __len__(self) -> int:
        return len(self.item_ids)

    def __getitem__(self, indices) -> torch.Tensor:
        index = torch.as_tensor(indices, dtype=torch.long)
        longest = int(self.lengths[index].max()) if len(index) else 1
        return self.item_ids[index, :longest]


def batch_loader(dataset: Dataset, sampler: Sampler, batch_size: int) -> DataLoader:
    """DataLoader of ``dataset[indices]`` for each ``batch_size`` indices ``sampler`` draws (no worker processes)."""
    return DataLoader(dataset, sampler=BatchSampler(sampler, batch_size=batch_size, drop_last=False), batch_size=None,
                      num_workers=0)


def make_loader(item_ids: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0,
                min_length: int = 2) -> DataLoader:
    """DataLoader of padded batches (sessions shorter than ``min_length`` are dropped; no worker processes)."""
    dataset = SessionBatches(item_ids, min_length=min_length)
    if len(dataset) == 0:
        raise ValueError(f"no session with at least {min_length} items to train on")
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return batch_loader(dataset, sampler, batch_size)
