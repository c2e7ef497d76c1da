"""SessionWorkflow and the ETL kernels on tiny hand-made frames (every expected value computed by hand)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sessrec_course.data.errors import DataError
from sessrec_course.etl import SessionWorkflow, pad_right, sessionize, temporal_split

T0 = pd.Timestamp("2024-03-04 10:00:00")  # a Monday


def frame(rows, category=False):
    """rows: (session, item, seconds after T0[, category])."""
    df = pd.DataFrame({
        "session_id": np.array([r[0] for r in rows], np.int64),
        "item_id": np.array([r[1] for r in rows], np.int64),
        "timestamp": T0 + pd.to_timedelta([r[2] for r in rows], unit="s"),
    })
    if category:
        df["category"] = np.array([r[3] for r in rows], np.int64)
    return df


TRAIN = frame([
    (1, 10, 0), (1, 20, 5), (1, 10, 9),
    (2, 30, 0), (2, 10, 60),
    (3, 20, 0),  # single event: dropped
])


def as_lists(df, column):
    return [list(map(int, x)) if column != "time_delta_list" else list(map(float, x)) for x in df[column]]


def test_vocabulary_by_frequency_then_raw_id():
    wf = SessionWorkflow().fit(TRAIN)
    # counts after dropping session 3: 10 x3, 20 x1, 30 x1 -> 10 first, then 20 before 30 (lower raw id)
    assert wf.item_raw.tolist() == [10, 20, 30]
    assert wf.item_cardinality == 5
    assert wf.popular_items(2).tolist() == [2, 3]
    assert wf.decode_item_ids([0, 1, 2, 3, 4, 99]).tolist() == [-1, -1, 10, 20, 30, -1]


def test_transform_lists_features_and_single_event_sessions():
    wf = SessionWorkflow().fit(TRAIN)
    out = wf.transform(TRAIN)
    assert out["session_id"].tolist() == [1, 2]  # session 3 has one event
    assert as_lists(out, "item_id_list") == [[2, 3, 2], [4, 2]]
    assert as_lists(out, "time_delta_list") == [[0.0, 5.0, 4.0], [0.0, 60.0]]
    assert out["length"].tolist() == [3, 2]
    assert out["duration"].tolist() == [9.0, 60.0]
    assert out["start_weekday"].tolist() == [0, 0]  # Monday
    assert out["start_hour"].tolist() == [10, 10]
    assert out["start_time"].tolist() == [T0, T0]
    assert list(out.columns) == ["session_id", "item_id_list", "category_list", "time_delta_list", "length",
                                 "duration", "start_weekday", "start_hour", "start_time"]


def test_unsorted_input_and_equal_timestamps_keep_input_order():
    wf = SessionWorkflow().fit(TRAIN)
    events = frame([(7, 30, 5), (5, 20, 3), (7, 10, 5), (5, 10, 3), (7, 20, 1)])
    out = wf.transform(events)
    assert out["session_id"].tolist() == [5, 7]
    # session 5: both at t=3 -> input order 20, 10; session 7: 20@1, then 30@5 and 10@5 in input order
    assert as_lists(out, "item_id_list") == [[3, 2], [3, 4, 2]]
    assert as_lists(out, "time_delta_list") == [[0.0, 0.0], [0.0, 4.0, 0.0]]


def test_unseen_items_become_oov_and_never_crash():
    wf = SessionWorkflow().fit(TRAIN)
    out = wf.transform(frame([(9, 999, 0), (9, 10, 1), (9, 12345678901, 2)]))
    assert as_lists(out, "item_id_list") == [[1, 2, 1]]
    assert as_lists(out, "category_list") == [[1, 1, 1]]  # no category column: learned map, unknown for all


def test_truncation_keeps_last_events_and_resets_first_delta():
    wf = SessionWorkflow(max_length=2).fit(TRAIN)
    out = wf.transform(TRAIN)
    assert as_lists(out, "item_id_list") == [[3, 2], [4, 2]]
    assert as_lists(out, "time_delta_list") == [[0.0, 4.0], [0.0, 60.0]]
    assert out["length"].tolist() == [2, 2]
    assert out["duration"].tolist() == [9.0, 60.0]  # duration of the whole session


def test_consecutive_repeat_removal_then_min_length():
    events = frame([(1, 10, 0), (1, 10, 1), (1, 20, 2), (2, 30, 0), (2, 30, 5)])
    kept = SessionWorkflow().fit(events).transform(events)
    assert kept["length"].tolist() == [3, 2]
    wf = SessionWorkflow(remove_consecutive_repeats=True).fit(events)
    out = wf.transform(events)
    # session 2 collapses to one event and is dropped
    assert out["session_id"].tolist() == [1]
    assert wf.decode_item_ids(np.concatenate(out["item_id_list"].tolist())).tolist() == [10, 20]
    assert as_lists(out, "time_delta_list") == [[0.0, 2.0]]


def test_min_item_frequency_sends_rare_items_to_oov():
    wf = SessionWorkflow(min_item_frequency=2).fit(TRAIN)
    assert wf.item_raw.tolist() == [10]
    assert as_lists(wf.transform(TRAIN), "item_id_list") == [[2, 1, 2], [1, 2]]


def test_categories_encoded_by_frequency_and_mapped_for_serving():
    events = frame([(1, 10, 0, 7), (1, 20, 1, 5), (2, 10, 0, 7), (2, 30, 1, 5), (2, 40, 2, 5), (2, 10, 3, 9)],
                   category=True)
    wf = SessionWorkflow().fit(events)
    assert wf.category_raw.tolist() == [5, 7, 9]  # counts 5:3, 7:2, 9:1 -> codes 2, 3, 4
    out = wf.transform(events)
    assert as_lists(out, "category_list") == [[3, 2], [3, 2, 2, 4]]
    enc = wf.encode_item_ids([[10, 40, 77]])[0]
    # item 10 seen with 7 twice and 9 once -> its category is 7 (code 3)
    assert wf.item_category[enc].tolist()[:3] == [3, 2, 1]


@pytest.mark.parametrize("bad, column", [
    (TRAIN.drop(columns="item_id"), "item_id"),
    (TRAIN.assign(item_id=TRAIN["item_id"].astype(float).where(TRAIN.index != 2)), "item_id"),
    (TRAIN.assign(session_id=pd.array([1, None, 2, 2, 2, 3], dtype="Int64")), "session_id"),
    (TRAIN.assign(timestamp=TRAIN["timestamp"].astype(str)), "timestamp"),
    (TRAIN.assign(item_id=["a", "b", "c", "d", "e", "f"]), "item_id"),
])
def test_bad_input_names_the_column(bad, column):
    wf = SessionWorkflow().fit(TRAIN)
    with pytest.raises(DataError, match=column):
        wf.transform(bad, source="my_file.csv")
    with pytest.raises(DataError, match="my_file.csv"):
        SessionWorkflow().fit(bad, source="my_file.csv")


def test_empty_table_and_unfitted_workflow():
    with pytest.raises(DataError, match="empty"):
        SessionWorkflow().fit(TRAIN.iloc[:0])
    with pytest.raises(RuntimeError, match="not fitted"):
        SessionWorkflow().transform(TRAIN)


def test_save_load_transform_identical(tmp_path):
    events = frame([(1, 10, 0, 7), (1, 20, 1, 5), (2, 10, 0, 7), (2, 30, 1, 5), (3, 50, 0, 8), (3, 10, 4, 7)],
                   category=True)
    wf = SessionWorkflow(max_length=3).fit(events.iloc[:4])
    before = wf.transform(events)
    wf.save(tmp_path / "wf")
    wf.save(tmp_path / "wf")  # overwriting works and leaves no temporary folders behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wf"]
    loaded = SessionWorkflow.load(tmp_path / "wf")
    pd.testing.assert_frame_equal(loaded.transform(events), before)
    assert loaded.schema() == wf.schema()
    assert loaded.encode_item_ids([[10, 50]]).tolist() == wf.encode_item_ids([[10, 50]]).tolist()


def test_encode_item_ids_for_serving():
    wf = SessionWorkflow(max_length=3).fit(TRAIN)
    got = wf.encode_item_ids([[10, 20, 30, 10], [], [999, None, 30], np.array([20])])
    assert got.dtype == np.int64
    assert got.tolist() == [[3, 4, 2], [0, 0, 0], [1, 1, 4], [3, 0, 0]]
    assert wf.encode_item_ids([[10] * 5], max_length=2).tolist() == [[2, 2]]


def test_pad_right():
    assert pad_right([[1, 2, 3], [], [4]], 2).tolist() == [[2, 3], [0, 0], [4, 0]]
    series = pd.Series([np.array([5, 6], np.int32), np.array([7], np.int32)])
    assert pad_right(series, 3).tolist() == [[5, 6, 0], [7, 0, 0]]
    assert pad_right([], 4).shape == (0, 4)


def test_sessionize_on_inactivity_gap():
    events = pd.DataFrame({
        "user_id": ["b", "a", "a", "a", "b"],
        "item_id": [5, 1, 2, 3, 6],
        "timestamp": T0 + pd.to_timedelta([0, 0, 100, 5000, 10], unit="s"),
    })
    out = sessionize(events, gap_seconds=1800)
    # user a: 0, 100 (one session), 5000 (gap > 1800: new session); user b: one session
    assert out["item_id"].tolist() == [1, 2, 3, 5, 6]
    assert out["session_id"].tolist() == [1, 1, 2, 3, 3]


def test_temporal_split_by_session_start():
    day = 86_400
    events = frame([(1, 10, 0), (1, 20, 2 * day + 10),  # starts day 0 -> train even though it ends on day 2
                    (2, 10, 3 * day), (2, 20, 3 * day + 1),  # valid
                    (3, 30, 4 * day + 5), (3, 10, 4 * day + 6),  # test
                    (4, 10, day)])
    parts = temporal_split(events, valid_days=1, test_days=1)
    assert sorted(set(parts["train"]["session_id"])) == [1, 4]
    assert parts["valid"]["session_id"].unique().tolist() == [2]
    assert parts["test"]["session_id"].unique().tolist() == [3]
    assert sum(len(p) for p in parts.values()) == len(events)


def test_negative_or_inexact_ids_are_refused_so_minus_one_stays_the_serving_padding():
    with pytest.raises(DataError, match="1 negative id.*'item_id'.*-1 is the serving padding"):
        SessionWorkflow().fit(TRAIN.assign(item_id=TRAIN["item_id"].where(TRAIN.index != 1, -1)))
    with pytest.raises(DataError, match="floats beyond 2..53.*'session_id'"):
        SessionWorkflow().fit(TRAIN.assign(session_id=TRAIN["session_id"].astype(float) + 2.0**53))


def test_encode_item_ids_keeps_ids_beyond_2_53_exact():
    big = 2**53 + 1
    wf = SessionWorkflow().fit(TRAIN.assign(item_id=TRAIN["item_id"].replace({30: big})))
    assert wf.encode_item_ids([[big, big + 1, 10]]).tolist()[0][:3] == [4, 1, 2]  # big + 1 was never seen
