"""The recipe's blend of the model with baselines: scaling, the weight grid, the choice on held-out cases."""

from __future__ import annotations

import numpy as np
import pytest
from sessrec_bench.blend import Blend, Ensemble, choose_weights, evaluate_blend, scaled_scores, simplex

from sessrec_course.baselines import VSKNN, SequentialRules
from sessrec_course.evaluation import evaluate

N_ITEMS = 32  # ids 2..31 are items
NOISE = np.random.default_rng(0).normal(size=(N_ITEMS, N_ITEMS)).astype(np.float32)


class Fixed:
    """A model whose scores favour one item per prefix: ``answer(last item)`` (an array over ids)."""

    def __init__(self, answer: np.ndarray, sharpness: float = 5.0) -> None:
        self.answer, self.sharpness = answer, sharpness

    def score(self, item_ids: np.ndarray) -> np.ndarray:
        last = item_ids[np.arange(len(item_ids)), (item_ids > 0).sum(axis=1) - 1]
        out = NOISE[last].copy()  # the same scores for a prefix in any batch
        out[np.arange(len(item_ids)), self.answer[last]] += self.sharpness
        return out


def _ring(n: int, rng) -> list[np.ndarray]:
    """Walks of the ring 2..31 (i -> i+1): the rules baseline learns them exactly."""
    starts, lengths = rng.integers(2, N_ITEMS, n), rng.integers(3, 7, n)
    return [np.array([(s - 2 + i) % 30 + 2 for i in range(k)]) for s, k in zip(starts, lengths, strict=True)]


def _cases(sessions: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    prefixes = np.zeros((len(sessions), 8), dtype=np.int64)
    for row, s in enumerate(sessions):
        prefixes[row, : len(s) - 1] = s[:-1]
    return prefixes, np.array([s[-1] for s in sessions])


def test_the_grid_sums_to_one_keeps_the_model_and_holds_it_alone():
    grid = simplex(3, 0.1)
    assert all(abs(sum(w) - 1) < 1e-9 and w[0] > 0 for w in grid)
    assert (1.0, 0.0, 0.0) in grid and len(set(grid)) == len(grid) == 55  # 10 model shares x the rest
    assert min(w[0] for w in grid) == pytest.approx(0.1)


def test_each_part_is_scaled_to_a_top_of_one_and_keeps_its_order():
    rng = np.random.default_rng(0)
    train = _ring(200, rng)
    prefixes, _ = _cases(_ring(50, rng))
    prefixes[0] = 0  # an empty prefix: no evidence at all
    rules = SequentialRules().fit(train, N_ITEMS)
    scaled = scaled_scores(rules, prefixes)
    assert scaled.dtype == np.float32 and scaled.shape == (50, N_ITEMS)
    assert np.allclose(scaled[1:].max(axis=1), 1.0) and not scaled[0].any()
    evidence = rules.evidence(prefixes).toarray()
    assert np.array_equal(np.argmax(scaled[1:], axis=1), np.argmax(evidence[1:], axis=1))
    model = Fixed(np.roll(np.arange(N_ITEMS), -1))
    soft = scaled_scores(model, prefixes)
    assert np.allclose(soft.max(axis=1), 1.0) and not soft[:, :2].any()  # pad and OOV never recommended
    assert np.array_equal(np.argsort(-soft[:, 2:], axis=1), np.argsort(-model.score(prefixes)[:, 2:], axis=1))


def test_the_weights_follow_the_part_that_predicts_the_held_out_cases():
    rng = np.random.default_rng(1)
    train, held = _ring(300, rng), _ring(200, rng)
    prefixes, targets = _cases(held)
    rules = SequentialRules().fit(train, N_ITEMS)
    wrong = Fixed(np.roll(np.arange(N_ITEMS), 5))  # always the item 5 back
    weights, table = choose_weights([wrong, rules], prefixes, targets)
    assert weights[1] >= 0.5 and table[weights][1] > table[(1.0, 0.0)][1] + 50
    right = Fixed((np.arange(N_ITEMS) - 1) % 30 + 2, sharpness=20.0)  # the ring itself
    useless = VSKNN().fit([np.array([2, 3])] * 5, N_ITEMS)  # knows nothing of the held-out walks
    weights, table = choose_weights([right, useless], prefixes, targets)
    assert table[(1.0, 0.0)] == (100.0, 100.0) and weights == (1.0, 0.0)  # ties go to the model


def test_one_pass_gives_the_model_alone_and_the_blend_as_evaluate_does():
    rng = np.random.default_rng(2)
    train = _ring(300, rng)
    prefixes, targets = _cases(_ring(120, rng))
    parts = [Fixed(np.roll(np.arange(N_ITEMS), 3), sharpness=1.0), SequentialRules().fit(train, N_ITEMS)]
    weights = (0.4, 0.6)
    alone, blended = evaluate_blend(parts, weights, prefixes, targets, ks=(10, 20), batch_size=50)
    expected_alone = evaluate(parts[0], prefixes, targets, ks=(10, 20), progress=False)
    expected_blend = evaluate(Blend(parts, weights), prefixes, targets, ks=(10, 20), progress=False)
    for key in ("Recall@10", "MRR@10", "Recall@20", "MRR@20"):
        assert alone[key] == pytest.approx(expected_alone[key]) and blended[key] == pytest.approx(expected_blend[key])
    assert blended["MRR@20"] > alone["MRR@20"] + 0.3  # the rules fix what the weak model misses
    with pytest.raises(ValueError, match="2 parts but 1 weights"):
        Blend(parts, (1.0,))


def test_an_ensemble_scores_the_log_of_its_members_mean_softmax():
    rng = np.random.default_rng(3)
    prefixes, _ = _cases(_ring(40, rng))
    a, b = Fixed(np.roll(np.arange(N_ITEMS), -1)), Fixed(np.roll(np.arange(N_ITEMS), 4), sharpness=9.0)

    def softmax(scores):
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    mean = (softmax(a.score(prefixes)) + softmax(b.score(prefixes))) / 2
    scores = Ensemble([a, b]).score(prefixes)
    assert scores.shape == (40, N_ITEMS) and scores.dtype == np.float32
    assert np.allclose(np.exp(scores), mean, atol=1e-6)  # not the mean of the logits, nor of one member
    assert np.allclose(Ensemble([a]).score(prefixes), np.log(softmax(a.score(prefixes))), atol=1e-5)
    shifted = Fixed(np.roll(np.arange(N_ITEMS), -1))  # a member's scores + a constant: the same softmax
    shifted.score = lambda ids: a.score(ids) + 100.0
    assert np.allclose(Ensemble([shifted, b]).score(prefixes), scores, atol=1e-5)
