"""ETL throughput: SessionWorkflow fit + transform on generated logs of 1 M, 5 M, 20 M events.

Usage: ``python -m sessrec_bench etl [--events 1000000 5000000 20000000] [--backend pandas]``.
Each size runs in a fresh process (so peak memory is per size). The log is shuffled into time order first
(as a real click log is), so the ETL really sorts by session and time. Events are generated once
into ``build/bench/etl-speed`` and read from parquet, so the peak RSS is the ETL's (plus the loaded table). Timed: fit on the whole log +
transform to the arrow table the parquet files are written from; to pandas and to parquet are reported
separately. Prints a markdown table row per size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

MODULE = "sessrec_bench.etl_speed"  # run as a module, a fresh process per size


def _work_dir() -> Path:
    from sessrec_course.paths import build_dir

    folder = build_dir() / "bench" / "etl-speed"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def generate(n_events: int) -> None:
    from sessrec_course.data.synthetic import generate_events

    events = generate_events(n_events, n_items=max(2_000, n_events // 500), n_categories=50, n_days=42, seed=1)
    events = events.sort_values("timestamp", kind="stable").reset_index(drop=True)  # a real log's order
    target = _work_dir() / f"events_{n_events}.parquet"
    events.to_parquet(f"{target}.tmp", index=False)
    os.replace(f"{target}.tmp", target)


def child(n_events: int, backend: str) -> dict:
    os.environ["SESSREC_DATAFRAME"] = backend
    import pandas as pd
    import pyarrow.parquet as pq

    from sessrec_course.etl import SessionWorkflow, get_backend

    cache = _work_dir() / f"events_{n_events}.parquet"
    if not os.path.exists(cache):  # generate in a separate process so its memory peak is not counted
        subprocess.run([sys.executable, "-m", MODULE, "--generate", str(n_events), "--backend", backend], check=True)
    events = get_backend().from_pandas(pd.read_parquet(cache))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    c0, t0 = time.process_time(), time.perf_counter()
    wf = SessionWorkflow(max_length=20).fit(events)
    t1 = time.perf_counter()
    table = wf.transform_arrow(events)
    t2, cpu = time.perf_counter(), time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    frame = table.to_pandas()
    t3 = time.perf_counter()
    written = _work_dir() / f"transformed_{os.getpid()}.parquet"
    pq.write_table(table, written)
    t4 = time.perf_counter()
    written.unlink()
    return {"events": n_events, "sessions": len(frame), "backend": get_backend().name, "fit_s": t1 - t0,
            "transform_s": t2 - t1, "cpu_s": cpu, "events_per_s": n_events / (t2 - t0), "to_pandas_s": t3 - t2,
            "parquet_s": t4 - t3, "rss_before_mib": rss_before, "peak_rss_mib": peak}


def main(argv: list[str] | None = None) -> int:
    """Print the ETL table, one fresh process per size; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sessrec_bench etl", description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 5_000_000, 20_000_000])
    parser.add_argument("--backend", default="pandas", choices=["pandas", "cudf"])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate:
        generate(args.generate)
        return 0
    if args.child:
        print(json.dumps(child(args.child, args.backend)))
        return 0
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()}")
    print("| events | sessions | backend | fit s | transform s | events/s (fit+transform) | CPU s | to pandas s "
          "| parquet s | peak RSS MiB (after loading the events) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.events:
        out = subprocess.run([sys.executable, "-m", MODULE, "--child", str(n), "--backend", args.backend],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(f"| {n:,} | failed: {out.stderr.strip().splitlines()[-1] if out.stderr else out.returncode} |")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['events']:,} | {r['sessions']:,} | {r['backend']} | {r['fit_s']:.2f} | {r['transform_s']:.2f} "
              f"| {r['events_per_s'] / 1e6:.2f} M | {r['cpu_s']:.2f} | {r['to_pandas_s']:.2f} | {r['parquet_s']:.2f} "
              f"| {r['peak_rss_mib']:,.0f} ({r['rss_before_mib']:,.0f}) |", flush=True)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
