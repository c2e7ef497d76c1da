"""Faults an operator rehearses, bounded in count and time and only on 127.0.0.1: kill a stub, watch recovery.

:func:`kill_stub` sends SIGKILL to the python-backend stub of one model of a :class:`TritonServer`;
:func:`traffic_during_fault` keeps ``concurrency`` clients sending real requests around such a fault and
records every answer (when it was sent, how long it took, ok / unavailable / other error, the ids returned);
:func:`fault_timeline` and :func:`overload_figure` draw what an operator watches.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sessrec_course.serving.client import TritonRecommender, is_unavailable, pad_raw_sessions
from sessrec_course.serving.repository import ENSEMBLE
from sessrec_course.serving.server import TritonServer
from sessrec_course.serving.supervisor import stub_pids

OUTCOME_COLORS = {"ok": "#31a354", "unavailable": "#fd8d3c", "error": "#de2d26"}
# Triton's latency summaries (quantiles of successful requests); the server must run with this flag
SUMMARY_FLAG = "--metrics-config=summary_latencies=true"
_SUMMARY_LINE = re.compile(r'nv_inference_(\w+)_summary_us\{model="([^"]+)",version="[^"]*",quantile="([\d.]+)"\} (\S+)')


def kill_stub(server: TritonServer, model: str) -> int:
    """SIGKILL one python-backend stub of ``model`` (as the OOM killer would) and return its pid."""
    pids = sorted(stub_pids(server.process.pid).get(model, ()))
    if not pids:
        raise LookupError(f"no python-backend stub of model {model!r} in {server}")
    os.kill(pids[0], signal.SIGKILL)
    return pids[0]


def traffic_during_fault(server: TritonServer, sessions: Sequence[Sequence[int]], fault: Callable[[], object] | None,
                         *, fault_at_s: float = 1.0, duration_s: float = 8.0, concurrency: int = 4,
                         max_requests: int = 20_000, protocol: str = "grpc") -> pd.DataFrame:
    """Send one-session requests from ``concurrency`` threads for ``duration_s`` s, calling ``fault`` at ``fault_at_s``.

    Clients do not retry (``retry_deadline_s=0``): every failure is recorded. Returns one row per request:
    ``t_s`` (sent, seconds after the start), ``latency_ms``, ``outcome`` (ok / unavailable / error),
    ``session`` (index into ``sessions``), ``item_ids`` (tuple, ok rows) and ``error``; ``attrs`` hold
    ``started`` (``time.monotonic()`` of t=0), ``fault_t_s`` and ``readiness`` (``t_s``, ``ready``: the
    server's :meth:`~TritonServer.is_ready` polled every 0.1 s). Bounded by ``duration_s`` and ``max_requests``.
    """
    url = server.grpc_url if protocol == "grpc" else server.http_url
    rows: list[dict] = []
    lock = threading.Lock()
    counter = iter(range(max_requests))
    started = time.monotonic()
    end = started + duration_s

    def worker() -> None:
        with TritonRecommender(url, protocol, retry_deadline_s=0, timeout_s=10.0) as client:
            while time.monotonic() < end:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                session = index % len(sessions)
                sent = time.monotonic()
                row = {"t_s": sent - started, "session": session, "item_ids": None, "error": None}
                try:
                    ids, _ = client.infer_matrix(pad_raw_sessions([sessions[session]]))
                    row.update(outcome="ok", item_ids=tuple(int(i) for i in ids[0]))
                except Exception as error:
                    row.update(outcome="unavailable" if is_unavailable(error) else "error", error=str(error)[:300])
                row["latency_ms"] = (time.monotonic() - sent) * 1e3
                with lock:
                    rows.append(row)

    readiness: list[tuple[float, bool]] = []

    def watch_readiness() -> None:
        while time.monotonic() < end:
            readiness.append((time.monotonic() - started, server.is_ready(timeout=0.5)))
            time.sleep(0.1)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    threads.append(threading.Thread(target=watch_readiness, daemon=True))
    for thread in threads:
        thread.start()
    fault_t = None
    if fault is not None:
        time.sleep(max(started + fault_at_s - time.monotonic(), 0))
        fault_t = time.monotonic() - started
        fault()
    for thread in threads:
        thread.join(max(end - time.monotonic(), 0) + 15.0)
    frame = pd.DataFrame(rows, columns=["t_s", "latency_ms", "outcome", "session", "item_ids", "error"])
    frame = frame.sort_values("t_s", ignore_index=True)
    frame.attrs.update(started=started, fault_t_s=fault_t,
                       readiness=pd.DataFrame(readiness, columns=["t_s", "ready"]))
    return frame


def server_latency_ms(server: TritonServer, timeout: float = 5.0) -> dict[tuple[str, str, float], float]:
    """Triton's own latency quantiles of the requests it answered successfully, in ms.

    Keys are ``(model, stage, quantile)``, e.g. ``("ensemble", "request", 0.99)`` (arrival to response inside the
    server) or ``("model", "queue", 0.99)``. Needs a server started with ``extra_args=(SUMMARY_FLAG,)``; the
    quantiles cover the server's recent requests, so a fresh server per measurement keeps them apart.
    """
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text = response.read().decode()
    found = {(m[2], m[1], float(m[3])): float(m[4]) / 1e3 for m in _SUMMARY_LINE.finditer(text)}
    if not found:
        raise RuntimeError(f"{url} has no latency summaries: start the server with extra_args=({SUMMARY_FLAG!r},)")
    return found


def answered_inside(url: str, model: str = ENSEMBLE) -> tuple[int, float]:
    """Triton's statistics of ``model`` on the gRPC ``url``: answered requests and their total time in the server (ms).

    The time runs from a request's arrival to its response; rejected and failed requests are not in it.
    """
    import tritonclient.grpc as grpcclient

    with grpcclient.InferenceServerClient(url) as client:
        stats = client.get_inference_statistics(model_name=model, as_json=True)["model_stats"]
    success = next(s for s in stats if s["name"] == model)["inference_stats"]["success"]
    return int(success.get("count", 0)), int(success.get("ns", 0)) / 1e6


def overload_levels(url: str, sessions: Sequence[Sequence[int]], concurrencies: Sequence[int],
                    requests: int) -> tuple[list, pd.DataFrame]:
    """Load ``url`` at each concurrency (closed loop, gRPC); return the client's levels and what the server saw.

    The frame has one row per level: ``concurrency``, ``ensemble_ms`` (mean time of an answered request inside the
    server, arrival to response) and ``model_ms`` (of that, in the model step: its queue and its run), from
    Triton's statistics, so the client's own backlog is in neither. Ten requests one at a time warm the server
    up first (they are in no figure).
    """
    from sessrec_course.serving.loadtest import run_load_test

    run_load_test(url, sessions, concurrencies=[1], requests=10, warmup=0, progress=False)  # a fresh server's cold start
    steps = (ENSEMBLE, "model")
    levels, rows = [], []
    for concurrency in concurrencies:
        before = {step: answered_inside(url, step) for step in steps}
        levels += run_load_test(url, sessions, concurrencies=[concurrency], requests=requests, protocol="grpc",
                                warmup=0, progress=False).levels
        row = {"concurrency": concurrency}
        for step in steps:
            count, ms = answered_inside(url, step)
            answered = count - before[step][0]
            row[f"{step}_ms"] = (ms - before[step][1]) / answered if answered else float("nan")
        rows.append(row)
    return levels, pd.DataFrame(rows).rename(columns={f"{ENSEMBLE}_ms": "ensemble_ms"})


def outage_seconds(frame: pd.DataFrame) -> float:
    """Seconds from the fault until the first request sent after it that was answered after the last failure."""
    fault_t = frame.attrs.get("fault_t_s")
    failed = frame[frame["outcome"] != "ok"]
    if fault_t is None or failed.empty:
        return 0.0
    last_failure_sent = failed["t_s"].max()
    after = frame[(frame["outcome"] == "ok") & (frame["t_s"] > last_failure_sent)]
    return float(after["t_s"].min() - fault_t) if not after.empty else float("inf")


def fault_timeline(frame: pd.DataFrame, events: Sequence = (),
                   title: str = "kill -9 of a python-backend stub, then recovery") -> Figure:
    """Latency of every request over time, coloured by outcome, with the fault and the supervisor's events.

    ``events`` are :class:`~sessrec_course.serving.supervisor.SupervisorEvent`; the polled readiness
    (``frame.attrs["readiness"]``) is drawn as a band at the top where it said not-ready.
    """
    figure = Figure(figsize=(10, 3.8))
    ax = figure.subplots()
    for outcome, color in OUTCOME_COLORS.items():
        part = frame[frame["outcome"] == outcome]
        if len(part):
            ax.scatter(part["t_s"], part["latency_ms"], s=6, color=color, label=f"{outcome} ({len(part)})")
    ax.set_yscale("log")
    ax.set_xlabel("seconds (request sent)")
    ax.set_ylabel("latency (ms, log)")
    started = frame.attrs.get("started", 0.0)
    if (fault_t := frame.attrs.get("fault_t_s")) is not None:
        ax.axvline(fault_t, color="black", linewidth=1.5, label="kill -9")
    for event in events:
        if event.kind in ("stub_died", "reloaded"):
            ax.axvline(event.at - started, color="#3182bd", linestyle="--" if event.kind == "stub_died" else ":",
                       linewidth=1.2, label=f"supervisor: {event.kind} {event.model}")
    if (readiness := frame.attrs.get("readiness")) is not None and len(readiness):
        low, high = ax.get_ylim()
        not_ready = readiness[~readiness["ready"]]
        ax.scatter(not_ready["t_s"], np.full(len(not_ready), high), marker="s", s=10, color="#756bb1",
                   label="is_ready() False", clip_on=False)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the plot is the timeline
    figure.tight_layout()
    return figure


def overload_figure(results: dict[str, Sequence], inside: dict[str, pd.DataFrame] | None = None) -> Figure:
    """Per configuration and concurrency: accepted p50/p99 latency (left), share rejected and rejection p50 (right).

    ``results`` maps a label (``"unbounded"``, ``"at most 4 in flight"``) to its ``LoadLevel`` list; ``inside``
    (optional, same labels) the frames of :func:`overload_levels`, whose ``ensemble_ms`` is drawn dashed on the left.
    """
    figure = Figure(figsize=(10, 3.8))
    latency_ax, reject_ax = figure.subplots(1, 2)
    twin = reject_ax.twinx()
    for label, levels in results.items():
        concurrency = [lv.concurrency for lv in levels]
        (line,) = latency_ax.plot(concurrency, [lv.percentile(99) for lv in levels], "s-", label=f"{label}: p99")
        latency_ax.plot(concurrency, [lv.percentile(50) for lv in levels], "o:", color=line.get_color(),
                        label=f"{label}: p50")
        if inside and label in inside:
            latency_ax.plot(concurrency, inside[label]["ensemble_ms"], "d--", color=line.get_color(),
                            label=f"{label}: mean inside the server")
        reject_ax.plot(concurrency, [lv.errors / max(lv.requests, 1) for lv in levels], "s-",
                       color=line.get_color(), label=f"{label}: share rejected")
        reject_ms = [float(np.nanmedian(lv.error_latencies_ms)) if lv.errors else np.nan for lv in levels]
        twin.plot(concurrency, reject_ms, "^:", color=line.get_color(), label=f"{label}: rejection p50 (ms)")
    twin.set_ylabel("time to a rejection, p50 (ms)")
    for ax in (latency_ax, reject_ax):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("requests in flight (concurrency)")
    latency_ax.set_yscale("log")
    latency_ax.set_ylabel("accepted requests: latency (ms, log)")
    latency_ax.set_title("Accepted requests")
    latency_ax.legend(fontsize=7)
    reject_ax.set_ylim(0, 1)
    reject_ax.set_ylabel("share of requests rejected")
    reject_ax.set_title("Rejected requests (unavailable)")
    handles = reject_ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    reject_ax.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="center left")
    figure.tight_layout()
    return figure
