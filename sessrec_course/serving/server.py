"""Start and stop a real Triton Inference Server on 127.0.0.1, without Docker.

The server is ``tritonserver`` found by :func:`sessrec_course.environment.find_tritonserver` (PATH in the
NVIDIA container, else the copy bundled in the ``nvidia-pytriton`` wheel); its backend folder, environment
and flags come from :mod:`~sessrec_course.serving.server_setup`.

The server runs in its own process group, so stopping it (also on ``KeyboardInterrupt`` or when the
Python process exits) kills the server and every python-backend stub it started: no orphans. While it runs, a
:class:`~sessrec_course.serving.supervisor.Supervisor` thread reloads a model whose stub died and notices the
death of the server itself (then :attr:`TritonServer.failure` names the cause, with the log tail).

>>> with TritonServer("build/serving/repository") as server:   # doctest: +SKIP
...     print(server.http_url)
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
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
from sessrec_course.serving.admission import remove_tables
from sessrec_course.serving.procs import process_group_members, processes_named
from sessrec_course.serving.server_setup import prepare_backend_dir, server_command, server_environment
from sessrec_course.serving.supervisor import Supervisor

log = logging.getLogger(__name__)

PROCESS_NAMES = ("tritonserver", "triton_python_backend_stub")
HARMLESS_LOG_LINES = ("CudaDriverHelper has not been initialized", "unable to create stream")  # CPU only
_LIVE_SERVERS: weakref.WeakSet[TritonServer] = weakref.WeakSet()
_STARTED_GROUPS: list[int] = []  # process groups of every server this Python process started


class TritonStartupError(RuntimeError):
    """The server exited or did not become ready in time; the message ends with its last log lines."""


class TritonServerDied(RuntimeError):
    """The server process ended while it was serving (killed, crashed); the message names how, then its log."""


def _exit_cause(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by signal {-returncode} ({signal.Signals(-returncode).name})"
        return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL the child when the process that started it dies (kernel killed, crash)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def find_server_processes(names: tuple[str, ...] = PROCESS_NAMES) -> list[tuple[int, str]]:
    """Return ``(pid, name)`` of live tritonserver / python-backend stub processes on this machine."""
    return processes_named(names)


def surviving_server_processes() -> dict[int, list[int]]:
    """Return ``{process group: live pids}`` for servers started by this process that left processes behind."""
    return {pgid: members for pgid in _STARTED_GROUPS if (members := process_group_members(pgid))}


class TritonServer:
    """A ``tritonserver`` process serving ``repository`` on 127.0.0.1 with free ports (a context manager).

    ``start()`` waits until ``/v2/health/ready`` answers or raises :class:`TritonStartupError` with the
    last log lines; ``stop()`` sends SIGTERM (the server waits ``exit_timeout`` s for open client
    connections, then unloads its models), then SIGKILL to the whole process group after ``stop_timeout``.
    The server's log goes to ``log_path`` (default: a file in the work folder), never to stdout.

    With ``supervise`` (default) the server runs with explicit model control and a supervisor thread
    reloads a model whose python-backend stub died; :meth:`is_ready` says False while a model recovers
    or once the server died, and :meth:`check` raises :class:`TritonServerDied` naming the cause.
    """

    def __init__(self, repository: str | Path, *, log_path: str | Path | None = None,
                 work_dir: str | Path | None = None, startup_timeout: float = 120.0,
                 stop_timeout: float = 15.0, exit_timeout: int = 2, log_verbose: int = 0, extra_args: tuple[str, ...] = (),
                 supervise: bool = True, supervise_interval_s: float = 0.1):
        self.repository = Path(repository).resolve()
        if not (self.repository.is_dir() and any(self.repository.glob("*/config.pbtxt"))):
            raise FileNotFoundError(f"model repository {self.repository} has no <model>/config.pbtxt")
        self.binary = find_tritonserver()
        if self.binary is None:
            raise FileNotFoundError("no tritonserver found: install nvidia-pytriton (pip) or set $TRITONSERVER")
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="sessrec-triton-"))
        self.log_path = Path(log_path) if log_path else self.work_dir / "tritonserver.log"
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.exit_timeout = int(exit_timeout)  # seconds the server waits for open connections when stopping
        self.log_verbose = log_verbose
        self.extra_args = tuple(extra_args)
        self.http_port = self.grpc_port = self.metrics_port = 0
        self.process: subprocess.Popen | None = None
        self.supervise, self.supervise_interval_s = supervise, supervise_interval_s
        self.supervisor: Supervisor | None = None
        self.failure: TritonServerDied | None = None  # set when the server died while serving

    # -- addresses -------------------------------------------------------------------------------
    @property
    def http_url(self) -> str:
        """``127.0.0.1:<port>`` of the HTTP/REST endpoint (tritonclient.http form)."""
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        """``127.0.0.1:<port>`` of the gRPC endpoint (tritonclient.grpc form)."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        """Return the command line that starts the server."""
        backend_dir = prepare_backend_dir(self.binary, self.work_dir / "backends")
        return server_command(self.binary, self.repository, backend_dir, http_port=self.http_port,
                              grpc_port=self.grpc_port, metrics_port=self.metrics_port,
                              exit_timeout=self.exit_timeout, log_verbose=self.log_verbose,
                              extra_args=self.extra_args, explicit_model_control=self.supervise)

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
        """Return True when every model can serve: no model recovering, and ``GET /v2/health/ready`` answers 200."""
        if self.failure is not None or (self.supervisor is not None and self.supervisor.recovering):
            return False
        return self._http_ok("/v2/health/ready", timeout)

    def model_ready(self, model: str, timeout: float = 1.0) -> bool:
        """Return True when ``model`` can serve (not recovering, and Triton's model-ready answers 200)."""
        if self.failure is not None or (self.supervisor is not None and model in self.supervisor.recovering):
            return False
        return self._http_ok(f"/v2/models/{model}/ready", timeout)

    def health(self) -> str:
        """One word an operator can watch: ``ready``, ``recovering``, ``not-ready``, ``dead`` or ``stopped``."""
        if self.failure is not None:
            return "dead"
        if self.process is None:
            return "stopped"
        if self.supervisor is not None and self.supervisor.recovering:
            return "recovering"
        return "ready" if self.is_ready() else "not-ready"

    def check(self) -> None:
        """Raise :class:`TritonServerDied` (cause and log tail) when the server died while serving."""
        if self.failure is not None:
            raise self.failure

    def _http_ok(self, path: str, timeout: float) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}{path}", timeout=timeout) as resp:
                return resp.status == 200
        except OSError:
            return False

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, attempts: int = 3) -> TritonServer:
        """Start the server and wait until it is ready (idempotent while running).

        A port taken by another program between choosing it and the server binding it is retried with new
        ports, up to ``attempts`` times.
        """
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
                env=server_environment(self.binary), start_new_session=True, preexec_fn=_die_with_parent,
            )
        _LIVE_SERVERS.add(self)
        _STARTED_GROUPS.append(self.process.pid)
        self.failure = None
        try:
            self._wait_ready()
        except BaseException:  # also KeyboardInterrupt: never leave a half-started server behind
            self.stop()
            raise
        if self.supervise:
            self.supervisor = Supervisor(self, interval_s=self.supervise_interval_s).start()
        return self

    def _died(self, process: subprocess.Popen) -> None:
        """Called by the supervisor when the server process ended on its own: end its stubs, keep the cause."""
        pgid = process.pid
        deadline = time.monotonic() + 5.0
        while process_group_members(pgid) and time.monotonic() < deadline:  # stubs would outlive it for seconds
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            time.sleep(0.05)
        self.failure = TritonServerDied(
            f"tritonserver (pid {pgid}) {_exit_cause(process.returncode)} while serving {self.repository}; "
            f"its python-backend stubs were ended (log {self.log_path}).\n{self.failure_report()}")
        log.error("%s", self.failure)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TritonStartupError(
                    f"tritonserver exited with code {self.process.returncode} before it was ready "
                    f"(repository {self.repository}, log {self.log_path}).\n{self.failure_report()}")
            if self.is_ready(timeout=0.5):
                log.info("tritonserver ready on http %s, grpc %s", self.http_url, self.grpc_url)
                return
            time.sleep(0.2)
        raise TritonStartupError(
            f"tritonserver was not ready after {self.startup_timeout:.0f} s (repository {self.repository}, "
            f"log {self.log_path}).\n{self.failure_report()}")

    def stop(self) -> None:
        """Stop the server and every process of its group (SIGTERM, then SIGKILL); safe to call twice."""
        supervisor, self.supervisor = self.supervisor, None
        if supervisor is not None:  # first, so that stopping on purpose is not reported as a death
            supervisor.stop()
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
        deadline = time.monotonic() + 5.0
        while True:  # stubs may outlive the server by a moment; the group must end empty
            members = process_group_members(pgid)
            if not members or time.monotonic() > deadline:
                break
            if process.poll() is not None or time.monotonic() > deadline - 3.0:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
            time.sleep(0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5.0)
        _LIVE_SERVERS.discard(self)
        remove_tables(pgid)  # the admission tables of its steps (admission.py), named by the server's pid
        if self._own_work_dir:  # keep the log, drop the backend links
            log_inside = self.work_dir in self.log_path.resolve().parents
            shutil.rmtree(self.work_dir / "backends" if log_inside else self.work_dir, ignore_errors=True)
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
        if self.failure is not None:
            state = "dead"
        return f"TritonServer({str(self.repository)!r}, {state}, log={str(self.log_path)!r})"


@atexit.register
def _stop_all_servers() -> None:
    """Stop servers still running when the interpreter exits (a notebook kernel shutting down)."""
    for server in list(_LIVE_SERVERS):
        with contextlib.suppress(Exception):
            server.stop()
