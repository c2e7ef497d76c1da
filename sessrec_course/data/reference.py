"""Popularity and first-order Markov scores of a dataset (numpy/scipy): its sequential structure before any model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from sessrec_course.arrays import ranks_of


def next_item_pairs(sessions: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Return (previous item, next item) for every consecutive pair inside the sessions."""
    pairs = [np.stack([s[:-1], s[1:]]) for s in map(np.asarray, sessions) if len(s) > 1]
    prev, nxt = np.concatenate(pairs, axis=1).astype(np.int64) if pairs else np.zeros((2, 0), np.int64)
    return prev, nxt


def reference_metrics(train: Sequence[np.ndarray], test: Sequence[np.ndarray], n_items: int, k: int = 20,
                      batch_size: int = 2_048) -> dict[str, dict[str, float]]:
    """Recall@k and MRR@k of popularity and of a Markov chain (popularity fallback) on every next item of ``test``."""
    popularity = np.bincount(np.concatenate([np.asarray(s, np.int64) for s in train]), minlength=n_items)[:n_items].astype(float)
    a, b = next_item_pairs(train)
    transitions = sp.csr_matrix((np.ones(len(a)), (a, b)), shape=(n_items, n_items))
    prev, target = next_item_pairs(test)
    pop_score = popularity / (popularity.max() + 1.0)  # < 1: only breaks ties below any transition count
    ranks: dict[str, list[np.ndarray]] = {"popularity": [], "Markov": []}
    for start in range(0, len(target), batch_size):
        p, t = prev[start:start + batch_size], target[start:start + batch_size]
        base = np.broadcast_to(pop_score, (len(t), n_items)).copy()
        base[:, :2] = -np.inf
        ranks["popularity"].append(ranks_of(base, t) - 1)  # 0-based
        markov = transitions[p].toarray() + base
        ranks["Markov"].append(ranks_of(markov, t) - 1)
    out = {}
    for name, parts in ranks.items():
        r = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        hit = r < k
        out[name] = {f"Recall@{k}": float(hit.mean()) if len(r) else 0.0,
                     f"MRR@{k}": float(np.where(hit, 1.0 / (r + 1), 0.0).mean()) if len(r) else 0.0,
                     "cases": int(len(r))}
    return out
