"""Validation and scoring shared by both frameworks: held-out cases, the validator, the numpy scoring adapter.

A framework model becomes a numpy Recommender (``score(item_ids) -> scores``, the protocol of
:mod:`sessrec_course.evaluation`) through a :class:`BatchScorer` subclass that only says how to score one
batch (``torch_recommender.TorchRecommender``, ``keras_trainer.KerasRecommender``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sessrec_course.etl.workflow import ITEM_COLUMN
from sessrec_course.profiles import Profile
from sessrec_course.training.common import read_schema, resolve_artifacts


class BatchScorer:
    """``score(item_ids (B, L) int64 numpy) -> (B, item_cardinality) float32 numpy`` in batches of ``batch_size``.

    Subclasses implement :meth:`score_batch` (and may wrap the loop in :meth:`scoring`, e.g. eval mode).
    """

    def __init__(self, model, batch_size: int = 1024, name: str | None = None) -> None:
        self.model, self.batch_size = model, batch_size
        self.name = name or type(model).__name__

    def score_batch(self, item_ids: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """Scores of one batch of right-padded ids, with their per-click features when given (framework specific)."""
        raise NotImplementedError

    def scoring(self) -> contextlib.AbstractContextManager:
        """Context around the batch loop (nothing by default)."""
        return contextlib.nullcontext()

    def score(self, item_ids: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """Return float32 scores ``(B, item_cardinality)`` for right-padded ``item_ids`` (+ features ``(B, L, F)``)."""
        item_ids = np.asarray(item_ids)
        if item_ids.ndim != 2:
            raise ValueError(f"item_ids must be a 2-D (batch, length) matrix, got shape {item_ids.shape}")
        if features is not None and np.shape(features)[:2] != item_ids.shape:
            raise ValueError(f"features of shape {np.shape(features)} do not match item_ids {item_ids.shape}")

        def batch(start: int) -> np.ndarray:
            ids = item_ids[start : start + self.batch_size]
            if features is None:  # id-only scorers (the Keras ones) take the ids alone
                return self.score_batch(ids)
            return self.score_batch(ids, features[start : start + self.batch_size])

        with self.scoring():
            out = [batch(start) for start in range(0, len(item_ids), self.batch_size)]
        if not out:
            return np.zeros((0, self.model.n_items), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    __call__ = score


def make_validator(prefixes: np.ndarray, targets: np.ndarray, recommender: Callable[[object], BatchScorer],
                   ks=(20,), features: np.ndarray | None = None) -> Callable[[object], dict[str, float]]:
    """Validator for a trainer's ``fit``: Recall/MRR@K of ``recommender(model)`` on fixed cases (``evaluation.evaluate``).

    The adapter of the last model is reused between epochs (a Keras adapter traces its graph once).
    ``features``: the cases' per-click features, for models that take them.
    """
    from sessrec_course.evaluation import evaluate

    last: list[BatchScorer] = []

    def validate(model) -> dict[str, float]:
        if not last or last[0].model is not model:
            last[:] = [recommender(model)]
        metrics = evaluate(last[0], prefixes, targets, ks=ks, progress=False, features=features)
        return {k: v for k, v in metrics.items() if k.startswith(("Recall", "MRR"))}

    return validate


def validation_cases(path: Path, max_length: int, max_sessions: int | None,
                     features: bool = False) -> tuple[np.ndarray, ...]:
    """All-prefix (prefix → next item) cases of the first ``max_sessions`` sessions of a split.

    With ``features`` the cases' time features (``etl.features``) come third: ``(prefixes, targets, features)``.
    """
    from sessrec_course.etl.features import time_feature_values
    from sessrec_course.evaluation import all_prefixes

    if not features:
        column = pq.read_table(path, columns=[ITEM_COLUMN]).column(ITEM_COLUMN)
        if max_sessions is not None:
            column = column.slice(0, max_sessions)
        return all_prefixes(column, max_length=max_length)
    table = pq.read_table(path)
    if max_sessions is not None:
        table = table.slice(0, max_sessions)
    return all_prefixes(table.column(ITEM_COLUMN), max_length=max_length,
                        features=time_feature_values(table, path))


def test_cases(artifacts, profile: Profile, split: str = "test", features: bool = False) -> tuple[np.ndarray, ...]:
    """All-prefix (prefix → next item) cases of a split, capped at ``profile.eval_max_sessions`` sessions.

    With ``features`` the cases' time features come third (see :func:`validation_cases`).
    """
    paths = resolve_artifacts(artifacts)
    max_length = int(read_schema(paths.schema)["max_length"])
    return validation_cases(getattr(paths, split), max_length, profile.eval_max_sessions, features=features)



def baseline_results(artifacts, profile: Profile, names=("POP", "Markov", "SR")) -> dict[str, dict[str, float]]:
    """Fit the baselines of notebook 02 on the training split and evaluate them on :func:`test_cases`."""
    from sessrec_course.baselines import default_baselines
    from sessrec_course.evaluation import evaluate

    paths = resolve_artifacts(artifacts)
    n_items = int(read_schema(paths.schema)["item_cardinality"])
    train = pq.read_table(paths.train, columns=[ITEM_COLUMN]).column(ITEM_COLUMN)
    prefixes, targets = test_cases(paths, profile)
    available = default_baselines()
    results = {}
    for name in names:
        model = available[name].fit(train, n_items)
        results[name] = evaluate(model, prefixes, targets, ks=(20,), progress=False, desc=name)
    return results

