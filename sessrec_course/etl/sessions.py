"""Array kernels of the ETL: validation, sorting, session boundaries, gap sessionizing (padding: :mod:`sessrec_course.arrays`).

Written against the array module of :mod:`sessrec_course.etl.frame` (numpy or cupy), never against a
specific library.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sessrec_course.arrays import pad_right
from sessrec_course.data.errors import DataError
from sessrec_course.etl.frame import Backend, backend_of

REQUIRED = {"session_id": "integer", "item_id": "integer", "timestamp": "datetime64"}
NS_PER_S = 1_000_000_000

__all__ = ["NS_PER_S", "REQUIRED", "pad_right", "session_starts", "sessionize", "sort_order", "validate_events"]


def validate_events(events: Any, source: str = "events", require_session: bool = True) -> None:
    """Raise :class:`DataError` unless ``events`` is a canonical event table (see docs/design.md)."""
    if not (isinstance(events, pd.DataFrame) or hasattr(events, "columns")):
        raise DataError(f"expected a DataFrame, got {type(events).__name__}", source=source)
    if len(events) == 0:
        raise DataError("the event table is empty", source=source, expected="at least one event")
    for column, kind in REQUIRED.items():
        if column == "session_id" and not require_session:
            continue
        if column not in events.columns:
            raise DataError("missing column", source=source, column=column,
                            expected=f"{kind} column; have {list(events.columns)}")
        dtype = events[column].dtype
        ok = (str(dtype).startswith("datetime64") if kind == "datetime64"
              else pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype))
        if not ok:
            raise DataError(f"wrong type {dtype}", source=source, column=column, expected=kind)
        n_null = int(events[column].isna().sum())
        if n_null:
            raise DataError(f"{n_null} null value(s)", source=source, column=column, expected="no nulls")
        values = events[column]
        if kind == "integer" and pd.api.types.is_float_dtype(dtype):
            if bool(((values != values.round()) | (values.abs() >= 2**53)).any()):
                raise DataError("non-integer values, or floats beyond 2**53 (not exact)", source=source,
                                column=column, expected="integer ids")
        if kind == "integer" and bool((values < 0).any()):
            raise DataError(f"{int((values < 0).sum())} negative id(s)", source=source, column=column,
                            expected="ids >= 0 (-1 is the serving padding)")


def sort_order(xp: Any, session: Any, ts: Any) -> Any | None:
    """Return the stable order by (session, timestamp), or None when already sorted."""
    if len(session) < 2:
        return None
    ds, dt = xp.diff(session), xp.diff(ts)
    if bool(((ds > 0) | ((ds == 0) & (dt >= 0))).all()):
        return None
    return xp.lexsort(xp.stack([ts, session]))


def session_starts(xp: Any, session: Any) -> Any:
    """Return the index of the first event of every session (events sorted by session)."""
    flags = xp.ones(len(session), dtype=bool)
    flags[1:] = session[1:] != session[:-1]
    return xp.flatnonzero(flags)


def sessionize(events: Any, gap_seconds: float = 1800.0, user_column: str = "user_id",
               source: str = "events") -> Any:
    """Add ``session_id`` to a log without one: a new session per user after ``gap_seconds`` of inactivity.

    Without ``user_column`` the whole log is one stream of events. Session ids number sessions from 1 in
    (user, time) order. Returns a new frame sorted by session and time.
    """
    validate_events(events, source=source, require_session=False)
    be: Backend = backend_of(events)
    xp = be.xp
    ts = be.timestamps_ns(events)
    if user_column in events.columns:
        if int(events[user_column].isna().sum()):
            raise DataError("null user ids", source=source, column=user_column, expected="no nulls")
        codes = events[user_column].astype("category").cat.codes
        user = be.column(events.assign(_u=codes), "_u", "int64")
    else:
        user = xp.zeros(len(ts), dtype=np.int64)
    order = xp.lexsort(xp.stack([ts, user]))
    ts_s, user_s = ts[order], user[order]
    new = xp.ones(len(ts_s), dtype=bool)
    new[1:] = (user_s[1:] != user_s[:-1]) | ((ts_s[1:] - ts_s[:-1]) > int(gap_seconds * NS_PER_S))
    out = events.iloc[be.to_numpy(order)].reset_index(drop=True)
    out["session_id"] = be.to_numpy(xp.cumsum(new)).astype(np.int64)
    return out
