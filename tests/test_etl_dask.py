"""The Dask ETL equals the single-process SessionWorkflow: same vocabulary, sessions, sequences and schema."""

from __future__ import annotations

import json
import os
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from listeners import descendants, listening_sockets

from sessrec_course.data.errors import DataError
from sessrec_course.data.synthetic import generate_events
from sessrec_course.etl import SessionWorkflow
from sessrec_course.etl.distributed import (
    dask_client,
    fit_distributed,
    read_events,
    read_sessions_folder,
    run_distributed_etl,
    shuffle_sessions,
)

pytestmark = pytest.mark.slow  # starts worker processes (integration tier)

SETTINGS = {"max_length": 8, "min_item_frequency": 2, "remove_consecutive_repeats": True}


@pytest.fixture(scope="module")
def events_folder(tmp_path_factory):
    """Events in time order dealt round-robin into 5 parquet files, so most sessions span several input partitions."""
    events = generate_events(40_000, 800, 12, 6, seed=5).sort_values("timestamp", kind="stable")
    folder = tmp_path_factory.mktemp("events")
    for i in range(5):
        events.iloc[i::5].to_parquet(folder / f"events.{i}.parquet", index=False)
    return folder, events.reset_index(drop=True)


def _split_sessions(folder) -> int:
    """Sessions whose events lie in more than one input file."""
    files = sorted(folder.glob("*.parquet"))
    owners = pd.concat([pd.read_parquet(f, columns=["session_id"]).assign(file=i) for i, f in enumerate(files)])
    return int((owners.groupby("session_id")["file"].nunique() > 1).sum())


@pytest.mark.parametrize("n_workers", [1, 2])
def test_dask_etl_equals_the_single_process_workflow(events_folder, tmp_path, n_workers):
    folder, events = events_folder
    assert _split_sessions(folder) > 100  # the shuffle has real work to do
    reference = SessionWorkflow(**SETTINGS).fit(events)
    expected = reference.transform(events).sort_values("session_id").reset_index(drop=True)
    with dask_client(n_workers=n_workers, dashboard_address=None) as client:
        result = run_distributed_etl(folder, tmp_path / "sessions", client, SessionWorkflow(**SETTINGS))
        assert result["workers"] == n_workers
        # without the shuffle, per-partition counts see split sessions: a different (wrong) vocabulary
        unshuffled = fit_distributed(SessionWorkflow(**SETTINGS), read_events(folder))
    fitted = result["workflow"]
    assert unshuffled.stats != reference.stats
    np.testing.assert_array_equal(fitted.item_raw, reference.item_raw)
    np.testing.assert_array_equal(fitted.item_category, reference.item_category)
    np.testing.assert_array_equal(fitted.category_raw, reference.category_raw)
    got = read_sessions_folder(tmp_path / "sessions")
    pd.testing.assert_frame_equal(got, expected)
    assert result["sessions"] == len(expected)
    schema = json.loads((tmp_path / "sessions" / "schema.json").read_text())
    assert schema == json.loads(json.dumps(reference.schema()))


def test_bad_input_is_named(tmp_path, events_folder):
    with pytest.raises(FileNotFoundError, match="no event parquet at .*missing"):
        read_events(tmp_path / "missing")
    frame = read_events(events_folder[0]).drop(columns=["session_id"])
    with pytest.raises(DataError, match="session_id"):
        shuffle_sessions(frame)
    with pytest.raises(FileNotFoundError, match="part"):
        read_sessions_folder(tmp_path)


def test_scheduler_workers_nannies_and_dashboard_listen_on_loopback_only():
    with dask_client(n_workers=2) as client:
        workers = client.run(os.getpid)
        sockets = listening_sockets([os.getpid(), *descendants(os.getpid())])
        ports = {port for _, _, port in sockets}
        expected = {urlparse(client.dashboard_link).port, urlparse(client.scheduler.address).port,
                    *(urlparse(address).port for address in workers)}
        assert expected <= ports and len(expected) == 4  # dashboard, scheduler, two workers
        assert set(workers.values()) <= {pid for pid, _, _ in sockets}
        assert sorted({address for _, address, _ in sockets}) == ["127.0.0.1"], sockets
