"""V-SKNN: session-based k-nearest neighbours with recency weighting (Ludewig & Jannach, 2018), on sparse matrices.

A training session's similarity to a prefix is the weight ``w(i, n)`` of the prefix items it holds, summed, over the
number of distinct prefix items; of the ``sample_size`` most recent sessions sharing an item, the ``k`` most similar
each add ``similarity x decay(step of the last shared item)`` (x ``1 + idf_weighting x idf``) to their items."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sessrec_course.baselines.base import STEP_DECAYS, Baseline, two_tier
from sessrec_course.ids import FIRST_ID

#: Weight of prefix item ``i`` of ``n`` (1-based): the later the click, the more it counts (but for ``same``).
POSITION_WEIGHTS = {
    "same": lambda i, n: np.ones_like(i, dtype=np.float64),
    "div": lambda i, n: i / n,
    "quadratic": lambda i, n: (i / n) ** 2,
}
_MAX_STEP = 50  # steps are found exactly up to here (powers of two in float64); older items count as step 50


class VSKNN(Baseline):
    """Vector multiplication session-kNN with recency weighting, decay and optional IDF (``idf_weighting=0``: off).
    Defaults: session-rec's tuned configuration for YOOCHOOSE; sessions are in time order unless ``fit`` gets times."""

    name = "V-SKNN"

    def __init__(self, k: int = 500, sample_size: int = 5000, weighting: str = "quadratic",
                 weighting_score: str = "div", idf_weighting: float = 0.0) -> None:
        super().__init__()
        if weighting not in POSITION_WEIGHTS:
            raise ValueError(f"unknown weighting {weighting!r}; expected one of {sorted(POSITION_WEIGHTS)}")
        if weighting_score not in STEP_DECAYS:
            raise ValueError(f"unknown weighting_score {weighting_score!r}; expected one of {sorted(STEP_DECAYS)}")
        if k < 1 or sample_size < 1:
            raise ValueError(f"k and sample_size must be positive, got k={k}, sample_size={sample_size}")
        self.k, self.sample_size = k, sample_size
        self.weighting, self.weighting_score, self.idf_weighting = weighting, weighting_score, idf_weighting
        self.session_items: sp.csr_matrix | None = None
        self.item_boost: np.ndarray | None = None

    def __repr__(self) -> str:
        return (f"VSKNN(k={self.k}, sample_size={self.sample_size}, weighting={self.weighting!r}, "
                f"weighting_score={self.weighting_score!r}, idf_weighting={self.idf_weighting})")

    def fit(self, sessions, n_items: int, session_times: np.ndarray | None = None) -> VSKNN:
        """Index the training sessions (optionally ordered by ``session_times``, e.g. their last click)."""
        values, offsets = self._fit_input(sessions, n_items)
        n_sessions = len(offsets) - 1
        order = np.arange(n_sessions)
        if session_times is not None:
            session_times = np.asarray(session_times)
            if session_times.shape != (n_sessions,):
                raise ValueError(f"session_times needs one value per session ({n_sessions}), got {session_times.shape}")
            order = np.argsort(session_times, kind="stable")
        rank = np.empty(n_sessions, dtype=np.int64)
        rank[order] = np.arange(n_sessions)  # column = recency rank: larger = more recent
        session_of = np.repeat(rank, np.diff(offsets))
        keep = values >= FIRST_ID
        matrix = sp.csr_matrix(
            (np.ones(int(keep.sum())), (session_of[keep], values[keep])), shape=(n_sessions, self.n_items)
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0  # a session holds an item or not
        self.session_items = matrix
        self.item_sessions = matrix.T.tocsr()
        df = np.bincount(matrix.indices, minlength=self.n_items).astype(np.float64)
        idf = np.log(np.divide(n_sessions, df, out=np.ones_like(df), where=df > 0))
        self.item_boost = 1.0 + self.idf_weighting * idf if self.idf_weighting else None
        return self

    def _query_matrices(self, item_ids: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Return (position weights / #distinct items, 2**-step of the most recent occurrence), both (B, n_items)."""
        batch, width = item_ids.shape
        present = item_ids >= FIRST_ID
        length = present.sum(axis=1)
        position = np.cumsum(present, axis=1)  # 1-based position among real clicks
        rows, cols = np.nonzero(present)
        items = item_ids[rows, cols]
        pos = position[rows, cols].astype(np.float64)
        n = length[rows].astype(np.float64)
        weight = POSITION_WEIGHTS[self.weighting](pos, n)
        step = np.minimum(n - pos + 1, _MAX_STEP)
        # later occurrence of an item overrides earlier ones: keep the last (row, item) entry
        key = rows * self.n_items + items
        last = np.unique(key[::-1], return_index=True)[1]
        last = len(key) - 1 - last
        rows, items, weight, step = rows[last], items[last], weight[last], step[last]
        distinct = np.bincount(rows, minlength=batch).astype(np.float64)
        shape = (batch, self.n_items)
        weights = sp.csr_matrix((weight / distinct[rows], (rows, items)), shape=shape)
        steps = sp.csr_matrix((np.exp2(-step), (rows, items)), shape=shape)
        return weights, steps

    def neighbours(self, item_ids: np.ndarray) -> sp.csr_matrix:
        """Return the sparse (B, n_sessions) matrix of ``similarity x decay`` over each prefix's k neighbours."""
        weights, steps = self._query_matrices(item_ids)
        sim = (weights @ self.item_sessions).tocsr()
        recent = (steps @ self.item_sessions).tocsr()  # all weights > 0: the same structure as sim
        sim.sort_indices()
        recent.sort_indices()
        batch = sim.shape[0]
        counts = np.diff(sim.indptr)
        rows = np.repeat(np.arange(batch), counts)
        # columns are recency ranks, sorted: the last sample_size entries of a row are the most recent
        from_end = sim.indptr[rows + 1] - np.arange(sim.nnz)
        sampled = from_end <= self.sample_size
        rows, cols = rows[sampled], sim.indices[sampled]
        similarity, powers = sim.data[sampled], recent.data[sampled]
        # k most similar per row (ties: the more recent session)
        order = np.lexsort((-cols, -similarity, rows))
        rows, cols, similarity, powers = rows[order], cols[order], similarity[order], powers[order]
        first = np.searchsorted(rows, np.arange(batch))
        top = np.arange(len(rows)) - first[rows] < self.k
        rows, cols, similarity, powers = rows[top], cols[top], similarity[top], powers[top]
        step = np.ceil(-np.log2(powers) - 1e-9)  # smallest step among shared items
        value = similarity * STEP_DECAYS[self.weighting_score](np.maximum(step, 1.0))
        return sp.csr_matrix((value, (rows, cols)), shape=sim.shape)

    def evidence(self, item_ids: np.ndarray) -> sp.csr_matrix:
        """Return the sparse (B, n_items) neighbourhood scores."""
        item_ids = self._prefix_batch(item_ids)
        scores = (self.neighbours(item_ids) @ self.session_items).tocsr()
        if self.item_boost is not None:
            scores = scores.multiply(self.item_boost[None, :]).tocsr()
        return scores

    def score(self, item_ids: np.ndarray) -> np.ndarray:
        """Return neighbourhood scores in (1, 2] for items with evidence, popularity in [0, 0.5] otherwise."""
        return two_tier(self.evidence(item_ids), self.popularity_scores())
