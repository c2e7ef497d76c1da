"""Evaluation protocols: turn sessions of encoded ids into (prefix -> next item) cases for :func:`evaluate`.

:func:`all_prefixes` predicts every position (``a b c d`` gives ``a -> b``, ``a b -> c``, ``a b c -> d``: what
session-rec and GRU4Rec papers report); :func:`last_item` only the last click (Transformers4Rec's protocol). Sessions
may be a list of lists, a Series of arrays, a pyarrow list array or ``(values, offsets)``; prefixes come back as a
right-padded int64 matrix keeping the most recent ``max_length`` items.
"""

from __future__ import annotations

import numpy as np

from sessrec_course.arrays import Ragged, pad_ragged, to_ragged

__all__ = ["Ragged", "all_prefixes", "last_item", "to_ragged"]


def _feature_values(features, offsets: np.ndarray) -> np.ndarray | None:
    """The per-click feature rows ``(clicks, F)`` of ``features`` = ``(values, offsets)``, checked against the sessions."""
    if features is None:
        return None
    values, feature_offsets = (np.asarray(a) for a in features)
    if values.ndim != 2 or not np.array_equal(feature_offsets, offsets):
        raise ValueError(f"features must be (values (clicks, F), offsets) with the sessions' offsets; got values of "
                         f"shape {values.shape} and {len(feature_offsets) - 1} sessions for {len(offsets) - 1}")
    return values


def _cases(values, session_index, starts, stops, max_length, features, return_session_index) -> tuple:
    """The cases ending before ``stops``: prefixes, targets (+ feature prefixes) (+ session index)."""
    prefixes = pad_ragged(values, starts, stops, max_length)
    targets = values[stops] if stops.size else np.zeros(0, dtype=np.int64)
    out = (prefixes, targets)
    if features is not None:
        width = prefixes.shape[1]
        out += (pad_ragged(features, starts, stops, width, dtype=np.float32, pad=0),)
    return out + (session_index,) if return_session_index else out


def all_prefixes(
    sessions, max_length: int | None = None, return_session_index: bool = False, features=None,
) -> tuple[np.ndarray, ...]:
    """``(prefixes, targets[, feature prefixes][, session index])``: n - 1 cases per session of n clicks."""
    values, offsets = to_ragged(sessions)
    features = _feature_values(features, offsets)
    lengths = np.diff(offsets)
    n_cases = np.maximum(lengths - 1, 0)
    session_index = np.repeat(np.arange(len(lengths)), n_cases)
    # position of the target inside its session: 1 .. n - 1
    first_case = np.cumsum(n_cases) - n_cases
    position = np.arange(int(n_cases.sum())) - np.repeat(first_case, n_cases) + 1
    stops = offsets[session_index] + position
    return _cases(values, session_index, offsets[session_index], stops, max_length, features,
                  return_session_index)


def last_item(sessions, max_length: int | None = None, return_session_index: bool = False,
              features=None) -> tuple[np.ndarray, ...]:
    """Like :func:`all_prefixes`, one case per session of 2 or more clicks: its last item."""
    values, offsets = to_ragged(sessions)
    features = _feature_values(features, offsets)
    lengths = np.diff(offsets)
    session_index = np.flatnonzero(lengths >= 2)
    stops = offsets[session_index + 1] - 1
    return _cases(values, session_index, offsets[session_index], stops, max_length, features,
                  return_session_index)
