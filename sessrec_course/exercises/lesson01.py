"""Lesson 01 exercises: inactivity-gap sessionizing, a temporal split without leakage, frequency-threshold encoding."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from sessrec_course.exercises.core import Case, Exercise, like


def split_sessions(events, gap_seconds=1800):
    """One session id per row of ``events`` (user_id, item_id, timestamp): a new session after a longer gap."""
    ordered = events.sort_values(["user_id", "timestamp"], kind="stable")
    gap = ordered.groupby("user_id")["timestamp"].diff().dt.total_seconds()
    new_session = gap.isna() | (gap > gap_seconds)  # a user's first event, or a pause longer than the gap
    session_id = new_session.cumsum()  # 1, 2, ... in (user, time) order
    return session_id.reindex(events.index).to_numpy(np.int64)


def temporal_split_ids(events, test_days):
    """(train ids, test ids): sessions starting in the last ``test_days`` of the log are test, whole."""
    start = events.groupby("session_id")["timestamp"].min()
    cutoff = start.max() - pd.Timedelta(days=test_days)
    train = start.index[start <= cutoff].to_numpy()
    test = start.index[start > cutoff].to_numpy()
    return np.sort(train), np.sort(test)


def encode_items(train_sessions, sessions, min_count=1):
    """Encode raw sessions: items seen ``min_count``+ times in train get 2, 3, ... (most frequent first), others 1."""
    from collections import Counter

    counts = Counter(item for session in train_sessions for item in session)
    kept = sorted((item for item, n in counts.items() if n >= min_count), key=lambda item: (-counts[item], item))
    code = {item: i + 2 for i, item in enumerate(kept)}  # 0 is padding, 1 is OOV
    return [[code.get(item, 1) for item in session] for session in sessions]


def _log(users: list, minutes: list[float]) -> pd.DataFrame:
    time = pd.Timestamp("2024-03-01 08:00") + pd.to_timedelta(np.round(np.multiply(minutes, 60)), unit="s")
    return pd.DataFrame({"user_id": users, "item_id": np.arange(10, 10 + len(users)), "timestamp": time})


def same_sessions(expected, got) -> bool:
    """Whether ``got`` groups the rows as ``expected`` does: session ids are labels, any numbering will do."""
    got = np.asarray(got)
    if got.shape != expected.shape:
        return False
    pairs = pd.DataFrame({"expected": expected, "got": got}).drop_duplicates()
    return pairs["expected"].is_unique and pairs["got"].is_unique


def _sessions(events, gap_seconds=1800, part="total", longer=True, per_user=True, in_place=True):
    ordered = events.sort_values(["user_id", "timestamp"], kind="stable")
    diff = (ordered.groupby("user_id") if per_user else ordered)["timestamp"].diff()
    gap = diff.dt.total_seconds() if part == "total" else diff.dt.seconds
    ids = (gap.isna() | (gap > gap_seconds if longer else gap >= gap_seconds)).cumsum()
    return (ids.reindex(events.index) if in_place else ids).to_numpy(np.int64)


def _split(events, test_days, from_end=False, whole_days=False, inclusive=False, by="min"):
    times = events.groupby("session_id")["timestamp"]
    last = events["timestamp"].max() if from_end else times.min().max()
    cutoff = last - pd.Timedelta(days=int(test_days) if whole_days else test_days)
    key = times.agg(by)
    test = key >= cutoff if inclusive else key > cutoff
    return np.sort(key.index[~test].to_numpy()), np.sort(key.index[test].to_numpy())


def _starts(starts_h: dict[int, float], lengths: dict[int, int] | None = None, step_min: float = 20) -> pd.DataFrame:
    rows = [(sid, 100 + j, pd.Timestamp("2024-03-01") + pd.Timedelta(hours=start, minutes=j * step_min))
            for sid, start in starts_h.items() for j in range((lengths or {}).get(sid, 2))]
    frame = pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])
    return frame.sample(frac=1, random_state=0).reset_index(drop=True)


q1 = Exercise(
    "inactivity-gap sessionizing", split_sessions,
    lambda: [Case("one user, a 40-minute pause", (_log([7] * 4, [0, 5, 45, 50]),)),
             Case("a pause of exactly the gap", (_log([7] * 4, [0, 30, 31, 61 + 1 / 60]),)),
             Case("two users interleaved in time", (_log([1, 2, 1, 2, 1], [0, 1, 2, 3, 50]),),
                  "each user has their own stream of events"),
             Case("rows not in time order", (_log([3, 3, 3, 4], [60, 0, 5, 2]).sample(frac=1, random_state=1),)),
             Case("a visitor back the next day", (_log([5, 5, 5], [0, 4, 24 * 60 + 9]),)),
             Case("a 10-minute gap setting", (_log([5] * 4, [0, 8, 19, 21]),), "use the gap_seconds argument",
                  {"gap_seconds": 600})],
    hints=["Sort by user and time; a new session starts at a user's first event or after a pause longer than "
           "gap_seconds. A running count of those starts numbers the sessions.",
           "Take each pause within one user's own events, in seconds, whatever its length in days.",
           "The ids go back in the input's row order."],
    compare=same_sessions,
    mistakes={"`.dt.seconds` is only the seconds part of a pause (a day and 5 minutes gives 300): use total seconds":
                  like(_sessions, same_sessions, part="seconds"),
              "a pause of exactly gap_seconds stays in the session: only a longer pause starts a new one":
                  like(_sessions, same_sessions, longer=False),
              "compare each event with the same user's previous event, not with the previous row":
                  like(_sessions, same_sessions, per_user=False),
              "right sessions, wrong rows: return the ids in the input's row order, not the sorted order":
                  like(_sessions, same_sessions, in_place=False)})

q2 = Exercise(
    "a temporal split without leakage", temporal_split_ids,
    lambda: [Case("three days, one test day", (_starts({1: 0, 2: 30, 3: 50, 4: 60, 5: 70}), 1)),
             Case("a session that straddles the cutoff", (_starts({1: 0, 2: 46.5, 3: 48, 4: 72}, {2: 8}, 30), 1),
                  "a session is never cut in two"),
             Case("session ids not in time order", (_starts({9: 0, 3: 20, 7: 40, 1: 75, 5: 80, 4: 50}), 1.5),
                  "ids are labels, not clocks"),
             Case("a long last session", (_starts({1: 0, 2: 20, 3: 30, 4: 44}, {4: 20}, 30), 1)),
             Case("a session that starts at the cutoff", (_starts({1: 0, 2: 24, 3: 24.1, 4: 48}), 1)),
             Case("a quarter of a day", (_starts({1: 0, 2: 40, 3: 43, 4: 47, 5: 48}), 0.25)),
             Case("two test days", (_starts({1: 0, 2: 10, 3: 49, 4: 72, 5: 96}), 2))],
    hints=["Find each session's start; the cutoff is the last session start minus test_days.",
           "A session starting after the cutoff is test, every other one train; a session is never cut in two.",
           "test_days may be a fraction of a day."],
    mistakes={"measure the cutoff from the last session *start*, not from the last event": like(_split, from_end=True),
              "test_days can be a fraction (0.25 is six hours): do not round it": like(_split, whole_days=True),
              "a session that starts exactly at the cutoff is train, test is after it": like(_split, inclusive=True),
              "decide by each session's first event, not by its last one": like(_split, by="max"),
              "a session is in train and in test: split whole sessions, by their start time":
                  lambda case, expected, got: bool(set(np.ravel(got[0])) & set(np.ravel(got[1])))})


def _encoded(train_sessions, sessions, min_count=1, over=0, seen_order=False):
    counts = Counter(item for session in train_sessions for item in session)
    kept = [item for item, n in counts.most_common() if n >= min_count + over]  # most_common: ties as first seen
    code = {item: i + 2 for i, item in enumerate(kept if seen_order else sorted(kept, key=lambda i: (-counts[i], i)))}
    return [[code.get(item, 1) for item in session] for session in sessions]


q3 = Exercise(
    "frequency-threshold encoding with pad and OOV", encode_items,
    [Case("frequency order", ([[5, 6, 6], [6, 7, 7, 7]], [[7, 6, 5]]), "the most frequent item gets id 2"),
     Case("ties go to the lower raw id", ([[30, 20], [10, 30, 20, 10]], [[10, 20, 30]])),
     Case("unseen items", ([[4, 4, 8]], [[8, 99, 4], [123]]), "ids 0 and 1 are never real items"),
     Case("rare items under the threshold", ([[1, 2, 2, 3, 3, 3], [2, 3]], [[1, 2, 3]]), "", {"min_count": 3}),
     Case("exactly the threshold", ([[8, 9, 9], [8]], [[9, 8]]), kwargs={"min_count": 2})],
    hints=["Count the items of the training sessions and keep those seen at least min_count times.",
           "Order the kept items by count, high first, then by raw id, low first; the first one is 2."],
    mistakes={"keep every event: a rare or unseen item becomes OOV (1), it is not removed":
                  lambda case, expected, got: [len(s) for s in got] != [len(s) for s in expected],
              "your ids start too low: 0 is padding and 1 is OOV, so the most frequent item is 2":
                  like(lambda *args, **kw: [[i - (i > 1) for i in s] for s in encode_items(*args, **kw)]),
              "equal counts go to the lower raw id first, not to the one seen first": like(_encoded, seen_order=True),
              "an item seen exactly min_count times is kept: it is no OOV": like(_encoded, over=1)})

