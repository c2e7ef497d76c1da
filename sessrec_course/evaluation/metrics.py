"""Next-item metrics over the full catalogue: Recall@K (= HR@K = P@K), MRR@K, NDCG@K, coverage, popularity.

A target's rank is ``1 + #{higher score} + #{equal score, smaller id}``; Recall@K is the share of ``rank <= K``, MRR@K
and NDCG@K the means of ``1/rank`` and ``1/log2(rank + 1)`` (0 beyond K); Coverage@K is the share of real items in
some top-K list, Popularity@K their mean count over the largest. Padding and OOV targets are always a miss."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import numpy as np
from tqdm.auto import tqdm

from sessrec_course.arrays import ranks_of, to_ragged, top_k_indices
from sessrec_course.ids import FIRST_ID, OOV_ID

logger = logging.getLogger(__name__)

MISS_RANK = np.iinfo(np.int64).max  # the rank of a target never recommended (padding, OOV): beyond any K


def _check_ks(ks: Iterable[int] | int) -> list[int]:
    ks = [ks] if isinstance(ks, int | np.integer) else list(ks)
    if not ks:
        raise ValueError("ks is empty: give at least one cut-off K, e.g. ks=(10, 20)")
    for k in ks:
        if int(k) != k or k < 1:
            raise ValueError(f"cut-off K must be a positive integer, got {k!r}")
    return [int(k) for k in ks]


def _check_scores(scores: np.ndarray, n_rows: int | None = None, n_items: int | None = None) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D array (batch, n_items), got shape {scores.shape}")
    if n_rows is not None and scores.shape[0] != n_rows:
        raise ValueError(f"scores has {scores.shape[0]} rows but the batch has {n_rows} cases")
    if n_items is not None and scores.shape[1] != n_items:
        raise ValueError(f"scores has {scores.shape[1]} columns, expected n_items={n_items} (incl. pad and OOV)")
    if scores.shape[1] <= FIRST_ID:
        raise ValueError(f"scores has {scores.shape[1]} columns: no real item (ids start at {FIRST_ID})")
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float32)
    if np.isnan(scores).any():
        row = int(np.argwhere(np.isnan(scores))[0, 0])
        raise ValueError(f"scores contain NaN (first in batch row {row}); a recommender must return numbers")
    return scores


def ranks_from_scores(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based rank of each target in its ``(B, n_items)`` score row, ties to the lower id (MISS_RANK for pad/OOV)."""
    scores = _check_scores(scores)
    targets = np.asarray(targets)
    if targets.ndim != 1:
        raise ValueError(f"targets must be a 1-D array of item ids, got shape {targets.shape}")
    if not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must hold integer item ids, got dtype {targets.dtype}")
    targets = targets.astype(np.int64)
    if (bad := (targets < 0) | (targets >= scores.shape[1])).any():
        raise ValueError(f"target item id {int(targets[bad][0])} is outside the catalogue 0..{scores.shape[1] - 1}; "
                         f"map unknown items to OOV ({OOV_ID}) before evaluating")
    if scores.shape[0] != targets.shape[0]:
        raise ValueError(f"scores has {scores.shape[0]} rows but there are {targets.shape[0]} targets")
    valid = targets >= FIRST_ID
    ranks = ranks_of(scores[:, FIRST_ID:], np.where(valid, targets, FIRST_ID) - FIRST_ID)
    return np.where(valid, ranks, MISS_RANK)


def top_k_from_scores(scores: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` encoded ids per row, best first, pad/OOV excluded, ties to the lower id (as :func:`ranks_from_scores`)."""
    scores = _check_scores(scores)
    k = _check_ks(k)[0]
    real = scores[:, FIRST_ID:]
    return top_k_indices(real, min(k, real.shape[1])) + FIRST_ID


def metrics_from_ranks(ranks: np.ndarray, ks: Iterable[int] | int = (10, 20)) -> dict[str, float]:
    """``Recall@K``, ``MRR@K`` and ``NDCG@K`` for each K from 1-based ranks (misses: rank > K)."""
    ranks = np.asarray(ranks)
    if ranks.ndim != 1 or ranks.size == 0:
        raise ValueError(f"ranks must be a non-empty 1-D array, got shape {ranks.shape}")
    if (ranks < 1).any():
        raise ValueError(f"ranks are 1-based; got {int(ranks.min())}")
    ranks_f = ranks.astype(np.float64)
    out: dict[str, float] = {}
    for k in _check_ks(ks):
        hit = ranks <= k
        out[f"Recall@{k}"] = float(hit.mean())
        out[f"MRR@{k}"] = float(np.where(hit, 1.0 / ranks_f, 0.0).mean())
        out[f"NDCG@{k}"] = float(np.where(hit, 1.0 / np.log2(np.minimum(ranks_f, 2**52) + 1.0), 0.0).mean())
    return out


def as_score_fn(recommender) -> Callable[[np.ndarray], np.ndarray]:
    """The scoring function of ``recommender``: its ``score`` method, or the callable itself."""
    score = recommender.score if callable(getattr(recommender, "score", None)) else recommender
    if not callable(score):
        raise TypeError(f"{type(recommender).__name__} is not a recommender: expected an object with "
                        "score(item_ids (B, L) int64) -> (B, n_items) float32, or such a callable")
    return score


def _scored_batches(recommender, prefixes, targets, batch_size, n_items, progress, desc, features):
    """Check the cases, then yield ``(start, stop, scores)`` a batch at a time (never the whole score matrix)."""
    prefixes = np.asarray(prefixes)
    if prefixes.ndim != 2:
        raise ValueError(f"prefixes must be a right-padded 2-D id matrix (cases, L), got shape {prefixes.shape}")
    if not np.issubdtype(prefixes.dtype, np.integer):
        raise ValueError(f"prefixes must hold integer item ids, got dtype {prefixes.dtype}")
    targets = np.asarray(targets)
    if targets.ndim != 1 or len(targets) != len(prefixes):
        raise ValueError(f"{len(prefixes)} prefixes but targets has shape {targets.shape}")
    if len(targets) == 0:
        raise ValueError("nothing to evaluate: there are no test cases")
    features = None if features is None else np.asarray(features)
    if features is not None and (features.ndim != 3 or features.shape[:2] != prefixes.shape):
        raise ValueError(f"features must hold one vector per prefix position, shape ({prefixes.shape[0]}, "
                         f"{prefixes.shape[1]}, F), got {features.shape}")
    prefixes = prefixes.astype(np.int64, copy=False)
    score = as_score_fn(recommender)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    starts = range(0, len(targets), batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", disable=not progress or len(starts) < 2, leave=False):
        stop = min(start + batch_size, len(targets))
        batch = (prefixes[start:stop],) if features is None else (prefixes[start:stop], features[start:stop])
        yield start, stop, _check_scores(score(*batch), stop - start, n_items)


def compute_ranks(recommender, prefixes: np.ndarray, targets: np.ndarray, batch_size: int = 512,
                  progress: bool = True, desc: str = "ranking") -> np.ndarray:
    """Each target's 1-based rank, scored batch by batch (feeds :func:`metrics_from_ranks` for any K)."""
    targets = np.asarray(targets)
    ranks = np.empty(len(targets), dtype=np.int64)
    for start, stop, scores in _scored_batches(recommender, prefixes, targets, batch_size, None, progress, desc, None):
        ranks[start:stop] = ranks_from_scores(scores, targets[start:stop])
    return ranks


def evaluate(recommender, prefixes: np.ndarray, targets: np.ndarray, ks: Iterable[int] | int = (10, 20),
             batch_size: int = 512, item_popularity: np.ndarray | None = None, n_items: int | None = None,
             progress: bool = True, desc: str = "evaluating", features: np.ndarray | None = None) -> dict[str, float]:
    """Recall/MRR/NDCG/Coverage@K (+ Popularity@K given ``item_popularity``) of ``recommender`` on the cases;
    ``recommender``: see :func:`as_score_fn`; ``features`` ``(cases, L, F)`` go to it as a second argument."""
    ks = _check_ks(ks)
    targets = np.asarray(targets)
    ranks = np.empty(len(targets), dtype=np.int64)
    seen: dict[int, np.ndarray] = {}
    popularity_sum = dict.fromkeys(ks, 0.0)
    pop_norm = None
    for start, stop, scores in _scored_batches(recommender, prefixes, targets, batch_size, n_items, progress, desc,
                                               features):
        n_items = scores.shape[1]
        if not seen:
            seen = {k: np.zeros(n_items, dtype=bool) for k in ks}
            if item_popularity is not None:
                pop_norm = np.asarray(item_popularity, dtype=np.float64)
                if pop_norm.shape != (n_items,):
                    raise ValueError(f"item_popularity must have one count per encoded id, shape ({n_items},), "
                                     f"got {pop_norm.shape}")
                pop_norm = pop_norm / pop_norm.max() if pop_norm.max() > 0 else pop_norm
        ranks[start:stop] = ranks_from_scores(scores, targets[start:stop])
        top = top_k_from_scores(scores, max(ks))
        for k in ks:
            seen[k][top[:, :k]] = True
            if pop_norm is not None:
                popularity_sum[k] += float(pop_norm[top[:, :k]].mean(axis=1).sum())
    out = metrics_from_ranks(ranks, ks)
    result: dict[str, float] = {}
    for k in ks:
        result.update({f"{name}@{k}": out[f"{name}@{k}"] for name in ("Recall", "MRR", "NDCG")})
        result[f"Coverage@{k}"] = float(seen[k][FIRST_ID:].sum() / (n_items - FIRST_ID))
        if pop_norm is not None:
            result[f"Popularity@{k}"] = popularity_sum[k] / len(targets)
    logger.info("evaluated %d cases: %s", len(targets), {k: round(v, 4) for k, v in result.items()})
    return result


def item_counts(sessions, n_items: int) -> np.ndarray:
    """Return how often each encoded id occurs in ``sessions`` (int64, length ``n_items``)."""
    values, _ = to_ragged(sessions)
    if values.size and (values.min() < 0 or values.max() >= n_items):
        raise ValueError(f"session item ids must lie in 0..{n_items - 1}, found {values.min()}..{values.max()}")
    return np.bincount(values, minlength=n_items).astype(np.int64)
