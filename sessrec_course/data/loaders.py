"""Loaders for real click-log formats, all returning the canonical event table of docs/design.md.

Every loader raises :class:`~sessrec_course.data.errors.DataError` naming the file, the column and what
was expected (missing columns, wrong types, empty files, unparsable timestamps, null ids), and
:class:`FileNotFoundError` with instructions (see :mod:`sessrec_course.data.download`) when the file is absent.
Loaders only read: they never write anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sessrec_course.data.errors import DataError

log = logging.getLogger(__name__)

CANONICAL = ("session_id", "item_id", "timestamp", "category", "price", "event_type")
YOOCHOOSE_SPECIAL_OFFER = -2  # YOOCHOOSE category "S"; 0 / missing → -1 (unknown)


def _check_file(path: str | Path, dataset: str | None = None) -> Path:
    path = Path(path)
    if not path.is_file():
        hint = ""
        if dataset:
            from sessrec_course.data.download import instructions

            hint = "\n" + instructions(dataset)
        raise FileNotFoundError(f"{path} not found{hint}")
    if path.stat().st_size == 0:
        raise DataError("the file is empty", source=str(path), expected="a non-empty click log")
    return path


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError as exc:
        raise DataError("the file has no data", source=str(path), expected="a header and rows") from exc
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse: {exc}", source=str(path)) from exc
    if frame.empty:
        raise DataError("the file has a header but no rows", source=str(path), expected="at least one event")
    return frame


def _require(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    for column in columns:
        if column not in frame.columns:
            raise DataError("missing column", source=source, column=column,
                            expected=f"columns {columns}; found {list(frame.columns)}")


def _ids(series: pd.Series, source: str, column: str, factorize: bool = False) -> np.ndarray:
    """Return int64 ids; strings are factorized (1, 2, ... in order of appearance) when ``factorize``."""
    n_null = int(series.isna().sum())
    if n_null:
        raise DataError(f"{n_null} null id(s), first at row {int(np.flatnonzero(series.isna())[0])}",
                        source=source, column=column, expected="no null ids")
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.to_numpy(np.int64)
    numeric = pd.to_numeric(series, errors="coerce")
    if not factorize:
        bad = numeric.isna() | (numeric != numeric.round())
        if bool(bad.any()):
            raise DataError(f"non-integer id {series[bad].iloc[0]!r}", source=source, column=column,
                            expected="integer ids")
        return numeric.to_numpy(np.int64)
    codes, _ = pd.factorize(series, sort=False)
    return codes.astype(np.int64) + 1


def parse_timestamps(series: pd.Series, source: str, column: str, unit: str | None = None,
                     fmt: str | None = None) -> pd.Series:
    """Parse a time column into naive UTC ``datetime64[ns]``; raise DataError on nulls or unparsable values."""
    if series.isna().any():
        raise DataError(f"{int(series.isna().sum())} missing timestamp(s)", source=source, column=column,
                        expected="a time for every event")
    try:
        if unit is not None:
            values = pd.to_numeric(series, errors="raise")
            parsed = pd.to_datetime(values, unit=unit, utc=True)
        elif pd.api.types.is_datetime64_any_dtype(series.dtype):
            parsed = series if getattr(series.dtype, "tz", None) else series.dt.tz_localize("UTC")
        else:
            parsed = pd.to_datetime(series, format=fmt or "ISO8601", utc=True, errors="coerce")
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"unparsable timestamps ({exc})", source=source, column=column,
                        expected=f"{'numbers in ' + unit if unit else fmt or 'ISO 8601 date-times'}") from exc
    bad = parsed.isna()
    if bool(bad.any()):
        raise DataError(f"unparsable timestamp {series[bad].iloc[0]!r} ({int(bad.sum())} rows)", source=source,
                        column=column, expected=fmt or "ISO 8601 date-times")
    return parsed.dt.tz_convert(None).astype("datetime64[ns]").reset_index(drop=True)


def _canonical(session: np.ndarray, item: np.ndarray, timestamp: pd.Series, source: str,
               category: Any = None, price: Any = None, event_type: Any = None) -> pd.DataFrame:
    data: dict[str, Any] = {"session_id": session, "item_id": item, "timestamp": timestamp.to_numpy()}
    if category is not None:
        data["category"] = np.asarray(category, dtype=np.int64)
    if price is not None:
        data["price"] = np.asarray(price, dtype=np.float32)
    if event_type is not None:
        data["event_type"] = pd.Series(event_type).astype("string").to_numpy()
    frame = pd.DataFrame(data)
    log.info("%s: %d events, %d sessions, %d items", source, len(frame), frame["session_id"].nunique(),
             frame["item_id"].nunique())
    return frame


def load_yoochoose_clicks(path: str | Path, nrows: int | None = None) -> pd.DataFrame:
    """Read the raw ``yoochoose-clicks.dat`` (``SessionId,Timestamp,ItemId,Category``, no header)."""
    path = _check_file(path, "yoochoose")
    raw = _read_csv(path, header=None, names=["SessionId", "Timestamp", "ItemId", "Category"], nrows=nrows,
                    dtype={"Category": str})
    src = str(path)
    cat = pd.to_numeric(raw["Category"], errors="coerce")
    cat = cat.where(cat > 0, -1).where(raw["Category"] != "S", YOOCHOOSE_SPECIAL_OFFER).fillna(-1)
    return _canonical(_ids(raw["SessionId"], src, "SessionId"), _ids(raw["ItemId"], src, "ItemId"),
                      parse_timestamps(raw["Timestamp"], src, "Timestamp"), src, category=cat.to_numpy())


def load_yoochoose_prepared(path: str | Path) -> pd.DataFrame:
    """Read a session-rec prepared TSV (``SessionId ItemId Time``, Time in unix seconds)."""
    path = _check_file(path, "yoochoose")
    raw = _read_csv(path, sep="\t")
    src = str(path)
    _require(raw, ["SessionId", "ItemId", "Time"], src)
    return _canonical(_ids(raw["SessionId"], src, "SessionId"), _ids(raw["ItemId"], src, "ItemId"),
                      parse_timestamps(raw["Time"], src, "Time", unit="s"), src)


def load_diginetica(path: str | Path, categories_path: str | Path | None = None) -> pd.DataFrame:
    """Read DIGINETICA ``train-item-views.csv`` (``session_id;user_id;item_id;timeframe;eventdate``).

    The time of a view is ``eventdate`` plus ``timeframe`` milliseconds. ``categories_path`` (optional,
    ``product-categories.csv``: ``itemId;categoryId``) adds the category column.
    """
    path = _check_file(path, "diginetica")
    raw = _read_csv(path, sep=";")
    src = str(path)
    _require(raw, ["session_id", "item_id", "timeframe", "eventdate"], src)
    day = parse_timestamps(raw["eventdate"], src, "eventdate", fmt="%Y-%m-%d")
    frames = pd.to_numeric(raw["timeframe"], errors="coerce")
    if frames.isna().any():
        raise DataError("non-numeric timeframe", source=src, column="timeframe", expected="milliseconds")
    timestamp = day + pd.to_timedelta(frames.to_numpy(), unit="ms")
    item = _ids(raw["item_id"], src, "item_id")
    category = None
    if categories_path is not None:
        cats = _read_csv(_check_file(categories_path, "diginetica"), sep=";")
        _require(cats, ["itemId", "categoryId"], str(categories_path))
        lookup = pd.Series(cats["categoryId"].to_numpy(np.int64), index=cats["itemId"].to_numpy(np.int64))
        lookup = lookup[~lookup.index.duplicated()]
        category = lookup.reindex(item).fillna(-1).to_numpy(np.int64)
    return _canonical(_ids(raw["session_id"], src, "session_id"), item, timestamp, src, category=category)


def load_booking_trips(path: str | Path) -> pd.DataFrame:
    """Read Booking.com WSDM WebTour 2021 ``train_set.csv``: a trip (``utrip_id``) is a session of cities.

    Item = ``city_id``, time = ``checkin``, category = ``hotel_country`` (factorized), event type = device.
    """
    path = _check_file(path, "booking")
    raw = _read_csv(path)
    src = str(path)
    _require(raw, ["utrip_id", "city_id", "checkin"], src)
    category = None
    if "hotel_country" in raw.columns:
        category = pd.factorize(raw["hotel_country"])[0].astype(np.int64)  # -1 for missing
    return _canonical(_ids(raw["utrip_id"], src, "utrip_id", factorize=True), _ids(raw["city_id"], src, "city_id"),
                      parse_timestamps(raw["checkin"], src, "checkin", fmt="%Y-%m-%d"), src, category=category,
                      event_type=raw["device_class"] if "device_class" in raw.columns else None)


def load_rees46(path: str | Path, nrows: int | None = None, drop_null_sessions: bool = True) -> pd.DataFrame:
    """Read a REES46 e-commerce CSV (``event_time,event_type,product_id,category_id,...,user_session``).

    The original files hold a handful of rows without ``user_session``: they are dropped (and counted in the
    log) unless ``drop_null_sessions=False``, which raises instead.
    """
    path = _check_file(path, "rees46")
    raw = _read_csv(path, nrows=nrows)
    src = str(path)
    _require(raw, ["event_time", "product_id", "user_session"], src)
    if drop_null_sessions and raw["user_session"].isna().any():
        log.warning("%s: dropping %d rows without user_session", src, int(raw["user_session"].isna().sum()))
        raw = raw[raw["user_session"].notna()].reset_index(drop=True)
    category = None
    if "category_id" in raw.columns:
        category = pd.to_numeric(raw["category_id"], errors="coerce").fillna(-1).to_numpy(np.int64)
    return _canonical(_ids(raw["user_session"], src, "user_session", factorize=True),
                      _ids(raw["product_id"], src, "product_id"),
                      parse_timestamps(raw["event_time"], src, "event_time", fmt="%Y-%m-%d %H:%M:%S UTC"), src,
                      category=category, price=raw["price"] if "price" in raw.columns else None,
                      event_type=raw["event_type"] if "event_type" in raw.columns else None)


def load_table(path: str | Path, columns: Mapping[str, str] | None = None, timestamp_unit: str | None = None,
               timestamp_format: str | None = None, factorize_sessions: bool = False, **read_kwargs: Any) -> pd.DataFrame:
    """Read any CSV/TSV/parquet click log; ``columns`` maps canonical names to the file's names.

    Example: ``load_table("log.csv", {"session_id": "sid", "item_id": "sku", "timestamp": "ts"},
    timestamp_unit="s")``. Unmapped canonical columns are taken by their own name when present.
    """
    path = _check_file(path)
    src = str(path)
    if path.suffix in (".parquet", ".pq"):
        try:
            raw = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for broken files
            raise DataError(f"cannot read parquet: {exc}", source=src) from exc
        if raw.empty:
            raise DataError("the file has no rows", source=src, expected="at least one event")
    else:
        sep = read_kwargs.pop("sep", "\t" if path.suffix in (".tsv", ".txt") else ",")
        raw = _read_csv(path, sep=sep, **read_kwargs)
    mapping = {name: name for name in CANONICAL if name in raw.columns}
    mapping.update(columns or {})
    _require(raw, [mapping.get(c, c) for c in ("session_id", "item_id", "timestamp")], src)
    get = {c: raw[mapping[c]] for c in CANONICAL if c in mapping and mapping[c] in raw.columns}
    category = None
    if "category" in get:
        category = pd.to_numeric(get["category"], errors="coerce").fillna(-1).to_numpy(np.int64)
    return _canonical(_ids(get["session_id"], src, mapping["session_id"], factorize=factorize_sessions),
                      _ids(get["item_id"], src, mapping["item_id"]),
                      parse_timestamps(get["timestamp"], src, mapping["timestamp"], unit=timestamp_unit,
                                       fmt=timestamp_format), src,
                      category=category, price=get.get("price"), event_type=get.get("event_type"))
