"""The pre- and post-processing run in-process and inside Triton (numpy only: copied verbatim beside the python
models). Raw sessions: a right-padded int64 matrix, -1 as padding. Defined answers: unseen ids become OOV (1), an
over-long session keeps its last ``max_length`` events, an empty or OOV-only one gets the popular training items."""

from __future__ import annotations

import numpy as np

RAW_PAD = -1
DENSE_LOOKUP_MAX = 1 << 22  # raw ids below this get a direct raw -> encoded table (at most 16 MiB of int32)
PAD_ID = 0
OOV_ID = 1
FIRST_ITEM_ID = 2


class ServingState:
    """The fitted workflow's tables: ``raw_of_encoded[e]`` (raw id of encoded ``e``), ``popular`` ids and scores."""

    def __init__(self, raw_of_encoded: np.ndarray, max_length: int, popular: np.ndarray,
                 popular_scores: np.ndarray):
        self.raw_of_encoded = np.asarray(raw_of_encoded, dtype=np.int64)
        self.max_length = int(max_length)
        self.popular = np.asarray(popular, dtype=np.int64)
        self.popular_scores = np.asarray(popular_scores, dtype=np.float32)
        known = self.raw_of_encoded[FIRST_ITEM_ID:]
        if known.size == 0:
            raise ValueError("the serving state needs at least one known item (raw_of_encoded has no ids >= 2)")
        order = np.argsort(known, kind="stable")
        self._sorted_raw = known[order]
        self._encoded_of_sorted = (order + FIRST_ITEM_ID).astype(np.int64)
        self._dense: np.ndarray | None = None
        if known.min() >= 0 and known.max() < DENSE_LOOKUP_MAX:  # one gather instead of a binary search
            self._dense = np.full(int(known.max()) + 2, OOV_ID, dtype=np.int32)
            self._dense[known] = np.arange(FIRST_ITEM_ID, FIRST_ITEM_ID + known.size, dtype=np.int32)

    @property
    def item_cardinality(self) -> int:
        """Number of encoded ids including padding and OOV."""
        return int(self.raw_of_encoded.shape[0])

    def save(self, path) -> None:
        """Write the tables to ``path`` (``.npz``)."""
        np.savez(path, raw_of_encoded=self.raw_of_encoded, max_length=np.int64(self.max_length),
                 popular=self.popular, popular_scores=self.popular_scores)

    @classmethod
    def load(cls, path) -> ServingState:
        """Read tables written by :meth:`save`."""
        with np.load(path) as data:
            return cls(data["raw_of_encoded"], int(data["max_length"]), data["popular"], data["popular_scores"])

    def encode(self, raw: np.ndarray) -> np.ndarray:
        """Map a right-padded raw matrix (B, L) to encoded ids (B, max_length), truncated and right-padded."""
        raw = np.asarray(raw)
        if raw.ndim != 2:
            raise ValueError(f"raw sessions must be a 2-D (sessions, events) matrix, got shape {raw.shape}")
        if not np.issubdtype(raw.dtype, np.integer):
            raise ValueError(f"raw item ids must be integers, got dtype {raw.dtype}")
        raw = raw.astype(np.int64, copy=False)
        (n_rows, width), valid = raw.shape, raw != RAW_PAD
        gaps = bool((valid[:, 1:] & ~valid[:, :-1]).any())  # padding before an event
        if width == 0:
            return np.zeros((n_rows, self.max_length), dtype=np.int64)
        if self._dense is not None and width <= self.max_length and not gaps and raw.min() >= RAW_PAD:
            # the usual request (right-padded, not over-long): one gather; -1 reads the OOV entry, masked here
            out = np.zeros((n_rows, self.max_length), dtype=np.int64)
            out[:, :width] = np.where(valid, self._dense[np.minimum(raw, self._dense.size - 1)], PAD_ID)
            return out
        if self._dense is not None:
            # unknown, negative or too large ids all land on the last entry (OOV)
            index = np.where((raw >= 0) & (raw < self._dense.size - 1), raw, self._dense.size - 1)
            encoded = self._dense[index].astype(np.int64)
        else:
            pos = np.minimum(np.searchsorted(self._sorted_raw, raw), len(self._sorted_raw) - 1)
            encoded = np.where(self._sorted_raw[pos] == raw, self._encoded_of_sorted[pos], OOV_ID)
        if gaps:  # move the events to the front, in order
            encoded = np.take_along_axis(encoded, np.argsort(~valid, axis=1, kind="stable"), axis=1)
        counts = valid.sum(axis=1)
        start = np.maximum(counts - self.max_length, 0)
        cols = start[:, None] + np.arange(self.max_length)[None, :]
        keep = cols < counts[:, None]
        gathered = np.take_along_axis(encoded, np.minimum(cols, width - 1), axis=1)
        return np.where(keep, gathered, PAD_ID)

    def top_k(self, scores: np.ndarray, encoded: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return raw ids (B, k) and scores (B, k) of the best ``k`` real items per session, ties to the lower id."""
        scores = np.asarray(scores, dtype=np.float32)
        encoded = np.asarray(encoded)
        n_rows, n_items = scores.shape
        k = min(int(k), n_items - FIRST_ITEM_ID)
        ids, top = np.empty((n_rows, k), dtype=np.int64), np.empty((n_rows, k), dtype=np.float32)
        has_known = (encoded >= FIRST_ITEM_ID).any(axis=1)
        for row in range(n_rows):
            if not has_known[row]:
                ids[row], top[row] = self.popular[:k], self.popular_scores[:k]
                continue
            candidates = scores[row, FIRST_ITEM_ID:]
            chosen = np.flatnonzero(candidates >= np.partition(candidates, -k)[-k])  # the k best and their ties
            # lexsort: last key first -> by score descending, then by id ascending
            chosen = chosen[np.lexsort((chosen, -candidates[chosen]))][:k]
            ids[row] = chosen + FIRST_ITEM_ID
            top[row] = candidates[chosen]
        return self.raw_of_encoded[ids], top
