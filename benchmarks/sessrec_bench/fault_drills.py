"""Fault drills on the course GRU behind a real Triton (the figures of docs/serving_faults.md).

``python -m sessrec_bench faults`` exports (or reuses) the course repository, serves it under a
:class:`~sessrec_course.serving.supervisor.SupervisedServer`, and

- kills (SIGKILL) or stops (SIGSTOP, a hung stub) each python-backend stub ``--kills`` / ``--stops`` times under
  ``--concurrency`` clients: detection and reload time, outage seen by the clients, seconds readiness said
  not-ready, answers that differ from the server's own answers before the fault;
- loads it without a limit, behind the admission limit ``--max-in-flight`` and with Triton's queue policy
  ``--queue`` at each ``--overload`` concurrency: rejected share, time to a rejection, accepted p50/p99, Triton's
  own latency summaries (0 skips a configuration).

Every loop is bounded in requests and seconds and talks to 127.0.0.1 only; traffic is the course's loop.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

# Triton's latency summaries (quantiles of successful requests); the server must run with this flag
SUMMARY_FLAG = "--metrics-config=summary_latencies=true"
_SUMMARY_LINE = re.compile(r'nv_inference_(\w+)_summary_us\{model="([^"]+)",version="[^"]*",quantile="([\d.]+)"\} (\S+)')


def queue_policy(max_queue_size: int, timeout_ms: float) -> str:
    """Return a dynamic batcher's ``default_queue_policy`` (empty when both limits are off): REJECT when over."""
    if not max_queue_size and not timeout_ms:
        return ""
    return (f" default_queue_policy {{ timeout_action: REJECT default_timeout_microseconds: {int(round(timeout_ms * 1000))}"
            f" allow_timeout_override: true max_queue_size: {int(max_queue_size)} }}")


def with_queue_policy(repository: str | Path, max_queue_size: int, timeout_ms: float = 0.0) -> Path:
    """Give every step of an exported repository Triton's queue policy (what the course does not use, and why)."""
    repository = Path(repository)
    policy = queue_policy(max_queue_size, timeout_ms)
    for config in repository.glob("*/config.pbtxt"):
        text = config.read_text()
        config.write_text(re.sub(r"(dynamic_batching \{ max_queue_delay_microseconds: \d+)", rf"\1{policy}", text))
    return repository


def server_latency_ms(server, timeout: float = 5.0) -> dict[tuple[str, str, float], float]:
    """Triton's own latency quantiles of the requests it answered, in ms, keyed ``(model, stage, quantile)``.

    E.g. ``("ensemble", "request", 0.99)`` (arrival to response) or ``("model", "queue", 0.99)``. Needs a server
    started with ``extra_args=(SUMMARY_FLAG,)``.
    """
    with urllib.request.urlopen(server.metrics_url, timeout=timeout) as response:
        text = response.read().decode()
    found = {(m[2], m[1], float(m[3])): float(m[4]) / 1e3 for m in _SUMMARY_LINE.finditer(text)}
    if not found:
        raise RuntimeError(f"{server.metrics_url} has no latency summaries: start the server with {SUMMARY_FLAG!r}")
    return found


def _wait_ready(server, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.is_ready():
            return True
        time.sleep(0.1)
    return False


def measure_faults(server, sessions: list[list[int]], runs: int, concurrency: int, duration_s: float,
                   sig: int = signal.SIGKILL) -> pd.DataFrame:
    """Send ``sig`` to each stub ``runs`` times under traffic (a fresh ``send_traffic`` each); one row per fault."""
    from sessrec_course.serving.client import TritonRecommender
    from sessrec_course.serving.supervisor import signal_stub
    from sessrec_course.serving.traffic import outage_seconds, send_traffic

    with TritonRecommender(server.grpc_url, "grpc") as client:
        before = client.recommend_batch(sessions, batch_size=32)
    reference = before.groupby("session")["item_id"].apply(tuple).tolist()
    rows = []
    for model in ("preprocess", "model"):
        for run in range(runs):
            server.supervisor.events.clear()
            frame = send_traffic(server.grpc_url, sessions, concurrency=concurrency, duration_s=duration_s,
                                 fault=lambda m=model: signal_stub(server, m, sig), ready=server.is_ready)
            started, fault_t = frame.attrs["started"], frame.attrs["fault_t_s"]
            events = {e.kind: e.at - started for e in server.supervisor.events if e.model == model}
            ok, readiness = frame[frame["outcome"] == "ok"], frame.attrs["readiness"]
            rows.append({
                "signal": signal.Signals(sig).name, "stub": model, "run": run + 1,
                "detected_s": round(events.get("stub_hung", events.get("stub_died", np.nan)) - fault_t, 2),
                "reloaded_s": round(events.get("reloaded", np.nan) - fault_t, 2),
                "client_outage_s": round(outage_seconds(frame), 2),
                "not_ready_s": round(float((~readiness["ready"]).sum()) * 0.1, 1),
                "answered": len(ok), "unavailable": int((frame["outcome"] == "unavailable").sum()),
                "other_errors": int((frame["outcome"] == "error").sum()),
                "wrong": sum(ids != reference[s] for ids, s in zip(ok["item_ids"], ok["session"], strict=True)),
            })
            log.info("%s", rows[-1])
            if not _wait_ready(server, 30.0):  # bounded: the next fault needs a served model
                raise RuntimeError(f"{model} did not recover within 30 s: {server.problem()}; log {server.log_path}")
    return pd.DataFrame(rows)


def measure_overload(repository, sessions: list[list[int]], label: str, concurrencies: Sequence[int],
                     requests: int, log_dir: Path) -> list[dict]:
    """One row per concurrency, each on a fresh server: rejections, client-side and server-side latencies."""
    from sessrec_bench.loadtest import run_load_test
    from sessrec_course.serving.supervisor import SupervisedServer

    rows = []
    for concurrency in concurrencies:
        with SupervisedServer(repository, log_path=log_dir / f"overload-{label.replace(' ', '-')}-{concurrency}.log",
                              extra_args=(SUMMARY_FLAG,)) as server:
            # a short warm-up one at a time: its first, cold requests count in the server's summaries too
            run_load_test(server.grpc_url, sessions, concurrencies=[1], requests=10, warmup=0, progress=False)
            lv = run_load_test(server.grpc_url, sessions, concurrencies=[concurrency], requests=requests,
                               warmup=0, progress=False).levels[0]
            inside = server_latency_ms(server)
        rows.append({
            "config": label, "concurrency": lv.concurrency, "requests": lv.requests, "rejected": lv.errors,
            "rejected_unavailable": lv.unavailable,
            "rejection_p50_ms": round(float(np.median(lv.error_latencies_ms)), 2) if lv.errors else np.nan,
            "accepted_p50_ms": round(lv.percentile(50), 2), "accepted_p99_ms": round(lv.percentile(99), 2),
            "accepted_over_200ms": int((lv.latencies_ms > 200).sum()), "answers_per_s": round(lv.throughput, 1),
            "server_p50_ms": round(inside.get(("ensemble", "request", 0.5), np.nan), 2),
            "server_p99_ms": round(inside.get(("ensemble", "request", 0.99), np.nan), 2),
            "model_queue_p99_ms": round(inside.get(("model", "queue", 0.99), np.nan), 2),
        })
        log.info("%s", rows[-1])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: kill and stop each stub under load, then overload each configuration; print the tables."""
    parser = argparse.ArgumentParser(prog="python -m sessrec_bench faults", description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=2, help="SIGKILLs per stub")
    parser.add_argument("--stops", type=int, default=2, help="SIGSTOPs (hangs) per stub")
    parser.add_argument("--concurrency", type=int, default=4, help="clients during the faults")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of traffic around each fault")
    parser.add_argument("--overload", type=int, nargs="*", default=[8, 48, 128], help="concurrencies ([] = skip)")
    parser.add_argument("--requests", type=int, default=3000, help="requests per overload level")
    parser.add_argument("--max-in-flight", type=int, default=4, help="admission limit of the bounded configuration")
    parser.add_argument("--queue", type=int, default=4, help="max_queue_size of Triton's queue policy")
    parser.add_argument("--queue-timeout-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from sessrec_course.etl.dataset import prepare_default_dataset
    from sessrec_course.paths import build_dir
    from sessrec_course.profiles import get_profile
    from sessrec_course.serving.admission import limit_admission
    from sessrec_course.serving.pipeline import export_course_model, raw_sessions
    from sessrec_course.serving.repository import ServingConfig
    from sessrec_course.serving.supervisor import SupervisedServer

    artifacts = prepare_default_dataset()
    sessions = raw_sessions(artifacts, 512)
    folder = build_dir() / "serving" / get_profile().name
    plain, _, _ = export_course_model("gru", artifacts, folder / "gru-faults")
    with SupervisedServer(plain, log_path=folder / "faults-triton.log") as server:
        faults = pd.concat([measure_faults(server, sessions, runs, args.concurrency, args.duration, sig)
                            for sig, runs in ((signal.SIGKILL, args.kills), (signal.SIGSTOP, args.stops)) if runs])
    rows = measure_overload(plain, sessions, "unbounded", args.overload, args.requests, folder)
    python_steps = ServingConfig(model_backend="python")
    if args.max_in_flight:
        repo, _, _ = export_course_model("gru", artifacts, folder / f"gru-admission-{args.max_in_flight}",
                                         config=python_steps)  # a fresh export each run
        label = f"max_in_flight {args.max_in_flight}"
        rows += measure_overload(limit_admission(repo, args.max_in_flight), sessions, label, args.overload,
                                 args.requests, folder)
    if args.queue or args.queue_timeout_ms:
        repo, _, _ = export_course_model("gru", artifacts, folder / f"gru-queue-{args.queue}", config=python_steps)
        label = f"Triton queue {args.queue}" + (f", timeout {args.queue_timeout_ms:g} ms" if args.queue_timeout_ms else "")
        rows += measure_overload(with_queue_policy(repo, args.queue, args.queue_timeout_ms), sessions, label,
                                 args.overload, args.requests, folder)
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(faults.to_string(index=False))
        print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
