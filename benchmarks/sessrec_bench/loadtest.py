"""A bounded load test of the served ensemble: Triton's C++ perf_analyzer, or the course's Python traffic loop.

Each level keeps ``concurrency`` requests in flight (one raw session per request) until ``requests`` answers came
back or ``timeout_s`` passed, and reports throughput and latency percentiles. perf_analyzer
(:mod:`sessrec_bench.perf_analyzer`) costs the machine much less CPU than Python; the Python client is
:func:`sessrec_course.serving.traffic.send_traffic`, the loop lesson 06b uses. The command line
(``python -m sessrec_bench loadtest``) also accounts the CPU of the server's process group and of the client per
level (from /proc), the figures docs/benchmarks.md records.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from sessrec_bench.perf_analyzer import PerfAnalyzerLevel, find_perf_analyzer, run_perf_analyzer
from sessrec_course.serving.procs import process_group_members, stat_fields
from sessrec_course.serving.repository import ENSEMBLE
from sessrec_course.serving.traffic import send_traffic

log = logging.getLogger(__name__)


@dataclass
class LoadLevel:
    """One concurrency level of the Python client; latencies in milliseconds, one per answered request."""

    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: np.ndarray = field(repr=False)
    first_error: str | None = None
    error_latencies_ms: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    unavailable: int = 0  # failures of the "unavailable, retry" kind (client.is_unavailable), not bad requests

    @classmethod
    def from_traffic(cls, frame: pd.DataFrame) -> LoadLevel:
        """The level measured by one :func:`~sessrec_course.serving.traffic.send_traffic` run."""
        ok, failed = frame[frame["outcome"] == "ok"], frame[frame["outcome"] != "ok"]
        return cls(frame.attrs["concurrency"], len(frame), len(failed), frame.attrs["seconds"],
                   ok["latency_ms"].to_numpy(), failed["error"].iloc[0] if len(failed) else None,
                   failed["latency_ms"].to_numpy(), int((failed["outcome"] == "unavailable").sum()))

    @property
    def throughput(self) -> float:
        """Answered requests (= inferences, one session each) per second."""
        return (self.requests - self.errors) / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile ``q`` (0-100) in ms, NaN without answers."""
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms.size else float("nan")

    @property
    def mean_ms(self) -> float:
        """Mean latency in ms, NaN without answers."""
        return float(self.latencies_ms.mean()) if self.latencies_ms.size else float("nan")


@dataclass
class LoadTestResult:
    """All levels of one load test (``LoadLevel`` from the Python client, ``PerfAnalyzerLevel`` from perf_analyzer)."""

    protocol: str
    levels: list[LoadLevel | PerfAnalyzerLevel]

    def summary(self) -> pd.DataFrame:
        """One row per concurrency: requests, errors, throughput (infer/s), p50/p90/p99 and mean (ms)."""
        return pd.DataFrame([{
            "concurrency": lv.concurrency, "requests": lv.requests, "errors": lv.errors,
            "throughput_per_s": round(lv.throughput, 1), "p50_ms": round(lv.percentile(50), 3),
            "p90_ms": round(lv.percentile(90), 3), "p99_ms": round(lv.percentile(99), 3),
            "mean_ms": round(lv.mean_ms, 3),
        } for lv in self.levels])


def run_load_test(url: str, sessions: Sequence[Sequence[int]], concurrencies: Sequence[int] = (1, 2, 4, 8),
                  requests: int = 1000, protocol: str = "grpc", model: str = ENSEMBLE, warmup: int = 100,
                  timeout_s: float = 120.0, progress: bool = True, client: str = "python") -> LoadTestResult:
    """Send ``requests`` one-session requests at each concurrency and return the measured levels.

    ``sessions`` are raw sessions, cycled through; each level is bounded by ``timeout_s``; an unrecorded warm-up at
    the largest concurrency runs first. ``client`` is "python" (the course's traffic loop) or "perf_analyzer".
    """
    if protocol not in ("grpc", "http"):
        raise ValueError(f"protocol must be 'grpc' or 'http', got {protocol!r}")
    if not len(sessions):
        raise ValueError("the load test needs at least one raw session")
    if client not in ("python", "perf_analyzer"):
        raise ValueError(f"client must be 'python' or 'perf_analyzer', got {client!r}")

    def level(concurrency: int, count: int) -> list:
        if client == "perf_analyzer":
            return run_perf_analyzer(url, sessions, [concurrency], count, protocol, model, timeout_s)
        frame = send_traffic(url, sessions, concurrency=concurrency, duration_s=timeout_s, max_requests=count,
                             protocol=protocol, model=model, timeout_s=min(timeout_s, 30.0))
        return [LoadLevel.from_traffic(frame)]

    if warmup:
        level(max(concurrencies), warmup)
    levels = []
    for concurrency in tqdm(concurrencies, desc=f"{client} {protocol}", disable=not progress, leave=False):
        levels += level(concurrency, requests)
        log.info("c=%d: %.0f infer/s, p50 %.2f ms, p99 %.2f ms, %d errors", concurrency, levels[-1].throughput,
                 levels[-1].percentile(50), levels[-1].percentile(99), levels[-1].errors)
    return LoadTestResult(protocol, levels)


def markdown_table(frame: pd.DataFrame) -> str:
    """Return ``frame`` as a GitHub markdown table (no extra dependency)."""
    rows = [list(map(str, frame.columns))] + [[f"{v:,}" if isinstance(v, int) else str(v) for v in row]
                                              for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(frame.columns))
    return "\n".join(lines)


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (from /proc; vanished processes count 0)."""
    fields = [f for f in map(stat_fields, pids) if f is not None]
    return sum(int(f[11]) + int(f[12]) for f in fields) / os.sysconf("SC_CLK_TCK")


def course_repository(path: str | Path | None = None, n_sessions: int = 1000) -> tuple[Path, list[list[int]]]:
    """Return an exported repository (``path`` or the course GRU's) and raw test sessions to send to it."""
    from sessrec_course.etl.dataset import prepare_default_dataset
    from sessrec_course.serving.pipeline import export_course_model, raw_sessions

    artifacts = prepare_default_dataset()
    repository = Path(path) if path else export_course_model("gru", artifacts)[0]
    return repository, raw_sessions(artifacts, n_sessions)


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
    parser = argparse.ArgumentParser(prog="python -m sessrec_bench loadtest", description=__doc__.split("\n")[0])
    parser.add_argument("--repository", help="an exported repository (default: export the course GRU)")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--client", choices=["perf_analyzer", "python"],
                        help="load generator (default: perf_analyzer when installed, else python)")
    parser.add_argument("--protocol", choices=["grpc", "http"],
                        help="default: http with perf_analyzer, grpc with the Python client")
    parser.add_argument("--figure", help="write the latency histogram here (png)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    client = _pick_client(args.client)
    protocol = args.protocol or ("http" if client == "perf_analyzer" else "grpc")

    from sessrec_course.serving.server import TritonServer

    repository, sessions = course_repository(args.repository)
    rows, levels = [], []
    with TritonServer(repository) as server:
        url = server.http_url if protocol == "http" else server.grpc_url
        for index, concurrency in enumerate(args.concurrency):
            pids = process_group_members(server.process.pid)
            if index == 0:  # unmeasured warm-up: connections, first batches, caches
                run_load_test(url, sessions, [max(args.concurrency)], 500, protocol, warmup=0, progress=False,
                              client=client)
            load_before, began = os.getloadavg()[0], time.perf_counter()
            server_before, own_before = cpu_seconds(pids), cpu_seconds([os.getpid()])
            level = run_load_test(url, sessions, [concurrency], args.requests, protocol, warmup=0,
                                  client=client).levels[0]
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
        from sessrec_bench.figures import latency_histogram

        latency_histogram(result).savefig(args.figure, dpi=110, bbox_inches="tight")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
