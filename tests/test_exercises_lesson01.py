"""Lesson 01 exercises: each check passes the reference, fails the stub and typical wrong answers with a hint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sessrec_course.etl import SessionWorkflow, sessionize, temporal_split
from sessrec_course.exercises import lesson01 as ex


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


# ---------------------------------------------------------------- q1: inactivity-gap sessionizing
def test_q1_reference_agrees_with_the_package_sessionize():
    for case in ex.q1.cases():
        events = case.args[0]
        package = sessionize(events, gap_seconds=case.kwargs.get("gap_seconds", 1800), user_column="user_id")
        by_item = dict(zip(package["item_id"], package["session_id"], strict=True))
        assert ex.split_sessions(events, **case.kwargs).tolist() == [by_item[i] for i in events["item_id"]]


def _gap_inclusive(events, gap_seconds=1800):  # a pause of exactly the gap splits
    ordered = events.sort_values(["user_id", "timestamp"], kind="stable")
    gap = ordered.groupby("user_id")["timestamp"].diff().dt.total_seconds()
    return (gap.isna() | (gap >= gap_seconds)).cumsum().reindex(events.index).to_numpy()


def _one_stream(events, gap_seconds=1800):  # ignores the user: pauses measured across users
    ordered = events.sort_values("timestamp", kind="stable")
    gap = ordered["timestamp"].diff().dt.total_seconds()
    return (gap.isna() | (gap > gap_seconds)).cumsum().reindex(events.index).to_numpy()


def _fixed_gap(events, gap_seconds=1800):  # ignores the argument
    return ex.split_sessions(events, 1800)


def test_q1_typical_wrong_answers_fail_with_the_case_and_a_hint():
    _failed(ex.q1, _gap_inclusive, "a pause of exactly the gap", "*longer* than gap_seconds")
    _failed(ex.q1, _one_stream, "two users interleaved", "each user has their own stream")
    _failed(ex.q1, _fixed_gap, "10-minute gap", "gap_seconds argument")


def test_q1_accepts_any_numbering_of_the_same_sessions():
    def from_zero(events, gap_seconds=1800):
        return ex.split_sessions(events, gap_seconds) - 1

    def by_label(events, gap_seconds=1800):
        return np.array([f"s{i}" for i in ex.split_sessions(events, gap_seconds)])

    assert ex.q1.check(from_zero) and ex.q1.check(by_label)
    assert ex.same_sessions(np.array([1, 1, 2]), np.array([9, 9, 4]))
    assert not ex.same_sessions(np.array([1, 1, 2]), np.array([9, 4, 4]))
    assert not ex.same_sessions(np.array([1, 1, 2]), np.array([9, 9, 9]))
    assert not ex.same_sessions(np.array([1, 2, 3]), np.array([1, 2]))


def test_q1_unsorted_input_must_come_back_in_row_order():
    def sorted_order(events, gap_seconds=1800):  # right ids, but in sorted order instead of the input's
        ordered = events.sort_values(["user_id", "timestamp"], kind="stable")
        gap = ordered.groupby("user_id")["timestamp"].diff().dt.total_seconds()
        return (gap.isna() | (gap > gap_seconds)).cumsum().to_numpy()

    _failed(ex.q1, sorted_order, "two users interleaved", "input's row order")


# ---------------------------------------------------------------- q2: temporal split without leakage
def test_q2_reference_agrees_with_the_package_temporal_split():
    for case in ex.q2.cases():
        events, days = case.args
        parts = temporal_split(events, valid_days=0, test_days=days)
        train, test = ex.temporal_split_ids(events, days)
        assert np.array_equal(np.unique(parts["train"]["session_id"]), train)
        assert np.array_equal(np.unique(parts["test"]["session_id"]), test)


def _split_events(events, test_days):  # cuts sessions at the cutoff: their start leaks into training
    cutoff = events["timestamp"].max() - pd.Timedelta(days=test_days)
    return (np.unique(events.loc[events["timestamp"] <= cutoff, "session_id"]),
            np.unique(events.loc[events["timestamp"] > cutoff, "session_id"]))


def _by_session_id(events, test_days):  # assumes ids grow with time
    ids = np.unique(events["session_id"])
    n_test = len(ex.temporal_split_ids(events, test_days)[1])
    return ids[:-n_test], ids[-n_test:]


def _by_end_time(events, test_days):
    end = events.groupby("session_id")["timestamp"].max()
    cutoff = events.groupby("session_id")["timestamp"].min().max() - pd.Timedelta(days=test_days)
    return np.sort(end.index[end <= cutoff].to_numpy()), np.sort(end.index[end > cutoff].to_numpy())


def _random_split(events, test_days):
    ids = np.unique(events["session_id"])
    test = np.random.default_rng(0).random(len(ids)) < 0.4
    return ids[~test], ids[test]


def test_q2_typical_wrong_answers_fail_with_the_case_and_a_hint():
    message = _failed(ex.q2, _split_events, "straddles the cutoff", "are in train and in test")
    assert "Split whole sessions" in message
    _failed(ex.q2, _by_session_id, "session ids not in time order", "ids are labels")
    _failed(ex.q2, _by_end_time, "straddles the cutoff", "first timestamp")
    _failed(ex.q2, _random_split)


# ---------------------------------------------------------------- q3: frequency-threshold encoding
def test_q3_reference_agrees_with_the_session_workflow():
    train = [[5, 6, 6, 9], [6, 7, 7, 7], [9, 5, 5, 8]]
    other = [[7, 6, 5, 123], [8, 9, 9]]

    def frame(sessions):
        rows = [(s, item, pd.Timestamp("2024-01-01") + pd.Timedelta(minutes=j))
                for s, items in enumerate(sessions) for j, item in enumerate(items)]
        return pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])

    for min_count in (1, 2, 3):
        workflow = SessionWorkflow(max_length=10, min_item_frequency=min_count).fit(frame(train))
        lists = [list(x) for x in workflow.transform(frame(other))["item_id_list"]]
        assert ex.encode_items(train, other, min_count=min_count) == lists, min_count


def _from_one(train_sessions, sessions, min_count=1):  # numbers items from 1: the top item collides with OOV
    return [[i - 1 if i >= 2 else 1 for i in s] for s in ex.encode_items(train_sessions, sessions, min_count)]


def _first_seen_order(train_sessions, sessions, min_count=1):  # ids by first appearance, not by frequency
    from collections import Counter

    counts = Counter(i for s in train_sessions for i in s)
    seen = list(dict.fromkeys(i for s in train_sessions for i in s if counts[i] >= min_count))
    code = {item: k + 2 for k, item in enumerate(seen)}
    return [[code.get(i, 1) for i in s] for s in sessions]


def _drop_rare(train_sessions, sessions, min_count=1):  # removes OOV events instead of keeping them as 1
    return [[i for i in s if i != 1] for s in ex.encode_items(train_sessions, sessions, min_count)]


def _strict_threshold(train_sessions, sessions, min_count=1):  # "more than" instead of "at least"
    return ex.encode_items(train_sessions, sessions, min_count + 1)


def test_q3_typical_wrong_answers_fail_with_the_case_and_a_hint():
    _failed(ex.q3, _from_one, "frequency order", "0 is padding and 1 is OOV")
    _failed(ex.q3, _first_seen_order, "frequency order", "most frequent")
    _failed(ex.q3, _drop_rare, "unseen items", "it is not removed")
    _failed(ex.q3, _strict_threshold, "frequency order", "exactly min_count included")


def test_hints_never_contain_the_reference_code():
    for exercise in (ex.q1, ex.q2, ex.q3):
        body = [line.strip() for line in exercise.solution_source().splitlines()[2:] if len(line.strip()) > 20]
        for text in exercise.hints + [c.hint for c in exercise.cases()]:
            assert not any(line in text for line in body), (exercise.title, text)
