"""What every baseline shares: fitting input checks, popularity, reading the last items of a prefix batch."""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from sessrec_course.arrays import to_ragged
from sessrec_course.ids import FIRST_ID, PAD_ID

logger = logging.getLogger(__name__)

#: Weight of an item ``d`` clicks back (``d >= 1``) in session-rec's named schemes, shared by kNN and rules.
STEP_DECAYS = {
    "same": lambda d: np.ones_like(d, dtype=np.float64),
    "div": lambda d: 1.0 / d,
    "quadratic": lambda d: 1.0 / (d * d),
    "linear": lambda d: np.clip(1.0 - 0.1 * d, 0.0, None),
    "log": lambda d: 1.0 / np.log10(d + 1.7),
}


class Baseline:
    """A fitted-from-sessions recommender following the course's Recommender protocol.

    ``fit(sessions, n_items)`` takes training sessions of encoded ids (list of lists, pandas Series of
    arrays, pyarrow list array or ``(values, offsets)``) and the item cardinality (incl. pad and OOV);
    ``score(item_ids)`` maps a right-padded int64 (B, L) batch to float32 (B, n_items) scores.
    Ids outside ``2 .. n_items - 1`` in a prefix (OOV, unseen) carry no information and are ignored.
    """

    name = "baseline"

    def __init__(self) -> None:
        self.n_items: int | None = None
        self.popularity: np.ndarray | None = None  # training counts per encoded id

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def fit(self, sessions, n_items: int) -> Baseline:
        """Learn from training sessions; return ``self``."""
        values, offsets = self._fit_input(sessions, n_items)
        self._fit(values, offsets)
        return self

    def _fit(self, values: np.ndarray, offsets: np.ndarray) -> None:
        """Subclasses learn their statistics here (popularity is already set)."""

    def _fit_input(self, sessions, n_items: int) -> tuple[np.ndarray, np.ndarray]:
        n_items = int(n_items)
        if n_items <= FIRST_ID:
            raise ValueError(f"n_items={n_items} leaves no real item (ids start at {FIRST_ID})")
        values, offsets = to_ragged(sessions)
        if values.size == 0:
            raise ValueError("cannot fit a baseline on no training events")
        if values.min() < 0 or values.max() >= n_items:
            raise ValueError(
                f"training sessions hold item ids {values.min()}..{values.max()}, expected 0..{n_items - 1} "
                f"(encoded ids; n_items counts pad and OOV)"
            )
        self.n_items = n_items
        counts = np.bincount(values, minlength=n_items).astype(np.float64)
        counts[:FIRST_ID] = 0.0
        self.popularity = counts
        logger.info("%s: fitting on %d sessions, %d events", self.name, len(offsets) - 1, values.size)
        return values, offsets

    def _check_fitted(self) -> None:
        if self.n_items is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(sessions, n_items) first")

    def _prefix_batch(self, item_ids: np.ndarray) -> np.ndarray:
        self._check_fitted()
        item_ids = np.asarray(item_ids)
        if item_ids.ndim == 1:
            item_ids = item_ids[None, :]
        if item_ids.ndim != 2 or not np.issubdtype(item_ids.dtype, np.integer):
            raise ValueError(f"item_ids must be an integer (batch, length) matrix, got {item_ids.dtype} {item_ids.shape}")
        item_ids = item_ids.astype(np.int64, copy=False)
        # unknown ids (OOV, outside the fitted catalogue) carry no information: treat them as OOV
        return np.where((item_ids >= FIRST_ID) & (item_ids < self.n_items), item_ids, np.minimum(item_ids, 1))

    def popularity_scores(self) -> np.ndarray:
        """Return popularity scaled to [0, 1] (float64, one value per encoded id)."""
        top = self.popularity.max()
        return self.popularity / top if top > 0 else self.popularity.copy()

    def score(self, item_ids: np.ndarray) -> np.ndarray:
        """Return float32 (B, n_items) scores for a right-padded batch of prefixes."""
        raise NotImplementedError


def last_items(item_ids: np.ndarray) -> np.ndarray:
    """Return the last non-padding id of each right-padded row (``PAD_ID`` for an empty row)."""
    nonpad = item_ids != PAD_ID
    has_any = nonpad.any(axis=1)
    last_pos = item_ids.shape[1] - 1 - np.argmax(nonpad[:, ::-1], axis=1)
    return np.where(has_any, item_ids[np.arange(len(item_ids)), last_pos], PAD_ID)


def two_tier(evidence: sp.spmatrix, popularity: np.ndarray) -> np.ndarray:
    """Rank items with evidence (sparse (B, n_items), > 0) by it in (1, 2], above the rest by popularity in [0, 0.5]."""
    evidence = sp.csr_matrix(evidence)
    evidence.eliminate_zeros()
    out = np.repeat((0.5 * popularity).astype(np.float32)[None, :], evidence.shape[0], axis=0)
    rows = np.repeat(np.arange(evidence.shape[0]), np.diff(evidence.indptr))
    if rows.size:
        row_max = np.zeros(evidence.shape[0])
        np.maximum.at(row_max, rows, evidence.data)
        out[rows, evidence.indices] = 1.0 + evidence.data / row_max[rows]
    out[:, :FIRST_ID] = 0.0
    return out


def add_sparse(dense: np.ndarray, matrix: sp.spmatrix) -> np.ndarray:
    """Add a sparse matrix of the same shape into ``dense`` in place and return it."""
    matrix = sp.csr_matrix(matrix)
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    np.add.at(dense, (rows, matrix.indices), matrix.data.astype(dense.dtype))
    return dense
