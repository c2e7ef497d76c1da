"""Stopping the server leaves no tritonserver / python-backend stub behind: normal stop, Ctrl-C, a killed kernel.

The interrupted and the killed cases run a real server from a child Python process (standing in for a
notebook kernel) and then look for the server's processes in /proc.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from sessrec_course.serving.procs import PROC, command_line, process_group_members
from sessrec_course.serving.server import TritonServer, find_tritonserver, surviving_server_processes

pytestmark = [pytest.mark.slow, pytest.mark.skipif(find_tritonserver() is None, reason="no tritonserver binary")]

ECHO_MODEL = """
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse(output_tensors=[
            pb_utils.Tensor("y", pb_utils.get_input_tensor_by_name(r, "x").as_numpy())]) for r in requests]
"""

CHILD = textwrap.dedent("""
    import sys, time
    from sessrec_course.serving import TritonServer
    with TritonServer(sys.argv[1], log_path=sys.argv[2]) as server:
        print(server.process.pid, flush=True)
        time.sleep(120)
""")


@pytest.fixture(scope="module")
def echo_repository(tmp_path_factory):
    model = tmp_path_factory.mktemp("echo") / "repo" / "echo"
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.py").write_text(ECHO_MODEL)
    (model / "config.pbtxt").write_text(
        'name: "echo"\nbackend: "python"\nmax_batch_size: 4\n'
        'input [ { name: "x" data_type: TYPE_INT64 dims: [ -1 ] } ]\n'
        'output [ { name: "y" data_type: TYPE_INT64 dims: [ -1 ] } ]\n')
    return model.parent


def find_server_processes() -> list[tuple[int, str]]:
    """``(pid, program)`` of every live tritonserver and python-backend stub on this machine."""
    found = [(int(p.name), command_line(p.name)) for p in PROC.iterdir() if p.name.isdigit()]
    names = [(pid, os.path.basename(argv[0])) for pid, argv in found if argv]
    return [(pid, name) for pid, name in names if name in ("tritonserver", "triton_python_backend_stub")]


def _wait_empty(pgid: int, seconds: float = 15.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (members := process_group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return members


def _start_child(repo, tmp_path) -> tuple[subprocess.Popen, int]:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(repo), str(tmp_path / "triton.log")],
                             stdout=subprocess.PIPE, text=True)
    pgid = int(child.stdout.readline())
    members = process_group_members(pgid)
    names = {name for pid, name in find_server_processes() if pid in members}
    assert names == {"tritonserver", "triton_python_backend_stub"}, f"server not up: {names}"
    return child, pgid


def test_stop_ends_server_and_stubs(echo_repository, tmp_path):
    with TritonServer(echo_repository, log_path=tmp_path / "triton.log") as server:
        pgid = server.process.pid
        assert len(process_group_members(pgid)) >= 2  # the server and at least one stub
    assert process_group_members(pgid) == []
    server.stop()  # twice is harmless


def test_keyboard_interrupt_in_the_kernel_stops_the_server(echo_repository, tmp_path):
    child, pgid = _start_child(echo_repository, tmp_path)
    child.send_signal(signal.SIGINT)  # what "interrupt the kernel" sends
    assert child.wait(timeout=30) != 0  # the KeyboardInterrupt propagated after the clean-up
    assert _wait_empty(pgid) == []


def test_a_killed_kernel_takes_the_server_with_it(echo_repository, tmp_path):
    child, pgid = _start_child(echo_repository, tmp_path)
    os.kill(child.pid, signal.SIGKILL)  # no clean-up code can run in the child
    child.wait(timeout=10)
    assert _wait_empty(pgid) == [], f"orphans of a killed parent: {process_group_members(pgid)}"


def test_no_server_started_here_survives():
    assert surviving_server_processes() == {}
    mine = [pid for pid, _ in find_server_processes() if _parent(pid) == os.getpid()]
    assert mine == []


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def test_a_port_taken_meanwhile_is_retried(echo_repository, tmp_path, monkeypatch):
    import socket

    from sessrec_course.serving import server as server_module

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    choose, picks = server_module._distinct_free_ports, []

    def first_pick_is_busy(count):  # another program grabbed the HTTP port between choice and bind
        picks.append(count)
        ports = choose(count)
        return [busy.getsockname()[1], *ports[1:]] if len(picks) == 1 else ports

    monkeypatch.setattr(server_module, "_distinct_free_ports", first_pick_is_busy)
    try:
        with TritonServer(echo_repository, log_path=tmp_path / "triton.log") as server:
            assert len(picks) == 2 and server.is_ready()
            assert server.http_port != busy.getsockname()[1]
    finally:
        busy.close()
