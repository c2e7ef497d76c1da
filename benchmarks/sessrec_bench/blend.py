"""The recipe's last step: the trained model blended with the classic baselines, weights chosen on held-out sessions.

Each part gives a row per prefix scaled to a top of 1: the model its softmax, a baseline with ``evidence`` (V-SKNN,
SR, Markov) that evidence (none: all zero), so no part's sharpness outweighs the others. The blend is
``sum_m w_m s_m`` with the weights on a simplex grid, chosen where P@20 + MRR@20 is highest on held-out training
sessions the early stopping did not read (the test file never picks them). The model alone is on the grid, so the
blend falls back to it wherever the baselines add nothing there. :class:`Ensemble` averages models from several
seeds into the one model part.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np

from sessrec_course.evaluation import metrics_from_ranks, ranks_from_scores
from sessrec_course.ids import FIRST_ID

logger = logging.getLogger(__name__)

def scaled_scores(part, item_ids: np.ndarray) -> np.ndarray:
    """One part's ``(B, n_items)`` float32 rows over their maximum: the model's softmax or a baseline's evidence."""
    if hasattr(part, "evidence"):
        evidence = part.evidence(item_ids).toarray().astype(np.float32)
        top = evidence.max(axis=1, keepdims=True)
        return np.divide(evidence, top, out=np.zeros_like(evidence), where=top > 0)
    scores = np.asarray(part.score(item_ids), dtype=np.float32)
    scores[:, :FIRST_ID] = -np.inf
    return np.exp(scores - scores.max(axis=1, keepdims=True))


class Ensemble:
    """Models trained from different seeds as one Recommender: the log of the mean of their softmax rows."""

    def __init__(self, members: list) -> None:
        self.members = list(members)

    def score(self, item_ids: np.ndarray) -> np.ndarray:
        """Return ``log(mean_m softmax(s_m))`` ``(B, n_items)`` of a right-padded prefix batch."""
        from scipy.special import log_softmax, logsumexp

        logs = [log_softmax(np.asarray(m.score(item_ids), dtype=np.float64), axis=1) for m in self.members]
        return (logsumexp(logs, axis=0) - np.log(len(logs))).astype(np.float32)


class Blend:
    """A Recommender scoring ``sum_m w_m s_m``: ``parts`` the model and fitted baselines, ``weights`` one each."""

    def __init__(self, parts: list, weights: tuple[float, ...]) -> None:
        if len(parts) != len(weights):
            raise ValueError(f"{len(parts)} parts but {len(weights)} weights")
        self.parts, self.weights = list(parts), tuple(float(w) for w in weights)

    def score(self, item_ids: np.ndarray) -> np.ndarray:
        """Return the blended ``(B, n_items)`` scores of a right-padded prefix batch."""
        return mix(self.weights, [scaled_scores(p, item_ids) if w > 0 else None
                                  for p, w in zip(self.parts, self.weights, strict=True)])


def mix(weights: tuple[float, ...], scaled: list) -> np.ndarray:
    """``sum_m w_m s_m`` over the parts with a weight (the others' rows may be None)."""
    return sum(w * s for w, s in zip(weights, scaled, strict=True) if w > 0)


def alone(n: int) -> tuple[float, ...]:
    """The grid point of the model (the first of ``n`` parts) alone."""
    return (1.0,) + (0.0,) * (n - 1)


def simplex(n: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector of ``n`` parts on a grid of ``step`` that sums to 1 and gives the model (first) some."""
    units = round(1 / step)
    grid = [c for c in itertools.product(range(units + 1), repeat=n) if sum(c) == units and c[0] > 0]
    return [tuple(u / units for u in c) for c in grid]


def choose_weights(parts: list, prefixes: np.ndarray, targets: np.ndarray, step: float = 0.1,
                   max_cases: int = 3000, batch_size: int = 500, seed: int = 42) -> tuple[tuple[float, ...], dict]:
    """The simplex weights with the best P@20 + MRR@20 on the held-out cases (at most ``max_cases``, sampled).

    Returns the weights and ``{weights: (P@20, MRR@20)}`` in % for every grid point.
    """
    if len(targets) > max_cases:
        keep = np.sort(np.random.default_rng(seed).choice(len(targets), max_cases, replace=False))
        prefixes, targets = prefixes[keep], targets[keep]
    grid = simplex(len(parts), step)
    ranks = np.empty((len(grid), len(targets)), dtype=np.int64)
    for start in range(0, len(targets), batch_size):
        stop = min(start + batch_size, len(targets))
        scaled = [scaled_scores(part, prefixes[start:stop]) for part in parts]
        for g, weights in enumerate(grid):
            ranks[g, start:stop] = ranks_from_scores(mix(weights, scaled), targets[start:stop])
    table = {}
    for weights, row in zip(grid, ranks, strict=True):
        m = metrics_from_ranks(row, 20)
        table[weights] = (100 * m["Recall@20"], 100 * m["MRR@20"])
    best = max(table, key=lambda w: (sum(table[w]), w[0]))  # ties: more weight on the model
    logger.info("blend weights %s: P@20 %.2f MRR@20 %.2f on %d held-out cases (model alone %.2f / %.2f)",
                best, *table[best], len(targets), *table[alone(len(parts))])
    return best, table


def evaluate_blend(parts: list, weights: tuple[float, ...], prefixes: np.ndarray, targets: np.ndarray,
                   ks: tuple[int, ...] = (10, 20), batch_size: int = 500,
                   progress: bool = False) -> tuple[dict, dict]:
    """Metrics of the model (the first part) alone and of the blend, from one scoring pass over the test cases."""
    from tqdm.auto import tqdm

    alone, blended = np.empty(len(targets), dtype=np.int64), np.empty(len(targets), dtype=np.int64)
    starts = range(0, len(targets), batch_size)
    for start in tqdm(starts, desc="blend", unit="batch", disable=not progress, leave=False):
        stop = min(start + batch_size, len(targets))
        scaled = [scaled_scores(part, prefixes[start:stop]) if w > 0 or i == 0 else None
                  for i, (part, w) in enumerate(zip(parts, weights, strict=True))]
        alone[start:stop] = ranks_from_scores(scaled[0], targets[start:stop])
        blended[start:stop] = ranks_from_scores(mix(weights, scaled), targets[start:stop])
    return metrics_from_ranks(alone, ks), metrics_from_ranks(blended, ks)
