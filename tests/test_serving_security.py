"""A real tritonserver on a shared machine: control APIs behind the server's secret, listeners on loopback only.

The server runs with explicit model control, the mode in which an open ``/v2/repository/models/<m>/load`` would
run any uploaded ``model.py`` as the learner. Every request goes to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request

import numpy as np
import pytest
from listeners import decode_address, is_loopback, listening_sockets

from sessrec_course.serving.procs import process_group_members
from sessrec_course.serving.server import TritonServer, find_tritonserver

pytestmark = [pytest.mark.slow, pytest.mark.skipif(find_tritonserver() is None, reason="no tritonserver binary")]
grpcclient = pytest.importorskip("tritonclient.grpc")
InferenceServerException = pytest.importorskip("tritonclient.utils").InferenceServerException

ECHO_MODEL = """
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse(output_tensors=[
            pb_utils.Tensor("y", pb_utils.get_input_tensor_by_name(r, "x").as_numpy())]) for r in requests]
"""
CONFIG = ('name: "echo"\nbackend: "python"\nmax_batch_size: 4\n'
          'input [ { name: "x" data_type: TYPE_INT64 dims: [ -1 ] } ]\n'
          'output [ { name: "y" data_type: TYPE_INT64 dims: [ -1 ] } ]\n')


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = tmp_path_factory.mktemp("secure") / "repo" / "echo"
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.py").write_text(ECHO_MODEL)
    (model / "config.pbtxt").write_text(CONFIG)
    with TritonServer(model.parent, log_path=model.parent.parent / "triton.log",
                      extra_args=("--model-control-mode=explicit", "--load-model=*")) as running:
        yield running


def _post(server, path: str, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://{server.http_url}{path}", data=b"{}", method="POST",
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _echo(server) -> list[int]:
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        tensor = grpcclient.InferInput("x", [1, 3], "INT64")
        tensor.set_data_from_numpy(np.array([[4, 5, 6]], dtype=np.int64))
        return client.infer("echo", [tensor]).as_numpy("y")[0].tolist()


def test_control_apis_refuse_requests_without_the_secret_over_http(server):
    for path in ("/v2/repository/index", "/v2/repository/models/echo/unload", "/v2/repository/models/echo/load",
                 "/v2/logging", "/v2/trace/setting"):
        status, text = _post(server, path)
        assert status == 403 and "restricted" in text, (path, status, text)
    status, _ = _post(server, "/v2/repository/index", {"sessrec-control-key": "a-wrong-guess"})
    assert status == 403
    assert _echo(server) == [4, 5, 6] and server.is_ready(), "inference and health stay open"
    with urllib.request.urlopen(f"http://{server.http_url}/v2/models/echo/config", timeout=10) as response:
        assert json.loads(response.read())["name"] == "echo"  # model-config stays open (perf_analyzer reads it)


def test_control_apis_refuse_requests_without_the_secret_over_grpc(server):
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        for call in (lambda: client.unload_model("echo"), lambda: client.load_model("echo"),
                     client.get_model_repository_index, client.get_log_settings):
            with pytest.raises(InferenceServerException, match="restricted"):
                call()
        with pytest.raises(InferenceServerException, match="restricted"):
            client.get_model_repository_index(headers={"triton-grpc-protocol-sessrec-control-key": "guess"})
        assert client.is_model_ready("echo") and client.get_model_metadata("echo").name == "echo"
    assert _echo(server) == [4, 5, 6]


def test_the_secret_opens_the_control_apis_and_stays_out_of_the_log(server):
    headers = server.control_headers("http")
    status, text = _post(server, "/v2/repository/index", headers)
    assert status == 200 and json.loads(text)[0]["name"] == "echo"
    assert _post(server, "/v2/repository/models/echo/unload", headers)[0] == 200
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        assert not client.is_model_ready("echo")
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        client.load_model("echo", headers=server.control_headers("grpc"))
        assert client.is_model_ready("echo")
        assert [m.name for m in client.get_model_repository_index(headers=server.control_headers("grpc")).models] == ["echo"]
    assert _echo(server) == [4, 5, 6]
    secret = next(iter(headers.values()))
    assert len(secret) >= 32 and secret not in server.log_path.read_text()
    assert TritonServer(server.repository).control_headers() != headers, "every server gets its own secret"


def test_every_listener_of_the_server_group_is_on_loopback(server):
    group = process_group_members(server.process.pid)
    found = listening_sockets(group)
    ports = {port for _, _, port in found}
    assert {server.http_port, server.grpc_port, server.metrics_port} <= ports, found
    assert all(is_loopback(address) for _, address, _ in found), f"listening beyond 127.0.0.1: {found}"


def test_the_listener_helper_reads_proc_as_ss_would():
    assert decode_address("0100007F:1F90") == ("127.0.0.1", 8080)
    assert decode_address("00000000:0050") == ("0.0.0.0", 80)
    assert decode_address("00000000000000000000000001000000:0016") == ("::1", 22)
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and is_loopback("::ffff:127.0.0.1")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        assert (os.getpid(), "127.0.0.1", port) not in listening_sockets([os.getpid()]), "bound is not listening"
        listener.listen()
        assert (os.getpid(), "127.0.0.1", port) in listening_sockets([os.getpid()])
