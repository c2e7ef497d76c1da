"""``SessionWorkflow``: fit an item vocabulary on train, turn any event table into sessions, reuse at serving.

Encoded ids: 0 padding, 1 out-of-vocabulary, items from 2 by decreasing training frequency; saved as JSON + parquet."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sessrec_course.arrays import pad_right, to_ragged
from sessrec_course.data.errors import DataError
from sessrec_course.etl.frame import Backend, backend_of, get_backend
from sessrec_course.etl.sessions import NS_PER_S, session_starts, sort_order, validate_events
from sessrec_course.ids import FIRST_ID, OOV_ID, PAD_ID
from sessrec_course.paths import write_directory_atomically

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ITEM_COLUMN, CATEGORY_COLUMN, TIME_COLUMN = "item_id_list", "category_list", "time_delta_list"
OUTPUT_SCHEMA = pa.schema([
    ("session_id", pa.int64()), ("item_id_list", pa.list_(pa.int32())), ("category_list", pa.list_(pa.int32())),
    ("time_delta_list", pa.list_(pa.float32())), ("length", pa.int32()), ("duration", pa.float32()),
    ("start_weekday", pa.int8()), ("start_hour", pa.int8()), ("start_time", pa.timestamp("ns")),
])


@dataclass(frozen=True)
class WorkflowConfig:
    """Settings of the session workflow."""

    max_length: int = 20  # keep the last `max_length` events of a session
    min_length: int = 2  # drop shorter sessions (counted after repeat removal, before truncation)
    min_item_frequency: int = 1  # items seen fewer times in train become OOV
    min_category_frequency: int = 1
    remove_consecutive_repeats: bool = False


_NUMPY = get_backend("pandas")
COUNT_ITEM, COUNT_CATEGORY, COUNT_PAIR, COUNT_TOTAL = 0, 1, 2, 3  # kinds of rows in a fit_counts frame


class SessionWorkflow:
    """Fitted session ETL: item/category vocabularies plus sessionizing, filtering and features."""

    def __init__(self, max_length: int = 20, min_length: int = 2, min_item_frequency: int = 1,
                 min_category_frequency: int = 1, remove_consecutive_repeats: bool = False) -> None:
        if max_length < 1 or min_length < 1 or min_item_frequency < 1:
            raise ValueError("max_length, min_length and min_item_frequency must be >= 1")
        self.config = WorkflowConfig(max_length, min_length, min_item_frequency, min_category_frequency,
                                     remove_consecutive_repeats)
        self.item_raw: np.ndarray | None = None  # raw id of encoded id 2, 3, ...
        self.item_count = np.zeros(0, np.int64)
        self.category_raw = np.zeros(0, np.int64)  # raw category of encoded category 2, 3, ...
        self.item_category = np.zeros(2, np.int32)  # encoded category of every encoded item (0/1 for pad/OOV)
        self.stats: dict[str, Any] = {}
        self._lookup: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def item_cardinality(self) -> int:
        """Size of the item table models need: real items + padding + OOV."""
        return FIRST_ID + len(self.item_raw if self.item_raw is not None else ())

    @property
    def category_cardinality(self) -> int:
        """Size of the category table: real categories + padding + unknown."""
        return FIRST_ID + len(self.category_raw)

    def _prepare(self, events: Any, source: str) -> tuple[Backend, dict[str, Any], Any, Any]:
        """Validate, sort, drop repeats and short sessions; return the backend, event arrays and session bounds."""
        validate_events(events, source=source)
        be = backend_of(events)
        xp = be.xp
        cols = {"session": be.column(events, "session_id", "int64"), "item": be.column(events, "item_id", "int64"),
                "ts": be.timestamps_ns(events)}
        if "category" in events.columns:
            cols["cat"] = be.values(events["category"].fillna(-1).astype("int64"))
        if (order := sort_order(xp, cols["session"], cols["ts"])) is not None:
            cols = {k: v[order] for k, v in cols.items()}
        if self.config.remove_consecutive_repeats and len(cols["item"]) > 1:
            keep = xp.ones(len(cols["item"]), dtype=bool)
            keep[1:] = (cols["session"][1:] != cols["session"][:-1]) | (cols["item"][1:] != cols["item"][:-1])
            cols = {k: v[keep] for k, v in cols.items()}
        starts = session_starts(xp, cols["session"])
        lengths = xp.diff(xp.concatenate([starts, xp.asarray([len(cols["session"])])]))
        ok = lengths >= self.config.min_length
        if not bool(ok.all()):
            cols = {k: v[xp.repeat(ok, lengths)] for k, v in cols.items()}
            lengths = lengths[ok]
            starts = xp.cumsum(lengths) - lengths
        return be, cols, starts, lengths

    def fit(self, events: Any, source: str = "train events") -> SessionWorkflow:
        """Learn the item and category vocabularies from the training events (after the session filters)."""
        return self.fit_from_counts(self.fit_counts(events, source), source)

    def fit_counts(self, events: Any, source: str = "train events") -> Any:
        """What :meth:`fit` learns from as (kind, key, key2, count) rows; the counts of whole sessions add up."""
        be, cols, _, lengths = self._prepare(events, source)
        xp = be.xp
        rows = [(COUNT_ITEM, *be.unique_counts(cols["item"]), None),  # (kind, key, count, key2 or None: zeros)
                (COUNT_TOTAL, xp.asarray([0, 1]), xp.asarray([len(cols["item"]), len(lengths)]), None)]
        if "cat" in cols:
            pairs = (be.df.DataFrame({"key": cols["item"], "key2": cols["cat"]})
                     .groupby(["key", "key2"]).size().reset_index(name="count"))
            rows += [(COUNT_CATEGORY, *be.unique_counts(cols["cat"][cols["cat"] >= 0]), None),
                     (COUNT_PAIR, *(be.column(pairs, c, "int64") for c in ("key", "count", "key2")))]
        key2 = [xp.zeros(len(key), np.int64) if k2 is None else k2 for _, key, _, k2 in rows]
        return be.df.DataFrame({
            "kind": xp.concatenate([xp.full(len(key), kind, dtype=np.int8) for kind, key, _, _ in rows]),
            "key": xp.concatenate([key for _, key, _, _ in rows]).astype(np.int64),
            "key2": xp.concatenate(key2).astype(np.int64),
            "count": xp.concatenate([n for _, _, n, _ in rows]).astype(np.int64),
        })

    def fit_from_counts(self, counts: Any, source: str = "train events") -> SessionWorkflow:
        """Fit the vocabularies from :meth:`fit_counts` frames (rows with equal kind and keys are summed)."""
        counts = backend_of(counts).to_pandas(counts).groupby(["kind", "key", "key2"], sort=True)["count"].sum()
        counts = counts.reset_index()

        def kind(code: int, minimum: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            rows = counts[(counts["kind"] == code) & (counts["count"] >= minimum)]
            return tuple(rows[c].to_numpy(np.int64) for c in ("key", "key2", "count"))

        total_keys, _, total_counts = kind(COUNT_TOTAL)
        totals = dict(zip(total_keys.tolist(), total_counts.tolist(), strict=True))
        if totals.get(0, 0) == 0:
            raise DataError("no session survives the filters", source=source, column="session_id",
                            expected=f"sessions with >= {self.config.min_length} events")
        raw, _, n = kind(COUNT_ITEM, self.config.min_item_frequency)
        order = np.lexsort((raw, -n))  # most frequent first, ties: lower id
        self.item_raw, self.item_count = raw[order], n[order]
        raw, _, n = kind(COUNT_CATEGORY, self.config.min_category_frequency)
        self.category_raw = raw[np.lexsort((raw, -n))]
        self._lookup = None
        self.item_category = np.ones(self.item_cardinality, np.int32)
        self.item_category[PAD_ID] = PAD_ID
        pair_item, pair_cat, pair_n = kind(COUNT_PAIR)
        if len(pair_item):  # every item gets its most frequent category, to serve raw item ids
            enc_item = self._encode(_NUMPY, pair_item)
            enc_cat = _map_sorted(_NUMPY, _sorted_codes(self.category_raw), pair_cat)
            known = enc_item >= FIRST_ID
            items, cats = most_frequent(enc_item[known], enc_cat[known], pair_n[known])
            self.item_category[items] = cats
        self.stats = {"fit_events": int(totals[0]), "fit_sessions": int(totals.get(1, 0)),
                      "items": int(len(self.item_raw)), "categories": int(len(self.category_raw))}
        log.info("fitted workflow: %(items)d items, %(categories)d categories from %(fit_sessions)d sessions",
                 self.stats)
        return self

    def _require_fitted(self) -> None:
        if self.item_raw is None:
            raise RuntimeError("SessionWorkflow is not fitted: call fit(train_events) or SessionWorkflow.load(path)")

    def _encode(self, be: Backend, raw: Any) -> Any:
        """Map raw item ids to encoded ids (unseen → OOV), with the sorted vocabulary kept between calls."""
        if self._lookup is None:
            self._lookup = _sorted_codes(self.item_raw)
        return _map_sorted(be, self._lookup, raw)

    def transform_arrow(self, events: Any, source: str = "events") -> pa.Table:
        """Turn events into one row per session (see docs/design.md) as a pyarrow Table."""
        self._require_fitted()
        be, cols, starts, lengths = self._prepare(events, source)
        xp, ts, host = be.xp, cols["ts"], be.to_numpy
        enc = self._encode(be, cols["item"])
        cat = (_map_sorted(be, _sorted_codes(self.category_raw), cols["cat"]) if "cat" in cols
               else xp.asarray(self.item_category)[enc])
        delta = xp.zeros(len(ts), dtype=np.float32)
        delta[1:] = (ts[1:] - ts[:-1]).astype(np.float64) / NS_PER_S
        ends, kept = starts + lengths, xp.minimum(lengths, self.config.max_length)
        within = xp.arange(int(kept.sum())) - xp.repeat(xp.cumsum(kept) - kept, kept)
        pos = xp.repeat(ends - kept, kept) + within
        delta = delta[pos]
        delta[within == 0] = 0.0
        start_ns = ts[starts]
        offsets = pa.array(np.r_[0, np.cumsum(host(kept))].astype(np.int32))

        def lists(values: Any, dtype: Any) -> pa.ListArray:
            return pa.ListArray.from_arrays(offsets, pa.array(host(values).astype(dtype, copy=False)))

        return pa.Table.from_arrays([
            pa.array(host(cols["session"][starts])),
            lists(enc[pos], np.int32), lists(cat[pos], np.int32), lists(delta, np.float32),
            pa.array(host(kept).astype(np.int32)),
            pa.array(host((ts[ends - 1] - start_ns).astype(np.float64) / NS_PER_S).astype(np.float32)),
            pa.array(host((start_ns // (86_400 * NS_PER_S) + 3) % 7).astype(np.int8)),  # 1970-01-01: Thursday
            pa.array(host((start_ns // (3_600 * NS_PER_S)) % 24).astype(np.int8)),
            pa.array(host(start_ns).view("datetime64[ns]")),
        ], schema=OUTPUT_SCHEMA)

    def transform(self, events: Any, source: str = "events") -> Any:
        """Turn events into one row per session: a DataFrame of the input's backend with list columns."""
        return backend_of(events).frame_from_arrow(self.transform_arrow(events, source))

    def encode_item_ids(self, raw_sessions: list[list[int]] | Any, max_length: int | None = None) -> np.ndarray:
        """Right-padded int64 matrix of the last ``max_length`` items; unseen, None or NaN → OOV, empty → padding."""
        self._require_fitted()
        width = max_length or self.config.max_length
        seqs = []
        for session in raw_sessions:
            arr = np.asarray([] if session is None else session).ravel()[-width:]
            if arr.dtype.kind not in "iu":  # integers stay exact; None and NaN are unseen
                arr = arr.astype(np.float64)
            valid = np.isfinite(arr)
            codes = np.full(len(arr), OOV_ID, np.int64)
            codes[valid] = self._encode(_NUMPY, arr[valid].astype(np.int64))
            seqs.append(codes)
        return pad_right(seqs, width)

    def decode_item_ids(self, encoded: Any) -> np.ndarray:
        """Map encoded ids back to raw item ids (padding, OOV and out-of-range ids → -1)."""
        self._require_fitted()
        table, enc = np.r_[np.full(FIRST_ID, -1, np.int64), self.item_raw], np.asarray(encoded, dtype=np.int64)
        return np.where((enc >= 0) & (enc < len(table)), table[np.clip(enc, 0, len(table) - 1)], -1)

    def popular_items(self, k: int) -> np.ndarray:
        """Return the encoded ids of the ``k`` most frequent training items (fallback for empty sessions)."""
        self._require_fitted()
        return np.arange(FIRST_ID, FIRST_ID + min(k, len(self.item_raw)), dtype=np.int64)

    def schema(self) -> dict[str, Any]:
        """Return the schema written beside the parquet files (docs/design.md)."""
        self._require_fitted()
        return {"item_cardinality": self.item_cardinality, "category_cardinality": self.category_cardinality,
                "max_length": self.config.max_length, "pad_id": PAD_ID, "oov_id": OOV_ID, "first_item_id": FIRST_ID,
                "features": {f.name: str(f.type) for f in OUTPUT_SCHEMA},
                "list_columns": [ITEM_COLUMN, CATEGORY_COLUMN, TIME_COLUMN], "config": asdict(self.config), "stats": self.stats}

    def save(self, path: str | Path) -> Path:
        """Write the fitted state to directory ``path`` (JSON + parquet), atomically."""
        self._require_fitted()

        def write(tmp: Path) -> None:
            meta = {"format_version": FORMAT_VERSION, "config": asdict(self.config), "stats": self.stats}
            (tmp / "workflow.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            pq.write_table(pa.table({"encoded_id": np.arange(FIRST_ID, self.item_cardinality, dtype=np.int64),
                                     "raw_id": self.item_raw, "count": self.item_count.astype(np.int64),
                                     "category": self.item_category[FIRST_ID:].astype(np.int32)}),
                           tmp / "items.parquet")
            pq.write_table(pa.table({"encoded_id": np.arange(FIRST_ID, self.category_cardinality, dtype=np.int64),
                                     "raw_category": self.category_raw}), tmp / "categories.parquet")

        return write_directory_atomically(path, write)

    @classmethod
    def load(cls, path: str | Path) -> SessionWorkflow:
        """Load a workflow written by :meth:`save` (needs numpy and pyarrow only)."""
        meta_file = Path(path) / "workflow.json"
        if not meta_file.exists():
            raise FileNotFoundError(f"no saved workflow at {path} (missing workflow.json)")
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError("unsupported workflow format", source=str(meta_file), column="format_version",
                            expected=str(FORMAT_VERSION))
        wf = cls(**meta["config"])
        items = pq.read_table(meta_file.parent / "items.parquet")
        wf.item_raw = np.asarray(items["raw_id"], dtype=np.int64)
        wf.item_count = np.asarray(items["count"], dtype=np.int64)
        wf.item_category = np.r_[[PAD_ID, OOV_ID], np.asarray(items["category"])].astype(np.int32)
        wf.category_raw = np.asarray(pq.read_table(meta_file.parent / "categories.parquet")["raw_category"], np.int64)
        wf.stats = meta.get("stats", {})
        return wf

    def __repr__(self) -> str:
        state = "not fitted" if self.item_raw is None else f"{len(self.item_raw)} items"
        return f"SessionWorkflow({state}, {self.config})"


def item_category_lookup(path: str | Path, item_cardinality: int) -> np.ndarray:
    """Most frequent category of every encoded item in a parquet split (0 for unseen items; ties: lower id)."""
    path = Path(path)
    table = pq.read_table(path, columns=[ITEM_COLUMN, CATEGORY_COLUMN])
    items, cats = (to_ragged(list_column(table, path, column))[0] for column in (ITEM_COLUMN, CATEGORY_COLUMN))
    cats = np.clip(cats, 0, None)
    if items.shape != cats.shape:
        raise ValueError(f"{path}: {ITEM_COLUMN} and {CATEGORY_COLUMN} differ in length")
    if len(items) and items.max() >= item_cardinality:
        raise ValueError(f"{path}: item id {items.max()} outside item_cardinality {item_cardinality}")
    lookup = np.zeros(item_cardinality, dtype=np.int64)
    keys, values = most_frequent(items, cats)
    lookup[keys] = values
    return lookup


def most_frequent(keys: np.ndarray, values: np.ndarray, weights: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct key (sorted) and its value of largest total weight (ties: the lower value); values >= 0."""
    width = int(values.max(initial=0)) + 1
    codes, inverse = np.unique(keys.astype(np.int64) * width + values, return_inverse=True)
    best = codes[np.lexsort((-np.bincount(inverse, weights=weights, minlength=len(codes)), codes // width))]
    return np.divmod(best[session_starts(np, best // width)], width)


def list_column(table: pa.Table, path: str | Path, column: str) -> pa.ChunkedArray:
    """Return list column ``column`` of ``table`` (read from ``path``), or a clear error."""
    if column not in table.column_names:
        raise ValueError(f"{path}: no column {column!r} (columns: {table.column_names})")
    kind = table.schema.field(column).type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        raise ValueError(f"{path}: column {column!r} is {kind}, expected a list column")
    return table.column(column)


def _sorted_codes(raw_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A vocabulary (the raw ids of encoded ids 2, 3, ...) as its raw ids sorted and their encoded ids."""
    order = np.argsort(raw_ids, kind="stable")
    return raw_ids[order], (order + FIRST_ID).astype(np.int32)


def _map_sorted(be: Backend, vocabulary: tuple[np.ndarray, np.ndarray], raw: Any) -> Any:
    """The encoded ids of ``raw`` in a :func:`_sorted_codes` vocabulary (unseen → OOV)."""
    xp, (keys, codes) = be.xp, vocabulary
    codes = xp.concatenate([xp.asarray(codes), xp.asarray([OOV_ID], dtype=np.int32)])
    return codes[be.lookup(xp.asarray(keys), raw)]  # position -1 picks the trailing OOV

