"""Temporal train/validation/test split by session start: the future never leaks into training."""

from __future__ import annotations

from typing import Any

import numpy as np

from sessrec_course.data.errors import DataError
from sessrec_course.etl.frame import backend_of
from sessrec_course.etl.sessions import NS_PER_S, session_starts, validate_events


def temporal_split(events: Any, valid_days: float = 1.0, test_days: float = 1.0,
                   source: str = "events") -> dict[str, Any]:
    """Split whole sessions by start: the last ``test_days`` to test, the ``valid_days`` before to valid."""
    validate_events(events, source=source)
    be = backend_of(events)
    sess, ts = be.column(events, "session_id", "int64"), be.timestamps_ns(events)
    order = be.xp.lexsort(be.xp.stack([ts, sess]))
    first = order[session_starts(be.xp, sess[order])]
    sessions, start = be.to_numpy(sess[first]), be.to_numpy(ts[first])  # sorted by session id
    end = int(start.max())
    test_from = end - int(test_days * 86_400 * NS_PER_S)
    valid_from = test_from - int(valid_days * 86_400 * NS_PER_S)
    if valid_from <= int(start.min()):
        span = (end - int(start.min())) / (86_400 * NS_PER_S)
        raise DataError(f"the sessions start within {span:.4g} days", source=source, column="timestamp",
                        expected=f"a log spanning more than valid_days + test_days = {valid_days + test_days:g} days")
    label = np.where(start > test_from, 2, np.where(start > valid_from, 1, 0)).astype(np.int8)
    event_label = label[np.searchsorted(sessions, be.to_numpy(be.column(events, "session_id", "int64")))]
    return {name: events[be.xp.asarray(event_label == code)].reset_index(drop=True)
            for code, name in enumerate(("train", "valid", "test"))}
