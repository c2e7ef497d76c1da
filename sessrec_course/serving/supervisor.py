"""Opt-in supervision of a ``tritonserver`` (appendix 06b; why and figures: docs/serving_faults.md): a python stub that
vanished, stayed stopped or made no progress for ``liveness_s`` is killed and its model reloaded (readiness False
meanwhile, *failed* after ``max_reloads``); a dead server (2.51 aborts when a stub dies holding a shared lock) is
restarted on its ports ``max_restarts`` times, then kept with its reason, as is a crash of the watcher."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
import weakref
from collections import defaultdict, namedtuple
from pathlib import Path

from sessrec_course.serving import server_setup
from sessrec_course.serving.admission import clear_tables, remove_tables
from sessrec_course.serving.procs import command_line, process_group_members, stat_fields
from sessrec_course.serving.server import TritonServer, TritonStartupError, http_request, kill_group

log = logging.getLogger(__name__)

STUB_NAME = "triton_python_backend_stub"
INTERVAL_S, RELOAD_TIMEOUT_S = 0.1, 60.0  # how often the process group is looked at; the longest wait for a reload
_METRIC = re.compile(r'^nv_inference_(pending_request_count|exec_count)\{model="([^"]+)",version="[^"]*"\} (\S+)$',
                     re.MULTILINE)
# kind: stub_died, stub_hung, unloaded, reloaded, reload_failed, failed, server_died or crashed; at: time.monotonic()
SupervisorEvent = namedtuple("SupervisorEvent", "at kind model detail")


class TritonServerDied(RuntimeError):
    """The server process ended while it was serving; the message names how, then its log."""


def stub_pids(pgid: int) -> dict[str, set[int]]:
    """Return ``{model: pids}`` of the live python-backend stubs of group ``pgid`` (argv[1] is the model.py)."""
    models: dict[str, set[int]] = defaultdict(set)
    for pid in process_group_members(pgid):
        argv = command_line(pid)
        if argv and len(argv) > 1 and Path(argv[0]).name == STUB_NAME:
            models[Path(argv[1]).parent.parent.name].add(pid)
    return models


def signal_stub(server: TritonServer, model: str, sig: int = signal.SIGKILL) -> int:
    """Send ``sig`` (SIGKILL as the OOM killer, SIGSTOP for a hang) to one stub of ``model``; return its pid."""
    pids = sorted(stub_pids(server.process.pid).get(model, ()))
    if not pids:
        raise LookupError(f"no python-backend stub of model {model!r} in {server}")
    os.kill(pids[0], sig)
    return pids[0]


class Supervisor:
    """A daemon thread, started at once, that watches the process group of ``server`` every ``INTERVAL_S`` s."""

    def __init__(self, server: TritonServer, on_death=None, *, liveness_s: float = 2.0, max_reloads: int = 3):
        self.process, self.http_url, self.metrics_url = server.process, server.http_url, server.metrics_url
        self.shm_prefix = server.shm_prefix
        self.headers = server.control_headers()
        self.liveness_s, self.max_reloads = liveness_s, max_reloads
        self._server = weakref.ref(server)  # held weakly: a server dropped without stop() still ends in its __del__
        self._on_death = on_death  # called with the ended process; returns the restarted server's process or None
        self.events: list[SupervisorEvent] = []
        # failed, _recovering and _stopped_since are replaced whole, never changed in place: other threads read them
        self.failed: dict[str, str] = {}  # model -> why it stays down
        self.error: str | None = None  # why the thread stopped watching
        self._recovering: frozenset[str] = frozenset()
        self._stopped_since: dict[str, float] = {}
        self._progress: dict[str, tuple[float, float]] = {}  # model -> (batches executed, unchanged since)
        self._next_metrics = 0.0
        self._stop = threading.Event()
        expected = stub_pids(self.process.pid)  # now, not in the thread: a stub lost right after start counts too
        self._thread = threading.Thread(target=self._run, args=(expected,), daemon=True,
                                        name=f"triton-supervisor-{self.process.pid}")
        self._thread.start()

    @property
    def recovering(self) -> set[str]:
        """Models that cannot serve right now: a stub stopped, or lost and the reload not finished."""
        return self._recovering | set(self._stopped_since)

    def stop(self) -> None:
        """Stop watching (before the server is stopped on purpose, so that is no 'death')."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=RELOAD_TIMEOUT_S + 5.0)

    def _event(self, kind: str, model: str, detail: str = "") -> None:
        self.events.append(SupervisorEvent(time.monotonic(), kind, model, detail))

    def _run(self, expected: dict[str, set[int]]) -> None:
        try:
            while not self._stop.wait(INTERVAL_S) and self._server() is not None:
                if self.process.poll() is not None:
                    self._event("server_died", "tritonserver", f"exit code {self.process.returncode}")
                    alive = self._server() is not None and self._on_death is not None
                    if (restarted := self._on_death(self.process) if alive else None) is None:
                        return
                    self.process, self.failed, self._progress, self._stopped_since = restarted, {}, {}, {}
                    self._event("restarted", "tritonserver", f"pid {restarted.pid}, the same ports")
                    expected = stub_pids(self.process.pid)
                    continue
                live = self._kill_hung(stub_pids(self.process.pid))
                broken = sorted(m for m, pids in expected.items() if m not in self.failed and not pids <= live[m])
                for model in broken:
                    self._recover(model, expected[model] - live[model])
                if broken:
                    expected = stub_pids(self.process.pid)  # the fresh stubs from now on
        except Exception as exc:  # never die silently: readiness turns False with this reason
            self.error = f"the supervisor thread crashed ({type(exc).__name__}: {exc}); nothing is watched any more"
            self._event("crashed", "supervisor", repr(exc))
            log.exception("%s", self.error)

    def _kill_hung(self, live: dict[str, set[int]]) -> dict[str, set[int]]:
        """SIGKILL stubs stopped (or with requests pending, no batch done) over ``liveness_s``; return the live ones."""
        now = time.monotonic()
        if now >= self._next_metrics:  # Triton's counters per model: requests pending, batches executed
            self._next_metrics = now + self.liveness_s / 4
            status, text = http_request(self.metrics_url, timeout=1.0)
            if status != 200:  # unread: no verdict on stale figures
                self._progress = {}
            counts = _METRIC.findall(text) if status == 200 else []
            pending = {model for kind, model, value in counts if kind == "pending_request_count" and float(value)}
            for model, executed in ((m, float(v)) for kind, m, v in counts if kind == "exec_count"):
                if model not in pending or self._progress.get(model, (None,))[0] != executed:
                    self._progress[model] = (executed, now)
        stopped_since = {}
        for model, pids in live.items():
            stopped = {pid for pid in pids if (fields := stat_fields(pid)) is not None and fields[0] in "tT"}
            if stopped:
                stopped_since[model] = self._stopped_since.get(model, now)
            if (stopped and now - stopped_since[model] > self.liveness_s) or \
                    now - self._progress.get(model, (0, now))[1] > self.liveness_s:
                hung = stopped or set(pids)
                self._event("stub_hung", model, f"pids {sorted(hung)}, no progress for {self.liveness_s:g} s")
                for pid in hung:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                pids -= hung
        self._stopped_since = stopped_since
        return live

    def _post(self, path: str) -> tuple[int, str]:
        """POST to a control API of the server; return ``(status, text)``, status -1 when unreachable."""
        return http_request(f"http://{self.http_url}{path}", data=b"{}", timeout=RELOAD_TIMEOUT_S,
                            headers={"Content-Type": "application/json", **self.headers})

    def _recover(self, model: str, gone: set[int]) -> None:
        began = time.monotonic()
        self._event("stub_died", model, f"pids {sorted(gone)}")
        log.warning("python-backend stub of %r is gone (pids %s): reloading the model", model, sorted(gone))
        self._recovering |= {model}
        self._post(f"/v2/repository/models/{model}/unload")  # Triton's own readiness says not-ready too
        self._event("unloaded", model)
        status, reason = -1, "not tried"
        for attempt in range(1, self.max_reloads + 1):
            if self._stop.is_set() or self.process.poll() is not None:
                return
            status, reason = self._post(f"/v2/repository/models/{model}/load")
            if status == 200:
                status, reason = self._reload_dependents()
            if status == 200:
                freed = ", slots freed" if clear_tables(self.process.pid) else ""
                stubs = [pid for pids in stub_pids(self.process.pid).values() for pid in pids]
                server_setup.tidy_shm_regions(self.shm_prefix, mapped_by=stubs)
                self._event("reloaded", model, f"{time.monotonic() - began:.2f} s{freed}")
                self._progress.pop(model, None)
                self._recovering -= {model}
                return
            self._event("reload_failed", model, f"attempt {attempt}: {status} {reason[:200]}")
        why = f"{self.max_reloads} reloads failed, the last with {status}: {reason[:300]}"
        self.failed, self._recovering = {**self.failed, model: why}, self._recovering - {model}
        self._event("failed", model, why)
        log.error("model %r stays down: %s", model, why)

    def _reload_dependents(self) -> tuple[int, str]:
        """Load every model of the repository that is not ready (the ensembles that lost a step)."""
        status, text = self._post("/v2/repository/index")
        for entry in json.loads(text) if status == 200 else []:
            if entry.get("state") != "READY" and entry["name"] not in self.failed:
                status, text = self._post(f"/v2/repository/models/{entry['name']}/load")
                if status != 200:
                    break
        return status, text


class SupervisedServer(TritonServer):
    """A :class:`TritonServer` with explicit model control under a :class:`Supervisor`."""

    def __init__(self, repository: str | Path, *, liveness_s: float = 2.0, max_reloads: int = 3,
                 max_restarts: int = 3, extra_args: tuple[str, ...] = (), **kwargs):
        super().__init__(repository, extra_args=("--model-control-mode=explicit", "--load-model=*", *extra_args),
                         **kwargs)
        self.watch = {"liveness_s": liveness_s, "max_reloads": max_reloads}
        self.supervisor: Supervisor | None = None
        self.failure: TritonServerDied | None = None  # set when the server died while serving (until restarted)
        self.max_restarts, self.restarts = max_restarts, 0

    def start(self, attempts: int = 3) -> SupervisedServer:
        """Start the server, then its supervisor."""
        if self.running and self.supervisor is not None:
            return self
        self.failure, self.restarts = None, 0
        super().start(attempts)
        report = weakref.WeakMethod(self.report_death)  # a bound method would keep this server alive
        self.supervisor = Supervisor(self, on_death=lambda process: (m := report()) and m(process), **self.watch)
        return self

    def stop(self) -> None:
        """Stop the supervisor (a stop on purpose is no death), the server, and remove its admission tables."""
        supervisor, self.supervisor, process = self.supervisor, None, self.process
        if supervisor is not None:
            supervisor.stop()
        super().stop()
        if process is not None:
            remove_tables(process.pid)

    def report_death(self, process: subprocess.Popen) -> subprocess.Popen | None:
        """End a dead server's stubs, keep the cause, start it again on its ports while restarts are left."""
        kill_group(process)
        server_setup.tidy_shm_regions(self.shm_prefix, mapped_by=[])
        remove_tables(process.pid)
        code = process.returncode
        cause = f"was killed by signal {-code} ({signal.strsignal(-code)})" if code < 0 else f"exited with code {code}"
        self.failure = TritonServerDied(f"tritonserver (pid {process.pid}) {cause} while serving {self.repository}; "
                                        f"its stubs were ended (log {self.log_path}).\n{self.failure_report()}")
        log.error("%s", self.failure)
        if self.restarts >= self.max_restarts:
            return None
        self.restarts += 1
        try:
            self._start_once(keep_ports=True)
        except TritonStartupError as error:
            log.error("the restart failed: %s", error)
            return None
        self.failure = None
        log.warning("tritonserver restarted (%d of %d), pid %d", self.restarts, self.max_restarts, self.process.pid)
        return self.process

    def problem(self) -> str | None:
        """Why the server cannot serve now (dead, unwatched, a model failed or recovering); None when it can."""
        watcher = self.supervisor
        if self.failure is not None:
            return str(self.failure).split("\n", 1)[0]
        if self.process is None or watcher is None:
            return "stopped"
        if watcher.error or watcher.failed:
            return watcher.error or "; ".join(f"model {model!r} failed: {why}" for model, why in watcher.failed.items())
        recovering = watcher.recovering
        return f"recovering: {', '.join(sorted(recovering))}" if recovering else None

    def is_ready(self, timeout: float = 1.0) -> bool:
        """True when no fault is known (:meth:`problem` is None) and Triton's readiness answers 200."""
        return self.problem() is None and super().is_ready(timeout)
