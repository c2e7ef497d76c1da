"""A bounded load test of the served ensemble: Triton's C++ perf_analyzer, or a Python tritonclient generator.

Each level keeps ``concurrency`` requests in flight (one raw session per request) until ``requests``
answers came back or ``timeout_s`` passed, and reports throughput and latency percentiles. With
``client="perf_analyzer"`` (:mod:`~sessrec_course.serving.perf_analyzer`) Triton's own C++ load generator does
the sending: it costs the machine much less CPU than Python. The Python client needs nothing beyond
tritonclient: gRPC uses asynchronous calls from one thread; HTTP one thread per in-flight request.

Benchmark command (records the figures in docs/benchmarks.md; perf_analyzer over HTTP when installed)::

    python -m sessrec_course.serving.loadtest --requests 10000 --concurrency 1 2 4 8
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from sessrec_course.serving.client import pad_raw_sessions
from sessrec_course.serving.perf_analyzer import PerfAnalyzerLevel, find_perf_analyzer, run_perf_analyzer
from sessrec_course.serving.repository import ENSEMBLE, INPUT_NAME, OUTPUT_IDS, OUTPUT_SCORES

log = logging.getLogger(__name__)


@dataclass
class LoadLevel:
    """What one concurrency level measured; latencies in milliseconds, one per answered request."""

    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: np.ndarray = field(repr=False)
    first_error: str | None = None

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


def _trampoline(issue_one):
    """Return ``send()``: calls ``issue_one`` at once, or in a loop when a callback fires inside it.

    A callback that completes synchronously (a request failing at once) would otherwise recurse once per
    request and overflow the stack on long runs.
    """
    local = threading.local()

    def send() -> None:
        if getattr(local, "busy", False):
            local.pending += 1
            return
        local.busy, local.pending = True, 1
        try:
            while local.pending:
                local.pending -= 1
                issue_one()
        finally:
            local.busy = False

    return send


def _grpc_level(url: str, inputs: list, concurrency: int, requests: int, model: str,
                timeout_s: float, progress: tqdm | None) -> LoadLevel:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    outputs = [grpcclient.InferRequestedOutput(OUTPUT_IDS), grpcclient.InferRequestedOutput(OUTPUT_SCORES)]
    latencies = np.full(requests, -1.0)  # -1: no successful answer
    lock, done = threading.Lock(), threading.Event()
    state = {"sent": 0, "answered": 0, "errors": 0, "first_error": None, "stop": False}

    def issue_one() -> None:
        with lock:
            if state["sent"] >= requests or state["stop"]:
                return
            index = state["sent"]
            state["sent"] += 1
        start = time.perf_counter()

        def callback(result, error) -> None:
            elapsed = time.perf_counter() - start
            with lock:
                state["answered"] += 1
                if error is not None or result is None:
                    state["errors"] += 1
                    state["first_error"] = state["first_error"] or str(error)
                else:
                    latencies[index] = elapsed * 1e3
                finished = state["answered"] >= state["sent"] and (state["sent"] >= requests or state["stop"])
            if progress is not None:
                progress.update(1)
            if finished:
                done.set()
            else:
                send()

        try:
            client.async_infer(model, [inputs[index % len(inputs)]], callback, outputs=outputs)
        except Exception as exc:  # the call itself failed: count it and go on
            callback(None, exc)

    send = _trampoline(issue_one)

    began = time.perf_counter()
    for _ in range(min(concurrency, requests)):
        send()
    if not done.wait(timeout_s):
        with lock:
            state["stop"] = True
        done.wait(10.0)
    seconds = time.perf_counter() - began
    client.close()
    with lock:  # a request sent and never answered within the bound counts as an error
        sent, errors = state["sent"], state["errors"] + state["sent"] - state["answered"]
        ok = latencies[:sent][latencies[:sent] >= 0]
    return LoadLevel(concurrency, sent, errors, seconds, ok, state["first_error"])


def _grpc_stream_level(url: str, inputs: list, concurrency: int, requests: int, model: str,
                       timeout_s: float, progress: tqdm | None) -> LoadLevel:
    """Like :func:`_grpc_level` over one bidirectional gRPC stream (less work per request on both sides)."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    outputs = [grpcclient.InferRequestedOutput(OUTPUT_IDS), grpcclient.InferRequestedOutput(OUTPUT_SCORES)]
    latencies = np.full(requests, -1.0)
    started = np.zeros(requests)
    lock, done = threading.Lock(), threading.Event()
    state = {"sent": 0, "answered": 0, "errors": 0, "first_error": None, "stop": False}

    def send() -> None:
        with lock:
            if state["sent"] >= requests or state["stop"]:
                return
            index = state["sent"]
            state["sent"] += 1
        started[index] = time.perf_counter()
        client.async_stream_infer(model, [inputs[index % len(inputs)]], outputs=outputs, request_id=str(index))

    def callback(result, error) -> None:
        now = time.perf_counter()
        with lock:
            state["answered"] += 1
            if error is not None or result is None:
                state["errors"] += 1
                state["first_error"] = state["first_error"] or str(error)
            else:
                index = int(result.get_response().id)
                latencies[index] = (now - started[index]) * 1e3
            finished = state["answered"] >= state["sent"] and (state["sent"] >= requests or state["stop"])
        if progress is not None:
            progress.update(1)
        if finished:
            done.set()
        else:
            send()

    client.start_stream(callback=callback)
    began = time.perf_counter()
    for _ in range(min(concurrency, requests)):
        send()
    if not done.wait(timeout_s):
        with lock:
            state["stop"] = True
        done.wait(10.0)
    seconds = time.perf_counter() - began
    client.stop_stream(cancel_requests=True)
    client.close()
    with lock:
        sent, errors = state["sent"], state["errors"] + state["sent"] - state["answered"]
        ok = latencies[:sent][latencies[:sent] >= 0]
    return LoadLevel(concurrency, sent, errors, seconds, ok, state["first_error"])


def _http_level(url: str, raw_rows: list[np.ndarray], concurrency: int, requests: int, model: str,
                timeout_s: float, progress: tqdm | None) -> LoadLevel:
    import tritonclient.http as httpclient

    latencies: list[float] = []
    lock = threading.Lock()
    state = {"next": 0, "errors": 0, "first_error": None}
    deadline = time.monotonic() + timeout_s

    def worker() -> None:
        client = httpclient.InferenceServerClient(url)
        outputs = [httpclient.InferRequestedOutput(OUTPUT_IDS), httpclient.InferRequestedOutput(OUTPUT_SCORES)]
        while time.monotonic() < deadline:
            with lock:
                if state["next"] >= requests:
                    break
                index = state["next"]
                state["next"] += 1
            row = raw_rows[index % len(raw_rows)]
            tensor = httpclient.InferInput(INPUT_NAME, list(row.shape), "INT64")
            tensor.set_data_from_numpy(row)
            start = time.perf_counter()
            try:
                client.infer(model, [tensor], outputs=outputs)
                ok, error = True, None
            except Exception as exc:
                ok, error = False, exc
            elapsed = (time.perf_counter() - start) * 1e3
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    state["errors"] += 1
                    state["first_error"] = state["first_error"] or str(error)
            if progress is not None:
                progress.update(1)
        client.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0) + 10)
    seconds = time.perf_counter() - began
    return LoadLevel(concurrency, len(latencies) + state["errors"], state["errors"], seconds,
                     np.asarray(latencies), state["first_error"])


def run_load_test(url: str, sessions: Sequence[Sequence[int]], concurrencies: Sequence[int] = (1, 2, 4, 8),
                  requests: int = 1000, protocol: str = "grpc", model: str = ENSEMBLE, warmup: int = 100,
                  timeout_s: float = 120.0, progress: bool = True, client: str = "python") -> LoadTestResult:
    """Send ``requests`` one-session requests at each concurrency and return the measured levels.

    ``sessions`` are raw sessions, cycled through. Each level is bounded by ``timeout_s`` seconds; a
    short unrecorded warm-up at the largest concurrency runs before measuring. ``client`` is "python"
    (tritonclient, this module) or "perf_analyzer" (Triton's C++ generator, "http" or "grpc").
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

        grpc_level = _grpc_stream_level if protocol == "grpc-stream" else _grpc_level

        def level(c: int, n: int, bar: tqdm | None) -> LoadLevel:
            return grpc_level(url, inputs, c, n, model, timeout_s, bar)
    else:
        def level(c: int, n: int, bar: tqdm | None) -> LoadLevel:
            return _http_level(url, raw_rows, c, n, model, timeout_s, bar)

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


def _cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (from /proc; vanished processes count 0)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def markdown_table(frame: pd.DataFrame) -> str:
    """Return ``frame`` as a GitHub markdown table (no extra dependency)."""
    rows = [list(map(str, frame.columns))] + [[f"{v:,}" if isinstance(v, int) else str(v) for v in row]
                                              for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(frame.columns))
    return "\n".join(lines)


def _pick_client(requested: str | None) -> str:
    """Return the load generator to use: ``requested``, else perf_analyzer when installed, else python."""
    if requested:
        return requested
    if find_perf_analyzer() is None:
        log.info("perf_analyzer not found (install it with `make perf-analyzer`): using the Python client")
        return "python"
    return "perf_analyzer"


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: export (or reuse) the course's repository, start the server, run the load test."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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
    from sessrec_course.serving.server import TritonServer, process_group_members

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
            server_before, own_before = _cpu_seconds(pids), _cpu_seconds([os.getpid()])
            level = measure([concurrency], args.requests).levels[0]
            if isinstance(level, PerfAnalyzerLevel):  # its process only (this one merely waits, then reads files)
                wall, client_cpu = level.wall_s, level.client_cpu_s
            else:
                wall, client_cpu = time.perf_counter() - began, _cpu_seconds([os.getpid()]) - own_before
            cpu = _cpu_seconds(pids) - server_before + client_cpu
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

if __name__ == "__main__":
    main()
