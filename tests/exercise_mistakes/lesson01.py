"""Lesson 01: learners' wrong answers, and the mutants of the references that are equivalent to them."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from exercise_mistakes import mistake

EQUIVALENT = {
    "lesson01.q1": {
        "ordered = events.sort_values(['user_id', 'timestamp'])":
            "rows of one user at the same time are 0 s apart: one session whatever their order",
        "return session_id.reindex(events.index).to_numpy(np.int32)": "session ids are labels: any integer type",
    },
    "lesson01.q3": {
        "def encode_items(train_sessions, sessions, min_count=0):": "every counted item has a count >= 1",
    },
}


# ---- q1: sessionizing ----------------------------------------------------------------------------------------------
@mistake("lesson01.q1", "`.dt.seconds`")
def seconds_of_the_pause(events, gap_seconds=1800):
    ordered = events.sort_values(["user_id", "timestamp"])
    pause = ordered.groupby("user_id").timestamp.diff().dt.seconds
    new = pause.isna() | (pause > gap_seconds)
    return new.cumsum().reindex(events.index).to_numpy()


@mistake("lesson01.q1", "exactly gap_seconds")
def pause_of_the_gap_splits(events, gap_seconds=1800):
    ordered = events.sort_values(["user_id", "timestamp"], kind="stable")
    gap = ordered.groupby("user_id")["timestamp"].diff().dt.total_seconds()
    return (gap.isna() | (gap >= gap_seconds)).cumsum().reindex(events.index).to_numpy()


@mistake("lesson01.q1", "same user's previous event")
def one_stream_for_everyone(events, gap_seconds=1800):
    ordered = events.sort_values(["user_id", "timestamp"])
    gap = ordered["timestamp"].diff().dt.total_seconds()
    return (gap.isna() | (gap > gap_seconds)).cumsum().reindex(events.index).to_numpy()


@mistake("lesson01.q1", "each user has their own stream")
def time_order_numbering(events, gap_seconds=1800):
    ordered = events.sort_values("timestamp")  # numbers sessions in time order, across users
    gap = ordered.groupby("user_id")["timestamp"].diff().dt.total_seconds()
    return (gap.isna() | (gap > gap_seconds)).cumsum().reindex(events.index).to_numpy()


@mistake("lesson01.q1", "use the gap_seconds argument")
def always_thirty_minutes(events, gap_seconds=1800):
    ordered = events.sort_values(["user_id", "timestamp"])
    gap = ordered.groupby("user_id")["timestamp"].diff() > pd.Timedelta(minutes=30)
    starts = gap | ordered["user_id"].ne(ordered["user_id"].shift())
    return starts.cumsum().reindex(events.index).to_numpy()


@mistake("lesson01.q1", "input's row order")
def in_sorted_order(events, gap_seconds=1800):
    ordered = events.sort_values(["user_id", "timestamp"], kind="stable")
    gap = ordered.groupby("user_id")["timestamp"].diff().dt.total_seconds()
    return (gap.isna() | (gap > gap_seconds)).cumsum().to_numpy()


@mistake("lesson01.q1")
def loop_over_rows(events, gap_seconds=1800):
    ids, last, session = {}, {}, 0
    for index, row in events.iterrows():  # forgets to sort: rows are not in time order
        user, time = row["user_id"], row["timestamp"]
        if user not in last or (time - last[user]).total_seconds() > gap_seconds:
            session += 1
        last[user] = time
        ids[index] = session
    return np.array([ids[i] for i in events.index])


# ---- q2: temporal split --------------------------------------------------------------------------------------------
@mistake("lesson01.q2", "from the last session *start*")
def cutoff_from_the_last_click(events, test_days):
    cutoff = events.timestamp.max() - pd.Timedelta(days=test_days)
    first = events.groupby("session_id").timestamp.min()
    return np.sort(first[first <= cutoff].index.values), np.sort(first[first > cutoff].index.values)


@mistake("lesson01.q2", "fraction")
def whole_days(events, test_days):
    first = events.groupby("session_id")["timestamp"].min()
    cutoff = first.max() - pd.to_timedelta(int(test_days), unit="D")
    return np.sort(first.index[first <= cutoff]), np.sort(first.index[first > cutoff])


@mistake("lesson01.q2", "starts exactly at the cutoff")
def cutoff_goes_to_test(events, test_days):
    first = events.groupby("session_id")["timestamp"].min()
    is_test = first >= first.max() - pd.Timedelta(days=test_days)
    return np.sort(first.index[~is_test]), np.sort(first.index[is_test])


@mistake("lesson01.q2", "in train and in test")
def split_the_events(events, test_days):
    cutoff = events["timestamp"].max() - pd.Timedelta(days=test_days)
    return (np.unique(events.loc[events["timestamp"] <= cutoff, "session_id"]),
            np.unique(events.loc[events["timestamp"] > cutoff, "session_id"]))


@mistake("lesson01.q2", "first event")
def by_end_time(events, test_days):
    end = events.groupby("session_id")["timestamp"].max()
    cutoff = events.groupby("session_id")["timestamp"].min().max() - pd.Timedelta(days=test_days)
    return np.sort(end.index[end <= cutoff].to_numpy()), np.sort(end.index[end > cutoff].to_numpy())


@mistake("lesson01.q2", "ids are labels")
def by_session_id(events, test_days):
    first = events.groupby("session_id")["timestamp"].min()
    n_test = int((first > first.max() - pd.Timedelta(days=test_days)).sum())
    ids = np.unique(events["session_id"])  # assumes ids grow with time
    return ids[:-n_test], ids[-n_test:]


# ---- q3: encoding --------------------------------------------------------------------------------------------------
def _encode(code, sessions):
    return [[code.get(item, 1) for item in session] for session in sessions]


@mistake("lesson01.q3", "start too low")
def numbered_from_one(train_sessions, sessions, min_count=1):
    counts = Counter(item for s in train_sessions for item in s)
    kept = sorted((i for i in counts if counts[i] >= min_count), key=lambda i: (-counts[i], i))
    return _encode({item: n + 1 for n, item in enumerate(kept)}, sessions)


@mistake("lesson01.q3", "not to the one seen first")
def most_common_order(train_sessions, sessions, min_count=1):
    counts = Counter(item for s in train_sessions for item in s)
    return _encode({item: n + 2 for n, (item, c) in enumerate(counts.most_common()) if c >= min_count}, sessions)


@mistake("lesson01.q3", "it is not removed")
def drops_the_rare_items(train_sessions, sessions, min_count=1):
    counts = Counter(item for s in train_sessions for item in s)
    kept = sorted((i for i in counts if counts[i] >= min_count), key=lambda i: (-counts[i], i))
    code = {item: n + 2 for n, item in enumerate(kept)}
    return [[code[item] for item in s if item in code] for s in sessions]


@mistake("lesson01.q3", "exactly min_count")
def more_than_min_count(train_sessions, sessions, min_count=1):
    counts = Counter(item for s in train_sessions for item in s)
    kept = sorted((i for i in counts if counts[i] > min_count - 1 and counts[i] != min_count or min_count == 1),
                  key=lambda i: (-counts[i], i))
    return _encode({item: n + 2 for n, item in enumerate(kept)}, sessions)


@mistake("lesson01.q3")
def sessions_not_clicks(train_sessions, sessions, min_count=1):
    counts = Counter(item for s in train_sessions for item in set(s))  # counts sessions, not clicks
    kept = sorted((i for i in counts if counts[i] >= min_count), key=lambda i: (-counts[i], i))
    return _encode({item: n + 2 for n, item in enumerate(kept)}, sessions)


@mistake("lesson01.q3")
def first_seen_ids(train_sessions, sessions, min_count=1):
    counts = Counter(i for s in train_sessions for i in s)
    seen = list(dict.fromkeys(i for s in train_sessions for i in s if counts[i] >= min_count))
    return _encode({item: k + 2 for k, item in enumerate(seen)}, sessions)


@mistake("lesson01.q2")
def random_split(events, test_days):
    ids = np.unique(events["session_id"])
    test = np.random.default_rng(0).random(len(ids)) < 0.4
    return ids[~test], ids[test]
