"""The session ETL on Dask: events shuffled by session, per-partition ``fit_counts`` summed, each partition
transformed into one parquet file of a folder (docs/design.md)."""

from __future__ import annotations

import json
import logging
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from sessrec_course.data.errors import DataError
from sessrec_course.etl.frame import backend_of, get_backend
from sessrec_course.etl.workflow import SessionWorkflow
from sessrec_course.paths import write_directory_atomically

log = logging.getLogger(__name__)

_COUNTS_META = pd.DataFrame({"kind": np.zeros(0, np.int8), "key": np.zeros(0, np.int64),
                             "key2": np.zeros(0, np.int64), "count": np.zeros(0, np.int64)})


@contextmanager
def dask_client(address: str | None = None, n_workers: int = 2, memory_limit: str | int | None = "auto",
                **cluster_kwargs: Any) -> Iterator[Any]:
    """Yield a ``distributed.Client``: of the scheduler at ``address``, else of a local cluster (one thread a worker)."""
    from distributed import Client

    if address:
        with Client(address) as client:
            yield client
        return
    cluster_kwargs.setdefault("dashboard_address", "127.0.0.1:0")  # a free port on loopback (":0" is every interface)
    cluster_kwargs.setdefault("host", "127.0.0.1")  # scheduler, nannies and workers
    cluster = get_backend().local_cluster(n_workers, memory_limit, **cluster_kwargs)
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB (``ru_maxrss``); ``client.run(peak_rss_mib)`` asks every worker."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read_events(path: str | Path) -> Any:
    """Read a parquet event file or folder of files as a Dask DataFrame (partitions of the backend's frames)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no event parquet at {path}")
    return get_backend().dask().read_parquet(str(path))


def shuffle_sessions(events: Any, npartitions: int | None = None) -> Any:
    """Hash-partition ``events`` by ``session_id``: every session whole in exactly one partition."""
    if "session_id" not in events.columns:
        raise DataError("missing column", source="dask events", column="session_id",
                        expected=f"integer column; have {list(events.columns)}")
    return events.shuffle("session_id", npartitions=npartitions or events.npartitions)


def fit_distributed(workflow: SessionWorkflow, sessions: Any, source: str = "train events") -> SessionWorkflow:
    """Fit ``workflow`` on :func:`shuffle_sessions`'s events: per-partition counts summed by a distributed group-by."""
    meta = backend_of(sessions._meta).from_pandas(_COUNTS_META)  # pandas or cuDF, as the partitions

    def counts_of(part: Any) -> Any:
        return workflow.fit_counts(part, source) if len(part) else meta  # a hash partition may receive no session

    total = sessions.map_partitions(counts_of, meta=meta).groupby(["kind", "key", "key2"])["count"].sum()
    return workflow.fit_from_counts(total.reset_index().compute(), source)


def _write_partition(part: Any, index: int, workflow: SessionWorkflow, folder: str, source: str) -> int:
    if len(part) == 0:
        return 0
    table = workflow.transform_arrow(part, source=f"{source} (partition {index})")
    if table.num_rows:
        pq.write_table(table, Path(folder) / f"part.{index:05d}.parquet")
    return table.num_rows


def transform_distributed(workflow: SessionWorkflow, sessions: Any, output: str | Path, source: str = "events"
                          ) -> dict[str, Any]:
    """Write :func:`shuffle_sessions`'s events as a folder of parquet session files + ``schema.json``, atomically."""
    import dask

    parts = sessions.to_delayed()
    result: dict[str, Any] = {}

    def write(tmp: Path) -> None:
        task = dask.delayed(_write_partition)
        rows = dask.compute(*[task(part, i, workflow, str(tmp), source) for i, part in enumerate(parts)])
        (tmp / "schema.json").write_text(json.dumps(workflow.schema(), indent=2), encoding="utf-8")
        result.update(sessions=int(sum(rows)), files=int(sum(1 for r in rows if r)))

    write_directory_atomically(output, write)
    return result


def run_distributed_etl(events_path: str | Path, output: str | Path, client: Any,
                        workflow: SessionWorkflow | None = None, npartitions: int | None = None) -> dict[str, Any]:
    """Fit on the events at ``events_path`` and write their sessions to ``output`` on ``client``'s cluster; return timings."""
    workflow, source = workflow or SessionWorkflow(), f"events {events_path}"
    sessions = shuffle_sessions(read_events(events_path), npartitions)
    t0 = time.perf_counter()
    fit_distributed(workflow, sessions, source)
    t1 = time.perf_counter()
    written = transform_distributed(workflow, sessions, output, source)
    t2 = time.perf_counter()
    workers = len(client.scheduler_info().get("workers", {}))
    log.info("distributed ETL on %d workers: fit %.1f s, transform %.1f s", workers, t1 - t0, t2 - t1)
    return {"workflow": workflow, "workers": workers, "partitions": int(sessions.npartitions),
            "fit_s": t1 - t0, "transform_s": t2 - t1, **written}


def read_sessions_folder(path: str | Path, pattern: str = "part.*.parquet") -> pd.DataFrame:
    """Read the parquet files of a folder (Dask's or NVTabular's output) as one frame sorted by ``session_id``."""
    files = sorted(Path(path).glob(pattern))
    if not files:
        raise FileNotFoundError(f"no {pattern} files in {path}")
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return frame.sort_values("session_id", kind="stable").reset_index(drop=True)
