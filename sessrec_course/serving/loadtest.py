"""A bounded load test of the served ensemble: Triton's C++ perf_analyzer, or a Python tritonclient generator.

Each level keeps ``concurrency`` requests in flight (one raw session per request) until ``requests``
answers came back or ``timeout_s`` passed, and reports throughput and latency percentiles. With
``client="perf_analyzer"`` (:mod:`~sessrec_course.serving.perf_analyzer`) Triton's own C++ load generator does
the sending: it costs the machine much less CPU than Python. The Python client
(:mod:`~sessrec_course.serving.load_generators`) needs nothing beyond tritonclient.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from tqdm.auto import tqdm

from sessrec_course.serving.client import pad_raw_sessions
from sessrec_course.serving.load_generators import LoadLevel, grpc_level, grpc_stream_level, http_level
from sessrec_course.serving.perf_analyzer import PerfAnalyzerLevel, run_perf_analyzer
from sessrec_course.serving.repository import ENSEMBLE, INPUT_NAME

__all__ = ["LoadLevel", "LoadTestResult", "run_load_test"]

log = logging.getLogger(__name__)


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

    ``sessions`` are raw sessions, cycled through. Each level is bounded by ``timeout_s`` seconds; a
    short unrecorded warm-up at the largest concurrency runs before measuring. ``client`` is "python"
    (tritonclient, :mod:`~sessrec_course.serving.load_generators`) or "perf_analyzer" (Triton's C++ generator, "http" or "grpc").
    """
    if protocol not in ("grpc", "grpc-stream", "http"):
        raise ValueError(f"protocol must be 'grpc', 'grpc-stream' or 'http', got {protocol!r}")
    if not len(sessions):
        raise ValueError("the load test needs at least one raw session")
    if client == "perf_analyzer":
        if warmup:
            run_perf_analyzer(url, sessions, [max(concurrencies)], warmup, protocol, model, timeout_s)
        levels = []
        for concurrency in tqdm(concurrencies, desc=f"perf_analyzer {protocol}", disable=not progress, leave=False):
            levels += run_perf_analyzer(url, sessions, [concurrency], requests, protocol, model, timeout_s)
        return LoadTestResult(protocol, levels)
    if client != "python":
        raise ValueError(f"client must be 'python' or 'perf_analyzer', got {client!r}")
    raw_rows = [pad_raw_sessions([s]) for s in sessions]
    if protocol.startswith("grpc"):
        import tritonclient.grpc as grpcclient

        inputs = []
        for row in raw_rows:
            tensor = grpcclient.InferInput(INPUT_NAME, list(row.shape), "INT64")
            tensor.set_data_from_numpy(row)
            inputs.append(tensor)

        level_of = grpc_stream_level if protocol == "grpc-stream" else grpc_level

        def level(c: int, n: int, bar: tqdm | None) -> LoadLevel:
            return level_of(url, inputs, c, n, model, timeout_s, bar)
    else:
        def level(c: int, n: int, bar: tqdm | None) -> LoadLevel:
            return http_level(url, raw_rows, c, n, model, timeout_s, bar)

    if warmup:
        level(max(concurrencies), warmup, None)
    levels = []
    for concurrency in concurrencies:
        with tqdm(total=requests, desc=f"{protocol} c={concurrency}", disable=not progress, leave=False) as bar:
            measured = level(concurrency, requests, bar)
        log.info("c=%d: %.0f infer/s, p50 %.2f ms, p99 %.2f ms, %d errors", concurrency, measured.throughput,
                 measured.percentile(50), measured.percentile(99), measured.errors)
        levels.append(measured)
    return LoadTestResult(protocol, levels)
