"""prepare_default_dataset: artefacts, idempotence, atomic writes, consistent schema."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from sessrec_course.etl import prepare_default_dataset
from sessrec_course.etl.workflow import OUTPUT_SCHEMA
from sessrec_course.profiles import get_profile


def tiny_profile():
    return dataclasses.replace(get_profile("ci"), name="tiny", n_events=8_000, n_items=150, n_categories=6,
                               n_days=14, max_length=8)


def test_artifacts_written_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSREC_DATA_DIR", str(tmp_path))
    profile = tiny_profile()
    art = prepare_default_dataset(profile)
    assert art.root == tmp_path / "tiny" / "sessions"
    names = sorted(p.name for p in art.root.iterdir())
    assert names == ["events.parquet", "manifest.json", "schema.json", "test.parquet", "train.parquet",
                     "valid.parquet", "workflow"]
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["sessions"]  # no temp folders left
    stamp = art.path("train").stat().st_mtime_ns
    again = prepare_default_dataset(profile)
    assert again.path("train").stat().st_mtime_ns == stamp  # reused, not rebuilt
    rebuilt = prepare_default_dataset(profile, force=True)
    assert rebuilt.path("train").stat().st_mtime_ns != stamp

    train, test = art.load("train"), art.load("test")
    assert list(train.columns) == OUTPUT_SCHEMA.names
    assert art.schema["max_length"] == 8 and art.schema["pad_id"] == 0 and art.schema["oov_id"] == 1
    wf = art.workflow()
    assert art.schema["item_cardinality"] == wf.item_cardinality
    all_train = np.concatenate(train["item_id_list"].tolist())
    assert all_train.min() >= 2 and all_train.max() < wf.item_cardinality  # no OOV in train
    assert train["length"].between(2, 8).all()
    assert train["start_time"].max() < test["start_time"].min()  # temporal split
    m = art.manifest
    assert m["train_sessions"] == len(train) and m["test_sessions"] == len(test)
    assert m["train_events"] + m["valid_events"] + m["test_events"] == 8_000
    pd.testing.assert_frame_equal(art.events(), art.synthetic_log().events)


def test_changed_profile_rebuilds(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSREC_DATA_DIR", str(tmp_path))
    first = prepare_default_dataset(tiny_profile())
    n_first = first.manifest["n_events"]
    bigger = dataclasses.replace(tiny_profile(), n_events=9_000)
    second = prepare_default_dataset(bigger)
    assert (n_first, second.manifest["n_events"]) == (8_000, 9_000)
