"""Lesson 02 exercises: the references agree with the package (the wrong answers: exercise_mistakes/lesson02.py)."""

from __future__ import annotations

import numpy as np
import pytest

from sessrec_course.baselines import SessionPopular
from sessrec_course.evaluation import metrics_from_ranks, ranks_from_scores
from sessrec_course.exercises import lesson02 as ex


# ---------------------------------------------------------------- q1: ranks with the tie rule
def test_q1_reference_equals_the_evaluator_on_random_ties():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=(50, 12)).astype(np.float32)  # few distinct values: many ties
    targets = rng.integers(0, 12, size=50)
    np.testing.assert_array_equal(ex.target_ranks(scores, targets), ranks_from_scores(scores, targets))
    for case in ex.q1.cases():
        np.testing.assert_array_equal(ex.target_ranks(*case.args), ranks_from_scores(*case.args))


# ---------------------------------------------------------------- q2: NDCG@K
def test_q2_reference_equals_the_evaluator():
    for case in ex.q2.cases():
        ranks, k = case.args
        assert ex.ndcg_at_k(ranks, k) == pytest.approx(metrics_from_ranks(ranks, ks=(k,))[f"NDCG@{k}"], abs=1e-12)


# ---------------------------------------------------------------- q3: S-POP
def test_q3_reference_equals_the_package_session_popularity():
    sessions = [[2, 2, 3, 4], [2, 5, 5, 6], [3, 2], [6, 1, 4]]
    model = SessionPopular().fit(sessions, n_items=8)
    prefixes = np.array([[4, 6, 4, 0], [1, 7, 0, 0], [0, 0, 0, 0], [2, 3, 5, 6]])
    np.testing.assert_allclose(ex.spop_scores(prefixes, model.popularity), model.score(prefixes), rtol=1e-6)


