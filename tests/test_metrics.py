"""Metrics: hand-computed cases (ties, K beyond the catalogue, OOV targets) and the session-rec golden lists."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence

import numpy as np
import pytest

from sessrec_course.evaluation import (
    MISS_RANK,
    compute_ranks,
    evaluate,
    metrics_from_ranks,
    ranks_from_scores,
    results_table,
    top_k_from_scores,
)
from sessrec_course.paths import shared_data_dir

# 6 encoded ids: 0 pad, 1 OOV, real items 2..5. Pad and OOV get huge scores: they must never count.
SCORES = np.array(
    [
        [9.0, 9.0, 0.5, 0.5, 0.2, 0.5],  # three-way tie at 0.5 between ids 2, 3, 5
        [0.0, 0.0, 1.0, 2.0, 3.0, 4.0],
        [5.0, 5.0, 0.0, 0.0, 0.0, 0.0],  # all real items tied
    ],
    dtype=np.float32,
)


def ranks_from_lists(lists: Sequence[Sequence[int]], targets: Sequence[int]) -> np.ndarray:
    """1-based rank of each target in a list made elsewhere (the golden session-rec files; MISS_RANK if absent)."""
    if len(lists) != len(targets):
        raise ValueError(f"{len(lists)} recommendation lists but {len(targets)} targets")
    ranks = np.full(len(targets), MISS_RANK, dtype=np.int64)
    for i, (recs, target) in enumerate(zip(lists, targets, strict=True)):
        for position, item in enumerate(recs):
            if item == target:
                ranks[i] = position + 1
                break
    return ranks


def metrics_from_lists(lists: Sequence[Sequence[int]], targets: Sequence[int], ks=(20,)) -> dict[str, float]:
    """Recall/MRR/NDCG@K of given top-k lists against their targets, through the course's metrics_from_ranks."""
    return metrics_from_ranks(ranks_from_lists(lists, targets), ks)


def test_ranks_break_ties_by_smaller_id_and_ignore_pad_and_oov():
    # row 0: id 2 -> 1, id 3 -> 2 (tied with 2, larger id), id 5 -> 3, id 4 (0.2) -> 4
    assert ranks_from_scores(SCORES[[0, 0, 0, 0]], np.array([2, 3, 5, 4])).tolist() == [1, 2, 3, 4]
    # row 1: strictly ordered, id 5 best
    assert ranks_from_scores(SCORES[[1, 1]], np.array([5, 2])).tolist() == [1, 4]
    # row 2: all tied -> rank is id order
    assert ranks_from_scores(SCORES[[2, 2]], np.array([4, 2])).tolist() == [3, 1]


def test_oov_and_padding_targets_are_always_misses():
    ranks = ranks_from_scores(SCORES[[0, 1]], np.array([1, 0]))
    assert ranks.tolist() == [MISS_RANK, MISS_RANK]
    metrics = metrics_from_ranks(ranks, ks=(1, 1000))
    assert metrics["Recall@1000"] == 0.0 and metrics["MRR@1000"] == 0.0 and metrics["NDCG@1000"] == 0.0


def test_targets_outside_the_catalogue_are_rejected_with_the_id():
    with pytest.raises(ValueError, match="target item id 6"):
        ranks_from_scores(SCORES[:1], np.array([6]))


def test_nan_scores_are_rejected():
    bad = SCORES[:1].copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ranks_from_scores(bad, np.array([2]))


def test_metrics_from_ranks_by_hand():
    ranks = np.array([1, 2, 3, 25, MISS_RANK])
    m = metrics_from_ranks(ranks, ks=(1, 2, 20))
    assert m["Recall@1"] == pytest.approx(1 / 5)
    assert m["Recall@2"] == pytest.approx(2 / 5)
    assert m["Recall@20"] == pytest.approx(3 / 5)
    assert m["MRR@1"] == pytest.approx(1 / 5)
    assert m["MRR@2"] == pytest.approx((1 + 1 / 2) / 5)
    assert m["MRR@20"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 5)
    assert m["NDCG@2"] == pytest.approx((1 + 1 / math.log2(3)) / 5)
    assert m["NDCG@20"] == pytest.approx((1 + 1 / math.log2(3) + 1 / 2) / 5)


def test_recall_is_monotone_in_k():
    ranks = np.random.default_rng(0).integers(1, 100, size=500)
    m = metrics_from_ranks(ranks, ks=range(1, 60))
    recalls = [m[f"Recall@{k}"] for k in range(1, 60)]
    assert all(a <= b for a, b in zip(recalls, recalls[1:], strict=False))


def test_top_k_ties_and_k_beyond_catalogue():
    assert top_k_from_scores(SCORES, 2).tolist() == [[2, 3], [5, 4], [2, 3]]
    # K = 10 > 4 real items: the whole catalogue, pad and OOV never in it
    assert top_k_from_scores(SCORES, 10).tolist() == [[2, 3, 5, 4], [5, 4, 3, 2], [2, 3, 4, 5]]
    # tie straddling the cut: the smaller ids win
    assert top_k_from_scores(SCORES[:1], 1).tolist() == [[2]]


def test_top_k_agrees_with_ranks_on_random_scores_with_ties():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, size=(40, 30)).astype(np.float32)  # many ties
    top = top_k_from_scores(scores, 7)
    for row in range(len(scores)):
        ranks = ranks_from_scores(np.repeat(scores[row : row + 1], 28, axis=0), np.arange(2, 30))
        expected = (np.argsort(ranks, kind="stable") + 2)[:7]
        assert top[row].tolist() == expected.tolist()


def constant_model(row):
    def score(item_ids):
        return np.repeat(row[None, :], len(item_ids), axis=0)

    return score


def test_evaluate_by_hand_with_coverage_popularity_and_large_k():
    prefixes = np.array([[2, 0], [3, 4], [5, 0], [2, 3]])
    targets = np.array([3, 5, 1, 4])  # ranks under row 0 of SCORES: 2, 3, miss (OOV), 4
    popularity = np.array([0, 0, 10, 5, 0, 20])
    m = evaluate(constant_model(SCORES[0]), prefixes, targets, ks=(1, 2, 50), batch_size=3,
                 item_popularity=popularity, progress=False)
    assert m["Recall@1"] == 0.0
    assert m["Recall@2"] == pytest.approx(1 / 4)
    assert m["MRR@2"] == pytest.approx(0.5 / 4)
    assert m["Recall@50"] == pytest.approx(3 / 4)  # K beyond the catalogue: every real target is a hit
    assert m["MRR@50"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 4)
    assert m["Coverage@1"] == pytest.approx(1 / 4)  # always item 2
    assert m["Coverage@2"] == pytest.approx(2 / 4)
    assert m["Coverage@50"] == 1.0
    assert m["Popularity@1"] == pytest.approx(10 / 20)
    assert m["Popularity@2"] == pytest.approx((10 + 5) / 2 / 20)


def test_evaluate_accepts_objects_and_batches_the_same():
    class Model:
        def score(self, item_ids):
            # score = how often each id occurs in the prefix, a context-dependent model
            out = np.zeros((len(item_ids), 6), dtype=np.float32)
            np.add.at(out, (np.repeat(np.arange(len(item_ids)), item_ids.shape[1]), item_ids.ravel()), 1.0)
            return out

    prefixes = np.array([[2, 2, 3], [4, 0, 0], [5, 4, 4], [3, 0, 0]])
    targets = np.array([2, 4, 5, 2])  # ranks 1, 1, 2, 2
    full = evaluate(Model(), prefixes, targets, ks=(1, 2), batch_size=100, progress=False)
    small = evaluate(Model(), prefixes, targets, ks=(1, 2), batch_size=1, progress=False)
    assert full == small
    assert full["Recall@1"] == pytest.approx(2 / 4) and full["MRR@2"] == pytest.approx(3 / 4)
    assert compute_ranks(Model(), prefixes, targets, batch_size=3, progress=False).tolist() == [1, 1, 2, 2]


def test_evaluate_rejects_wrong_score_width():
    with pytest.raises(ValueError, match="expected n_items=7"):
        evaluate(constant_model(SCORES[0]), np.array([[2]]), np.array([3]), n_items=7, progress=False)


def test_lists_metrics_by_hand():
    lists = [[7, 8, 9], [9, 8], [1, 2]]
    targets = [8, 9, 3]
    assert ranks_from_lists(lists, targets).tolist() == [2, 1, MISS_RANK]
    m = metrics_from_lists(lists, targets, ks=(1, 20))
    assert m["Recall@1"] == pytest.approx(1 / 3)
    assert m["Recall@20"] == pytest.approx(2 / 3)
    assert m["MRR@20"] == pytest.approx((1 / 2 + 1) / 3)


def test_results_table_orders_models_and_metrics():
    table = results_table({"a": {"Recall@20": 0.1, "MRR@20": 0.05}, "b": {"Recall@20": 0.3}}, sort_by="Recall@20")
    assert list(table.index) == ["b", "a"]
    assert list(table.columns) == ["Recall@20", "MRR@20"]
    assert np.isnan(table.loc["b", "MRR@20"])


GOLDEN = {"ar": (0.5917, 0.3160), "sr": (0.5607, 0.3275), "vsknn": (0.6098, 0.3342), "gru4rec": (0.5711, 0.3289)}


@pytest.mark.parametrize("model", sorted(GOLDEN))
def test_reproduces_session_rec_golden_lists(model):
    root = shared_data_dir() / "yoochoose-rsc15-100k"
    if not root.exists():
        pytest.skip(f"shared research data not found at {root}")
    clicks: dict[int, list[tuple[float, int]]] = {}
    with open(root / "prepared" / "yoochoose-clicks-100k_test.txt", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        for row in reader:
            clicks.setdefault(int(row["SessionId"]), []).append((float(row["Time"]), int(row["ItemId"])))
    sessions = {sid: [item for _, item in sorted(events, key=lambda e: e[0])] for sid, events in clicks.items()}
    lists, targets = [], []
    with open(root / "recommendations" / f"recoms_rsc15_100k_{model}.csv", newline="") as handle:
        for row in csv.DictReader(handle, delimiter=";"):
            lists.append([int(x) for x in row["Recommendations"].split(",")])
            # Position p: made after the first p + 1 clicks, judged against click p + 2
            targets.append(sessions[int(row["SessionId"])][int(row["Position"]) + 1])
    assert len(lists) == 387
    m = metrics_from_lists(lists, targets, ks=20)
    hr, mrr = GOLDEN[model]
    assert round(m["Recall@20"], 4) == hr
    assert round(m["MRR@20"], 4) == mrr


def test_top_k_fast_path_equals_exact_path_on_large_catalogues():
    from sessrec_course.arrays import _top_k_exact

    rng = np.random.default_rng(2)
    dense = rng.random((30, 3000)).astype(np.float32)
    dense[:, 100:140] = dense[:, 100:101]  # a tie block that the cut at K may split
    sparse = np.zeros((20, 3000), dtype=np.float32)  # mostly zeros: many ties at the bound
    sparse[np.arange(20), rng.integers(2, 3000, 20)] = 1.0
    for scores in (dense, sparse):
        for k in (1, 20, 50):
            assert (top_k_from_scores(scores, k) - 2).tolist() == _top_k_exact(scores[:, 2:], k).tolist()
    # sparse rows: one scored item, then the tie among the zeros goes to the smallest ids
    row = top_k_from_scores(sparse[:1], 3)[0]
    assert row[0] == int(np.argmax(sparse[0])) and row[1:].tolist() == [i for i in (2, 3, 4) if i != row[0]][:2]
