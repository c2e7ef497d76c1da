"""A supervised tritonserver under faults: a stub killed or hung under load, a reload that keeps failing, a crashed
supervisor, overload behind the admission limit or a small Triton queue, the server killed, a server that never answers.

Every loop is bounded in requests and seconds and talks to 127.0.0.1 only. Measured figures live in
docs/serving_faults.md; here the deadlines are generous and every answer must equal the in-process reference.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc")
pytest.importorskip("torch")

from serving_helpers import tiny_events, tiny_onnx  # noqa: E402

from sessrec_course.etl import SessionWorkflow  # noqa: E402
from sessrec_course.serving import (  # noqa: E402
    ServingConfig,
    ServingUnavailable,
    TritonRecommender,
    export_repository,
    onnx_scorer,
    recommend_in_process,
)
from sessrec_course.serving.admission import limit_admission  # noqa: E402
from sessrec_course.serving.pipeline import serving_state_from_workflow  # noqa: E402
from sessrec_course.serving.procs import process_group_members  # noqa: E402
from sessrec_course.serving.server import find_tritonserver  # noqa: E402
from sessrec_course.serving.server_setup import SHM_DIR  # noqa: E402
from sessrec_course.serving.supervisor import (  # noqa: E402
    SupervisedServer,
    TritonServerDied,
    signal_stub,
    stub_pids,
)
from sessrec_course.serving.traffic import outage_seconds, send_traffic  # noqa: E402

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


def _repository(tiny, name: str):
    return export_repository(tiny["folder"] / name, tiny["onnx"], tiny["state"],
                             ServingConfig(top_k=TOP_K, max_batch_size=16, model_backend="python"))


@pytest.fixture(scope="module")
def served(tiny):
    repo = _repository(tiny, "repo")
    with SupervisedServer(repo, log_path=tiny["folder"] / "triton.log") as server:
        yield server


def _traffic(server, tiny, fault=None, **kwargs):
    return send_traffic(server.grpc_url, tiny["sessions"], fault=fault, ready=server.is_ready, **kwargs)


def _answers_match(tiny, frame) -> int:
    ok = frame[frame["outcome"] == "ok"]
    wrong = [s for ids, s in zip(ok["item_ids"], ok["session"], strict=True) if ids != tiny["top_k"][s]]
    assert wrong == [], f"{len(wrong)} answers differ from the in-process reference"
    return len(ok)


def _restarted(server) -> bool:
    """True when tritonserver itself died and was restarted (2.51 aborts when a stub dies holding a shared lock)."""
    return ("restarted", "tritonserver") in {(e.kind, e.model) for e in server.supervisor.events}


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
    frame = _traffic(served, tiny, lambda: killed.append(signal_stub(served, model)), fault_at_s=1.0,
                     duration_s=8.0, concurrency=4, max_requests=20_000)
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
    assert ("stub_died", model) in kinds and (("reloaded", model) in kinds or _restarted(served)), kinds
    outage = outage_seconds(frame)
    resumed = frame[(frame["outcome"] == "ok") & (frame["t_s"] > fault_t + outage - 1e-9)]
    assert outage < RESUME_DEADLINE_S and len(resumed) > 0, "service did not resume during the traffic"
    print(f"\nkill -9 {model}: outage {outage:.2f} s, {answered} answered, "
          f"{outcomes.get('unavailable', 0)} unavailable, readiness False for "
          f"{(~during['ready']).sum() * 0.1:.1f} s")
    with TritonRecommender(served.grpc_url, "grpc") as client:  # and it serves normally afterwards
        got = client.recommend_batch(tiny["sessions"][:40], batch_size=16)
    assert got.groupby("session")["item_id"].apply(tuple).tolist() == tiny["top_k"][:40]
    _assert_only_live_regions_remain(served)


def _regions(server) -> dict[str, int]:
    return {p.name: p.stat().st_mode & 0o777 for p in SHM_DIR.glob(f"{server.shm_prefix}*")}


def _assert_only_live_regions_remain(server) -> None:
    """The killed stub's shared memory is gone from /dev/shm; the live stubs' regions are this user's only (0600)."""
    stubs = [pid for pids in stub_pids(server.process.pid).values() for pid in pids]
    maps = "".join(open(f"/proc/{pid}/maps").read() for pid in stubs)
    regions = _regions(server)
    live = {name for name in regions if f"/dev/shm/{name}" in maps}
    assert len(live) == len(stubs) and set(regions) == live, (regions, live)
    assert set(regions.values()) == {0o600}, regions


def test_a_retrying_client_rides_through_a_killed_stub(served, tiny):
    assert _wait(served.is_ready, RESUME_DEADLINE_S)
    sessions = tiny["sessions"][:32]
    with TritonRecommender(served.grpc_url, "grpc", retry_deadline_s=RESUME_DEADLINE_S) as client:
        signal_stub(served, "preprocess")
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
    from sessrec_bench.loadtest import run_load_test

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
    # a long lease: only the supervisor's clearing on reload can free the slots a killed stub took along
    repo = limit_admission(_repository(tiny, "repo-admission"), limit, lease_ms=120_000)
    with SupervisedServer(repo, log_path=tiny["folder"] / "triton-admission.log") as server:
        # 32 clients that keep the answers: the accepted ones are right, the others only "unavailable"
        frame = _traffic(server, tiny, duration_s=3.0, concurrency=32, max_requests=3000)
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
            frame = _traffic(server, tiny, lambda: signal_stub(server, "model"), fault_at_s=0.5, duration_s=3.0,
                             concurrency=8, max_requests=3000)
            assert _wait(server.is_ready, RESUME_DEADLINE_S), f"not ready {RESUME_DEADLINE_S} s after the kill"
            if _restarted(server):  # a new server, new tables: the dead one's went with it
                assert not table.path.exists(), "the dead server's admission table was left behind"
            else:
                assert _wait(lambda: table.in_use() == 0, 10.0), f"the killed stub's {table.in_use()} slots leaked"
        finally:
            table.close()
        _answers_match(tiny, frame)
        _serves_normally(server, tiny)
    assert not table.path.exists(), "the admission table outlived its server"


@pytest.mark.parametrize("queue", [4, 0], ids=["triton-queue-4", "unbounded"])
def test_overload_at_c48_rejects_only_with_a_queue_limit_and_keeps_serving(tiny, queue):
    from sessrec_bench.fault_drills import with_queue_policy

    repo = with_queue_policy(_repository(tiny, f"repo-queue-{queue}"), queue)
    assert ("max_queue_size: 4" in (repo / "model" / "config.pbtxt").read_text()) == bool(queue)
    with SupervisedServer(repo, log_path=tiny["folder"] / f"triton-queue-{queue}.log") as server:
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
    server = SupervisedServer(repo, log_path=tiny["folder"] / "triton-killed.log", max_restarts=0).start()
    try:
        pgid = server.process.pid
        assert stub_pids(pgid), "no stub to orphan"
        assert _regions(server), "the stubs' shared memory was not found under the server's prefix"
        os.kill(pgid, signal.SIGKILL)
        assert _wait(lambda: server.failure is not None, 10.0), "the death went unnoticed"
        assert _wait(lambda: process_group_members(pgid) == [], 10.0), process_group_members(pgid)
        message = str(server.failure)
        assert "killed by signal 9 (Killed)" in message and str(server.log_path) in message
        assert "Last log lines" in message and not server.running and not server.is_ready()
        assert server.problem().startswith("tritonserver (pid") and "killed by signal 9" in server.problem()
        assert isinstance(server.failure, TritonServerDied)
        assert _regions(server) == {}, "the dead server's shared memory was left in /dev/shm"
    finally:
        server.stop()
    assert process_group_members(pgid) == []


def test_a_dead_server_is_restarted_on_its_ports_until_the_restarts_run_out(tiny):
    repo = _repository(tiny, "repo-restart")
    with SupervisedServer(repo, log_path=tiny["folder"] / "triton-restart.log", max_restarts=1) as server:
        url, first = server.grpc_url, server.process.pid
        frame = _traffic(server, tiny, lambda: os.kill(server.process.pid, signal.SIGKILL), fault_at_s=1.0,
                         duration_s=8.0, concurrency=4, max_requests=200_000)
        assert _wait(server.is_ready, RESUME_DEADLINE_S) and server.problem() is None and server.restarts == 1
        assert server.process.pid != first and process_group_members(first) == [] and server.grpc_url == url
        assert [e.kind for e in server.supervisor.events] == ["server_died", "restarted"]
        fault_t = frame.attrs["fault_t_s"]
        resumed = frame[(frame["outcome"] == "ok") & (frame["t_s"] > fault_t + outage_seconds(frame) - 1e-9)]
        print(f"\nkill -9 tritonserver: serving again on the same ports {outage_seconds(frame):.2f} s later")
        assert outage_seconds(frame) < 10.0 and len(resumed) > 0 and frame["outcome"].isin(["ok", "unavailable"]).all()
        _answers_match(tiny, frame)
        assert server.log_path.read_text().count("Started GRPCInferenceService") == 2  # the first run's log is kept
        second = server.process.pid
        os.kill(second, signal.SIGKILL)  # the restarts are used up: reported, not restarted
        assert _wait(lambda: server.failure is not None, 10.0) and not server.running
        assert "killed by signal 9" in server.problem() and server.restarts == 1
        assert _wait(lambda: process_group_members(second) == [], 10.0)


@pytest.mark.parametrize("model", ["preprocess", "model"])
def test_a_hung_stub_is_noticed_restarted_and_serves_again_within_10_s(served, tiny, model):
    assert _wait(served.is_ready, RESUME_DEADLINE_S)
    stopped = []
    frame = _traffic(served, tiny, lambda: stopped.append(signal_stub(served, model, signal.SIGSTOP)),
                     fault_at_s=1.0, duration_s=12.0, concurrency=4, max_requests=20_000)
    fault_t = frame.attrs["fault_t_s"]
    assert stopped and stopped[0] not in {pid for pids in stub_pids(served.process.pid).values() for pid in pids}
    kinds = {(e.kind, e.model) for e in served.supervisor.events}
    assert ("stub_hung", model) in kinds and (("reloaded", model) in kinds or _restarted(served)), kinds
    readiness = frame.attrs["readiness"]
    assert not readiness.loc[readiness["t_s"] > fault_t, "ready"].all(), "readiness never said not-ready"
    resumed = frame[(frame["outcome"] == "ok") & (frame["t_s"] > fault_t + outage_seconds(frame) - 1e-9)]
    print(f"\nSIGSTOP {model}: serving again {outage_seconds(frame):.2f} s after the stop")
    assert outage_seconds(frame) < 10.0 and len(resumed) > 0, "not serving again within 10 s"
    _answers_match(tiny, frame)
    assert frame["outcome"].isin(["ok", "unavailable"]).all(), frame.loc[frame["outcome"] == "error", "error"].head(3)
    assert _wait(served.is_ready, RESUME_DEADLINE_S) and served.problem() is None


def test_a_model_that_cannot_be_reloaded_is_reported_failed_with_the_reason(tiny):
    repo = _repository(tiny, "repo-unloadable")
    with SupervisedServer(repo, log_path=tiny["folder"] / "triton-unloadable.log", max_reloads=2) as server:
        model_py = repo / "preprocess" / "1" / "model.py"
        model_py.write_text(model_py.read_text() + "\nraise RuntimeError('broken-on-disk-sessrec-7')\n")
        signal_stub(server, "preprocess")
        assert _wait(lambda: server.supervisor.failed, RESUME_DEADLINE_S * 2), server.supervisor.events
        assert "broken-on-disk-sessrec-7" in server.supervisor.failed["preprocess"]
        assert not server.is_ready() and server.problem().startswith("model 'preprocess' failed: 2 reloads failed")
        assert [e.kind for e in server.supervisor.events if e.model == "preprocess"].count("reload_failed") == 2
        assert "broken-on-disk-sessrec-7" in server.problem()
        time.sleep(1.0)
        assert "failed" in server.problem() and "recovering" not in server.problem(), "it drifted back to recovering"


def test_a_crashed_supervisor_makes_readiness_false_with_its_reason(tiny, monkeypatch):
    from sessrec_course.serving import supervisor as supervisor_module

    repo = _repository(tiny, "repo-crash")
    with SupervisedServer(repo, log_path=tiny["folder"] / "triton-crash.log") as server:
        assert server.is_ready() and server.supervisor.error is None

        def broken_proc_read(pgid):  # a fault injected into the thread: the server itself is untouched
            raise OSError("injected: /proc unreadable")

        monkeypatch.setattr(supervisor_module, "stub_pids", broken_proc_read)
        assert _wait(lambda: server.supervisor.error is not None, 10.0), "the crash went unnoticed"
        assert not server.is_ready()
        assert "injected: /proc unreadable" in server.problem() and "crashed" in server.problem()
        assert ("crashed", "supervisor") in {(e.kind, e.model) for e in server.supervisor.events}


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_client_honours_its_timeout_against_a_server_that_never_answers(protocol):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"127.0.0.1:{silent.getsockname()[1]}"
        began = time.monotonic()
        with TritonRecommender(url, protocol, timeout_s=1.0, retry_deadline_s=0) as client:
            with pytest.raises(Exception) as info:
                client.recommend([1, 2])
        waited = time.monotonic() - began
        assert waited < 5.0, f"waited {waited:.1f} s with timeout_s=1"
        from sessrec_course.serving.client import is_unavailable

        assert is_unavailable(info.value), info.value
        began = time.monotonic()
        with TritonRecommender(url, protocol, timeout_s=0.5, retry_deadline_s=2.0) as client:
            with pytest.raises(ServingUnavailable):
                client.recommend([1, 2])
        assert time.monotonic() - began < 6.0


def test_the_client_honours_its_timeout_against_a_stopped_tritonserver(tiny):
    from sessrec_course.serving import TritonServer

    with TritonServer(_repository(tiny, "repo-frozen"), log_path=tiny["folder"] / "triton-frozen.log") as server:
        os.kill(server.process.pid, signal.SIGSTOP)  # alive, listening, never answering
        try:
            began = time.monotonic()
            with TritonRecommender(server.http_url, "http", timeout_s=1.0, retry_deadline_s=0) as client:
                with pytest.raises(TimeoutError):
                    client.recommend(tiny["sessions"][0])
            assert time.monotonic() - began < 5.0
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
