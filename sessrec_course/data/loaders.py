"""Loaders of real click-log formats into the canonical event table; bad values raise a DataError (docs/design.md).

Ids are integers 0 .. 2**63-1 read exactly, category an integer or missing (-1), price a number or missing, and times
lie between 1995 and a year from now."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from sessrec_course.data.download import instructions
from sessrec_course.data.errors import DataError

log = logging.getLogger(__name__)

CANONICAL = ("session_id", "item_id", "timestamp", "category", "price", "event_type")
YOOCHOOSE_SPECIAL_OFFER = -2  # YOOCHOOSE category "S"; 0 / missing → -1 (unknown)
EARLIEST = pd.Timestamp("1995-01-01")  # before web shops: 1970 (time 0) usually stands for a missing time
EXACT_FLOAT = 2**53  # a float64 holds every integer only below this
INT64 = np.iinfo(np.int64)


def _check_file(path: str | Path, dataset: str | None = None) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found" + (f"\n{instructions(dataset)}" if dataset else ""))
    return path


def _unique_names(names: list[Any], source: str) -> None:
    names = [str(n) for n in names if pd.notna(n)]
    if twice := [n for i, n in enumerate(names) if n in names[:i]]:
        raise DataError(f"{names.count(twice[0])} columns are named {twice[0]!r}", source=source, column=twice[0],
                        expected="unique column names")


def _read_csv(path: Path, sep: str = ",", **kwargs: Any) -> pd.DataFrame:
    try:
        if kwargs.get("header", "infer") in ("infer", 0) and "names" not in kwargs:  # pandas renames duplicates
            _unique_names(pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str).iloc[0].tolist(), str(path))
        frame = pd.read_csv(path, sep=sep, **kwargs)
    except DataError:
        raise
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


def _refuse(series: pd.Series, bad: Any, problem: str, source: str, column: str, expected: str) -> None:
    """Raise a DataError at the first row where ``bad`` holds, if any."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        value = series.iloc[at]
        raise DataError(f"{repr(value) if isinstance(value, str) else value} {problem}", source=source, column=column,
                        row=series.index[at], expected=expected)


def _exact_int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _integers(series: pd.Series, source: str, column: str, minimum: int | None = 0) -> np.ndarray:
    """Return a column without nulls as exact int64 (ids when ``minimum=0``), or raise at its first bad value."""
    what = "integer ids from 0 to 2**63-1 (-1 is the serving padding)" if minimum == 0 else "integers within int64"
    if series.dtype.kind == "O":  # text: the int64 fast path when pandas parses all of it exactly
        fast = pd.to_numeric(series, errors="coerce")
        series = fast if fast.dtype.kind == "i" else series
    if series.dtype.kind == "f":
        x = series.to_numpy(np.float64)
        _refuse(series, ~np.isfinite(x), "is not finite", source, column, what)
        _refuse(series, x != np.round(x), "is not an integer", source, column, what)
        _refuse(series, np.abs(x) >= EXACT_FLOAT, "was read as a float (the column holds a decimal), which loses "
                "integers beyond 2**53", source, column, f"{what}, written without decimals")
        values = x.astype(np.int64)
    elif series.dtype.kind in "iu":
        x = series.to_numpy(np.uint64 if series.dtype.kind == "u" else np.int64)
        _refuse(series, x > INT64.max, "is outside int64", source, column, what)
        values = x.astype(np.int64)
    else:  # text or mixed objects, parsed one by one, exactly
        parsed = [_exact_int(v) for v in series]
        _refuse(series, [p is None for p in parsed], "is not an integer", source, column, what)
        _refuse(pd.Series(parsed, index=series.index, dtype=object),  # the number read, however pandas typed it
                [not INT64.min <= p <= INT64.max for p in parsed], "is outside int64", source, column, what)
        values = np.array(parsed, dtype=np.int64)
    if minimum is not None:
        _refuse(series, values < minimum, f"is below {minimum}", source, column, what)
    return values


def _ids(series: pd.Series, source: str, column: str, factorize: bool = False) -> np.ndarray:
    """Return int64 ids; any labels are numbered 1, 2, ... in order of appearance when ``factorize``."""
    _refuse(series, series.isna(), "is a missing id", source, column, "an id on every row")
    if not factorize:
        return _integers(series, source, column)
    if series.dtype.kind == "f":  # float labels beyond 2**53 may merge sessions
        _integers(series, source, column, minimum=None)
    return pd.factorize(series, sort=False)[0].astype(np.int64) + 1


def parse_timestamps(series: pd.Series, source: str, column: str, unit: str | None = None,
                     fmt: str | None = None) -> pd.Series:
    """Parse a time column into naive UTC ``datetime64[ns]``; raise DataError on nulls or unparsable values."""
    _refuse(series, series.isna(), "is a missing timestamp", source, column, "a time for every event")
    expected = f"numbers in {unit}" if unit else fmt or "ISO 8601 date-times"
    try:
        if unit is not None:
            parsed = pd.to_datetime(pd.to_numeric(series, errors="raise"), unit=unit, utc=True)
        elif pd.api.types.is_datetime64_any_dtype(series.dtype):
            parsed = series if getattr(series.dtype, "tz", None) else series.dt.tz_localize("UTC")
        else:
            parsed = pd.to_datetime(series, format=fmt or "ISO8601", utc=True, errors="coerce")
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"unparsable timestamps ({exc})", source=source, column=column, expected=expected) from exc
    _refuse(series, parsed.isna(), f"is unparsable ({int(parsed.isna().sum())} rows)", source, column, expected)
    return parsed.dt.tz_convert(None).astype("datetime64[ns]")


def _canonical(raw: pd.DataFrame, source: str, columns: Mapping[str, str], factorize_sessions: bool = False,
               unit: str | None = None, fmt: str | None = None, timestamp: pd.Series | None = None,
               category: np.ndarray | None = None) -> pd.DataFrame:
    """The checked event table of ``raw``, whose column ``columns[c]`` holds canonical column ``c``."""
    _require(raw, [columns[c] for c in ("session_id", "item_id", "timestamp")], source)
    name = {c: n for c, n in columns.items() if n in raw.columns}
    if timestamp is None:
        timestamp = parse_timestamps(raw[name["timestamp"]], source, name["timestamp"], unit, fmt)
    latest = pd.Timestamp.now("UTC").tz_localize(None).floor("D") + pd.Timedelta(days=366)
    _refuse(timestamp, (timestamp < EARLIEST) | (timestamp > latest), f"is outside {EARLIEST:%Y-%m-%d} .. "
            f"{latest:%Y-%m-%d}", source, name["timestamp"], f"click times from {EARLIEST.year} to a year from now")
    data = {"session_id": _ids(raw[name["session_id"]], source, name["session_id"], factorize_sessions),
            "item_id": _ids(raw[name["item_id"]], source, name["item_id"]), "timestamp": timestamp.to_numpy()}
    if category is None and "category" in name:
        category = _integers(raw[name["category"]].fillna(-1), source, name["category"], minimum=None)
    if category is not None:
        data["category"] = np.asarray(category, dtype=np.int64)
    if "price" in name:
        price = pd.to_numeric(raw[name["price"]], errors="coerce")
        _refuse(raw[name["price"]], (price.isna() & raw[name["price"]].notna()) | np.isinf(price),
                "is not a finite number", source, name["price"], "prices as numbers (or empty)")
        data["price"] = price.to_numpy(np.float32)
    if "event_type" in name:
        data["event_type"] = raw[name["event_type"]].astype("string").to_numpy()
    frame = pd.DataFrame(data)
    log.info("%s: %d events, %d sessions, %d items", source, len(frame), frame["session_id"].nunique(),
             frame["item_id"].nunique())
    return frame


def load_yoochoose_clicks(path: str | Path) -> pd.DataFrame:
    """Read the raw ``yoochoose-clicks.dat`` (``SessionId,Timestamp,ItemId,Category``, no header)."""
    path = _check_file(path, "yoochoose")
    raw = _read_csv(path, header=None, names=["SessionId", "Timestamp", "ItemId", "Category"], dtype={"Category": str})
    text = raw["Category"].fillna("0").where(raw["Category"] != "S", str(YOOCHOOSE_SPECIAL_OFFER))
    cat = _integers(text, str(path), "Category", minimum=None)
    return _canonical(raw, str(path), {"session_id": "SessionId", "item_id": "ItemId", "timestamp": "Timestamp"},
                      category=np.where((cat > 0) | (cat == YOOCHOOSE_SPECIAL_OFFER), cat, -1))


def load_yoochoose_prepared(path: str | Path) -> pd.DataFrame:
    """Read a session-rec prepared TSV (``SessionId ItemId Time``, Time in unix seconds)."""
    path = _check_file(path, "yoochoose")
    return _canonical(_read_csv(path, sep="\t"), str(path), {"session_id": "SessionId", "item_id": "ItemId",
                                                             "timestamp": "Time"}, unit="s")


def load_diginetica(path: str | Path) -> pd.DataFrame:
    """Read DIGINETICA ``train-item-views.csv`` (time: ``eventdate`` + ``timeframe`` ms)."""
    path = _check_file(path, "diginetica")
    raw, src = _read_csv(path, sep=";"), str(path)
    _require(raw, ["session_id", "item_id", "timeframe", "eventdate"], src)
    frames = pd.to_numeric(raw["timeframe"], errors="coerce")
    _refuse(raw["timeframe"], frames.isna(), "is not a number", src, "timeframe", "milliseconds")
    timestamp = parse_timestamps(raw["eventdate"], src, "eventdate", fmt="%Y-%m-%d") + pd.to_timedelta(frames, unit="ms")
    return _canonical(raw, src, {"session_id": "session_id", "item_id": "item_id", "timestamp": "eventdate"},
                      timestamp=timestamp)


def load_booking_trips(path: str | Path) -> pd.DataFrame:
    """Read Booking.com WSDM 2021 ``train_set.csv``: trips of ``city_id`` by ``checkin``, category ``hotel_country``."""
    path = _check_file(path, "booking")
    raw = _read_csv(path)
    category = pd.factorize(raw["hotel_country"])[0] if "hotel_country" in raw.columns else None  # -1: missing
    return _canonical(raw, str(path), {"session_id": "utrip_id", "item_id": "city_id", "timestamp": "checkin",
                                       "event_type": "device_class"}, True, fmt="%Y-%m-%d", category=category)


def load_rees46(path: str | Path) -> pd.DataFrame:
    """Read a REES46 e-commerce CSV; rows without ``user_session`` are dropped."""
    path = _check_file(path, "rees46")
    raw, src = _read_csv(path), str(path)
    _require(raw, ["user_session"], src)
    if raw["user_session"].isna().any():
        log.warning("%s: dropping %d rows without user_session", src, int(raw["user_session"].isna().sum()))
        raw = raw[raw["user_session"].notna()]
    return _canonical(raw, src, {"session_id": "user_session", "item_id": "product_id", "timestamp": "event_time",
                                 "category": "category_id", "price": "price", "event_type": "event_type"},
                      True, fmt="%Y-%m-%d %H:%M:%S UTC")


def load_table(path: str | Path, columns: Mapping[str, str] | None = None, timestamp_unit: str | None = None,
               factorize_sessions: bool = False) -> pd.DataFrame:
    """Read a CSV/TSV/parquet click log; ``columns`` maps canonical names to the file's, e.g. ``{"item_id": "sku"}``."""
    path = _check_file(path)
    src = str(path)
    if path.suffix in (".parquet", ".pq"):
        try:
            _unique_names(pq.read_schema(path).names, src)
            raw = pd.read_parquet(path)
        except DataError:
            raise
        except Exception as exc:  # pyarrow raises several types for broken files
            raise DataError(f"cannot read parquet: {exc}", source=src) from exc
        if raw.empty:
            raise DataError("the file has no rows", source=src, expected="at least one event")
    else:
        raw = _read_csv(path, sep="\t" if path.suffix in (".tsv", ".txt") else ",")
    return _canonical(raw, src, {**{c: c for c in CANONICAL}, **(columns or {})}, factorize_sessions, timestamp_unit)
