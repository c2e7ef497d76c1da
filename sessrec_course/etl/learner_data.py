"""Every lesson on the learner's own log: ``SESSREC_DATASET`` = ``generated`` (default), a dataset name (its loader;
``SESSREC_DATASET_PATH``) or a CSV/TSV/parquet path (``SESSREC_DATASET_COLUMNS``, ``..._TIMESTAMP_UNIT``)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from sessrec_course.data import loaders
from sessrec_course.data.download import DATASETS, instructions
from sessrec_course.data.errors import DataError
from sessrec_course.paths import generated_data_dir, project_root

DATASET_ENV, PATH_ENV = "SESSREC_DATASET", "SESSREC_DATASET_PATH"
COLUMNS_ENV, UNIT_ENV = "SESSREC_DATASET_COLUMNS", "SESSREC_DATASET_TIMESTAMP_UNIT"
GENERATED = "generated"
SPAN_FRACTION = 14  # validation and test each get 1/14 of the log's time span, as the generated data does


def parse_columns(text: str | None) -> dict[str, str]:
    """``"session_id=sid,item_id=sku"`` → ``{"session_id": "sid", "item_id": "sku"}`` (clear error otherwise)."""
    mapping = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        canonical, sep, column = part.partition("=")
        if not sep or canonical.strip() not in loaders.CANONICAL or not column.strip():
            raise ValueError(f"{COLUMNS_ENV}: cannot read {part!r}; expected canonical=column with canonical one of "
                             f"{loaders.CANONICAL}, e.g. session_id=sid,item_id=sku,timestamp=ts")
        mapping[canonical.strip()] = column.strip()
    return mapping


def resolve_path(name: str) -> Path:
    """The file a dataset setting reads: ``$SESSREC_DATASET_PATH``, else the default place of a named dataset."""
    if os.environ.get(PATH_ENV):
        return Path(os.environ[PATH_ENV]).expanduser()
    if name in DATASETS:
        default = project_root() / "data" / "raw" / name / DATASETS[name].filename
        if not default.is_file():
            raise FileNotFoundError(f"{DATASET_ENV}={name}: no file at {default}; set {PATH_ENV} to the file, or "
                                    f"get it: {instructions(name)}")
        return default
    return Path(name).expanduser()


def load_learner_events(name: str, path: Path) -> pd.DataFrame:
    """Read the learner's log as canonical events with the loader its name (or its columns) calls for."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        prepared = handle.readline().startswith("SessionId")  # a session-rec prepared TSV
    if name == "yoochoose" and prepared:
        return loaders.load_yoochoose_prepared(path)
    if name in DATASETS:
        return getattr(loaders, DATASETS[name].loader)(path)
    return loaders.load_table(path, parse_columns(os.environ.get(COLUMNS_ENV)),
                              timestamp_unit=os.environ.get(UNIT_ENV) or None, factorize_sessions=True)


def cache_key(name: str, path: Path, max_length: int, version: int) -> dict[str, Any]:
    """What the cached dataset depends on: the file (path, size, mtime), the settings and the ETL version."""
    if not path.is_file():
        raise DataError("no such file", source=str(path), expected=f"the click log named by {DATASET_ENV}/{PATH_ENV}")
    stat = path.stat()
    return {"version": version, "dataset": name, "path": str(path.resolve()), "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns, "columns": os.environ.get(COLUMNS_ENV, ""),
            "timestamp_unit": os.environ.get(UNIT_ENV, ""), "max_length": max_length}


def cache_dir(profile_name: str, key: dict[str, Any]) -> Path:
    """The folder of one learner dataset's prepared artefacts."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    slug = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in Path(key["path"]).stem)[:40]
    return generated_data_dir(profile_name) / "datasets" / f"{key['dataset'] if key['dataset'] in DATASETS else 'file'}-{slug}-{digest}"


def split_days_of(events: pd.DataFrame) -> float:
    """Days of validation and of test data: a fourteenth of the log's span each."""
    span = (events["timestamp"].max() - events["timestamp"].min()).total_seconds() / 86_400
    if span <= 0:
        raise DataError("all events share one timestamp", column="timestamp", expected="a log spanning some time")
    return span / SPAN_FRACTION
