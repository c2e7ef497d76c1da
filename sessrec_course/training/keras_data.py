"""From the ETL parquet to ``tf.data``: each split read once into right-padded numpy matrices, then batches
of shuffled rows trimmed to their longest session, the next one prefetched while the model trains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sessrec_course.arrays import pad_right
from sessrec_course.etl.workflow import CATEGORY_COLUMN, ITEM_COLUMN, TIME_COLUMN, list_column

SIDE_FEATURES = (("category_ids", CATEGORY_COLUMN, np.int64), ("time_deltas", TIME_COLUMN, np.float32))


def read_split(path: str | Path, max_length: int, side_features: bool = True) -> dict[str, np.ndarray]:
    """An ETL split as ``(N, max_length)`` matrices: ``item_ids``, ``mask``, side features if present."""
    table = pq.read_table(path)
    items = pad_right(list_column(table, path, ITEM_COLUMN), max_length)
    if items.size and items.min() < 0:
        raise ValueError(f"{path}: {ITEM_COLUMN} holds negative id {items.min()}; expected encoded ids >= 0")
    out = {"item_ids": items, "mask": items != 0}
    for key, column, dtype in SIDE_FEATURES if side_features else ():
        if column in table.column_names:
            out[key] = pad_right(list_column(table, path, column), max_length, dtype=dtype)
            if out[key].shape != items.shape or ((out[key] != 0) & ~out["mask"]).any():
                raise ValueError(f"{path}: {column} does not line up with {ITEM_COLUMN} (row lengths differ)")
    return out


def make_dataset(split: dict[str, np.ndarray], batch_size: int, shuffle: bool = True, seed: int = 0,
                 min_length: int = 2):
    """A seeded ``tf.data.Dataset`` of dict batches of :func:`read_split` rows of ``min_length`` items."""
    import tensorflow as tf

    if "item_ids" not in split:
        raise ValueError(f"the split has no 'item_ids' (keys: {sorted(split)}); read it with read_split()")
    lengths = (split["item_ids"] != 0).sum(axis=1)
    keep = np.flatnonzero(lengths >= min_length)
    if len(keep) == 0:
        raise ValueError(f"no session with at least {min_length} items to train on")
    tensors = {k: tf.constant(v[keep]) for k, v in split.items()}
    longest = tf.constant(lengths[keep].astype(np.int32))

    def gather(index):
        width = tf.reduce_max(tf.gather(longest, index))
        return {k: tf.gather(v, index)[:, :width] for k, v in tensors.items()}

    data = tf.data.Dataset.range(len(keep))
    if shuffle:
        data = data.shuffle(len(keep), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    data = data.prefetch(tf.data.AUTOTUNE)
    data.n_sessions = len(keep)  # read by the trainer for sessions/s
    return data
