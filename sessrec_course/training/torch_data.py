"""From the ETL parquet to padded tensors: read once into a numpy matrix, then slice batches.

The whole split is turned into one right-padded ``int64`` matrix up front (vectorised, no Python loop
per session). A batch is a fancy-index of that matrix, trimmed to its longest session, so loading
costs microseconds per batch and is never the bottleneck.
A ``time_features`` model also gets each click's features (``etl.features.read_time_features``, the same rows
and padding): its batches are ``FeatureBatch(ids, features)``; without features a batch stays a plain tensor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from sessrec_course.arrays import pad_right
from sessrec_course.etl.workflow import ITEM_COLUMN
from sessrec_course.models.torch_base import FeatureBatch


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
    """Dataset whose items are whole batches: ``dataset[indices]`` → ``(b, longest)`` int64 tensor.

    With ``features`` ``(N, L, F)`` (aligned with ``item_ids``) a batch is a ``FeatureBatch`` of both, trimmed alike.
    """

    def __init__(self, item_ids: np.ndarray, min_length: int = 2, features: np.ndarray | None = None) -> None:
        lengths = (item_ids != 0).sum(axis=1)
        keep = lengths >= min_length
        self.item_ids = torch.from_numpy(np.ascontiguousarray(item_ids[keep], dtype=np.int64))
        self.lengths = torch.from_numpy(lengths[keep])
        self.features = None
        if features is not None:
            if features.shape[:2] != item_ids.shape:
                raise ValueError(f"features of shape {features.shape} do not match the item ids {item_ids.shape}")
            self.features = torch.from_numpy(np.ascontiguousarray(features[keep], dtype=np.float32))

    def __len__(self) -> int:
        return len(self.item_ids)

    def __getitem__(self, indices) -> torch.Tensor | FeatureBatch:
        index = torch.as_tensor(indices, dtype=torch.long)
        longest = int(self.lengths[index].max()) if len(index) else 1
        if self.features is None:
            return self.item_ids[index, :longest]
        return FeatureBatch(self.item_ids[index, :longest], self.features[index, :longest])


def make_loader(
    item_ids: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0, min_length: int = 2,
    features: np.ndarray | None = None,
) -> DataLoader:
    """DataLoader of padded batches (sessions shorter than ``min_length`` are dropped; no worker processes)."""
    dataset = SessionBatches(item_ids, min_length=min_length, features=features)
    if len(dataset) == 0:
        raise ValueError(f"no session with at least {min_length} items to train on")
    generator = torch.Generator().manual_seed(seed)
    base = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    sampler = BatchSampler(base, batch_size=batch_size, drop_last=False)
    return DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=0)


def make_distributed_loader(item_ids: np.ndarray, batch_size: int, rank: int, world: int, seed: int = 0,
                            min_length: int = 2, features: np.ndarray | None = None) -> DataLoader:
    """This rank's share of every global batch of ``batch_size``: a DistributedSampler, ``batch_size / world`` each.

    Rank ``r`` takes positions ``r, r + world, ...`` of one shuffle shared by all ranks, so the ranks' k-th
    batches together are the k-th ``batch_size`` sessions of that shuffle, whatever ``world`` is.
    """
    from torch.utils.data.distributed import DistributedSampler

    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} is not a multiple of the {world} processes")
    dataset = SessionBatches(item_ids, min_length=min_length, features=features)
    if len(dataset) < world:
        raise ValueError(f"{len(dataset)} sessions cannot be shared by {world} processes")
    base = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
    sampler = BatchSampler(base, batch_size=batch_size // world, drop_last=False)
    return DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=0)
