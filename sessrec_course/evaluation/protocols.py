"""Evaluation protocols: turn test sessions into (prefix -> next item) cases for :func:`evaluate`.

- :func:`all_prefixes` — next-item prediction at every position: a session ``a b c d`` gives the cases
  ``a -> b``, ``a b -> c``, ``a b c -> d`` (what session-rec and GRU4Rec papers report).
- :func:`last_item` — only the last click: ``a b c -> d`` (one case per session, what Transformers4Rec
  reports). Long sessions weigh less here, so numbers differ from the all-prefixes protocol.
- :func:`pairs_to_cases` — given (prefix, target) pairs; :func:`benchmark_cases` does it for the benchmark
  splits' ``test.tsv`` (SR-GNN preprocessing), shifting their ids by one.

Sessions are encoded ids (0 padding, 1 OOV, items from 2) as in the ETL output contract: a list of
lists, a pandas Series of arrays, a pyarrow list array, or a ragged ``(values, offsets)`` pair. Prefixes
come back as a right-padded int64 matrix; a prefix longer than ``max_length`` keeps its most recent items.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sessrec_course.evaluation.metrics import PAD_ID

Ragged = tuple[np.ndarray, np.ndarray]


def to_ragged(sessions) -> Ragged:
    """Return ``(values, offsets)`` int64 arrays: session ``i`` is ``values[offsets[i]:offsets[i + 1]]``."""
    if isinstance(sessions, tuple) and len(sessions) == 2 and all(isinstance(a, np.ndarray) for a in sessions):
        values, offsets = (np.asarray(a, dtype=np.int64) for a in sessions)
        if offsets.ndim != 1 or offsets.size == 0 or offsets[0] != 0 or offsets[-1] != values.size:
            raise ValueError("ragged offsets must start at 0 and end at len(values)")
        if (np.diff(offsets) < 0).any():
            raise ValueError("ragged offsets must be non-decreasing")
        return values, offsets
    try:  # pyarrow ListArray / ChunkedArray, without importing pyarrow here
        import pyarrow as pa

        if isinstance(sessions, pa.ChunkedArray):
            sessions = sessions.combine_chunks()
        if isinstance(sessions, pa.ListArray | pa.LargeListArray):
            if sessions.null_count:
                raise ValueError("session list column holds nulls; expected one item list per session")
            offsets = np.asarray(sessions.offsets, dtype=np.int64)
            values = np.asarray(sessions.values, dtype=np.int64)[offsets[0] : offsets[-1]]
            return values, offsets - offsets[0]
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pass
    if hasattr(sessions, "to_numpy") and not isinstance(sessions, np.ndarray):
        sessions = sessions.to_numpy()
    lengths = np.fromiter((len(s) for s in sessions), dtype=np.int64, count=len(sessions))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] == 0:
        return np.zeros(0, dtype=np.int64), offsets
    parts = [np.asarray(s) for s in sessions if len(s)]
    for part in parts:
        if not np.issubdtype(part.dtype, np.integer):
            raise ValueError(f"sessions must hold integer item ids, got dtype {part.dtype}")
    return np.concatenate(parts).astype(np.int64, copy=False), offsets


def pad_prefixes(values: np.ndarray, starts: np.ndarray, stops: np.ndarray, max_length: int | None) -> np.ndarray:
    """Return the right-padded int64 matrix of ``values[starts[i]:stops[i]]``, keeping the last ``max_length``."""
    lengths = stops - starts
    width = int(lengths.max(initial=0)) if max_length is None else int(max_length)
    if width < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    starts = np.maximum(starts, stops - width)
    index = starts[:, None] + np.arange(width)[None, :]
    keep = index < stops[:, None]
    if values.size == 0:
        return np.zeros((len(starts), width), dtype=np.int64)
    return np.where(keep, values[np.minimum(index, values.size - 1)], PAD_ID).astype(np.int64)


def all_prefixes(
    sessions, max_length: int | None = None, return_session_index: bool = False
) -> tuple[np.ndarray, ...]:
    """Return ``(prefixes, targets)`` for next-item prediction at every position of every session.

    A session of length n gives n - 1 cases; sessions shorter than 2 give none. With
    ``return_session_index`` a third array says which session (row of ``sessions``) each case came from.
    """
    values, offsets = to_ragged(sessions)
    lengths = np.diff(offsets)
    n_cases = np.maximum(lengths - 1, 0)
    session_index = np.repeat(np.arange(len(lengths)), n_cases)
    # position of the target inside its session: 1 .. n - 1
    first_case = np.cumsum(n_cases) - n_cases
    position = np.arange(int(n_cases.sum())) - np.repeat(first_case, n_cases) + 1
    stops = offsets[session_index] + position
    prefixes = pad_prefixes(values, offsets[session_index], stops, max_length)
    targets = values[stops] if stops.size else np.zeros(0, dtype=np.int64)
    return (prefixes, targets, session_index) if return_session_index else (prefixes, targets)


def last_item(sessions, max_length: int | None = None, return_session_index: bool = False) -> tuple[np.ndarray, ...]:
    """Return ``(prefixes, targets)`` predicting only the last item of each session (length >= 2)."""
    values, offsets = to_ragged(sessions)
    lengths = np.diff(offsets)
    session_index = np.flatnonzero(lengths >= 2)
    stops = offsets[session_index + 1] - 1
    prefixes = pad_prefixes(values, offsets[session_index], stops, max_length)
    targets = values[stops] if stops.size else np.zeros(0, dtype=np.int64)
    return (prefixes, targets, session_index) if return_session_index else (prefixes, targets)


def pairs_to_cases(prefixes, targets, max_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(prefix matrix, targets)`` from given (prefix list, target) pairs, e.g. a benchmark ``test.tsv``."""
    values, offsets = to_ragged(prefixes)
    targets = np.asarray(targets, dtype=np.int64)
    if len(targets) != len(offsets) - 1:
        raise ValueError(f"{len(offsets) - 1} prefixes but {len(targets)} targets")
    lengths = np.diff(offsets)
    if (lengths == 0).any():
        raise ValueError(f"prefix {int(np.argmin(lengths))} is empty; every benchmark case needs a prefix")
    return pad_prefixes(values, offsets[:-1], offsets[1:], max_length), targets


class BenchmarkCases(NamedTuple):
    """A benchmark split in the course's encoding: ids shifted by one so that 1 stays the OOV id."""

    train_sessions: list[np.ndarray]
    prefixes: np.ndarray
    targets: np.ndarray
    n_items: int


def benchmark_cases(split, max_length: int | None = None) -> BenchmarkCases:
    """Return the (prefix -> target) cases and training sessions of a benchmark split, re-encoded.

    ``split`` is a :class:`sessrec_course.data.benchmarks.BenchmarkSplit` (or any object with
    ``train_sessions``, ``test_prefixes``, ``test_targets``, ``item_cardinality``). The SR-GNN files use
    ids from 1, so every id is shifted by +1: raw item 1 would otherwise collide with OOV and be masked.
    Every test line becomes one case, unseen targets included; the whole catalogue is ranked.
    """
    train = [np.asarray(s, dtype=np.int64) + 1 for s in split.train_sessions]
    prefixes, targets = pairs_to_cases([np.asarray(p, dtype=np.int64) + 1 for p in split.test_prefixes],
                                       np.asarray(split.test_targets, dtype=np.int64) + 1, max_length)
    return BenchmarkCases(train, prefixes, targets, int(split.item_cardinality) + 1)
