"""Measure fault recovery and overload on the course GRU (the figures of docs/serving_faults.md).

``python -m sessrec_course.serving.faults_cli`` exports (or reuses) the course repository, serves it, and

- kills each python-backend stub ``--kills`` times under ``--concurrency`` clients: detection and reload time
  (supervisor), outage seen by the clients, seconds the readiness check said not-ready, answers that differ from
  the server's own answers before the fault (the tests compare with the in-process model);
- loads it without a limit, with the admission limit ``--max-in-flight`` (the course's own, admission.py) and with
  Triton's queue policy ``--queue`` at each ``--overload`` concurrency: rejected share, time to a rejection,
  accepted p50/p99, and requests slower than 200 ms (0 skips a configuration).

Every loop is bounded in requests and seconds and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def measure_kills(server, sessions: list[list[int]], kills: int, concurrency: int, duration_s: float) -> pd.DataFrame:
    """Kill each stub ``kills`` times under traffic; one row per kill."""
    from sessrec_course.serving.client import TritonRecommender
    from sessrec_course.serving.faults import kill_stub, outage_seconds, traffic_during_fault

    with TritonRecommender(server.grpc_url, "grpc") as client:
        before = client.recommend_batch(sessions, batch_size=32)
    reference = before.groupby("session")["item_id"].apply(tuple).tolist()
    rows = []
    for model in ("preprocess", "model"):
        for run in range(kills):
            server.supervisor.events.clear()
            frame = traffic_during_fault(server, sessions, lambda m=model: kill_stub(server, m), fault_at_s=1.0,
                                         duration_s=duration_s, concurrency=concurrency)
            started, fault_t = frame.attrs["started"], frame.attrs["fault_t_s"]
            events = {e.kind: e.at - started for e in server.supervisor.events if e.model == model}
            ok = frame[frame["outcome"] == "ok"]
            readiness = frame.attrs["readiness"]
            rows.append({
                "stub": model, "run": run + 1,
                "detected_s": round(events.get("stub_died", np.nan) - fault_t, 2),
                "reloaded_s": round(events.get("reloaded", np.nan) - fault_t, 2),
                "client_outage_s": round(outage_seconds(frame), 2),
                "not_ready_s": round(float((~readiness["ready"]).sum()) * 0.1, 1),
                "answered": len(ok), "unavailable": int((frame["outcome"] == "unavailable").sum()),
                "other_errors": int((frame["outcome"] == "error").sum()),
                "wrong": sum(ids != reference[s] for ids, s in zip(ok["item_ids"], ok["session"], strict=True)),
            })
            log.info("%s", rows[-1])
            if not _wait_ready(server, 30.0):  # bounded: the next kill needs a served model
                raise RuntimeError(f"{model} did not recover within 30 s; log {server.log_path}")
    return pd.DataFrame(rows)


def _wait_ready(server, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.is_ready():
            return True
        time.sleep(0.1)
    return False


def measure_overload(repository, sessions: list[list[int]], label: str, concurrencies: Sequence[int],
                     requests: int, log_dir) -> list[dict]:
    """One row per concurrency, each on a fresh server: rejections, client-side and server-side latencies.

    Client side (the Python gRPC client, closed loop): rejected share, rejection p50, accepted p50/p99 and answers
    slower than 200 ms. Server side (Triton's own summaries of the answered requests, the 10 warm-up requests
    included): the ensemble's p50/p99 from arrival to response, and the p99 wait in the model step's queue.
    """
    from sessrec_course.serving.faults import SUMMARY_FLAG, server_latency_ms
    from sessrec_course.serving.loadtest import run_load_test
    from sessrec_course.serving.server import TritonServer

    rows = []
    for concurrency in concurrencies:
        with TritonServer(repository, log_path=log_dir / f"overload-{label.replace(' ', '-')}-{concurrency}.log",
                          extra_args=(SUMMARY_FLAG,)) as server:
            # a short warm-up one at a time: its first, cold requests count in the server's summaries too
            run_load_test(server.grpc_url, sessions, concurrencies=[1], requests=10, warmup=0, progress=False)
            lv = run_load_test(server.grpc_url, sessions, concurrencies=[concurrency], requests=requests,
                               protocol="grpc", warmup=0, progress=False).levels[0]
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


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: kill each stub under load, then overload without a limit and with each limit; print tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=2, help="kills per stub")
    parser.add_argument("--concurrency", type=int, default=4, help="clients during the kills")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of traffic around each kill")
    parser.add_argument("--overload", type=int, nargs="+", default=[8, 48, 512], help="concurrencies")
    parser.add_argument("--requests", type=int, default=3000, help="requests per overload level")
    parser.add_argument("--max-in-flight", type=int, default=4, help="admission limit of the bounded configuration")
    parser.add_argument("--queue", type=int, default=4, help="max_queue_size of Triton's queue policy")
    parser.add_argument("--queue-timeout-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from sessrec_course.etl.dataset import prepare_default_dataset
    from sessrec_course.paths import build_dir
    from sessrec_course.profiles import get_profile
    from sessrec_course.serving.pipeline import export_course_model, raw_sessions
    from sessrec_course.serving.repository import ServingConfig
    from sessrec_course.serving.server import TritonServer

    artifacts = prepare_default_dataset()
    sessions = raw_sessions(artifacts, 512)
    folder = build_dir() / "serving" / get_profile().name
    plain, _, _ = export_course_model("gru", artifacts, folder / "gru-faults")
    with TritonServer(plain, log_path=folder / "faults-triton.log") as server:
        kills = measure_kills(server, sessions, args.kills, args.concurrency, args.duration)
    rows = measure_overload(plain, sessions, "unbounded", args.overload, args.requests, folder)
    bounded = []
    if args.max_in_flight:
        bounded.append((f"max_in_flight {args.max_in_flight}", f"gru-admission-{args.max_in_flight}",
                        ServingConfig(max_in_flight=args.max_in_flight, model_backend="python")))
    if args.queue or args.queue_timeout_ms:
        label = f"Triton queue {args.queue}" + (f", timeout {args.queue_timeout_ms:g} ms"
                                               if args.queue_timeout_ms else "")
        bounded.append((label, f"gru-queue-{args.queue}",
                        ServingConfig(max_queue_size=args.queue, queue_timeout_ms=args.queue_timeout_ms)))
    for label, name, config in bounded:
        repo, _, _ = export_course_model("gru", artifacts, folder / name, config=config)
        rows += measure_overload(repo, sessions, label, args.overload, args.requests, folder)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(kills.to_string(index=False))
        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
