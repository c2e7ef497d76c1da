"""Validation and scoring shared by both frameworks: held-out cases, the validator, the baselines, and
:class:`BatchScorer`, the numpy Recommender a framework model becomes by saying how it scores one batch."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sessrec_course.etl.workflow import ITEM_COLUMN
from sessrec_course.profiles import Profile
from sessrec_course.training.artifacts import read_schema, resolve_artifacts


class BatchScorer:
    """``score(item_ids (B, L) int64) -> (B, item_cardinality) float32`` (numpy), by :meth:`score_batch` of batches."""

    def __init__(self, model, batch_size: int = 1024, name: str | None = None) -> None:
        self.model, self.batch_size = model, batch_size
        self.name = name or type(model).__name__

    def score_batch(self, item_ids: np.ndarray) -> np.ndarray:
        """Scores of one batch of right-padded ids (framework specific)."""
        raise NotImplementedError

    def scoring(self) -> contextlib.AbstractContextManager:
        """Context around the batch loop (nothing by default)."""
        return contextlib.nullcontext()

    def score(self, item_ids: np.ndarray) -> np.ndarray:
        """Return float32 scores ``(B, item_cardinality)`` for right-padded ``item_ids``."""
        item_ids = np.asarray(item_ids)
        if item_ids.ndim != 2:
            raise ValueError(f"item_ids must be a 2-D (batch, length) matrix, got shape {item_ids.shape}")
        with self.scoring():
            out = [self.score_batch(item_ids[start : start + self.batch_size])
                   for start in range(0, len(item_ids), self.batch_size)]
        if not out:
            return np.zeros((0, self.model.n_items), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    __call__ = score


def make_validator(prefixes: np.ndarray, targets: np.ndarray, recommender: Callable[[object], BatchScorer],
                   ks=(20,)) -> Callable[[object], dict[str, float]]:
    """Validator for a trainer: Recall/MRR@K of ``recommender(model)`` on fixed cases, one adapter per model."""
    from sessrec_course.evaluation import evaluate

    last: list[BatchScorer] = []

    def validate(model) -> dict[str, float]:
        if not last or last[0].model is not model:
            last[:] = [recommender(model)]
        metrics = evaluate(last[0], prefixes, targets, ks=ks, progress=False)
        return {k: v for k, v in metrics.items() if k.startswith(("Recall", "MRR"))}

    return validate


def validation_cases(path: Path, max_length: int, max_sessions: int | None) -> tuple[np.ndarray, np.ndarray]:
    """All-prefix (prefix → next item) cases of the first ``max_sessions`` sessions of a split."""
    from sessrec_course.evaluation import all_prefixes

    column = pq.read_table(path, columns=[ITEM_COLUMN]).column(ITEM_COLUMN)
    if max_sessions is not None:
        column = column.slice(0, max_sessions)
    return all_prefixes(column, max_length=max_length)


def test_cases(artifacts, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """All-prefix (prefix → next item) cases of the test split, capped at ``profile.eval_max_sessions`` sessions."""
    paths = resolve_artifacts(artifacts)
    return validation_cases(paths.test, int(read_schema(paths.schema)["max_length"]), profile.eval_max_sessions)


def run_baselines(train_sessions, n_items: int, prefixes: np.ndarray, targets: np.ndarray,
                  names: Sequence[str] | None = None, ks=(20,), progress: bool = False,
                  seconds: dict[str, tuple[float, float]] | None = None) -> dict[str, dict[str, float]]:
    """Fit notebook 02's baselines (``names``, default all) and evaluate them; ``seconds`` gets their (fit, eval) s."""
    from sessrec_course.baselines import default_baselines
    from sessrec_course.evaluation import evaluate

    available = default_baselines()
    results = {}
    for name in available if names is None else names:
        start = time.perf_counter()
        model = available[name].fit(train_sessions, n_items)
        fitted = time.perf_counter()
        results[name] = evaluate(model, prefixes, targets, ks=ks, progress=progress, desc=name)
        if seconds is not None:
            seconds[name] = (fitted - start, time.perf_counter() - fitted)
    return results


def baseline_results(artifacts, profile: Profile, names=("POP", "Markov", "SR")) -> dict[str, dict[str, float]]:
    """:func:`run_baselines` on the ETL output: fitted on its training split, evaluated on :func:`test_cases`."""
    paths = resolve_artifacts(artifacts)
    n_items = int(read_schema(paths.schema)["item_cardinality"])
    train = pq.read_table(paths.train, columns=[ITEM_COLUMN]).column(ITEM_COLUMN)
    return run_baselines(train, n_items, *test_cases(paths, profile), names=names)
