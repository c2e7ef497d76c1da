"""Baselines: hand-computed scores on tiny sessions, defined answers for unknown input, and session-rec parity."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from sessrec_course.baselines import (
    VSKNN,
    MarkovChain,
    MostPopular,
    SequentialRules,
    SessionPopular,
    last_items,
    transition_matrix,
)
from sessrec_course.evaluation import all_prefixes, evaluate, ranks_from_scores, to_ragged, top_k_from_scores
from sessrec_course.paths import shared_data_dir

# ids 2..6 real; popularity: 2 x4, 3 x3, 4 x2, 5 x1, 6 x0
TRAIN = [[2, 3, 4], [2, 3], [2, 5, 3], [2, 4]]
N_ITEMS = 7


def test_last_items_of_right_padded_rows():
    assert last_items(np.array([[2, 3, 0], [4, 0, 0], [0, 0, 0], [5, 6, 2]])).tolist() == [3, 4, 0, 2]


def test_most_popular_ranks_by_training_counts():
    model = MostPopular().fit(TRAIN, N_ITEMS)
    assert top_k_from_scores(model.score(np.array([[6, 0]])), 5).tolist() == [[2, 3, 4, 5, 6]]


def test_session_popularity_puts_session_items_first():
    model = SessionPopular().fit(TRAIN, N_ITEMS)
    scores = model.score(np.array([[5, 6, 6, 0], [0, 0, 0, 0]]))
    # session: 6 twice, 5 once, then by popularity 2, 3, 4
    assert top_k_from_scores(scores, 5).tolist() == [[6, 5, 2, 3, 4], [2, 3, 4, 5, 6]]


def test_transition_matrix_by_hand():
    values, offsets = to_ragged(TRAIN)
    one = transition_matrix(values, offsets, N_ITEMS).toarray()
    assert one[2, 3] == 2 and one[3, 4] == 1 and one[2, 5] == 1 and one[5, 3] == 1 and one[2, 4] == 1
    assert one.sum() == 6  # 2 + 1 + 2 + 1 consecutive pairs, none across sessions
    two = transition_matrix(values, offsets, N_ITEMS, steps=2, weighting="div").toarray()
    assert two[2, 4] == pytest.approx(1 + 0.5) and two[2, 3] == pytest.approx(2 + 0.5)


def test_markov_follows_the_last_item_then_popularity():
    model = MarkovChain().fit(TRAIN, N_ITEMS)
    scores = model.score(np.array([[4, 2, 0], [6, 0, 0], [1, 1, 0], [0, 0, 0], [2, 99, 0]]))
    top = top_k_from_scores(scores, 5).tolist()
    # after 2: 3 (x2), then 4 and 5 (x1 each; 4 more popular), then the rest by popularity
    assert top[0] == [3, 4, 5, 2, 6]
    # 6 never seen as a source, OOV last item, empty prefix: pure popularity
    assert top[1] == top[2] == top[3] == [2, 3, 4, 5, 6]
    # an id outside the catalogue (99) is treated as OOV, not an error
    assert top[4] == [2, 3, 4, 5, 6]


def test_sequential_rules_weight_by_distance():
    model = SequentialRules(steps=2, weighting="div").fit(TRAIN, N_ITEMS)
    scores = model.score(np.array([[2, 0]]))
    # rules from 2: 3 -> 2.5, 4 -> 1.5, 5 -> 1  (scaled into (1, 2] by the row maximum)
    assert scores[0, [3, 4, 5]] == pytest.approx([2.0, 1 + 1.5 / 2.5, 1 + 1 / 2.5])
    assert scores[0, 6] < 1.0 and scores[0, 0] == 0 and scores[0, 1] == 0


def test_vsknn_similarity_decay_and_neighbours_by_hand():
    # prefix [3, 2]: weights (div) 1/2 for 3, 1 for 2, divided by 2 distinct items
    model = VSKNN(k=2, sample_size=10, weighting="div", weighting_score="div").fit(TRAIN, N_ITEMS)
    neighbours = model.neighbours(np.array([[3, 2]])).toarray()[0]
    # sessions 0..2 hold both items (sim 0.75, most recent shared item 2 at step 1); session 3 holds 2 only (0.5)
    # k=2 keeps the two most similar, ties to the more recent: sessions 2 and 1
    assert neighbours.tolist() == pytest.approx([0.0, 0.75, 0.75, 0.0])
    scores = model.evidence(np.array([[3, 2]])).toarray()[0]
    assert scores.tolist() == pytest.approx([0, 0, 1.5, 1.5, 0, 0.75, 0])
    # decay: prefix [2, 5, 6]: session 2 = [2, 5, 3] shares 5 (step 2) and 2 (step 3): decay 1/2
    model = VSKNN(k=10, sample_size=10, weighting="same", weighting_score="div").fit(TRAIN, N_ITEMS)
    neighbours = model.neighbours(np.array([[2, 5, 6]])).toarray()[0]
    assert neighbours.tolist() == pytest.approx([1 / 3 / 3, 1 / 3 / 3, 2 / 3 / 2, 1 / 3 / 3])


def test_vsknn_sample_keeps_the_most_recent_sessions():
    model = VSKNN(k=10, sample_size=2, weighting="same").fit(TRAIN, N_ITEMS)
    assert np.flatnonzero(model.neighbours(np.array([[2]])).toarray()[0]).tolist() == [2, 3]
    # session_times reorder recency: make session 0 the newest
    model = VSKNN(k=10, sample_size=2, weighting="same").fit(TRAIN, N_ITEMS, session_times=np.array([9, 1, 2, 3]))
    # columns are recency ranks: session 0 is now rank 3, session 3 rank 2
    assert np.flatnonzero(model.neighbours(np.array([[2]])).toarray()[0]).tolist() == [2, 3]
    assert model.session_items[3].indices.tolist() == [2, 3, 4]


def test_unfitted_and_bad_training_data_give_clear_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        MarkovChain().score(np.array([[2]]))
    with pytest.raises(ValueError, match="expected 0..6"):
        MarkovChain().fit([[2, 7]], N_ITEMS)
    with pytest.raises(ValueError, match="unknown weighting"):
        SequentialRules(weighting="cubic").fit(TRAIN, N_ITEMS)


def test_every_baseline_follows_the_protocol_and_never_recommends_pad_or_oov():
    rng = np.random.default_rng(0)
    train = [list(rng.integers(2, 40, rng.integers(2, 8))) for _ in range(300)]
    test = [list(rng.integers(2, 40, rng.integers(2, 8))) for _ in range(40)]
    prefixes, targets = all_prefixes(test, max_length=5)
    for model in (MostPopular(), SessionPopular(), MarkovChain(), SequentialRules(), VSKNN(k=20, sample_size=50)):
        model.fit(train, 40)
        scores = model.score(prefixes)
        assert scores.dtype == np.float32 and scores.shape == (len(prefixes), 40)
        assert not set(top_k_from_scores(scores, 38).ravel()) & {0, 1}
        assert (ranks_from_scores(scores, targets) <= 38).all()
        metrics = evaluate(model, prefixes, targets, ks=(20,), batch_size=16, progress=False)
        assert 0.0 <= metrics["MRR@20"] <= metrics["Recall@20"] <= 1.0


def _rsc15(name):
    root = shared_data_dir() / "yoochoose-rsc15-100k"
    if not root.exists():
        pytest.skip(f"shared research data not found at {root}")
    clicks = {}
    with open(root / "prepared" / f"yoochoose-clicks-100k_{name}.txt", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            clicks.setdefault(int(row["SessionId"]), []).append((float(row["Time"]), int(row["ItemId"])))
    return {sid: sorted(events) for sid, events in clicks.items()}


@pytest.mark.parametrize(
    ("model", "published"),
    [(SequentialRules(steps=20, weighting="quadratic"), (0.5607, 0.3275)),
     (VSKNN(k=500, sample_size=5000, weighting="quadratic", weighting_score="div", idf_weighting=5), (0.6098, 0.3342))],
    ids=["SR", "V-SKNN"],
)
def test_baselines_match_session_rec_on_rsc15_100k(model, published):
    """Fitted on train_full with session-rec's configuration, scored on the 99 test sessions of the golden lists."""
    train, test = _rsc15("train_full"), _rsc15("test")
    items = sorted({item for events in train.values() for _, item in events})
    encode = {item: i + 2 for i, item in enumerate(items)}
    sessions = [[encode[item] for _, item in events] for events in train.values()]
    times = np.array([events[-1][0] for events in train.values()])
    fit_args = {"session_times": times} if isinstance(model, VSKNN) else {}
    model.fit(sessions, len(items) + 2, **fit_args)
    with open(shared_data_dir() / "yoochoose-rsc15-100k" / "recommendations" / "recoms_rsc15_100k_sr.csv") as f:
        golden_sessions = sorted({int(row["SessionId"]) for row in csv.DictReader(f, delimiter=";")})
    test_sessions = [[encode.get(item, 1) for _, item in test[sid]] for sid in golden_sessions]
    prefixes, targets = all_prefixes(test_sessions)
    assert len(targets) == 387
    m = evaluate(model, prefixes, targets, ks=(20,), progress=False)
    # our lists are filled up with popularity, session-rec's stop at the rules: HR may only gain a little
    assert m["Recall@20"] == pytest.approx(published[0], abs=0.01)
    assert m["MRR@20"] == pytest.approx(published[1], abs=0.01)
