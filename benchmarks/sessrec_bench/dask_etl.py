"""Distributed ETL throughput and peak memory per worker, beside the single-process workflow's peak.

Usage: ``python -m sessrec_bench dask-etl [--events 20000000 50000000] [--workers 1 2]``.
Events are generated once into ``build/bench/dask-etl/events_<n>/`` as parquet files of at most 5 M events
each (pieces with their own seed and session ids; each piece in time order, as a real log's daily files).
Every measurement runs in a fresh process: ``single`` reads the folder with pandas and runs ``SessionWorkflow``
fit + transform (its peak RSS is the whole ETL's); ``dask`` starts a ``LocalCluster`` of W one-thread workers
with a memory limit each, runs :func:`~sessrec_course.etl.distributed.run_distributed_etl` (shuffle by
session, distributed fit, per-partition transform to parquet) and reads every worker's peak RSS
(``ru_maxrss``). Prints a markdown row per measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

MODULE = "sessrec_bench.dask_etl"
PIECE = 5_000_000  # events per generated file


def _work_dir() -> Path:
    from sessrec_course.paths import build_dir

    folder = build_dir() / "bench" / "dask-etl"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def generate(n_events: int) -> Path:
    """Write ``n_events`` generated events as parquet pieces (once); return the folder."""
    from sessrec_course.data.synthetic import generate_events

    target = _work_dir() / f"events_{n_events}"
    if (target / "_done").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    for i, start in enumerate(range(0, n_events, PIECE)):
        size = min(PIECE, n_events - start)
        events = generate_events(size, n_items=max(2_000, n_events // 500), n_categories=50, n_days=42, seed=1 + i)
        events["session_id"] += i * 1_000_000_000  # distinct sessions per piece
        events = events.sort_values("timestamp", kind="stable").reset_index(drop=True)
        events.to_parquet(target / f"part.{i:03d}.parquet", index=False)
    (target / "_done").write_text(str(n_events))
    return target


def single(n_events: int) -> dict:
    """Fit + transform the whole log in this process with pandas; return time and peak RSS."""
    import pandas as pd

    from sessrec_course.etl import SessionWorkflow
    from sessrec_course.etl.distributed import peak_rss_mib

    events = pd.read_parquet(generate(n_events))
    loaded = peak_rss_mib()
    t0 = time.perf_counter()
    wf = SessionWorkflow(max_length=20).fit(events)
    table = wf.transform_arrow(events)
    seconds = time.perf_counter() - t0
    return {"mode": "single process", "events": n_events, "sessions": table.num_rows, "seconds": seconds,
            "events_per_s": n_events / seconds, "loaded_mib": loaded, "peak_mib": peak_rss_mib()}


def distributed(n_events: int, workers: int, memory_limit: str, partition_events: int) -> dict:
    """Run the Dask ETL on a fresh local cluster; return time, throughput and each worker's peak RSS."""
    from sessrec_course.etl import SessionWorkflow
    from sessrec_course.etl.distributed import dask_client, peak_rss_mib, run_distributed_etl

    folder = generate(n_events)
    output = _work_dir() / f"sessions_{n_events}_{workers}"
    with dask_client(n_workers=workers, memory_limit=memory_limit, dashboard_address=None) as client:
        t0 = time.perf_counter()
        result = run_distributed_etl(folder, output, client, SessionWorkflow(max_length=20),
                                     npartitions=max(workers, n_events // partition_events))
        seconds = time.perf_counter() - t0
        peaks = sorted(client.run(peak_rss_mib).values())
    shutil.rmtree(output, ignore_errors=True)
    return {"mode": f"dask, {workers} worker(s)", "events": n_events, "sessions": result["sessions"],
            "seconds": seconds, "fit_s": result["fit_s"], "transform_s": result["transform_s"],
            "events_per_s": n_events / seconds, "partitions": result["partitions"], "memory_limit": memory_limit,
            "worker_peak_mib": peaks, "client_peak_mib": peak_rss_mib()}


def _row(r: dict) -> str:
    if r["mode"] == "single process":
        memory = f"{r['peak_mib']:,.0f} (events loaded: {r['loaded_mib']:,.0f})"
        detail = "—"
    else:
        memory = " / ".join(f"{m:,.0f}" for m in r["worker_peak_mib"]) + f" (client {r['client_peak_mib']:,.0f})"
        detail = f"fit {r['fit_s']:.1f} + transform {r['transform_s']:.1f}, {r['partitions']} partitions"
    return (f"| {r['events']:,} | {r['mode']} | {r['sessions']:,} | {r['seconds']:.1f} | "
            f"{r['events_per_s'] / 1e6:.2f} M | {detail} | {memory} |")


def main(argv: list[str] | None = None) -> int:
    """Print the distributed-ETL table, one fresh process per measurement; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sessrec_bench dask-etl", description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[20_000_000, 50_000_000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--memory-limit", default="4GiB", help="per worker; Dask spills to disk above ~60%% of it")
    parser.add_argument("--partition-events", type=int, default=2_000_000, help="events per shuffled partition")
    parser.add_argument("--no-single", action="store_true", help="skip the single-process reference")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        out = (single(spec["events"]) if spec["workers"] == 0 else
               distributed(spec["events"], spec["workers"], args.memory_limit, args.partition_events))
        print(json.dumps(out))
        return 0
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()}")
    print("| events | mode | sessions | seconds | events/s | steps | peak RSS MiB (per worker) |")
    print("|---|---|---|---|---|---|---|", flush=True)
    for n in args.events:
        subprocess.run([sys.executable, "-c", f"from {MODULE} import generate; generate({n})"], check=True)
        for workers in ([] if args.no_single else [0]) + args.workers:
            cmd = [sys.executable, "-m", MODULE, "--child", json.dumps({"events": n, "workers": workers}),
                   "--memory-limit", args.memory_limit, "--partition-events", str(args.partition_events)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                tail = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode
                print(f"| {n:,} | {workers or 'single'} | failed: {tail} |", flush=True)
                continue
            print(_row(json.loads(out.stdout.strip().splitlines()[-1])), flush=True)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
