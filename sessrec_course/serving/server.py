"""Start and stop a real Triton Inference Server on 127.0.0.1, without Docker (setup: :mod:`.server_setup`), in its
own process group: stopping it (also on ``KeyboardInterrupt`` or at exit) ends the server and every stub."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections import deque
from pathlib import Path

from sessrec_course.environment import die_with_parent, find_tritonserver
from sessrec_course.serving import server_setup
from sessrec_course.serving.procs import process_group_members

log = logging.getLogger(__name__)

HARMLESS_LOG_LINES = ("CudaDriverHelper has not been initialized", "unable to create stream")  # CPU only
_LIVE_SERVERS: weakref.WeakSet[TritonServer] = weakref.WeakSet()
_STARTED_GROUPS: list[int] = []  # process groups of every server this Python process started


class TritonStartupError(RuntimeError):
    """The server exited or did not become ready in time; the message ends with its last log lines."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _distinct_free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return list(ports)


def http_request(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None,
                 timeout: float = 1.0) -> tuple[int, str]:
    """Return ``(status, body)`` of a GET (a POST with ``data``) to ``url``; status -1 when unreachable."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError as error:
        return -1, str(error)


def surviving_server_processes() -> dict[int, list[int]]:
    """Return ``{process group: live pids}`` for servers started by this process that left processes behind."""
    return {pgid: members for pgid in _STARTED_GROUPS if (members := process_group_members(pgid))}


def kill_group(process: subprocess.Popen, grace_s: float = 0.0) -> None:
    """Wait until the group ``process`` leads is empty: SIGKILL it once ``process`` ended or after ``grace_s``."""
    began, pgid = time.monotonic(), process.pid
    while process_group_members(pgid) and time.monotonic() - began < grace_s + 5.0:
        if process.poll() is not None or time.monotonic() - began > grace_s:  # stubs may outlive the server
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        time.sleep(0.05)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5.0)


class TritonServer:
    """``tritonserver`` serving ``repository`` on free 127.0.0.1 ports (a context manager), its log in ``log_path``;
    its control APIs (model loading, shared memory, logging, trace) need this server's :meth:`control_headers`."""

    def __init__(self, repository: str | Path, *, log_path: str | Path | None = None, startup_timeout: float = 120.0,
                 stop_timeout: float = 15.0, extra_args: tuple[str, ...] = ()):
        self.repository = Path(repository).resolve()
        if not (self.repository.is_dir() and any(self.repository.glob("*/config.pbtxt"))):
            raise FileNotFoundError(f"model repository {self.repository} has no <model>/config.pbtxt")
        self.binary = find_tritonserver()
        if self.binary is None:
            raise FileNotFoundError("no tritonserver found: install nvidia-pytriton (pip) or set $TRITONSERVER")
        self.work_dir = Path(tempfile.mkdtemp(prefix="sessrec-triton-"))  # the backend links (and the default log)
        self.log_path = Path(log_path) if log_path else self.work_dir / "tritonserver.log"
        self.startup_timeout, self.stop_timeout, self.extra_args = startup_timeout, stop_timeout, tuple(extra_args)
        self.http_port = self.grpc_port = self.metrics_port = 0
        self.process: subprocess.Popen | None = None
        self._control_key = secrets.token_urlsafe(24)
        self.shm_prefix = f"sessrec_triton_{secrets.token_hex(6)}_"  # this server's stub regions in /dev/shm

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
        prefix = server_setup.GRPC_HEADER_PREFIX if protocol == "grpc" else ""
        return {prefix + server_setup.CONTROL_HEADER: self._control_key}

    def command(self) -> list[str]:
        """Return the command line that starts the server."""
        return server_setup.server_command(
            self.binary, self.repository, server_setup.prepare_backend_dir(self.binary, self.work_dir / "backends"),
            http_port=self.http_port, grpc_port=self.grpc_port, metrics_port=self.metrics_port,
            control_key=self._control_key, shm_prefix=self.shm_prefix, extra_args=self.extra_args)

    def log_tail(self, lines: int = 30) -> str:
        """Return the last ``lines`` lines of the server log."""
        if not self.log_path.exists():
            return "(no log written)"
        with self.log_path.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))

    def failure_report(self, tail: int = 8) -> str:
        """Return the log's error lines (model load failures, ``E`` lines) followed by its last lines."""
        lines = self.log_tail(100_000).splitlines()
        errors = [line.strip() for line in lines
                  if (line.startswith("E") or "UNAVAILABLE" in line or "Error" in line or "error:" in line)
                  and not any(harmless in line for harmless in HARMLESS_LOG_LINES)]
        last = [line for line in lines[-tail:] if not line.startswith(("+-", "| "))]
        return "Errors in the log:\n" + "\n".join(errors[-15:] or ["(none)"]) + "\nLast log lines:\n" + "\n".join(last)

    def is_ready(self, timeout: float = 1.0) -> bool:
        """Return True when ``GET /v2/health/ready`` answers 200 (every model loaded and ready)."""
        return http_request(f"http://{self.http_url}/v2/health/ready", timeout=timeout)[0] == 200

    def start(self, attempts: int = 3) -> TritonServer:
        """Start the server, wait until it is ready or raise :class:`TritonStartupError` (a port taken is retried)."""
        for attempt in range(1, attempts + 1):
            try:
                return self if self.running else self._start_once()
            except TritonStartupError:
                if attempt == attempts or "already in use" not in self.log_tail(200).lower():
                    raise
                log.warning("a port was taken meanwhile: starting again with new ports")
        return self

    def _start_once(self, keep_ports: bool = False) -> TritonServer:
        if not (keep_ports and self.http_port):  # a restart keeps the ports its clients know
            self.http_port, self.grpc_port, self.metrics_port = _distinct_free_ports(3)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting %s on %s (log: %s)", self.binary.name, self.http_url, self.log_path)
        with self.log_path.open("ab" if keep_ports else "wb") as log_file:  # a restart keeps the crash's log
            self.process = subprocess.Popen(
                self.command(), stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=server_setup.server_environment(self.binary), preexec_fn=die_with_parent)
        _LIVE_SERVERS.add(self)
        _STARTED_GROUPS.append(self.process.pid)
        try:  # also on KeyboardInterrupt: never leave a half-started server behind
            deadline = time.monotonic() + self.startup_timeout
            while not TritonServer.is_ready(self, timeout=0.5):  # Triton's own readiness, whatever a subclass adds
                if (exited := self.process.poll() is not None) or time.monotonic() > deadline:
                    why = (f"exited with code {self.process.returncode} before it was ready" if exited
                           else f"was not ready after {self.startup_timeout:.0f} s")
                    raise TritonStartupError(f"tritonserver {why} (repository {self.repository}, log "
                                             f"{self.log_path}).\n{self.failure_report()}")
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        server_setup.tidy_shm_regions(self.shm_prefix)
        log.info("tritonserver ready on http %s, grpc %s", self.http_url, self.grpc_url)
        return self

    def stop(self) -> None:
        """Stop the server and every process of its group (SIGTERM, then SIGKILL); safe to call twice."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)  # the server then unloads its models and ends the stubs
        kill_group(process, grace_s=self.stop_timeout)  # start_new_session: the server leads its group
        server_setup.tidy_shm_regions(self.shm_prefix, mapped_by=[])  # a killed stub's region outlives it
        _LIVE_SERVERS.discard(self)
        inside = self.work_dir in self.log_path.resolve().parents  # keep the log, drop the backend links
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


@atexit.register
def _stop_all_servers() -> None:
    """Stop servers still running when the interpreter exits (a notebook kernel shutting down)."""
    for server in list(_LIVE_SERVERS):
        with contextlib.suppress(Exception):
            server.stop()
