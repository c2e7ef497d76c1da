"""From the ETL parquet to a ``tf.data`` pipeline: padded sequences, masks and side features, prefetched.

Each split is read once into right-padded numpy matrices (vectorised, no Python loop per session);
``tf.data`` then shuffles row indices, gathers a batch, trims it to its longest session and prefetches
the next one while the model trains, so the input pipeline is never the bottleneck. The ETL contract
is in docs/design.md: ``item_id_list`` (0 pad, 1 OOV, items from 2), ``category_list``, ``time_delta_list``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ITEM_COLUMN = "item_id_list"
CATEGORY_COLUMN = "category_list"
TIME_COLUMN = "time_delta_list"


def _list_column(table: pa.Table, path: Path, column: str) -> pa.Array:
    if column not in table.column_names:
        raise ValueError(f"{path}: no column {column!r} (columns: {table.column_names})")
    kind = table.schema.field(column).type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        raise ValueError(f"{path}: column {column!r} is {kind}, expected a list column")
    chunked = table.column(column)
    return chunked.combine_chunks() if chunked.num_chunks else pa.array([], type=kind)


def pad_list_array(lists: pa.Array, max_length: int, dtype=np.int64) -> np.ndarray:
    """Right-pad a pyarrow list array to ``(N, max_length)``, keeping the LAST ``max_length`` values per row."""
    offsets = np.asarray(lists.offsets, dtype=np.int64)
    values = np.asarray(lists.values, dtype=dtype)
    lengths = np.diff(offsets)
    kept = np.minimum(lengths, max_length)
    out = np.zeros((len(lengths), max_length), dtype=dtype)
    rows = np.repeat(np.arange(len(lengths)), kept)
    cols = np.arange(kept.sum()) - np.repeat(np.cumsum(kept) - kept, kept)
    out[rows, cols] = values[np.repeat(offsets[1:] - kept, kept) + cols]
    return out


def read_split(path: str | Path, max_length: int, side_features: bool = True) -> dict[str, np.ndarray]:
    """Read an ETL parquet split into right-padded matrices ``(N, max_length)``.

    Keys: ``item_ids`` (int64), ``mask`` (bool, True on real items) and, with ``side_features`` and when
    the columns exist, ``category_ids`` (int64) and ``time_deltas`` (float32 seconds).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the ETL first (sessrec_course.etl)")
    table = pq.read_table(path)
    items = pad_list_array(_list_column(table, path, ITEM_COLUMN), max_length)
    if items.size and items.min() < 0:
        raise ValueError(f"{path}: {ITEM_COLUMN} holds negative id {items.min()}; expected encoded ids >= 0")
    out = {"item_ids": items, "mask": items != 0}
    if side_features:
        for key, column, dtype in (("category_ids", CATEGORY_COLUMN, np.int64), ("time_deltas", TIME_COLUMN, np.float32)):
            if column in table.column_names:
                out[key] = pad_list_array(_list_column(table, path, column), max_length, dtype)
                if out[key].shape != items.shape or ((out[key] != 0) & ~out["mask"]).any():
                    raise ValueError(f"{path}: {column} does not line up with {ITEM_COLUMN} (row lengths differ)")
    return out


def item_category_lookup(path: str | Path, item_cardinality: int) -> np.ndarray:
    """Most frequent category of every encoded item in a parquet split (0 for unseen items; ties: lower id)."""
    path = Path(path)
    table = pq.read_table(path, columns=[ITEM_COLUMN, CATEGORY_COLUMN])
    items = np.asarray(_list_column(table, path, ITEM_COLUMN).values, dtype=np.int64)
    cats = np.clip(np.asarray(_list_column(table, path, CATEGORY_COLUMN).values, dtype=np.int64), 0, None)
    if items.shape != cats.shape:
        raise ValueError(f"{path}: {ITEM_COLUMN} and {CATEGORY_COLUMN} differ in length")
    if len(items) and items.max() >= item_cardinality:
        raise ValueError(f"{path}: item id {items.max()} outside item_cardinality {item_cardinality}")
    width = int(cats.max(initial=0)) + 1
    pairs, counts = np.unique(items * width + cats, return_counts=True)
    pair_items, pair_cats = np.divmod(pairs, width)
    order = np.lexsort((pair_cats, -counts, pair_items))  # per item: most frequent, then lowest category
    first = np.unique(pair_items[order], return_index=True)[1]
    lookup = np.zeros(item_cardinality, dtype=np.int64)
    lookup[pair_items[order][first]] = pair_cats[order][first]
    return lookup


def make_dataset(split: dict[str, np.ndarray], batch_size: int, shuffle: bool = True, seed: int = 0,
                 min_length: int = 2, keys: tuple[str, ...] | None = None):
    """Return a ``tf.data.Dataset`` of dict batches from :func:`read_split` output.

    Sessions shorter than ``min_length`` are dropped (nothing to predict); each batch is trimmed to its
    longest session and the next batch is prepared while the current one trains (prefetch).
    ``keys`` picks the features (default: all of ``split``). Shuffling is seeded: same seed, same order.
    """
    import tensorflow as tf

    keys = tuple(split) if keys is None else keys
    missing = [k for k in keys if k not in split]
    if missing:
        raise ValueError(f"features {missing} are not in the split (it has {sorted(split)})")
    if "item_ids" not in split:
        raise ValueError(f"the split has no 'item_ids' (keys: {sorted(split)}); read it with read_split()")
    lengths = (split["item_ids"] != 0).sum(axis=1)
    keep = np.flatnonzero(lengths >= min_length)
    if len(keep) == 0:
        raise ValueError(f"no session with at least {min_length} items to train on")
    tensors = {k: tf.constant(split[k][keep]) for k in keys}
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
