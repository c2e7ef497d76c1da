"""Next-item metrics over the full catalogue: Recall@K (= HR@K = P@K), MRR@K, NDCG@K, coverage, popularity.

Definitions (one target item per test case; ``rank`` is its 1-based position in the ranked catalogue):

- ``Recall@K`` = ``HR@K``: share of cases whose target is in the top K. With one target per case this is
  the "P@20" of the SR-GNN / NARM papers and the "HitRate" of session-rec.
- ``MRR@K``: mean of ``1 / rank`` over cases, counting 0 when ``rank > K``.
- ``NDCG@K``: mean of ``1 / log2(rank + 1)`` over cases, 0 when ``rank > K``.
- ``Coverage@K``: share of the recommendable catalogue (ids ``2 .. n_items - 1``) that appears in at least
  one top-K list.
- ``Popularity@K``: mean over cases of the average popularity of the K recommended items, each item's
  popularity being its training count divided by the largest count (session-rec's definition); only
  reported when item popularity is given.

Ranking rules, the same for every model: padding (0) and OOV (1) are never recommended; ties are broken by
lower item id first, so ``rank = 1 + #{items with a strictly higher score}
+ #{items with an equal score and a smaller id}``; a target that is OOV (1) or padding (0) is always a
miss (:data:`MISS_RANK`); K larger than the catalogue simply means every list holds the whole catalogue.
Scores are produced and consumed batch by batch, so the full (cases x items) matrix never sits in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from tqdm.auto import tqdm

from sessrec_course.arrays import ranks_of, to_ragged, top_k_indices
from sessrec_course.ids import FIRST_ID, OOV_ID

logger = logging.getLogger(__name__)

#: Rank given to a target that can never be recommended (padding, OOV): larger than any K.
MISS_RANK = np.iinfo(np.int64).max

ScoreFn = Callable[[np.ndarray], np.ndarray]


def metric_names(ks: Iterable[int], popularity: bool = False) -> list[str]:
    """Return the metric keys :func:`evaluate` reports for ``ks``, in a stable order."""
    names = []
    for k in _check_ks(ks):
        names += [f"Recall@{k}", f"MRR@{k}", f"NDCG@{k}", f"Coverage@{k}"]
        if popularity:
            names.append(f"Popularity@{k}")
    return names


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


def _check_targets(targets: np.ndarray, n_items: int) -> np.ndarray:
    targets = np.asarray(targets)
    if targets.ndim != 1:
        raise ValueError(f"targets must be a 1-D array of item ids, got shape {targets.shape}")
    if not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must hold integer item ids, got dtype {targets.dtype}")
    targets = targets.astype(np.int64)
    bad = (targets < 0) | (targets >= n_items)
    if bad.any():
        raise ValueError(
            f"target item id {int(targets[bad][0])} is outside the catalogue 0..{n_items - 1}; "
            f"map unknown items to OOV ({OOV_ID}) before evaluating"
        )
    return targets


def ranks_from_scores(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Return the 1-based rank of each target in its score row (int64; :data:`MISS_RANK` for pad/OOV).

    ``scores`` is (B, n_items) over encoded ids; columns 0 and 1 (padding, OOV) are ignored. Ties are
    broken by smaller item id first.
    """
    scores = _check_scores(scores)
    targets = _check_targets(targets, scores.shape[1])
    if scores.shape[0] != targets.shape[0]:
        raise ValueError(f"scores has {scores.shape[0]} rows but there are {targets.shape[0]} targets")
    valid = targets >= FIRST_ID
    safe_targets = np.where(valid, targets, FIRST_ID)
    ranks = ranks_of(scores[:, FIRST_ID:], safe_targets - FIRST_ID)
    return np.where(valid, ranks, MISS_RANK)


def top_k_from_scores(scores: np.ndarray, k: int) -> np.ndarray:
    """Return the top-``k`` encoded item ids per row, best first (int64, (B, min(k, n_real_items))).

    Padding and OOV are excluded; ties go to the smaller id, exactly as in :func:`ranks_from_scores`.
    """
    scores = _check_scores(scores)
    k = _check_ks(k)[0]
    real = scores[:, FIRST_ID:]
    return top_k_indices(real, min(k, real.shape[1])) + FIRST_ID


def metrics_from_ranks(ranks: np.ndarray, ks: Iterable[int] | int = (10, 20)) -> dict[str, float]:
    """Return ``Recall@K``, ``MRR@K`` and ``NDCG@K`` for each K from 1-based ranks (misses: rank > K)."""
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


def ranks_from_lists(lists: Sequence[Sequence[int]], targets: Sequence[int]) -> np.ndarray:
    """Return the 1-based rank of each target inside its given recommendation list (:data:`MISS_RANK` if absent).

    For lists produced elsewhere (e.g. the golden session-rec top-50 files): ids may be raw, nothing is
    masked, and the first occurrence counts.
    """
    if len(lists) != len(targets):
        raise ValueError(f"{len(lists)} recommendation lists but {len(targets)} targets")
    ranks = np.full(len(targets), MISS_RANK, dtype=np.int64)
    for i, (recs, target) in enumerate(zip(lists, targets, strict=True)):
        for position, item in enumerate(recs):
            if item == target:
                ranks[i] = position + 1
                break
    return ranks


def metrics_from_lists(
    lists: Sequence[Sequence[int]], targets: Sequence[int], ks: Iterable[int] | int = (20,)
) -> dict[str, float]:
    """Return Recall/MRR/NDCG@K of given top-k recommendation lists against their targets."""
    ks = _check_ks(ks)
    return metrics_from_ranks(ranks_from_lists(lists, targets), ks)


def as_score_fn(recommender) -> ScoreFn:
    """Return the scoring function of ``recommender``: its ``score`` method, or the callable itself."""
    if hasattr(recommender, "score") and callable(recommender.score):
        return recommender.score
    if callable(recommender):
        return recommender
    raise TypeError(
        f"{type(recommender).__name__} is not a recommender: expected an object with "
        "score(item_ids (B, L) int64) -> (B, n_items) float32, or such a callable"
    )


def _check_prefixes(prefixes: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    return prefixes.astype(np.int64, copy=False), targets


def _check_features(features: np.ndarray | None, prefixes: np.ndarray) -> np.ndarray | None:
    """Per-click features aligned with ``prefixes``: ``(cases, L, F)``, or None."""
    if features is None:
        return None
    features = np.asarray(features)
    if features.ndim != 3 or features.shape[:2] != prefixes.shape:
        raise ValueError(f"features must hold one vector per prefix position, shape ({prefixes.shape[0]}, "
                         f"{prefixes.shape[1]}, F), got {features.shape}")
    return features


def _score_batch(score: ScoreFn, prefixes: np.ndarray, features: np.ndarray | None, start: int, stop: int):
    """``score(prefixes[start:stop])``, with the same rows of ``features`` as a second argument when given."""
    if features is None:
        return score(prefixes[start:stop])
    return score(prefixes[start:stop], features[start:stop])


def _batches(n: int, batch_size: int, progress: bool, desc: str):
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    starts = range(0, n, batch_size)
    return tqdm(starts, desc=desc, unit="batch", disable=not progress or len(starts) < 2, leave=False)


def compute_ranks(
    recommender,
    prefixes: np.ndarray,
    targets: np.ndarray,
    batch_size: int = 512,
    n_items: int | None = None,
    progress: bool = True,
    desc: str = "ranking",
    features: np.ndarray | None = None,
) -> np.ndarray:
    """Score ``prefixes`` batch by batch with ``recommender`` and return each target's 1-based rank.

    The ranks feed :func:`metrics_from_ranks` for any K at no further cost (curves for K = 1..50).
    ``features``: as in :func:`evaluate`.
    """
    prefixes, targets = _check_prefixes(prefixes, targets)
    features = _check_features(features, prefixes)
    score = as_score_fn(recommender)
    ranks = np.empty(len(targets), dtype=np.int64)
    for start in _batches(len(targets), batch_size, progress, desc):
        stop = start + batch_size
        scores = _check_scores(_score_batch(score, prefixes, features, start, stop),
                               min(batch_size, len(targets) - start), n_items)
        ranks[start:stop] = ranks_from_scores(scores, targets[start:stop])
    return ranks


def evaluate(
    recommender,
    prefixes: np.ndarray,
    targets: np.ndarray,
    ks: Iterable[int] | int = (10, 20),
    batch_size: int = 512,
    item_popularity: np.ndarray | None = None,
    n_items: int | None = None,
    progress: bool = True,
    desc: str = "evaluating",
    features: np.ndarray | None = None,
) -> dict[str, float]:
    """Evaluate a recommender on (prefix -> target) cases; return ``{"Recall@20": ..., "MRR@20": ...}``.

    ``recommender`` has ``score(item_ids) -> (B, n_items)`` (the protocol in docs/design.md) or is such a
    callable. ``prefixes`` is the right-padded int64 (cases, L) matrix and ``targets`` the encoded next
    items (see :mod:`sessrec_course.evaluation.protocols`). Keys per K: ``Recall@K`` (= HR@K = P@K),
    ``MRR@K``, ``NDCG@K``, ``Coverage@K`` and, when ``item_popularity`` (training counts per encoded id)
    is given, ``Popularity@K``. Batches of ``batch_size`` cases are scored, ranked and dropped.
    ``features``: optional per-click features ``(cases, L, F)`` aligned with ``prefixes`` (``all_prefixes(...,
    features=...)`` slices them); when given, each batch is scored as ``score(prefixes, features)``.
    """
    ks = _check_ks(ks)
    prefixes, targets = _check_prefixes(prefixes, targets)
    features = _check_features(features, prefixes)
    score = as_score_fn(recommender)
    max_k = max(ks)
    ranks = np.empty(len(targets), dtype=np.int64)
    seen: dict[int, np.ndarray] = {}
    popularity_sum = dict.fromkeys(ks, 0.0)
    pop_norm = None
    for start in _batches(len(targets), batch_size, progress, desc):
        stop = start + batch_size
        scores = _check_scores(_score_batch(score, prefixes, features, start, stop),
                               min(batch_size, len(targets) - start), n_items)
        n_items = scores.shape[1]
        if not seen:
            seen = {k: np.zeros(n_items, dtype=bool) for k in ks}
            if item_popularity is not None:
                pop_norm = _normalised_popularity(item_popularity, n_items)
        ranks[start:stop] = ranks_from_scores(scores, targets[start:stop])
        top = top_k_from_scores(scores, max_k)
        for k in ks:
            seen[k][top[:, :k]] = True
            if pop_norm is not None:
                popularity_sum[k] += float(pop_norm[top[:, :k]].mean(axis=1).sum())
    out = metrics_from_ranks(ranks, ks)
    n_real = n_items - FIRST_ID
    result: dict[str, float] = {}
    for k in ks:
        result[f"Recall@{k}"] = out[f"Recall@{k}"]
        result[f"MRR@{k}"] = out[f"MRR@{k}"]
        result[f"NDCG@{k}"] = out[f"NDCG@{k}"]
        result[f"Coverage@{k}"] = float(seen[k][FIRST_ID:].sum() / n_real)
        if pop_norm is not None:
            result[f"Popularity@{k}"] = popularity_sum[k] / len(targets)
    logger.info("evaluated %d cases: %s", len(targets), {k: round(v, 4) for k, v in result.items()})
    return result


def _normalised_popularity(item_popularity: np.ndarray, n_items: int) -> np.ndarray:
    pop = np.asarray(item_popularity, dtype=np.float64)
    if pop.shape != (n_items,):
        raise ValueError(f"item_popularity must have one count per encoded id, shape ({n_items},), got {pop.shape}")
    top = pop.max()
    return pop / top if top > 0 else pop


def item_counts(sessions, n_items: int) -> np.ndarray:
    """Return how often each encoded id occurs in ``sessions`` (int64, length ``n_items``)."""
    values, _ = to_ragged(sessions)
    if values.size and (values.min() < 0 or values.max() >= n_items):
        raise ValueError(f"session item ids must lie in 0..{n_items - 1}, found {values.min()}..{values.max()}")
    return np.bincount(values, minlength=n_items).astype(np.int64)
