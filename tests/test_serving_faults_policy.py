"""Without a server: the command line (loopback, restricted control APIs, explicit model control only when
supervised), Triton's queue policy of the fault drills, and which errors clients retry."""

from __future__ import annotations

import mmap
import os

import pytest

from sessrec_course.serving import server_setup
from sessrec_course.serving.client import ServingUnavailable, call_with_retry, is_unavailable
from sessrec_course.serving.repository import ServingConfig
from sessrec_course.serving.server_setup import RESTRICTED_APIS, server_command

InferenceServerException = pytest.importorskip("tritonclient.utils").InferenceServerException


def test_queue_policy_rejects_after_the_timeout_and_bounds_the_queue():
    from sessrec_bench.fault_drills import queue_policy

    text = queue_policy(8, 250.0)
    assert "timeout_action: REJECT" in text
    assert "default_timeout_microseconds: 250000" in text and "max_queue_size: 8" in text
    assert queue_policy(0, 0) == ""
    assert not hasattr(ServingConfig(), "max_queue_size"), "the course's config keeps no knob it does not use"


def test_every_python_step_of_an_export_gets_the_queue_policy(tmp_path):
    pytest.importorskip("torch")
    from serving_helpers import tiny_events, tiny_onnx
    from sessrec_bench.fault_drills import with_queue_policy

    from sessrec_course.etl import SessionWorkflow
    from sessrec_course.serving import export_repository
    from sessrec_course.serving.pipeline import serving_state_from_workflow

    state = serving_state_from_workflow(SessionWorkflow(max_length=4).fit(tiny_events(n_sessions=30)))
    onnx_path = tiny_onnx(tmp_path / "m.onnx", state.item_cardinality)
    repo = export_repository(tmp_path / "repo", onnx_path, state, ServingConfig(top_k=3, model_backend="python"))
    assert all("default_queue_policy" not in p.read_text() for p in repo.glob("*/config.pbtxt"))
    with_queue_policy(repo, 5, 40)
    for step in ("preprocess", "model"):
        config = (repo / step / "config.pbtxt").read_text()
        assert "max_queue_size: 5" in config and "default_timeout_microseconds: 40000" in config, step
    assert "default_queue_policy" not in (repo / "ensemble" / "config.pbtxt").read_text()


def test_the_command_line_listens_on_loopback_and_restricts_the_control_apis(tmp_path):
    command = server_command(tmp_path, tmp_path, tmp_path, http_port=1, grpc_port=2, metrics_port=3,
                             control_key="s3cret", shm_prefix="sessrec_triton_ab12_")
    assert "--backend-config=python,shm-region-prefix-name=sessrec_triton_ab12_" in command
    for flag in ("--http-address", "--grpc-address", "--metrics-address"):
        assert command[command.index(flag) + 1] == "127.0.0.1"
    restricted = "model-repository,shared-memory,logging,trace:sessrec-control-key=s3cret"
    assert f"--http-restricted-api={restricted}" in command and f"--grpc-restricted-protocol={restricted}" in command
    assert not {"inference", "health", "metadata", "model-config", "statistics"} & set(RESTRICTED_APIS)
    assert "--model-control-mode=explicit" not in command


def test_shared_memory_regions_are_made_private_and_the_unkept_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(server_setup, "SHM_DIR", tmp_path)
    live, dead, other = (tmp_path / f"{name}_1" for name in ("sessrec_triton_ab12_live", "sessrec_triton_ab12_dead",
                                                             "triton_python_backend_shm_region"))
    for path in (live, dead, other):
        path.write_bytes(b"x")
        path.chmod(0o644)
    target = tmp_path / "elsewhere"
    target.write_bytes(b"y")
    target.chmod(0o644)
    (tmp_path / "sessrec_triton_ab12_link").symlink_to(target)
    server_setup.tidy_shm_regions("sessrec_triton_ab12_")
    assert {p.name: p.lstat().st_mode & 0o777 for p in (live, dead, other, target)} == {
        live.name: 0o600, dead.name: 0o600, other.name: 0o644, target.name: 0o644}  # a link is never followed
    with live.open("r+b") as handle, mmap.mmap(handle.fileno(), 1):  # this process maps the live region
        server_setup.tidy_shm_regions("sessrec_triton_ab12_", mapped_by=[os.getpid()])
    assert live.exists() and not dead.exists() and other.exists() and target.exists()
    server_setup.tidy_shm_regions("sessrec_triton_ab12_", mapped_by=[])
    assert not live.exists() and other.exists() and (tmp_path / "sessrec_triton_ab12_link").is_symlink()


def test_explicit_model_control_only_under_supervision(tmp_path):
    from sessrec_course.serving import TritonServer
    from sessrec_course.serving.supervisor import SupervisedServer

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.pbtxt").write_text('name: "m"\n')
    try:
        supervised = SupervisedServer(tmp_path).command()
        plain = TritonServer(tmp_path).command()
    except FileNotFoundError as missing:
        pytest.skip(str(missing))
    assert "--model-control-mode=explicit" in supervised and "--load-model=*" in supervised
    assert not any(arg.startswith("--model-control-mode") for arg in plain)
    assert any(arg.startswith("--http-restricted-api=") for arg in supervised + plain)


@pytest.mark.parametrize(("message", "status", "retry"), [
    ("in ensemble 'ensemble', Stub process 'preprocess_0_0' is not healthy.", "StatusCode.INTERNAL", True),
    ("Request for unknown model: 'ensemble' has no available versions", "StatusCode.NOT_FOUND", True),
    ("Exceeds maximum queue size", "StatusCode.UNAVAILABLE", True),
    ("failed to connect to all addresses", "StatusCode.UNAVAILABLE", True),
    ("Request for unknown model: 'nope' is not found", "StatusCode.NOT_FOUND", False),
    ("unexpected datatype TYPE_FP32 for inference input", "StatusCode.INVALID_ARGUMENT", False),
    ("inference request batch-size must be <= 16", "400", False),
])
def test_unavailable_errors_are_told_from_bad_requests(message, status, retry):
    assert is_unavailable(InferenceServerException(message, status=status)) is retry


def test_retry_backs_off_until_the_server_answers():
    calls = []

    def flaky(seconds_left: float) -> str:
        calls.append(seconds_left)
        if len(calls) < 4:
            raise InferenceServerException("Stub process 'model_0_0' is not healthy.", status="StatusCode.INTERNAL")
        return "answer"

    assert call_with_retry(flaky, deadline_s=10.0, backoff_s=0.001) == "answer"
    assert len(calls) == 4 and all(0 < left <= 10.0 for left in calls)


def test_retry_gives_up_at_the_deadline_and_never_retries_a_bad_request():
    def down(_: float):
        raise InferenceServerException("has no available versions", status="StatusCode.NOT_FOUND")

    with pytest.raises(ServingUnavailable, match="unavailable") as info:
        call_with_retry(down, deadline_s=0.2, backoff_s=0.01)
    assert isinstance(info.value.__cause__, InferenceServerException)
    calls = []

    def bad(_: float):
        calls.append(1)
        raise InferenceServerException("unexpected shape", status="StatusCode.INVALID_ARGUMENT")

    with pytest.raises(InferenceServerException, match="unexpected shape"):
        call_with_retry(bad, deadline_s=10.0)
    assert calls == [1]
