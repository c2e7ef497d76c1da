"""Per-click features known when the click happens: ``log_gap`` = log1p(seconds since the previous click, 0 first),
and the session's start hour and weekday on circles (sin, cos), the same for every click of a session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sessrec_course.arrays import Ragged, pad_ragged, to_ragged
from sessrec_course.etl.workflow import ITEM_COLUMN, TIME_COLUMN, list_column

TIME_FEATURES = ("log_gap", "hour_sin", "hour_cos", "weekday_sin", "weekday_cos")
N_TIME_FEATURES = len(TIME_FEATURES)
SESSION_COLUMNS = ("start_hour", "start_weekday")


def time_feature_values(table: pa.Table, source: str | Path = "table") -> Ragged:
    """Per-click :data:`TIME_FEATURES` of an ETL table: ``(values (clicks, 5) float32, offsets)`` like its item lists."""
    if missing := [c for c in (ITEM_COLUMN, TIME_COLUMN, *SESSION_COLUMNS) if c not in table.column_names]:
        raise ValueError(f"{source}: time features need the columns {missing} (columns: {table.column_names}); "
                         f"re-run the ETL (SessionWorkflow.transform writes them)")
    _, offsets = to_ragged(list_column(table, source, ITEM_COLUMN))
    gaps, gap_offsets = to_ragged(list_column(table, source, TIME_COLUMN), dtype=np.float64)
    if not np.array_equal(offsets, gap_offsets):
        raise ValueError(f"{source}: {TIME_COLUMN} and {ITEM_COLUMN} differ in length; expected one gap per click")
    if (bad := gaps[~(gaps >= 0)]).size:  # negative or NaN
        raise ValueError(f"{source}: {TIME_COLUMN} holds {bad[0]}; expected seconds >= 0 since the previous click")
    per_session = {}
    for column, period in zip(SESSION_COLUMNS, (24, 7), strict=True):
        values = table.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
        if np.isnan(values).any() or (values < 0).any() or (values >= period).any():
            raise ValueError(f"{source}: {column} must lie in 0..{period - 1}, found {values.min()}..{values.max()}")
        per_session[column] = np.repeat(2 * np.pi * values / period, np.diff(offsets))
    hour, weekday = per_session["start_hour"], per_session["start_weekday"]
    values = np.stack([np.log1p(gaps), np.sin(hour), np.cos(hour), np.sin(weekday), np.cos(weekday)], axis=1)
    return values.astype(np.float32), offsets


def read_time_features(path: str | Path, max_length: int) -> np.ndarray:
    """The time features of an ETL parquet file, right-padded like ``read_sessions``: ``(N, max_length, 5)`` float32."""
    path = Path(path)
    names = set(pq.read_schema(path).names)
    table = pq.read_table(path, columns=[c for c in (ITEM_COLUMN, TIME_COLUMN, *SESSION_COLUMNS) if c in names])
    values, offsets = time_feature_values(table, path)
    return pad_ragged(values, offsets[:-1], offsets[1:], max_length, dtype=np.float32, pad=0)
