"""Start and stop a real Triton Inference Server on 127.0.0.1, without Docker (setup: :mod:`.server_setup`).

The server runs in its own process group, so stopping it (also on ``KeyboardInterrupt`` or when this Python
process exits) ends the server and every python-backend stub.

>>> with TritonServer("build/serving/repository") as server:   # doctest: +SKIP
...     print(server.http_url)
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import weakref
from collections import deque
from pathlib import Path

from sessrec_course.environment import find_tritonserver
from sessrec_course.serving.procs import process_group_members, processes_named
from sessrec_course.serving.server_setup import (
    CONTROL_HEADER,
    GRPC_HEADER_PREFIX,
    prepare_backend_dir,
    server_command,
    server_environment,
)

log = logging.getLogger(__name__)

PROCESS_NAMES = ("tritonserver", "triton_python_backend_stub")
HARMLESS_LOG_LINES = ("CudaDriverHelper has not been initialized", "unable to create stream")  # CPU only
_LIVE_SERVERS: weakref.WeakSet[TritonServer] = weakref.WeakSet()
_STARTED_GROUPS: list[int] = []  # process groups of every server this Python process started


class TritonStartupError(RuntimeError):
    """The server exited or did not become ready in time; the message ends with its last log lines."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _distinct_free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return list(ports)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL the child when the process that started it dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def find_server_processes(names: tuple[str, ...] = PROCESS_NAMES) -> list[tuple[int, str]]:
    """Return ``(pid, name)`` of live tritonserver / python-backend stub processes on this machine."""
    return processes_named(names)


def surviving_server_processes() -> dict[int, list[int]]:
    """Return ``{process group: live pids}`` for servers started by this process that left processes behind."""
    return {pgid: members for pgid in _STARTED_GROUPS if (members := process_group_members(pgid))}


class TritonServer:
    """A ``tritonserver`` serving ``repository`` on 127.0.0.1 with free ports, its log in ``log_path``.

    The control APIs (model loading, shared memory, logging, trace) answer only requests with
    :meth:`control_headers`, a secret of this server; inference, health, metadata, config and statistics are open.
    """

    def __init__(self, repository: str | Path, *, log_path: str | Path | None = None,
                 work_dir: str | Path | None = None, startup_timeout: float = 120.0, stop_timeout: float = 15.0,
                 exit_timeout: int = 2, log_verbose: int = 0, extra_args: tuple[str, ...] = ()):
        self.repository = Path(repository).resolve()
        if not (self.repository.is_dir() and any(self.repository.glob("*/config.pbtxt"))):
            raise FileNotFoundError(f"model repository {self.repository} has no <model>/config.pbtxt")
        self.binary = find_tritonserver()
        if self.binary is None:
            raise FileNotFoundError("no tritonserver found: install nvidia-pytriton (pip) or set $TRITONSERVER")
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="sessrec-triton-"))
        self.log_path = Path(log_path) if log_path else self.work_dir / "tritonserver.log"
        self.startup_timeout, self.stop_timeout, self.exit_timeout = startup_timeout, stop_timeout, int(exit_timeout)
        self.log_verbose, self.extra_args = log_verbose, tuple(extra_args)
        self.http_port = self.grpc_port = self.metrics_port = 0
        self.process: subprocess.Popen | None = None
        self._control_key = secrets.token_urlsafe(24)

    @property
    def http_url(self) -> str:
        """``127.0.0.1:<port>`` of the HTTP/REST endpoint (tritonclient.http form)."""
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        """``127.0.0.1:<port>`` of the gRPC endpoint (tritonclient.grpc form)."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        """``http://127.0.0.1:<port>/metrics``, Triton's Prometheus metrics."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def control_headers(self, protocol: str = "http") -> dict[str, str]:
        """The header that opens the restricted control APIs, as ``protocol`` ("http" or "grpc") sends it."""
        return {(GRPC_HEADER_PREFIX if protocol == "grpc" else "") + CONTROL_HEADER: self._control_key}

    def command(self) -> list[str]:
        """Return the command line that starts the server."""
        backend_dir = prepare_backend_dir(self.binary, self.work_dir / "backends")
        return server_command(self.binary, self.repository, backend_dir, http_port=self.http_port,
                              grpc_port=self.grpc_port, metrics_port=self.metrics_port, control_key=self._control_key,
                              exit_timeout=self.exit_timeout, log_verbose=self.log_verbose, extra_args=self.extra_args)

    def log_tail(self, lines: int = 30) -> str:
        """Return the last ``lines`` lines of the server log."""
        if not self.log_path.exists():
            return "(no log written)"
        with self.log_path.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))

    def failure_report(self, tail: int = 8) -> str:
        """Return the log's error lines (model load failures, ``E`` lines) followed by its last lines."""
        if not self.log_path.exists():
            return "(no log written)"
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        errors = [line.strip() for line in lines
                  if (line.startswith("E") or "UNAVAILABLE" in line or "Error" in line or "error:" in line)
                  and not any(harmless in line for harmless in HARMLESS_LOG_LINES)]
        last = [line for line in lines[-tail:] if not line.startswith(("+-", "| "))]
        return "Errors in the log:\n" + "\n".join(errors[-15:] or ["(none)"]) + "\nLast log lines:\n" + "\n".join(last)

    def is_ready(self, timeout: float = 1.0) -> bool:
        """Return True when ``GET /v2/health/ready`` answers 200 (every model loaded and ready)."""
        return self._http_ok("/v2/health/ready", timeout)

    def model_ready(self, model: str, timeout: float = 1.0) -> bool:
        """Return True when Triton says ``model`` is ready."""
        return self._http_ok(f"/v2/models/{model}/ready", timeout)

    def _http_ok(self, path: str, timeout: float) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}{path}", timeout=timeout) as resp:
                return resp.status == 200
        except OSError:
            return False

    def start(self, attempts: int = 3) -> TritonServer:
        """Start the server, wait until it is ready or raise :class:`TritonStartupError`; a port taken meanwhile is retried."""
        if self.running:
            return self
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once()
            except TritonStartupError:
                if attempt == attempts or "already in use" not in self.log_tail(200).lower():
                    raise
                log.warning("a port was taken meanwhile: starting again with new ports")
        return self

    def _start_once(self) -> TritonServer:
        self.http_port, self.grpc_port, self.metrics_port = _distinct_free_ports(3)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = self.command()
        log.info("starting %s on %s (log: %s)", self.binary.name, self.http_url, self.log_path)
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=server_environment(self.binary), start_new_session=True, preexec_fn=_die_with_parent)
        _LIVE_SERVERS.add(self)
        _STARTED_GROUPS.append(self.process.pid)
        try:
            self._wait_ready()
        except BaseException:  # also KeyboardInterrupt: never leave a half-started server behind
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TritonStartupError(
                    f"tritonserver exited with code {self.process.returncode} before it was ready "
                    f"(repository {self.repository}, log {self.log_path}).\n{self.failure_report()}")
            if self._http_ok("/v2/health/ready", 0.5):
                log.info("tritonserver ready on http %s, grpc %s", self.http_url, self.grpc_url)
                return
            time.sleep(0.2)
        raise TritonStartupError(f"tritonserver was not ready after {self.startup_timeout:.0f} s (repository "
                                 f"{self.repository}, log {self.log_path}).\n{self.failure_report()}")

    def stop(self) -> None:
        """Stop the server and every process of its group (SIGTERM, then SIGKILL); safe to call twice."""
        process, self.process = self.process, None
        if process is None:
            return
        pgid = process.pid  # start_new_session: the server leads its own process group
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)  # the server then unloads its models and ends the stubs
        try:
            process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("tritonserver did not stop in %.0f s: killing it", self.stop_timeout)
        kill_group(pgid, process, grace_s=2.0)
        _LIVE_SERVERS.discard(self)
        if self._own_work_dir:  # keep the log, drop the backend links
            inside = self.work_dir in self.log_path.resolve().parents
            shutil.rmtree(self.work_dir / "backends" if inside else self.work_dir, ignore_errors=True)
        log.info("tritonserver stopped (exit code %s)", process.returncode)

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()

    def __repr__(self) -> str:
        state = f"running on http {self.http_url}, grpc {self.grpc_url}" if self.running else "stopped"
        return f"{type(self).__name__}({str(self.repository)!r}, {state}, log={str(self.log_path)!r})"


def kill_group(pgid: int, process: subprocess.Popen, grace_s: float = 0.0, deadline_s: float = 5.0) -> None:
    """Wait until process group ``pgid`` is empty: SIGKILL it once its leader ended or after ``grace_s``."""
    began = time.monotonic()
    while process_group_members(pgid) and time.monotonic() - began < deadline_s:
        if process.poll() is not None or time.monotonic() - began > grace_s:  # stubs may outlive the server
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        time.sleep(0.05)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5.0)


@atexit.register
def _stop_all_servers() -> None:
    """Stop servers still running when the interpreter exits (a notebook kernel shutting down)."""
    for server in list(_LIVE_SERVERS):
        with contextlib.suppress(Exception):
            server.stop()
