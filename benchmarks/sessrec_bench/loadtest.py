"""The load-test command line: export (or reuse) the course's repository, serve it, measure every level.

Besides throughput and latency it accounts the CPU the server's process group and the client used per level
(from /proc), the figures docs/benchmarks.md records. Run as ``python -m sessrec_bench loadtest``.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Sequence

import pandas as pd

from sessrec_course.serving import loadtest
from sessrec_course.serving.loadtest import LoadTestResult, run_load_test
from sessrec_course.serving.loadtest_report import markdown_table
from sessrec_course.serving.perf_analyzer import PerfAnalyzerLevel, find_perf_analyzer
from sessrec_course.serving.procs import cpu_seconds, process_group_members

log = logging.getLogger(__name__)


def _pick_client(requested: str | None) -> str:
    """Return the load generator to use: ``requested``, else perf_analyzer when installed, else python."""
    if requested:
        return requested
    if find_perf_analyzer() is None:
        log.info("perf_analyzer not found (install it with `make perf-analyzer`): using the Python client")
        return "python"
    return "perf_analyzer"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: export (or reuse) the course's repository, start the server, run the load test."""
    parser = argparse.ArgumentParser(prog="python -m sessrec_bench loadtest",
                                     description=loadtest.__doc__.split("\n")[0])
    parser.add_argument("--repository", help="an exported repository (default: export the course GRU)")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--client", choices=["perf_analyzer", "python"],
                        help="load generator (default: perf_analyzer when installed, else python)")
    parser.add_argument("--protocol", choices=["grpc", "grpc-stream", "http"],
                        help="default: http with perf_analyzer, grpc with the Python client")
    parser.add_argument("--figure", help="write the latency histogram here (png)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    client = _pick_client(args.client)
    protocol = args.protocol or ("http" if client == "perf_analyzer" else "grpc")
    if client == "perf_analyzer" and protocol == "grpc-stream":
        parser.error("perf_analyzer runs 'http' or 'grpc' here; use --client python for grpc-stream")

    from sessrec_course.serving.pipeline import course_repository
    from sessrec_course.serving.server import TritonServer

    repository, sessions = course_repository(args.repository)
    rows, levels = [], []

    def measure(concurrencies: list[int], requests: int, progress: bool = True) -> LoadTestResult:
        return run_load_test(url, sessions, concurrencies, requests, protocol, warmup=0, progress=progress,
                             client=client)

    with TritonServer(repository) as server:
        url = server.http_url if protocol == "http" else server.grpc_url
        for index, concurrency in enumerate(args.concurrency):
            pids = process_group_members(server.process.pid)
            if index == 0:  # unmeasured warm-up: connections, first batches, caches
                measure([max(args.concurrency)], 500, progress=False)
            load_before, began = os.getloadavg()[0], time.perf_counter()
            server_before, own_before = cpu_seconds(pids), cpu_seconds([os.getpid()])
            level = measure([concurrency], args.requests).levels[0]
            if isinstance(level, PerfAnalyzerLevel):  # its process only (this one merely waits, then reads files)
                wall, client_cpu = level.wall_s, level.client_cpu_s
            else:
                wall, client_cpu = time.perf_counter() - began, cpu_seconds([os.getpid()]) - own_before
            cpu = cpu_seconds(pids) - server_before + client_cpu
            levels.append(level)
            rows.append({"cores used": round(cpu / wall, 2), "client cores": round(client_cpu / wall, 2),
                         "infer per CPU-s": round((level.requests - level.errors) / max(cpu, 1e-9)),
                         "load avg (1 min)": round(max(load_before, os.getloadavg()[0]), 1)})
        print(f"server log: {server.log_path}")
    result = LoadTestResult(protocol, levels)
    table = pd.concat([result.summary(), pd.DataFrame(rows)], axis=1)
    print(f"{os.cpu_count()} cores, {client} client, {protocol}, {args.requests} requests per level, "
          f"repository {repository}")
    print(markdown_table(table))
    if args.figure:
        from sessrec_course.plots.serving import latency_histogram

        latency_histogram(result).savefig(args.figure, dpi=110, bbox_inches="tight")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
