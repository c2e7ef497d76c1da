"""Lesson 01 exercises: inactivity-gap sessionizing, a temporal split without leakage, frequency-threshold encoding.

Reference solutions are what ``q1.solution()`` shows; the hidden cases are small frames built here, never the
ones of the lesson. numpy and pandas only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sessrec_course.exercises.core import Case, Exercise


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


# ---------------------------------------------------------------------------------------------- hidden cases
def _t(*minutes: float) -> list[pd.Timestamp]:
    return [pd.Timestamp("2024-03-01 08:00") + pd.Timedelta(minutes=m) for m in minutes]


def _user_log(users: list, minutes: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"user_id": users, "item_id": np.arange(10, 10 + len(users)), "timestamp": _t(*minutes)})


def _split_cases() -> list[Case]:
    return [
        Case("one user, a 40-minute pause", (_user_log([7] * 4, [0, 5, 45, 50]),),
             hint="a pause longer than gap_seconds starts a new session"),
        Case("a pause of exactly the gap", (_user_log([7] * 3, [0, 30, 31]),),
             hint="only a pause *longer* than gap_seconds starts a new session; exactly the gap stays in"),
        Case("two users interleaved in time", (_user_log([1, 2, 1, 2, 1], [0, 1, 2, 3, 50]),),
             hint="each user has their own stream of events: compare an event with the same user's previous one"),
        Case("rows not in time order", (_user_log([3, 3, 3, 4], [60, 0, 5, 2]).sample(frac=1, random_state=1),),
             hint="sort by user and time before looking at gaps, and return the ids in the input's row order"),
        Case("a 10-minute gap setting", (_user_log([5] * 4, [0, 8, 19, 21]),), kwargs={"gap_seconds": 600},
             hint="use the gap_seconds argument, not a fixed 30 minutes"),
    ]


def same_sessions(expected, got) -> bool:
    """True when ``got`` puts the same rows together as ``expected``: session ids are labels, any numbering will do."""
    got = np.asarray(got)
    if got.shape != expected.shape:
        return False
    pairs = pd.DataFrame({"expected": expected, "got": got}).drop_duplicates()
    return pairs["expected"].is_unique and pairs["got"].is_unique


def _diagnose_sessions(case: Case, expected, got) -> str | None:
    got = np.asarray(got)
    if got.shape != expected.shape:
        return f"return one session id per input row ({len(expected)} here)"
    if np.array_equal(np.sort(got), np.sort(expected)):
        return "right sessions, wrong order: return the ids in the input's row order (reindex by the input's index)"
    return None


def _session_log(starts_h: dict[int, float], lengths: dict[int, int], step_min: float = 20) -> pd.DataFrame:
    rows = []
    for sid, start in starts_h.items():
        for j in range(lengths.get(sid, 2)):
            rows.append((sid, 100 + j, pd.Timestamp("2024-03-01") + pd.Timedelta(hours=start, minutes=j * step_min)))
    frame = pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])
    return frame.sample(frac=1, random_state=0).reset_index(drop=True)


def _split_ids_cases() -> list[Case]:
    day = 24.0
    return [
        Case("three days, one test day", (_session_log({1: 0, 2: 30, 3: 50, 4: 60, 5: 70}, {}), 1),
             hint="a session goes to test when it *starts* within test_days of the last session start"),
        Case("a session that straddles the cutoff", (_session_log({1: 0, 2: 2 * day - 1.5, 3: 2 * day, 4: 3 * day},
                                                                  {2: 8}, step_min=30), 1),
             hint="keep a session whole, on the side of its start: split sessions, not events"),
        Case("session ids not in time order", (_session_log({9: 0, 3: 20, 7: 40, 1: 75, 5: 80}, {}), 1.5),
             hint="order by time, not by session id: ids are labels, not clocks"),
        Case("two test days", (_session_log({1: 0, 2: 10, 3: 2 * day + 1, 4: 3 * day, 5: 4 * day}, {}), 2),
             hint="use the test_days argument"),
    ]


def _diagnose_split(case: Case, expected, got) -> str | None:
    try:
        train, test = (set(np.asarray(part).tolist()) for part in got)
    except (TypeError, ValueError):
        return "return a pair (train ids, test ids), each a sorted array of session ids"
    if train & test:
        return (f"session(s) {sorted(train & test)} are in train and in test: the start of a session leaks "
                "into training. Split whole sessions, by their start time")
    if test - set(expected[1].tolist()):
        return ("some of your test sessions start before the cutoff: decide by each session's first timestamp "
                "(session ids are labels, not clocks)")
    return None


def _encode_cases() -> list[Case]:
    return [
        Case("frequency order", ([[5, 6, 6], [6, 7, 7, 7]], [[7, 6, 5]]),
             hint="the most frequent training item gets id 2, the next 3, ..."),
        Case("ties go to the lower raw id", ([[30, 20], [10, 30, 20, 10]], [[10, 20, 30]]),
             hint="items with the same count are ordered by their raw id, smallest first"),
        Case("unseen items", ([[4, 4, 8]], [[8, 99, 4], [123]]),
             hint="an item never seen in training becomes the OOV id 1; ids 0 and 1 are never real items"),
        Case("rare items under the threshold", ([[1, 2, 2, 3, 3, 3], [2, 3]], [[1, 2, 3]]), kwargs={"min_count": 3},
             hint="an item seen fewer than min_count times is OOV (1) — it stays in the session, it is not dropped"),
        Case("exactly the threshold", ([[8, 9, 9], [8]], [[9, 8]]), kwargs={"min_count": 2},
             hint="an item seen exactly min_count times is kept"),
    ]


def _diagnose_encode(case: Case, expected, got) -> str | None:
    if not (isinstance(got, list) and all(isinstance(s, list) for s in got)):
        return "return a list of lists of ints, one list per session"
    if [len(s) for s in got] != [len(s) for s in expected]:
        return "keep every event: a rare or unseen item becomes OOV (1), it is not removed"
    pairs = [(e, g) for es, gs in zip(expected, got, strict=True) for e, g in zip(es, gs, strict=True)]
    if any(g == 0 for _, g in pairs) or all(g == e - 1 for e, g in pairs if e >= 2):
        return "your ids start too low: 0 is padding and 1 is OOV, so the most frequent real item is 2"
    if any(g == 1 and e >= 2 for e, g in pairs):
        return ("you made an item OOV (1) that keeps an id: an item seen at least min_count times, exactly "
                "min_count included, is a real item")
    return None


q1 = Exercise("inactivity-gap sessionizing", split_sessions, _split_cases, diagnose=_diagnose_sessions,
              compare=same_sessions,
              hints=["sort by user and time, then a new session starts at a user's first event or after a pause "
                     "longer than gap_seconds; a cumulative sum of those starts numbers the sessions",
                     "groupby('user_id')['timestamp'].diff() gives the pause before each event (NaT for the first)",
                     "return the ids in the input's row order: keep the index while sorting and reindex at the end"])
q2 = Exercise("a temporal split without leakage", temporal_split_ids, _split_ids_cases, diagnose=_diagnose_split,
              hints=["find each session's start time; the cutoff is the last start minus test_days",
                     "a session whose start is after the cutoff is test, every other session is train; "
                     "a session is never cut in two",
                     "groupby('session_id')['timestamp'].min() gives the starts"])
q3 = Exercise("frequency-threshold encoding with pad and OOV", encode_items, _encode_cases, diagnose=_diagnose_encode,
              hints=["count the items of the training sessions, keep those seen at least min_count times",
                     "order the kept items by count (high first), then raw id (low first), and number them from 2",
                     "look each event up in that table; anything missing maps to 1"])
