"""Popularity baselines: the most popular items overall, and session popularity (S-POP)."""

from __future__ import annotations

import numpy as np

from sessrec_course.baselines.base import Baseline
from sessrec_course.ids import FIRST_ID


class MostPopular(Baseline):
    """Recommend the items clicked most often in training, whatever the session (the floor to beat)."""

    name = "POP"

    def score(self, item_ids: np.ndarray) -> np.ndarray:
        """Return the same popularity row for every prefix."""
        item_ids = self._prefix_batch(item_ids)
        row = self.popularity_scores().astype(np.float32)
        return np.repeat(row[None, :], len(item_ids), axis=0)


class SessionPopular(Baseline):
    """S-POP: items already in the session, most frequent first; then global popularity.

    Score = occurrences in the prefix + 0.5 x popularity in [0, 1], so session items always come first
    and ties go to the more popular item. Measures how much users come back to what they have seen.
    """

    name = "S-POP"

    def score(self, item_ids: np.ndarray) -> np.ndarray:
        """Return session counts plus half the scaled popularity."""
        item_ids = self._prefix_batch(item_ids)
        out = np.repeat((0.5 * self.popularity_scores())[None, :], len(item_ids), axis=0)
        rows = np.repeat(np.arange(len(item_ids)), item_ids.shape[1])
        flat = item_ids.ravel()
        real = flat >= FIRST_ID
        np.add.at(out, (rows[real], flat[real]), 1.0)
        out[:, :FIRST_ID] = 0.0
        return out.astype(np.float32)
