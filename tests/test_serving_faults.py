"""A real tritonserver under faults: kill -9 of a stub under load, overload with a small queue, kill -9 of the server.

Every loop is bounded in requests and seconds and talks to 127.0.0.1 only. Timing targets live in
docs/serving_faults.md; here the deadlines are generous and every answer must equal the in-process reference.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc")
pytest.importorskip("torch")

from serving_helpers import tiny_events, tiny_onnx  # noqa: E402

from sessrec_course.etl import SessionWorkflow  # noqa: E402
from sessrec_course.serving import (  # noqa: E402
    ServingConfig,
    TritonRecommender,
    TritonServer,
    export_repository,
    onnx_scorer,
    recommend_in_process,
)
from sessrec_course.serving.faults import kill_stub, outage_seconds, traffic_during_fault  # noqa: E402
from sessrec_course.serving.pipeline import serving_state_from_workflow  # noqa: E402
from sessrec_course.serving.procs import process_group_members  # noqa: E402
from sessrec_course.serving.server import TritonServerDied, find_tritonserver  # noqa: E402
from sessrec_course.serving.supervisor import stub_pids  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(find_tritonserver() is None, reason="no tritonserver binary")]

TOP_K = 5
RESUME_DEADLINE_S = 30.0  # generous on a shared 2-core machine; measured figures: docs/serving_faults.md


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A fitted workflow, its ONNX model, raw sessions and the in-process top-k of every session."""
    folder = tmp_path_factory.mktemp("faults")
    events = tiny_events()
    state = serving_state_from_workflow(SessionWorkflow(max_length=6).fit(events))
    onnx_path = tiny_onnx(folder / "model.onnx", state.item_cardinality)
    sessions = events.groupby("session_id")["item_id"].apply(list).tolist()
    expected = recommend_in_process(onnx_scorer(onnx_path), state, sessions, k=TOP_K)
    top_k = expected.groupby("session")["item_id"].apply(tuple).tolist()
    return {"folder": folder, "state": state, "onnx": onnx_path, "sessions": sessions, "top_k": top_k}


def _repository(tiny, name: str, **config):
    return export_repository(tiny["folder"] / name, tiny["onnx"], tiny["state"],
                             ServingConfig(top_k=TOP_K, max_batch_size=16, model_backend="python", **config))


@pytest.fixture(scope="module")
def served(tiny):
    repo = _repository(tiny, "repo")
    with TritonServer(repo, log_path=tiny["folder"] / "triton.log") as server:
        yield server


def _answers_match(tiny, frame) -> int:
    ok = frame[frame["outcome"] == "ok"]
    wrong = [s for ids, s in zip(ok["item_ids"], ok["session"], strict=True) if ids != tiny["top_k"][s]]
    assert wrong == [], f"{len(wrong)} answers differ from the in-process reference"
    return len(ok)


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize("model", ["preprocess", "model"])
def test_a_killed_stub_under_load_is_reloaded_and_never_answers_wrong(served, tiny, model):
    before = stub_pids(served.process.pid)[model]
    killed = []
    frame = traffic_during_fault(served, tiny["sessions"], lambda: killed.append(kill_stub(served, model)),
                                 fault_at_s=1.0, duration_s=8.0, concurrency=4, max_requests=20_000)
    fault_t = frame.attrs["fault_t_s"]
    assert killed and killed[0] in before
    assert _wait(served.is_ready, RESUME_DEADLINE_S), f"not ready {RESUME_DEADLINE_S} s after the kill"
    assert killed[0] not in stub_pids(served.process.pid).get(model, set()), "the killed stub is still listed"

    answered = _answers_match(tiny, frame)
    outcomes = frame["outcome"].value_counts().to_dict()
    assert outcomes.get("error", 0) == 0, frame.loc[frame["outcome"] == "error", "error"].head(3).tolist()
    assert outcomes.get("unavailable", 0) > 0, "the kill went unnoticed by the clients"
    assert (frame.loc[frame["t_s"] < fault_t, "outcome"] == "ok").mean() > 0.5  # served before the fault
    readiness = frame.attrs["readiness"]
    during = readiness[readiness["t_s"] > fault_t]
    assert not during["ready"].all(), "readiness never said not-ready during the outage"
    kinds = [(e.kind, e.model) for e in served.supervisor.events]
    assert ("stub_died", model) in kinds and ("reloaded", model) in kinds
    outage = outage_seconds(frame)
    resumed = frame[(frame["outcome"] == "ok") & (frame["t_s"] > fault_t + outage - 1e-9)]
    assert outage < RESUME_DEADLINE_S and len(resumed) > 0, "service did not resume during the traffic"
    print(f"\nkill -9 {model}: outage {outage:.2f} s, {answered} answered, "
          f"{outcomes.get('unavailable', 0)} unavailable, readiness False for "
          f"{(~during['ready']).sum() * 0.1:.1f} s")
    with TritonRecommender(served.grpc_url, "grpc") as client:  # and it serves normally afterwards
        got = client.recommend_batch(tiny["sessions"][:40], batch_size=16)
    assert got.groupby("session")["item_id"].apply(tuple).tolist() == tiny["top_k"][:40]


def test_a_retrying_client_rides_through_a_killed_stub(served, tiny):
    assert _wait(served.is_ready, RESUME_DEADLINE_S)
    sessions = tiny["sessions"][:32]
    with TritonRecommender(served.grpc_url, "grpc", retry_deadline_s=RESUME_DEADLINE_S) as client:
        kill_stub(served, "preprocess")
        time.sleep(0.3)  # the supervisor has seen it: the model is unloaded or being loaded
        got = client.recommend_batch(sessions, batch_size=8)
    assert got.groupby("session")["item_id"].apply(tuple).tolist() == tiny["top_k"][:32]


def test_a_bad_request_is_not_retried(served, tiny):
    from tritonclient.utils import InferenceServerException

    from sessrec_course.serving.client import is_unavailable

    assert _wait(served.is_ready, RESUME_DEADLINE_S)
    with TritonRecommender(served.grpc_url, "grpc", retry_deadline_s=RESUME_DEADLINE_S) as client:
        oversize = [tiny["sessions"][0]] * 17  # max_batch_size is 16
        began = time.monotonic()
        with pytest.raises(InferenceServerException) as info:
            client.recommend_batch(oversize, batch_size=17)
    assert not is_unavailable(info.value) and "INVALID_ARGUMENT" in str(info.value.status())
    assert time.monotonic() - began < RESUME_DEADLINE_S / 3, "a bad request was retried"


def _model_batch_sizes(server) -> dict[int, int]:
    """Executions of the ``model`` step per batch size, from Triton's own statistics."""
    import tritonclient.grpc as grpcclient

    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        stats = client.get_inference_statistics(model_name="model", as_json=True)
    return {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in stats["model_stats"][0]["batch_stats"]}


def _overload(server, tiny, concurrency: int = 48):
    from sessrec_course.serving.loadtest import run_load_test

    level = run_load_test(server.grpc_url, tiny["sessions"], concurrencies=(concurrency,), requests=3000,
                          protocol="grpc", warmup=50, timeout_s=120.0, progress=False).levels[0]
    assert level.requests == 3000 and level.latencies_ms.size == level.requests - level.errors > 0
    rejection_p50 = float(np.median(level.error_latencies_ms)) if level.errors else float("nan")
    print(f"\noverload c={concurrency}: {level.errors}/{level.requests} rejected, rejection p50 {rejection_p50:.2f} ms, "
          f"accepted p50 {level.percentile(50):.2f} ms, p99 {level.percentile(99):.2f} ms, "
          f"max {level.latencies_ms.max():.1f} ms, {level.throughput:.0f} answers/s")
    return level


def _serves_normally(server, tiny) -> None:
    assert server.running and server.is_ready()
    with TritonRecommender(server.grpc_url, "grpc", retry_deadline_s=0) as client:
        got = client.recommend_batch(tiny["sessions"][:40], batch_size=16)
    assert got.groupby("session")["item_id"].apply(tuple).tolist() == tiny["top_k"][:40]


def test_the_admission_limit_rejects_the_surplus_and_bounds_what_the_model_step_accepts(tiny):
    from sessrec_course.serving.admission import AdmissionTable, table_path

    limit = 4
    # a long lease: only the model step's own clearing on reload can free the slots a killed stub took along
    repo = _repository(tiny, "repo-admission", max_in_flight=limit, admission_lease_ms=120_000)
    with TritonServer(repo, log_path=tiny["folder"] / "triton-admission.log") as server:
        # 32 clients that keep the answers: the accepted ones are right, the others only "unavailable"
        frame = traffic_during_fault(server, tiny["sessions"], None, duration_s=3.0, concurrency=32, max_requests=3000)
        answered = _answers_match(tiny, frame)
        outcomes = frame["outcome"].value_counts().to_dict()
        assert answered > 0 and outcomes.get("unavailable", 0) > 0 and outcomes.get("error", 0) == 0, outcomes
        assert frame.loc[frame["outcome"] == "unavailable", "error"].str.contains("max_in_flight=4").all()
        level = _overload(server, tiny)
        assert level.errors > 0 and level.unavailable == level.errors, level.first_error
        # what the server let through: the model step never ran more requests at once than the limit
        # (one session a request), where the unbounded server batches up to 16 (the next test)
        sizes = _model_batch_sizes(server)
        assert sizes and max(sizes) <= limit, sizes
        table = AdmissionTable(table_path(repo, server.process.pid), limit, 120_000)
        try:
            assert _wait(lambda: table.in_use() == 0, 10.0), f"{table.in_use()} slots still taken at rest"
            frame = traffic_during_fault(server, tiny["sessions"], lambda: kill_stub(server, "model"),
                                         fault_at_s=0.5, duration_s=3.0, concurrency=8, max_requests=3000)
            assert _wait(server.is_ready, RESUME_DEADLINE_S), f"not ready {RESUME_DEADLINE_S} s after the kill"
            assert _wait(lambda: table.in_use() == 0, 10.0), f"the killed stub's {table.in_use()} slots leaked"
        finally:
            table.close()
        _answers_match(tiny, frame)
        _serves_normally(server, tiny)
    assert not table.path.exists(), "the admission table outlived its server"


@pytest.mark.parametrize("queue", [4, 0], ids=["triton-queue-4", "unbounded"])
def test_overload_at_c48_rejects_only_with_a_queue_limit_and_keeps_serving(tiny, queue):
    repo = _repository(tiny, f"repo-queue-{queue}", max_queue_size=queue)
    with TritonServer(repo, log_path=tiny["folder"] / f"triton-queue-{queue}.log") as server:
        level = _overload(server, tiny)
        if queue:  # Triton's queue policy rejects only as UNAVAILABLE (its accepted latency: docs/serving_faults.md)
            assert level.errors > 0, f"48 clients never filled a queue of {queue}"
            assert level.unavailable == level.errors, f"not only rejections: {level.first_error}"
        else:
            assert level.errors == 0, level.first_error
            assert max(_model_batch_sizes(server)) > 4, "48 clients never made a batch larger than 4"
        _serves_normally(server, tiny)


def test_a_killed_server_is_reported_and_leaves_no_stub(tiny):
    repo = _repository(tiny, "repo-kill-server")
    server = TritonServer(repo, log_path=tiny["folder"] / "triton-killed.log").start()
    try:
        pgid = server.process.pid
        assert stub_pids(pgid), "no stub to orphan"
        os.kill(pgid, signal.SIGKILL)
        assert _wait(lambda: server.failure is not None, 10.0), "the death went unnoticed"
        assert _wait(lambda: process_group_members(pgid) == [], 10.0), process_group_members(pgid)
        message = str(server.failure)
        assert "SIGKILL" in message and str(server.log_path) in message and "Last log lines" in message
        assert not server.running and not server.is_ready() and server.health() == "dead"
        with pytest.raises(TritonServerDied, match="killed by signal 9"):
            server.check()
    finally:
        server.stop()
    assert process_group_members(pgid) == []
