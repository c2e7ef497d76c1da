"""The Python load generators (tritonclient only): one concurrency level each, bounded in requests and time.

Each keeps ``concurrency`` requests in flight (one raw session per request) until ``requests`` answers came
back or ``timeout_s`` passed. gRPC uses asynchronous calls from one thread (or one bidirectional stream);
HTTP one thread per in-flight request.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from sessrec_course.serving.client import is_unavailable
from sessrec_course.serving.repository import INPUT_NAME, OUTPUT_IDS, OUTPUT_SCORES


@dataclass
class LoadLevel:
    """What one concurrency level measured; latencies in milliseconds, one per answered request."""

    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: np.ndarray = field(repr=False)
    first_error: str | None = None
    # how fast the failed requests failed (a rejection by a full queue should be quick), and how many
    # of them were of the "unavailable, retry" kind (client.is_unavailable) rather than bad requests
    error_latencies_ms: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    unavailable: int = 0

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


class _InFlight:
    """Book-keeping of the asynchronous gRPC generators: which request goes next, what came back, when to end."""

    def __init__(self, requests: int, progress: tqdm | None):
        self.requests, self.progress = requests, progress
        self.latencies = np.full(requests, -1.0)  # -1: no successful answer
        self.error_latencies: list[float] = []
        self.unavailable = 0
        self.lock, self.done = threading.Lock(), threading.Event()
        self.sent = self.answered = self.errors = 0
        self.first_error: str | None = None
        self.stop = False

    def claim(self) -> int | None:
        """Return the index of the next request to send, None once all are sent or the level stopped."""
        with self.lock:
            if self.sent >= self.requests or self.stop:
                return None
            self.sent += 1
            return self.sent - 1

    def answer(self, index: int | None, latency_ms: float, error, send_next) -> None:
        """Record one answer (an error when ``index`` is None), then end the level or send the next request."""
        with self.lock:
            self.answered += 1
            if index is None:
                self.errors += 1
                self.first_error = self.first_error or str(error)
                self.error_latencies.append(latency_ms)
                self.unavailable += error is not None and is_unavailable(error)
            else:
                self.latencies[index] = latency_ms
            finished = self.answered >= self.sent and (self.sent >= self.requests or self.stop)
        if self.progress is not None:
            self.progress.update(1)
        if finished:
            self.done.set()
        else:
            send_next()

    def run(self, concurrency: int, send, timeout_s: float) -> float:
        """Start ``concurrency`` requests, wait for the level (bounded by ``timeout_s``); return its seconds."""
        began = time.perf_counter()
        for _ in range(min(concurrency, self.requests)):
            send()
        if not self.done.wait(timeout_s):
            with self.lock:
                self.stop = True
            self.done.wait(10.0)
        return time.perf_counter() - began

    def level(self, concurrency: int, seconds: float) -> LoadLevel:
        """Return the measured level; a request sent and never answered within the bound counts as an error."""
        with self.lock:
            sent, errors = self.sent, self.errors + self.sent - self.answered
            ok = self.latencies[:sent][self.latencies[:sent] >= 0]
        return LoadLevel(concurrency, sent, errors, seconds, ok, self.first_error,
                         np.asarray(self.error_latencies), self.unavailable)


def grpc_level(url: str, inputs: list, concurrency: int, requests: int, model: str,
               timeout_s: float, progress: tqdm | None) -> LoadLevel:
    """One level over gRPC: asynchronous calls from this thread, ``concurrency`` of them in flight."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    outputs = [grpcclient.InferRequestedOutput(OUTPUT_IDS), grpcclient.InferRequestedOutput(OUTPUT_SCORES)]
    flight = _InFlight(requests, progress)

    def issue_one() -> None:
        if (index := flight.claim()) is None:
            return
        start = time.perf_counter()

        def callback(result, error) -> None:
            elapsed_ms = (time.perf_counter() - start) * 1e3
            failed = error is not None or result is None
            flight.answer(None if failed else index, elapsed_ms, error, send)

        try:
            client.async_infer(model, [inputs[index % len(inputs)]], callback, outputs=outputs)
        except Exception as exc:  # the call itself failed: count it and go on
            callback(None, exc)

    send = _trampoline(issue_one)
    seconds = flight.run(concurrency, send, timeout_s)
    client.close()
    return flight.level(concurrency, seconds)


def grpc_stream_level(url: str, inputs: list, concurrency: int, requests: int, model: str,
                      timeout_s: float, progress: tqdm | None) -> LoadLevel:
    """Like :func:`grpc_level` over one bidirectional gRPC stream (less work per request on both sides)."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    outputs = [grpcclient.InferRequestedOutput(OUTPUT_IDS), grpcclient.InferRequestedOutput(OUTPUT_SCORES)]
    flight = _InFlight(requests, progress)
    started = np.zeros(requests)

    def send() -> None:
        if (index := flight.claim()) is None:
            return
        started[index] = time.perf_counter()
        client.async_stream_infer(model, [inputs[index % len(inputs)]], outputs=outputs, request_id=str(index))

    def callback(result, error) -> None:
        now = time.perf_counter()
        if error is not None or result is None:
            flight.answer(None, float("nan"), error, send)  # a stream error carries no request id
        else:
            index = int(result.get_response().id)
            flight.answer(index, (now - started[index]) * 1e3, None, send)

    client.start_stream(callback=callback)
    seconds = flight.run(concurrency, send, timeout_s)
    client.stop_stream(cancel_requests=True)
    client.close()
    return flight.level(concurrency, seconds)


def http_level(url: str, raw_rows: list[np.ndarray], concurrency: int, requests: int, model: str,
               timeout_s: float, progress: tqdm | None) -> LoadLevel:
    """One level over HTTP: one thread (and client) per in-flight request."""
    import tritonclient.http as httpclient

    latencies: list[float] = []
    error_latencies: list[float] = []
    lock = threading.Lock()
    state = {"next": 0, "errors": 0, "first_error": None, "unavailable": 0}
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
                    state["unavailable"] += is_unavailable(error)
                    error_latencies.append(elapsed)
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
                     np.asarray(latencies), state["first_error"], np.asarray(error_latencies), state["unavailable"])
