"""Array helpers every stage shares (numpy only): ragged sessions, right padding, ranking with ties to the lower id.

Ranking (:func:`order_desc`, :func:`top_k_indices`, :func:`ranks_of`) is the one rule of every model, baseline,
reference and server: higher score first, ties to the lower index."""

from __future__ import annotations

from typing import Any

import numpy as np

from sessrec_course.ids import PAD_ID

Ragged = tuple[np.ndarray, np.ndarray]

__all__ = ["Ragged", "order_desc", "pad_ragged", "pad_right", "ranks_of", "to_ragged", "top_k_indices"]


def to_ragged(sessions: Any, dtype: Any = np.int64) -> Ragged:
    """``(values, offsets)`` of sessions given as a pair, a pyarrow/cudf list array, a Series or lists (None: empty)."""
    if isinstance(sessions, tuple) and len(sessions) == 2 and all(isinstance(a, np.ndarray) for a in sessions):
        values, offsets = np.asarray(sessions[0], dtype=dtype), np.asarray(sessions[1], dtype=np.int64)
        if offsets.ndim != 1 or offsets.size == 0 or offsets[0] != 0 or offsets[-1] != values.size:
            raise ValueError("ragged offsets must start at 0 and end at len(values)")
        if (np.diff(offsets) < 0).any():
            raise ValueError("ragged offsets must be non-decreasing")
        return values, offsets
    if hasattr(sessions, "to_arrow") and not isinstance(sessions, np.ndarray):  # cudf Series
        sessions = sessions.to_arrow()
    arrow = _from_arrow(sessions, dtype)
    if arrow is not None:
        return arrow
    if hasattr(sessions, "to_numpy") and not isinstance(sessions, np.ndarray):
        sessions = sessions.to_numpy()
    lengths = np.fromiter((0 if s is None else len(s) for s in sessions), dtype=np.int64, count=len(sessions))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] == 0:
        return np.zeros(0, dtype=dtype), offsets
    parts = [np.asarray(s).ravel() for s in sessions if s is not None and len(s)]
    if np.issubdtype(np.dtype(dtype), np.integer):
        for part in parts:
            if not np.issubdtype(part.dtype, np.integer):
                raise ValueError(f"sessions must hold integer item ids, got dtype {part.dtype}")
    return np.concatenate(parts).astype(dtype, copy=False), offsets


def _from_arrow(sessions: Any, dtype: Any) -> Ragged | None:
    """``(values, offsets)`` of a pyarrow (chunked) list array, sliced arrays included; None for anything else."""
    import pyarrow as pa  # here: the other inputs need numpy only
    if isinstance(sessions, pa.ChunkedArray):
        sessions = sessions.combine_chunks() if sessions.num_chunks else pa.array([], type=sessions.type)
    if not isinstance(sessions, pa.ListArray | pa.LargeListArray):
        return None
    if sessions.null_count:
        raise ValueError("session list column holds nulls; expected one item list per session")
    offsets = np.asarray(sessions.offsets, dtype=np.int64)
    values = sessions.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]].astype(dtype, copy=False)
    return values, offsets - offsets[0]


def pad_ragged(values: np.ndarray, starts: np.ndarray, stops: np.ndarray, max_length: int | None,
               dtype: Any = np.int64, pad: int = PAD_ID) -> np.ndarray:
    """Right-padded ``(n, max_length[, *f])`` rows of the last ``max_length`` values ``values[starts[i]:stops[i]]``."""
    starts, stops = np.asarray(starts, dtype=np.int64), np.asarray(stops, dtype=np.int64)
    width = int((stops - starts).max(initial=0)) if max_length is None else int(max_length)
    if width < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    starts = np.maximum(starts, stops - width)
    index = starts[:, None] + np.arange(width)[None, :]
    if len(values) == 0:
        return np.full((len(starts), width, *values.shape[1:]), pad, dtype=dtype)
    inside = (index < stops[:, None]).reshape(index.shape + (1,) * (values.ndim - 1))
    return np.where(inside, values[np.minimum(index, len(values) - 1)], pad).astype(dtype, copy=False)


def pad_right(sessions: Any, max_length: int, dtype: Any = np.int64) -> np.ndarray:
    """The last ``max_length`` items of each session (see :func:`to_ragged`), right-padded with ``PAD_ID``."""
    values, offsets = to_ragged(sessions, dtype)
    return pad_ragged(values, offsets[:-1], offsets[1:], max_length, dtype=dtype)


def order_desc(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Return the indices that sort ``values`` by decreasing value, ties to the lower index."""
    return np.argsort(-np.asarray(values), axis=axis, kind="stable")


def ranks_of(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Return the 1-based rank of column ``targets[i]`` in row ``i`` of ``scores`` (int64, ties to the lower column)."""
    targets = np.asarray(targets, dtype=np.int64)
    own = scores[np.arange(len(targets)), targets][:, None]
    columns = np.arange(scores.shape[1])[None, :]
    higher = (scores > own).sum(axis=1)
    equal_before = ((scores == own) & (columns < targets[:, None])).sum(axis=1)
    return 1 + higher.astype(np.int64) + equal_before.astype(np.int64)


_CANDIDATE_CAP = 8
_BLOCK = 32


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best columns of each row, best first, ties to the lower column (int64 ``(rows, k)``)."""
    scores = np.asarray(scores)
    n_rows, n_cols = scores.shape
    if not 1 <= k <= n_cols:
        raise ValueError(f"k={k} must be between 1 and the {n_cols} columns")
    top = np.empty((n_rows, k), dtype=np.int64)
    # a top-k score is >= the k-th largest block maximum; rows where too many reach it take the exact path
    bound = _top_k_lower_bound(scores, k)
    candidate = scores >= bound[:, None]
    light = candidate.sum(axis=1) <= _CANDIDATE_CAP * k + 64
    if light.any():
        rows, cols = np.nonzero(candidate[light])
        order = np.lexsort((cols, -scores[light][rows, cols], rows))
        rows, cols = rows[order], cols[order]
        first = np.searchsorted(rows, np.arange(int(light.sum())))
        keep = np.arange(len(rows)) - first[rows] < k
        top[light] = cols[keep].reshape(-1, k)
    heavy = np.flatnonzero(~light)
    if heavy.size:
        top[heavy] = _top_k_exact(scores[heavy], k)
    return top


def _top_k_lower_bound(scores: np.ndarray, k: int) -> np.ndarray:
    n_rows, n_cols = scores.shape
    n_blocks = -(-n_cols // _BLOCK)
    if n_blocks < k or n_cols < 4 * _BLOCK:
        return scores.min(axis=1)
    padded = np.full((n_rows, n_blocks * _BLOCK), -np.inf, dtype=scores.dtype)
    padded[:, :n_cols] = scores
    block_max = padded.reshape(n_rows, n_blocks, _BLOCK).max(axis=2)
    return np.partition(block_max, n_blocks - k, axis=1)[:, n_blocks - k]


def _top_k_exact(scores: np.ndarray, k: int) -> np.ndarray:
    """Top-k columns of each row by (score desc, column asc), over the full rows."""
    n_cols = scores.shape[1]
    if k == n_cols:
        selected = np.broadcast_to(np.arange(n_cols), scores.shape)
    else:
        # k-th largest score per row; everything above it is in, ties at it are filled by the smallest columns.
        threshold = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
        above = scores > threshold
        need = k - above.sum(axis=1, keepdims=True)
        at = scores == threshold
        chosen = above | at
        straddle = np.flatnonzero(at.sum(axis=1) > need[:, 0])  # ties cut by K: keep the smallest columns
        if straddle.size:
            cut = at[straddle] & (np.cumsum(at[straddle], axis=1, dtype=np.int32) <= need[straddle])
            chosen[straddle] = above[straddle] | cut
        selected = np.nonzero(chosen)[1].reshape(scores.shape[0], k)
    selected_scores = np.take_along_axis(scores, selected, axis=1)
    return np.take_along_axis(selected, order_desc(selected_scores, axis=1), axis=1).astype(np.int64)
