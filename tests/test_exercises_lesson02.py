"""Lesson 02 exercises: each check passes the reference, fails the stub and typical wrong answers with a hint."""

from __future__ import annotations

import numpy as np
import pytest

from sessrec_course.baselines import SessionPopular
from sessrec_course.evaluation import MISS_RANK, metrics_from_ranks, ranks_from_scores
from sessrec_course.exercises import lesson02 as ex


def _stub(*args, **kwargs):
    raise NotImplementedError


def _failed(exercise, fn, *needles: str) -> str:
    outcome = exercise.check(fn)
    assert not outcome, f"{fn.__name__} should fail {exercise.title}"
    assert outcome.message.startswith("case '") and "expected" in outcome.message and "Hint:" in outcome.message
    for needle in needles:
        assert needle in outcome.message, outcome.message
    return outcome.message


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3], ids=lambda e: e.function_name)
def test_reference_passes_and_stub_is_not_yet(exercise):
    assert exercise.check(exercise.reference), exercise.title
    outcome = exercise.check(_stub)
    assert not outcome and outcome.message.startswith("not yet")


# ---------------------------------------------------------------- q1: ranks with the tie rule
def test_q1_reference_equals_the_evaluator_on_random_ties():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=(50, 12)).astype(np.float32)  # few distinct values: many ties
    targets = rng.integers(0, 12, size=50)
    np.testing.assert_array_equal(ex.target_ranks(scores, targets), ranks_from_scores(scores, targets))
    for case in ex.q1.cases():
        np.testing.assert_array_equal(ex.target_ranks(*case.args), ranks_from_scores(*case.args))


def _zero_based(scores, targets):
    return ex.target_ranks(scores, targets) - np.where(np.asarray(targets) >= 2, 1, 0)


def _pad_oov_compete(scores, targets):  # ranks over all columns, padding and OOV included
    out = []
    for row, t in zip(scores, targets, strict=True):
        out.append(MISS_RANK if t < 2 else 1 + int((row > row[t]).sum()) + int((row[:t] == row[t]).sum()))
    return np.array(out)


def _ties_ignored(scores, targets):  # rank = 1 + strictly higher only: every tied item shares the best rank
    return np.array([MISS_RANK if t < 2 else 1 + int((row[2:] > row[t]).sum())
                     for row, t in zip(scores, targets, strict=True)])


def _oov_ranked(scores, targets):  # an OOV or padding target is ranked as if it were the first real item
    return ex.target_ranks(scores, np.maximum(targets, 2))


def test_q1_typical_wrong_answers_fail_with_the_case_and_a_hint():
    _failed(ex.q1, _zero_based, "no ties", "one too low: rank 1 is the top")
    _failed(ex.q1, _pad_oov_compete, "padding and OOV score highest", "padding and OOV must not count")
    _failed(ex.q1, _ties_ignored, "a three-way tie", "smaller id comes first")
    _failed(ex.q1, _oov_ranked, "an OOV and a padding target", "always a miss: give it MISS_RANK")


# ---------------------------------------------------------------- q2: NDCG@K
def test_q2_reference_equals_the_evaluator():
    for case in ex.q2.cases():
        ranks, k = case.args
        assert ex.ndcg_at_k(ranks, k) == pytest.approx(metrics_from_ranks(ranks, ks=(k,))[f"NDCG@{k}"], abs=1e-12)


def _hits_only(ranks, k):
    ranks = np.asarray(ranks, dtype=np.float64)
    hit = ranks <= k
    return float(np.mean(1.0 / np.log2(ranks[hit] + 1.0)))


def _log2_rank(ranks, k):
    ranks = np.asarray(ranks, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return float(np.where(ranks <= k, 1.0 / np.log2(ranks), 0.0).mean())


def _k_exclusive(ranks, k):
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.where(ranks < k, 1.0 / np.log2(ranks + 1.0), 0.0).mean())


def test_q2_typical_wrong_answers_fail_with_the_case_and_a_hint():
    _failed(ex.q2, _hits_only, "hits and misses", "averaged over hits only")
    _failed(ex.q2, _log2_rank, "a hit at the top", "log2(rank + 1)")
    _failed(ex.q2, _k_exclusive, "a hit at exactly K", "rank == K is still inside")


# ---------------------------------------------------------------- q3: S-POP
def test_q3_reference_equals_the_package_session_popularity():
    sessions = [[2, 2, 3, 4], [2, 5, 5, 6], [3, 2], [6, 1, 4]]
    model = SessionPopular().fit(sessions, n_items=8)
    prefixes = np.array([[4, 6, 4, 0], [1, 7, 0, 0], [0, 0, 0, 0], [2, 3, 5, 6]])
    np.testing.assert_allclose(ex.spop_scores(prefixes, model.popularity), model.score(prefixes), rtol=1e-6)


def _recommends_padding(item_ids, popularity):  # counts padding as an item of the session
    popularity = np.asarray(popularity, dtype=np.float64)
    scores = np.repeat(0.5 * popularity[None, :] / popularity.max(), len(item_ids), axis=0)
    for row, prefix in enumerate(item_ids):
        for item in prefix:
            scores[row, item] += 1.0
    return scores


def _no_popularity(item_ids, popularity):
    return np.round(ex.spop_scores(item_ids, popularity))


def _presence_only(item_ids, popularity):  # np.unique per row: a repeat counts once
    scores = ex.spop_scores(np.zeros_like(item_ids), popularity).astype(np.float64)
    for row, prefix in enumerate(item_ids):
        items = np.unique(prefix[prefix >= 2])
        scores[row, items] += 1.0
    return scores


def test_q3_typical_wrong_answers_fail_with_the_case_and_a_hint():
    _failed(ex.q3, _recommends_padding, "one prefix, no repeats", "padding (0) and OOV (1) get a score")
    _failed(ex.q3, _no_popularity, "one prefix, no repeats", "popularity tie-break")
    _failed(ex.q3, _presence_only, "a repeated item", "count every occurrence")


def test_hints_never_contain_the_reference_code():
    for exercise in (ex.q1, ex.q2, ex.q3):
        body = [line.strip() for line in exercise.solution_source().splitlines()[2:] if len(line.strip()) > 20]
        for text in exercise.hints + [c.hint for c in exercise.cases()]:
            assert not any(line in text for line in body), (exercise.title, text)
