"""From the ETL parquet to padded tensors: the split read once into a right-padded ``int64`` matrix, then each batch
a fancy-index of it, trimmed to its longest session (microseconds per batch: never the bottleneck)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from sessrec_course.arrays import pad_right
from sessrec_course.etl.workflow import ITEM_COLUMN, list_column


def read_sessions(path: str | Path, max_length: int, column: str = ITEM_COLUMN) -> np.ndarray:
    """Read one list column of an ETL parquet file as a right-padded ``int64`` matrix ``(N, max_length)``."""
    return pad_right(list_column(pq.read_table(path), path, column), max_length)


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


def make_loader(item_ids: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0) -> DataLoader:
    """DataLoader of padded batches (single clicks, which predict nothing, are dropped; no worker processes)."""
    dataset = SessionBatches(item_ids)
    if len(dataset) == 0:
        raise ValueError("no session with at least 2 items to train on")
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return batch_loader(dataset, sampler, batch_size)
