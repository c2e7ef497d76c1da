"""SESSREC_DATASET: every lesson's dataset call reads the learner's own log, split in time and cached per file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sessrec_course.data.errors import DataError
from sessrec_course.etl import prepare_default_dataset
from sessrec_course.etl.learner_data import parse_columns
from sessrec_course.paths import shared_data_dir
from sessrec_course.profiles import get_profile

SHARED = shared_data_dir()


def _own_log(path: Path, n_sessions: int = 400, days: int = 28) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for s in range(n_sessions):
        start = pd.Timestamp("2026-01-01") + pd.Timedelta(days=days * s / n_sessions)
        for k in range(int(rng.integers(2, 6))):
            rows.append({"sid": f"visit-{s}", "sku": int(rng.integers(100, 160)),
                         "ts": (start + pd.Timedelta(minutes=k)).timestamp()})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture
def own(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSREC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SESSREC_DATASET", str(_own_log(tmp_path / "clicks.csv")))
    monkeypatch.setenv("SESSREC_DATASET_COLUMNS", "session_id=sid,item_id=sku,timestamp=ts")
    monkeypatch.setenv("SESSREC_DATASET_TIMESTAMP_UNIT", "s")
    return tmp_path


def test_own_csv_with_a_column_mapping_becomes_the_lessons_dataset(own, monkeypatch):
    data = prepare_default_dataset(get_profile("ci"))
    assert not data.is_generated and data.source.endswith("clicks.csv")
    counts = {s: len(data.load(s)) for s in ("train", "valid", "test")}
    assert counts["train"] > counts["test"] > 0 and sum(counts.values()) <= 400
    assert data.schema["item_cardinality"] == 2 + data.load("train")["item_id_list"].explode().nunique()
    manifest = data.manifest
    assert manifest["split_days"] == pytest.approx(28 * 399 / 400 / 14, rel=0.01)
    again = prepare_default_dataset(get_profile("ci"))
    assert again.root == data.root and again.manifest["total_s"] == manifest["total_s"], "cached, not rebuilt"


def test_a_changed_file_gets_a_new_cache(own):
    first = prepare_default_dataset(get_profile("ci")).root
    _own_log(own / "clicks.csv", n_sessions=300)
    assert prepare_default_dataset(get_profile("ci")).root != first


def test_bad_settings_get_clear_errors(own, monkeypatch):
    with pytest.raises(ValueError, match="SESSREC_DATASET_COLUMNS: cannot read 'sid'"):
        parse_columns("sid")
    with pytest.raises(ValueError, match="canonical one of"):
        parse_columns("visit=sid")
    monkeypatch.setenv("SESSREC_DATASET_COLUMNS", "session_id=visit,item_id=sku,timestamp=ts")
    with pytest.raises(DataError, match="visit"):
        prepare_default_dataset(get_profile("ci"))
    monkeypatch.setenv("SESSREC_DATASET", str(own / "missing.csv"))
    with pytest.raises(DataError, match="missing.csv"):
        prepare_default_dataset(get_profile("ci"))
    monkeypatch.setenv("SESSREC_DATASET", "diginetica")
    monkeypatch.delenv("SESSREC_DATASET_PATH", raising=False)
    with pytest.raises(FileNotFoundError, match="SESSREC_DATASET_PATH"):
        prepare_default_dataset(get_profile("ci"))


def test_a_log_too_short_for_a_test_split_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSREC_DATA_DIR", str(tmp_path / "data"))
    pd.DataFrame({"session_id": [1, 1, 2], "item_id": [5, 6, 5],
                  "timestamp": pd.to_datetime(["2026-01-01 00:00", "2026-01-01 00:01", "2026-01-09 00:00"])}
                 ).to_parquet(tmp_path / "tiny.parquet")
    monkeypatch.setenv("SESSREC_DATASET", str(tmp_path / "tiny.parquet"))
    with pytest.raises(DataError, match="valid split holds no session of two or more events.*days"):
        prepare_default_dataset(get_profile("ci"))
    assert not list((tmp_path / "data").rglob("schema.json")), "nothing half-written is left behind"


def test_a_bad_log_leaves_no_cache_folder_behind(own):
    lines = (own / "clicks.csv").read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",4070908800"  # 2099-01-01 inside a session
    (own / "clicks.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="2099-01-01 00:00:00 is outside 1995-01-01 .*clicks.csv.*'ts'; row: 2"):
        prepare_default_dataset(get_profile("ci"))
    assert not (own / "data" / "ci" / "datasets").exists() or not any((own / "data" / "ci" / "datasets").iterdir())


@pytest.mark.parametrize(("name", "file"), [
    ("diginetica", "diginetica-sample/sample_train-item-views.csv"),
    ("yoochoose", "yoochoose-rsc15-100k/prepared/yoochoose-clicks-100k_train_full.txt"),
])
def test_shared_research_samples_through_the_named_loaders(name, file, tmp_path, monkeypatch):
    if not (SHARED / file).is_file():
        pytest.skip(f"{SHARED / file} is not present (real research data is never copied into the repo)")
    monkeypatch.setenv("SESSREC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SESSREC_DATASET", name)
    monkeypatch.setenv("SESSREC_DATASET_PATH", str(SHARED / file))
    data = prepare_default_dataset(get_profile("ci"))
    assert data.source == name and len(data.load("test")) > 100 and data.schema["item_cardinality"] > 1000
