"""Loaders for real click-log formats, all returning the canonical event table of docs/design.md.

Bad input raises :class:`DataError` naming the file, column, first bad row and what was expected. The rules: ids are
integers 0 .. 2**63-1 read exactly (never through a float beyond 2**53); category is an integer or missing (-1), price
a number or missing; times lie between 1995 and a year from now, and no session spans more than 366 days.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from sessrec_course.data.errors import DataError

log = logging.getLogger(__name__)

CANONICAL = ("session_id", "item_id", "timestamp", "category", "price", "event_type")
YOOCHOOSE_SPECIAL_OFFER = -2  # YOOCHOOSE category "S"; 0 / missing → -1 (unknown)
EARLIEST = pd.Timestamp("1995-01-01")  # before web shops: 1970 (time 0) usually stands for a missing time
MAX_SESSION = pd.Timedelta(days=366)  # longer: a wrong date inside a session
EXACT_FLOAT = 2**53  # a float64 holds every integer only below this
INT64 = np.iinfo(np.int64)


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


def _unique_names(names: list[Any], source: str) -> None:
    names = [str(n) for n in names if pd.notna(n)]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise DataError(f"{names.count(name)} columns are named {name!r}", source=source, column=name,
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
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return int(number) if number.is_finite() and number == number.to_integral_value() else None


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
        _refuse(series, [not INT64.min <= p <= INT64.max for p in parsed], "is outside int64", source, column, what)
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


def _category(series: pd.Series, source: str, column: str) -> np.ndarray:
    return _integers(series.fillna(-1), source, column, minimum=None)


def _prices(series: pd.Series, source: str, column: str) -> np.ndarray:
    number = pd.to_numeric(series, errors="coerce")
    _refuse(series, (number.isna() & series.notna()) | np.isinf(number), "is not a finite number", source, column,
            "prices as numbers (or empty)")
    return number.to_numpy(np.float32)


def parse_timestamps(series: pd.Series, source: str, column: str, unit: str | None = None,
                     fmt: str | None = None) -> pd.Series:
    """Parse a time column into naive UTC ``datetime64[ns]``; raise DataError on nulls or unparsable values."""
    _refuse(series, series.isna(), "is a missing timestamp", source, column, "a time for every event")
    try:
        if unit is not None:
            parsed = pd.to_datetime(pd.to_numeric(series, errors="raise"), unit=unit, utc=True)
        elif pd.api.types.is_datetime64_any_dtype(series.dtype):
            parsed = series if getattr(series.dtype, "tz", None) else series.dt.tz_localize("UTC")
        else:
            parsed = pd.to_datetime(series, format=fmt or "ISO8601", utc=True, errors="coerce")
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"unparsable timestamps ({exc})", source=source, column=column,
                        expected=f"{'numbers in ' + unit if unit else fmt or 'ISO 8601 date-times'}") from exc
    _refuse(series, parsed.isna(), f"is unparsable ({int(parsed.isna().sum())} rows)", source, column,
            fmt or "ISO 8601 date-times")
    return parsed.dt.tz_convert(None).astype("datetime64[ns]")


def _canonical(source: str, session: np.ndarray, item: np.ndarray, timestamp: pd.Series, time_column: str,
               category: Any = None, price: Any = None, event_type: Any = None) -> pd.DataFrame:
    latest = pd.Timestamp.now("UTC").tz_localize(None).floor("D") + MAX_SESSION
    _refuse(timestamp, (timestamp < EARLIEST) | (timestamp > latest), f"is outside {EARLIEST:%Y-%m-%d} .. "
            f"{latest:%Y-%m-%d}", source, time_column, f"click times from {EARLIEST.year} to a year from now")
    data: dict[str, Any] = {"session_id": session, "item_id": item, "timestamp": timestamp.to_numpy()}
    if category is not None:
        data["category"] = np.asarray(category, dtype=np.int64)
    if price is not None:
        data["price"] = np.asarray(price, dtype=np.float32)
    if event_type is not None:
        data["event_type"] = pd.Series(event_type).astype("string").to_numpy()
    frame = pd.DataFrame(data)
    span = frame.groupby("session_id", sort=False)["timestamp"].agg(["min", "max"])
    too_long = span[span["max"] - span["min"] > MAX_SESSION]
    if len(too_long):
        sid, first, last = too_long.index[0], too_long["min"].iloc[0], too_long["max"].iloc[0]
        row = timestamp.index[int(np.flatnonzero((session == sid) & (frame["timestamp"] == last).to_numpy())[0])]
        raise DataError(f"session {sid} spans {first} .. {last}", source=source, column=time_column, row=row,
                        expected=f"sessions shorter than {MAX_SESSION.days} days (is a date wrong?)")
    log.info("%s: %d events, %d sessions, %d items", source, len(frame), len(span), frame["item_id"].nunique())
    return frame


def load_yoochoose_clicks(path: str | Path, nrows: int | None = None) -> pd.DataFrame:
    """Read the raw ``yoochoose-clicks.dat`` (``SessionId,Timestamp,ItemId,Category``, no header)."""
    path = _check_file(path, "yoochoose")
    raw = _read_csv(path, header=None, names=["SessionId", "Timestamp", "ItemId", "Category"], nrows=nrows,
                    dtype={"Category": str})
    src = str(path)
    text = raw["Category"].fillna("0").where(raw["Category"] != "S", str(YOOCHOOSE_SPECIAL_OFFER))
    cat = _integers(text, src, "Category", minimum=None)
    cat = np.where((cat > 0) | (cat == YOOCHOOSE_SPECIAL_OFFER), cat, -1)
    return _canonical(src, _ids(raw["SessionId"], src, "SessionId"), _ids(raw["ItemId"], src, "ItemId"),
                      parse_timestamps(raw["Timestamp"], src, "Timestamp"), "Timestamp", category=cat)


def load_yoochoose_prepared(path: str | Path) -> pd.DataFrame:
    """Read a session-rec prepared TSV (``SessionId ItemId Time``, Time in unix seconds)."""
    path = _check_file(path, "yoochoose")
    raw = _read_csv(path, sep="\t")
    src = str(path)
    _require(raw, ["SessionId", "ItemId", "Time"], src)
    return _canonical(src, _ids(raw["SessionId"], src, "SessionId"), _ids(raw["ItemId"], src, "ItemId"),
                      parse_timestamps(raw["Time"], src, "Time", unit="s"), "Time")


def load_diginetica(path: str | Path, categories_path: str | Path | None = None) -> pd.DataFrame:
    """Read DIGINETICA ``train-item-views.csv``: time = ``eventdate`` + ``timeframe`` ms; categories optional.

    ``categories_path`` is ``product-categories.csv`` (``itemId;categoryId``).
    """
    path = _check_file(path, "diginetica")
    raw = _read_csv(path, sep=";")
    src = str(path)
    _require(raw, ["session_id", "item_id", "timeframe", "eventdate"], src)
    day = parse_timestamps(raw["eventdate"], src, "eventdate", fmt="%Y-%m-%d")
    frames = pd.to_numeric(raw["timeframe"], errors="coerce")
    _refuse(raw["timeframe"], frames.isna(), "is not a number", src, "timeframe", "milliseconds")
    timestamp = day + pd.to_timedelta(frames.to_numpy(), unit="ms")
    item = _ids(raw["item_id"], src, "item_id")
    category = None
    if categories_path is not None:
        cats = _read_csv(_check_file(categories_path, "diginetica"), sep=";")
        csrc = str(categories_path)
        _require(cats, ["itemId", "categoryId"], csrc)
        lookup = pd.Series(_category(cats["categoryId"], csrc, "categoryId"), index=_ids(cats["itemId"], csrc, "itemId"))
        category = lookup[~lookup.index.duplicated()].reindex(item).fillna(-1).to_numpy(np.int64)
    return _canonical(src, _ids(raw["session_id"], src, "session_id"), item, timestamp, "eventdate",
                      category=category)


def load_booking_trips(path: str | Path) -> pd.DataFrame:
    """Read Booking.com WSDM 2021 ``train_set.csv``: a trip (``utrip_id``) of cities (``city_id``) by ``checkin``.

    Category = ``hotel_country`` (factorized), event type = ``device_class``.
    """
    path = _check_file(path, "booking")
    raw = _read_csv(path)
    src = str(path)
    _require(raw, ["utrip_id", "city_id", "checkin"], src)
    category = None
    if "hotel_country" in raw.columns:
        category = pd.factorize(raw["hotel_country"])[0].astype(np.int64)  # -1 for missing
    return _canonical(src, _ids(raw["utrip_id"], src, "utrip_id", factorize=True), _ids(raw["city_id"], src, "city_id"),
                      parse_timestamps(raw["checkin"], src, "checkin", fmt="%Y-%m-%d"), "checkin", category=category,
                      event_type=raw["device_class"] if "device_class" in raw.columns else None)


def load_rees46(path: str | Path, nrows: int | None = None, drop_null_sessions: bool = True) -> pd.DataFrame:
    """Read a REES46 e-commerce CSV; rows without ``user_session`` are dropped (or raise with ``drop_null_sessions=False``)."""
    path = _check_file(path, "rees46")
    raw = _read_csv(path, nrows=nrows)
    src = str(path)
    _require(raw, ["event_time", "product_id", "user_session"], src)
    if drop_null_sessions and raw["user_session"].isna().any():
        log.warning("%s: dropping %d rows without user_session", src, int(raw["user_session"].isna().sum()))
        raw = raw[raw["user_session"].notna()]
    category = _category(raw["category_id"], src, "category_id") if "category_id" in raw.columns else None
    return _canonical(src, _ids(raw["user_session"], src, "user_session", factorize=True),
                      _ids(raw["product_id"], src, "product_id"),
                      parse_timestamps(raw["event_time"], src, "event_time", fmt="%Y-%m-%d %H:%M:%S UTC"), "event_time",
                      category=category, price=_prices(raw["price"], src, "price") if "price" in raw.columns else None,
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
            _unique_names(pq.read_schema(path).names, src)
            raw = pd.read_parquet(path)
        except DataError:
            raise
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
    return _canonical(src, _ids(get["session_id"], src, mapping["session_id"], factorize=factorize_sessions),
                      _ids(get["item_id"], src, mapping["item_id"]),
                      parse_timestamps(get["timestamp"], src, mapping["timestamp"], unit=timestamp_unit,
                                       fmt=timestamp_format), mapping["timestamp"],
                      category=_category(get["category"], src, mapping["category"]) if "category" in get else None,
                      price=_prices(get["price"], src, mapping["price"]) if "price" in get else None,
                      event_type=get.get("event_type"))
