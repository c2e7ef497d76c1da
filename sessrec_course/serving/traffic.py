"""The course's one traffic loop (lesson 06b, and the benchmark tree's load test and fault drills reuse it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from sessrec_course.serving.client import TritonRecommender, is_unavailable, pad_raw_sessions
from sessrec_course.serving.repository import ENSEMBLE

COLUMNS = ["t_s", "latency_ms", "outcome", "session", "item_ids", "error"]


def send_traffic(url: str, sessions: Sequence[Sequence[int]], *, concurrency: int = 4, duration_s: float = 8.0,
                 max_requests: int = 20_000, protocol: str = "grpc", model: str = ENSEMBLE,
                 fault: Callable[[], object] | None = None, fault_at_s: float = 1.0,
                 ready: Callable[[], bool] | None = None, timeout_s: float = 10.0) -> pd.DataFrame:
    """A closed loop for ``duration_s`` (at most ``max_requests``); one row per request, in sending order.

    Rows: ``t_s`` (sent), ``latency_ms``, ``outcome`` (ok / unavailable / error: clients never retry), ``session``
    (index), ``item_ids``, ``error``. ``fault()`` runs at ``fault_at_s``, ``ready()`` is polled every 0.1 s; ``attrs``
    hold ``started`` (monotonic t=0), ``seconds``, ``concurrency``, ``fault_t_s`` and ``readiness``."""
    if not len(sessions):
        raise ValueError("traffic needs at least one raw session")
    rows: list[dict] = []
    readiness: list[tuple[float, bool]] = []
    lock, counter = threading.Lock(), iter(range(max_requests))
    end = (started := time.monotonic()) + duration_s

    def client() -> None:
        with TritonRecommender(url, protocol, model_name=model, timeout_s=timeout_s, retry_deadline_s=0) as sender:
            while time.monotonic() < end:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                session = index % len(sessions)
                sent = time.monotonic()
                row = {"t_s": sent - started, "session": session, "item_ids": None, "error": None}
                try:
                    ids, _ = sender.infer_matrix(pad_raw_sessions([sessions[session]]))
                    row.update(outcome="ok", item_ids=tuple(int(i) for i in ids[0]))
                except Exception as error:
                    row.update(outcome="unavailable" if is_unavailable(error) else "error", error=str(error)[:300])
                row["latency_ms"] = (time.monotonic() - sent) * 1e3
                with lock:
                    rows.append(row)

    def watch() -> None:
        while time.monotonic() < end:
            readiness.append((time.monotonic() - started, bool(ready())))
            time.sleep(0.1)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    threads += [threading.Thread(target=watch, daemon=True)] if ready is not None else []
    for thread in threads:
        thread.start()
    fault_t = None
    if fault is not None:
        time.sleep(max(started + fault_at_s - time.monotonic(), 0))
        fault_t = time.monotonic() - started
        fault()
    for thread in threads:
        thread.join(max(end - time.monotonic(), 0) + timeout_s + 5.0)
    frame = pd.DataFrame(rows, columns=COLUMNS).sort_values("t_s", ignore_index=True)
    frame.attrs.update(started=started, seconds=time.monotonic() - started, concurrency=concurrency,
                       fault_t_s=fault_t, readiness=pd.DataFrame(readiness, columns=["t_s", "ready"]))
    return frame


def outage_seconds(frame: pd.DataFrame) -> float:
    """Seconds from the fault until the first request sent after the last failure that was answered."""
    fault_t, failed = frame.attrs["fault_t_s"], frame[frame["outcome"] != "ok"]
    if fault_t is None or failed.empty:
        return 0.0
    after = frame[(frame["outcome"] == "ok") & (frame["t_s"] > failed["t_s"].max())]
    return float(after["t_s"].min() - fault_t) if not after.empty else float("inf")


def summarize(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """One row per traffic run: concurrency, requests, errors, answers per second, p50/p99/mean of the answered (ms)."""
    rows = []
    for frame in frames:
        ok = frame.loc[frame["outcome"] == "ok", "latency_ms"].to_numpy()
        quantiles = np.percentile(ok, [50, 99]) if ok.size else [np.nan, np.nan]
        rows.append({"concurrency": frame.attrs["concurrency"], "requests": len(frame), "errors": len(frame) - ok.size,
                     "throughput_per_s": round(ok.size / frame.attrs["seconds"], 1),
                     "p50_ms": round(quantiles[0], 3), "p99_ms": round(quantiles[1], 3),
                     "mean_ms": round(float(ok.mean()), 3) if ok.size else np.nan})
    return pd.DataFrame(rows)
