"""Transition baselines on the last item: first-order Markov chain and sequential rules (Ludewig & Jannach)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sessrec_course.baselines.base import STEP_DECAYS, Baseline, add_sparse, last_items, two_tier
from sessrec_course.ids import FIRST_ID

#: Weight of a rule ``a -> b`` when ``b`` comes ``d`` steps after ``a``: :data:`STEP_DECAYS`, except that
#: session-rec's SR starts ``linear`` at 1 for the adjacent click.
STEP_WEIGHTS = {**STEP_DECAYS, "linear": lambda d: STEP_DECAYS["linear"](d - 1)}


def transition_matrix(values: np.ndarray, offsets: np.ndarray, n_items: int, steps: int = 1,
                      weighting: str = "same") -> sp.csr_matrix:
    """Return the sparse (n_items, n_items) matrix of weighted ``a -> b`` co-occurrences up to ``steps`` apart.

    Entry ``[a, b]`` sums ``weight(d)`` over every pair where ``b`` follows ``a`` by ``d <= steps`` positions
    in one session. Pairs touching padding or OOV are left out.
    """
    if weighting not in STEP_WEIGHTS:
        raise ValueError(f"unknown weighting {weighting!r}; expected one of {sorted(STEP_WEIGHTS)}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    session_of = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    rows, cols, weights = [], [], []
    for d in range(1, steps + 1):
        same = session_of[:-d] == session_of[d:] if values.size > d else np.zeros(0, dtype=bool)
        src, dst = values[:-d][same], values[d:][same]
        ok = (src >= FIRST_ID) & (dst >= FIRST_ID)
        if not ok.any():
            continue
        rows.append(src[ok])
        cols.append(dst[ok])
        weights.append(np.full(int(ok.sum()), STEP_WEIGHTS[weighting](np.float64(d))))
    if not rows:
        return sp.csr_matrix((n_items, n_items), dtype=np.float64)
    matrix = sp.coo_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n_items, n_items)
    ).tocsr()
    matrix.sum_duplicates()
    return matrix


class SequentialRules(Baseline):
    """Sequential rules: items that followed the last item within ``steps`` clicks, weighted by distance.

    Ludewig & Jannach (2018): a rule ``a -> b`` gains ``weight(d)`` each time ``b`` comes ``d`` clicks
    after ``a`` (``div``: 1/d). Items with a rule from the last item rank first; the rest by popularity.
    """

    name = "SR"

    def __init__(self, steps: int = 10, weighting: str = "div") -> None:
        super().__init__()
        self.steps = steps
        self.weighting = weighting
        self.rules: sp.csr_matrix | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(steps={self.steps}, weighting={self.weighting!r})"

    def _fit(self, values: np.ndarray, offsets: np.ndarray) -> None:
        self.rules = transition_matrix(values, offsets, self.n_items, self.steps, self.weighting)

    def evidence(self, item_ids: np.ndarray) -> sp.csr_matrix:
        """Return the sparse (B, n_items) rule weights from each prefix's last item (empty when unknown)."""
        last = last_items(self._prefix_batch(item_ids))
        return self.rules[last]  # rows 0 and 1 of the matrix are empty

    def score(self, item_ids: np.ndarray) -> np.ndarray:
        """Return rule scores in (1, 2] for followers of the last item, popularity in [0, 0.5] otherwise."""
        return two_tier(self.evidence(item_ids), self.popularity_scores())


class MarkovChain(SequentialRules):
    """First-order Markov chain: how often each item directly followed the last item; popularity fallback.

    Score = transition count + 0.5 x popularity in [0, 1]: followers of the last item in order of count,
    ties and everything else by popularity (an unseen or OOV last item gives pure popularity).
    """

    name = "Markov"

    def __init__(self) -> None:
        super().__init__(steps=1, weighting="same")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def score(self, item_ids: np.ndarray) -> np.ndarray:
        """Return transition counts from the last item plus half the scaled popularity."""
        evidence = self.evidence(item_ids)
        out = np.repeat((0.5 * self.popularity_scores()).astype(np.float32)[None, :], evidence.shape[0], axis=0)
        add_sparse(out, evidence)
        out[:, :FIRST_ID] = 0.0
        return out
