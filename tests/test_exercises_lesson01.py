"""Lesson 01 exercises: the references agree with the package (the wrong answers: exercise_mistakes/lesson01.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sessrec_course.etl import SessionWorkflow, sessionize, temporal_split
from sessrec_course.exercises import lesson01 as ex


# ---------------------------------------------------------------- q1: inactivity-gap sessionizing
def test_q1_reference_agrees_with_the_package_sessionize():
    for case in ex.q1.cases():
        events = case.args[0]
        package = sessionize(events, gap_seconds=case.kwargs.get("gap_seconds", 1800), user_column="user_id")
        by_item = dict(zip(package["item_id"], package["session_id"], strict=True))
        assert ex.split_sessions(events, **case.kwargs).tolist() == [by_item[i] for i in events["item_id"]]


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


# ---------------------------------------------------------------- q2: temporal split without leakage
def test_q2_reference_agrees_with_the_package_temporal_split():
    for case in ex.q2.cases():
        events, days = case.args
        parts = temporal_split(events, valid_days=0, test_days=days)
        train, test = ex.temporal_split_ids(events, days)
        assert np.array_equal(np.unique(parts["train"]["session_id"]), train)
        assert np.array_equal(np.unique(parts["test"]["session_id"]), test)


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


