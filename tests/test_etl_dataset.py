"""prepare_default_dataset: artefacts, idempotence, atomic writes, consistent schema, crashes and racing builders."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import multiprocessing.synchronize
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sessrec_course.data.synthetic import generate_events
from sessrec_course.etl import prepare_default_dataset
from sessrec_course.etl.workflow import OUTPUT_SCHEMA
from sessrec_course.paths import _HOST, remove_stale_temporaries
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
    p = profile  # the cached events are the generator's, deterministically
    expected = generate_events(p.n_events, p.n_items, p.n_categories, p.n_days, p.seed)
    pd.testing.assert_frame_equal(art.events(), expected)


def test_changed_profile_rebuilds(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSREC_DATA_DIR", str(tmp_path))
    first = prepare_default_dataset(tiny_profile())
    n_first = first.manifest["n_events"]
    bigger = dataclasses.replace(tiny_profile(), n_events=9_000)
    second = prepare_default_dataset(bigger)
    assert (n_first, second.manifest["n_events"]) == (8_000, 9_000)


def _builder(data_dir: str, n_events: int, ready, go) -> None:
    """Build the tiny dataset for real in this (child) process; once its artefacts are written, set ``ready`` and
    wait for ``go`` before the swap (``ready`` may be a Barrier both builders wait at)."""
    os.environ["SESSREC_DATA_DIR"] = data_dir
    from sessrec_course.etl import dataset

    build = dataset.build_dataset

    def paused(*args, **kwargs):
        info = build(*args, **kwargs)
        ready.wait(60) if isinstance(ready, mp.synchronize.Barrier) else ready.set()
        if go is not None:
            go.wait(120)
        return info

    dataset.build_dataset = paused
    dataset.prepare_default_dataset(dataclasses.replace(tiny_profile(), n_events=n_events))


def _leftovers(tmp_path):
    return sorted(p.name for p in (tmp_path / "tiny").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("outdated", [False, True])
def test_two_builders_swapping_at_once_end_with_one_valid_folder_and_no_orphan(tmp_path, monkeypatch, outdated):
    monkeypatch.setenv("SESSREC_DATA_DIR", str(tmp_path))
    if outdated:  # a dataset of other settings is there: both builders replace it
        prepare_default_dataset(dataclasses.replace(tiny_profile(), n_events=7_000))
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    builders = [ctx.Process(target=_builder, args=(str(tmp_path), 8_000, barrier, None)) for _ in range(2)]
    for b in builders:
        b.start()
    for b in builders:
        b.join(180)
    assert [b.exitcode for b in builders] == [0, 0]
    assert _leftovers(tmp_path) == ["sessions"]
    art = prepare_default_dataset(tiny_profile())
    assert art.manifest["n_events"] == 8_000 and len(art.load("test")) > 0


def _swapper(folder: str, barrier, rounds: int, errors) -> None:
    from sessrec_course.paths import write_directory_atomically

    for r in range(rounds):
        barrier.wait(30)
        try:
            write_directory_atomically(Path(folder) / "data", lambda d, r=r: (d / f"{r}-{os.getpid()}").write_text("x"))
        except Exception as exc:  # reported to the test, which expects none
            errors.put(f"round {r}: {exc!r}")


@pytest.mark.slow
def test_four_writers_swapping_the_same_folder_twenty_times_never_fail_nor_orphan(tmp_path):
    ctx = mp.get_context("spawn")
    barrier, errors = ctx.Barrier(4), ctx.Queue()
    writers = [ctx.Process(target=_swapper, args=(str(tmp_path), barrier, 20, errors)) for _ in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(120)
    assert [w.exitcode for w in writers] == [0] * 4
    assert [errors.get() for _ in range(errors.qsize())] == []
    assert [p.name for p in tmp_path.iterdir()] == ["data"] and len(list((tmp_path / "data").iterdir())) == 1


def _paused_builder(data_dir) -> tuple:
    """Start a real builder of 8,000 events in a child; it sets ``ready`` when written and waits for ``go``."""
    ctx = mp.get_context("spawn")
    ready, go = ctx.Event(), ctx.Event()
    builder = ctx.Process(target=_builder, args=(str(data_dir), 8_000, ready, go))
    builder.start()
    return builder, ready, go


@pytest.mark.slow
def test_a_killed_builder_leaves_a_folder_the_next_run_removes(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSREC_DATA_DIR", str(tmp_path))
    builder, ready, go = _paused_builder(tmp_path)
    assert ready.wait(120)
    os.kill(builder.pid, signal.SIGKILL)
    builder.join(30)
    (stale,) = (tmp_path / "tiny").glob(f".sessions-tmp-*-{builder.pid}-*")
    assert (stale / "train.parquet").is_file() and not (stale / "manifest.json").exists()  # half-built
    art = prepare_default_dataset(tiny_profile())
    assert _leftovers(tmp_path) == ["sessions"] and art.manifest["n_events"] == 8_000


@pytest.mark.slow
def test_the_folder_of_a_live_builder_is_kept_and_its_late_result_yields_to_the_first(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSREC_DATA_DIR", str(tmp_path))
    builder, ready, go = _paused_builder(tmp_path)
    try:
        assert ready.wait(120)
        first = prepare_default_dataset(tiny_profile())  # sweeps stale folders: the live builder's is not one
        stamp = first.path("train").stat().st_mtime_ns
        assert len(list((tmp_path / "tiny").glob(f".sessions-tmp-*-{builder.pid}-*"))) == 1
    finally:
        go.set()
        builder.join(60)
    assert builder.exitcode == 0
    assert _leftovers(tmp_path) == ["sessions"] and first.path("train").stat().st_mtime_ns == stamp


def test_stale_temporaries_of_dead_writers_go_and_others_stay(tmp_path):
    target = tmp_path / "model"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = _HOST
    names = {f".model-tmp-{host}-{dead.stdout.strip()}-abc1": False, f".model-old-{host}-{dead.stdout.strip()}-x_2": False,
             f".model-tmp-{host}-{os.getpid()}-abc1": True, ".model-tmp-elsewhere-1-abc1": True, ".model-notes": True}
    for name in names:
        (tmp_path / name).mkdir()
    old = tmp_path / ".model-tmp-faraway-1-abc2"
    old.mkdir()
    os.utime(old, (time.time() - 2 * 86_400,) * 2)
    removed = remove_stale_temporaries(target)
    assert sorted(p.name for p in removed) == sorted([*(n for n, kept in names.items() if not kept), old.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n, kept in names.items() if kept)
