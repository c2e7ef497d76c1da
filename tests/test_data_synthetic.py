"""The generated default click log: canonical format, determinism, learnable structure, ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sessrec_course.data.synthetic import generate_events, generate_log
from sessrec_course.etl import SessionWorkflow, pad_right, temporal_split


@pytest.fixture(scope="module")
def small_log():
    return generate_log(n_events=60_000, n_items=600, n_categories=12, n_days=14, seed=3)


def test_canonical_columns_sizes_and_order(small_log):
    ev = small_log.events
    assert list(ev.columns) == ["session_id", "item_id", "timestamp", "category", "price", "event_type"]
    assert len(ev) == 60_000
    assert str(ev["timestamp"].dtype) == "datetime64[ns]"
    assert ev["session_id"].dtype == np.int64 and ev["item_id"].dtype == np.int64
    assert ev["price"].dtype == np.float32
    assert ev["item_id"].between(1, 600).all()
    assert (ev["category"] == small_log.item_category[ev["item_id"]]).all()
    # sorted by session, then time; session ids follow session start time
    assert ev["session_id"].is_monotonic_increasing
    assert (ev.groupby("session_id")["timestamp"].diff().dropna() >= pd.Timedelta(0)).all()
    starts = ev.groupby("session_id")["timestamp"].min()
    assert starts.is_monotonic_increasing
    span = ev["timestamp"].max() - ev["timestamp"].min()
    assert pd.Timedelta(days=12) < span < pd.Timedelta(days=15)


def test_deterministic_for_a_seed():
    a = generate_events(5_000, 100, 5, 7, seed=1)
    b = generate_events(5_000, 100, 5, 7, seed=1)
    c = generate_events(5_000, 100, 5, 7, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a["item_id"].equals(c["item_id"])


def test_popularity_long_tail_and_weekly_cycle(small_log):
    counts = small_log.events["item_id"].value_counts().to_numpy()
    top_share = counts[: len(counts) // 10].sum() / counts.sum()
    assert top_share > 0.3  # the top 10 % of items get far more than 10 % of the clicks
    starts = small_log.events.groupby("session_id")["timestamp"].min()
    by_hour = starts.dt.hour.value_counts()
    assert by_hour.loc[20] > 3 * by_hour.loc[3]  # evenings busier than nights


def _next_item_pairs(sessions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    mat = pad_right(sessions["item_id_list"], 50)
    prev, nxt = mat[:, :-1].ravel(), mat[:, 1:].ravel()
    keep = nxt > 0
    return prev[keep], nxt[keep]


def test_markov_beats_popularity_by_a_wide_margin_and_oracle_beats_markov(small_log):
    parts = temporal_split(small_log.events, valid_days=0, test_days=2)
    wf = SessionWorkflow(max_length=50).fit(parts["train"])
    train, test = wf.transform(parts["train"]), wf.transform(parts["test"])
    n = wf.item_cardinality
    a, b = _next_item_pairs(train)
    transitions = np.zeros((n, n))
    np.add.at(transitions, (a, b), 1.0)
    popularity = np.bincount(np.concatenate(train["item_id_list"].tolist()), minlength=n).astype(float)
    popularity[:2] = -1
    prev, target = _next_item_pairs(test)
    pop_rank = (popularity[None, :] > popularity[target][:, None]).sum(1)
    markov = transitions[prev] + 1e-6 * popularity  # popularity breaks ties and fills empty rows
    markov[:, :2] = -1
    markov_rank = (markov > markov[np.arange(len(target)), target][:, None]).sum(1)
    pop_recall, markov_recall = (pop_rank < 20).mean(), (markov_rank < 20).mean()
    pop_mrr = np.where(pop_rank < 20, 1.0 / (pop_rank + 1), 0).mean()
    markov_mrr = np.where(markov_rank < 20, 1.0 / (markov_rank + 1), 0).mean()
    assert markov_recall > pop_recall + 0.2
    assert markov_mrr > 1.5 * pop_mrr  # on 600 items popularity alone reaches MRR@20 ~.16, the chain ~.30
    oracle = small_log.oracle_metrics(n_sessions=300, seed=0)
    assert oracle["MRR@20"] > markov_mrr
    assert oracle["Recall@20"] > markov_recall


def test_ground_truth_distribution_is_a_distribution(small_log):
    ev = small_log.events
    sid = int(ev["session_id"].iloc[100])
    items = ev.loc[ev["session_id"] == sid, "item_id"].to_numpy()
    p = small_log.next_item_probabilities(items[:1], small_log.intent_at(sid, 1))
    assert p[0] == 0 and np.isclose(p.sum(), 1.0)
    # the intent matters: another intent gives another distribution for the same history
    other = small_log.next_item_probabilities(items[:1], (0, 1, 0.9))
    assert np.abs(p - other).sum() > 0.1


def test_reference_metrics_hand_computed():
    from sessrec_course.data.reference import reference_metrics

    train = [np.array([2, 3]), np.array([2, 3]), np.array([2, 4])]
    out = reference_metrics(train, [np.array([2, 3]), np.array([4, 2])], n_items=5, k=1)
    # popularity: 2 (3 clicks) > 3 (2) > 4 (1); targets 3 and 2 -> ranks 1 and 0
    assert out["popularity"] == {"Recall@1": 0.5, "MRR@1": 0.5, "cases": 2}
    # Markov: after 2 -> 3 (twice) first; after 4 nothing was seen -> popularity fallback ranks 2 first
    assert out["Markov"] == {"Recall@1": 1.0, "MRR@1": 1.0, "cases": 2}


def test_hour_affinity_off_is_the_default_log_and_on_ties_start_hours_to_the_intent():
    from sessrec_course.data.synthetic import category_peak_hours

    plain = generate_log(n_events=40_000, n_items=300, n_categories=8, n_days=14, seed=5)
    pd.testing.assert_frame_equal(plain.events, generate_log(n_events=40_000, n_items=300, n_categories=8,
                                                             n_days=14, seed=5, hour_affinity=0.0).events)
    timed = generate_log(n_events=40_000, n_items=300, n_categories=8, n_days=14, seed=5, hour_affinity=3.0)
    peaks = category_peak_hours(8)

    def distance_to_peak(log) -> float:  # mean circular hours between a session's start and its intent's peak
        starts = log.events.groupby("session_id")["timestamp"].min().dt.hour.to_numpy()
        delta = np.abs(starts - peaks[log.intents["c1"].to_numpy()]) % 24
        return float(np.minimum(delta, 24 - delta).mean())

    assert distance_to_peak(plain) > 5.0  # about 6 h, what independent hours give
    assert distance_to_peak(timed) < 0.7 * distance_to_peak(plain)
    same = ["c1", "c2", "switch_at"]  # only the timing changes: the same intents, renumbered by start time
    pd.testing.assert_frame_equal(plain.intents[same].sort_values(same, ignore_index=True),
                                  timed.intents[same].sort_values(same, ignore_index=True))
    assert (plain.events["item_id"].to_numpy() != timed.events["item_id"].to_numpy()).any()  # reordered by start
    with pytest.raises(ValueError, match="hour_affinity>=0"):
        generate_log(n_events=1_000, hour_affinity=-1.0)
