"""Array kernels of the ETL (numpy or cupy, from :mod:`sessrec_course.etl.frame`): validation, sorting, sessions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sessrec_course.data.errors import DataError
from sessrec_course.etl.frame import backend_of

REQUIRED = {"session_id": "integer", "item_id": "integer", "timestamp": "datetime64"}
NS_PER_S = 1_000_000_000


def validate_events(events: Any, source: str = "events", require_session: bool = True) -> None:
    """Raise :class:`DataError` unless ``events`` is a canonical event table (see docs/design.md)."""
    if not hasattr(events, "columns"):  # a pandas or cuDF frame
        raise DataError(f"expected a DataFrame, got {type(events).__name__}", source=source)
    if len(events) == 0:
        raise DataError("the event table is empty", source=source, expected="at least one event")
    for column, kind in REQUIRED.items():
        if column == "session_id" and not require_session:
            continue
        if column not in events.columns:
            raise DataError("missing column", source=source, column=column,
                            expected=f"{kind} column; have {list(events.columns)}")
        values = events[column]
        floats = pd.api.types.is_float_dtype(values.dtype)
        if not (str(values.dtype).startswith("datetime64") if kind == "datetime64"
                else pd.api.types.is_integer_dtype(values.dtype) or floats):
            raise DataError(f"wrong type {values.dtype}", source=source, column=column, expected=kind)
        if n_null := int(values.isna().sum()):
            raise DataError(f"{n_null} null value(s)", source=source, column=column, expected="no nulls")
        if kind == "integer" and floats and bool(((values != values.round()) | (values.abs() >= 2**53)).any()):
            raise DataError("non-integer values, or floats beyond 2**53 (not exact)", source=source, column=column,
                            expected="integer ids")
        if kind == "integer" and bool((values < 0).any()):
            raise DataError(f"{int((values < 0).sum())} negative id(s)", source=source, column=column,
                            expected="ids >= 0 (-1 is the serving padding)")


def sort_order(xp: Any, session: Any, ts: Any) -> Any | None:
    """Return the stable order by (session, timestamp), or None when already sorted."""
    ds, dt = xp.diff(session), xp.diff(ts)
    return None if bool(((ds > 0) | ((ds == 0) & (dt >= 0))).all()) else xp.lexsort(xp.stack([ts, session]))


def session_starts(xp: Any, session: Any) -> Any:
    """Return the index of the first event of every session (events sorted by session)."""
    flags = xp.ones(len(session), dtype=bool)
    flags[1:] = session[1:] != session[:-1]
    return xp.flatnonzero(flags)


def sessionize(events: Any, gap_seconds: float = 1800.0, user_column: str = "user_id",
               source: str = "events") -> Any:
    """A copy sorted by (user, time) with ``session_id`` 1, 2, ...: a new session after ``gap_seconds`` idle."""
    validate_events(events, source=source, require_session=False)
    be = backend_of(events)
    xp, ts = be.xp, be.timestamps_ns(events)
    if user_column in events.columns:
        if int(events[user_column].isna().sum()):
            raise DataError("null user ids", source=source, column=user_column, expected="no nulls")
        user = be.column(events.assign(_u=events[user_column].astype("category").cat.codes), "_u", "int64")
    else:
        user = xp.zeros(len(ts), dtype=np.int64)
    order = xp.lexsort(xp.stack([ts, user]))
    ts_s, user_s = ts[order], user[order]
    new = xp.ones(len(ts_s), dtype=bool)
    new[1:] = (user_s[1:] != user_s[:-1]) | ((ts_s[1:] - ts_s[:-1]) > int(gap_seconds * NS_PER_S))
    out = events.iloc[be.to_numpy(order)].reset_index(drop=True)
    out["session_id"] = be.to_numpy(xp.cumsum(new)).astype(np.int64)
    return out
