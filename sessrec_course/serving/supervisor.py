"""Keep a running ``tritonserver`` honest: reload a model whose python-backend stub died, notice the server's death.

Triton 2.51's python backend does not bring back a stub that was killed (``kill -9``, the OOM killer): every
request to that model then fails with "Stub process '<model>_0_0' is not healthy" while ``/v2/health/ready``
still answers ready. :class:`~sessrec_course.serving.server.TritonServer` therefore starts the server with
explicit model control and this supervisor thread watches the server's process group in ``/proc``:

- a stub that vanished marks its model *recovering*; the model is unloaded at once (Triton's own readiness then
  says not-ready and requests fail fast with an "unavailable" error instead of hanging a second each) and
  loaded again, which starts a fresh stub; ensembles that lost the model are loaded again too;
- once a model is reloaded, the admission slots of the server are freed
  (:func:`~sessrec_course.serving.admission.clear_tables`): requests that died with the stub took theirs along;
- a server process that exited is reported to the server object (:meth:`TritonServer._died`), which ends the
  stubs it left behind and keeps the cause with the log tail.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sessrec_course.serving.admission import clear_tables
from sessrec_course.serving.procs import command_line, process_group_members

if TYPE_CHECKING:
    from sessrec_course.serving.server import TritonServer

log = logging.getLogger(__name__)

STUB_NAME = "triton_python_backend_stub"


def stub_pids(pgid: int) -> dict[str, set[int]]:
    """Return ``{model name: pids}`` of the live python-backend stubs in process group ``pgid``.

    A stub's second argument is its ``<repository>/<model>/<version>/model.py``.
    """
    models: dict[str, set[int]] = {}
    for pid in process_group_members(pgid):
        argv = command_line(pid)
        if argv and len(argv) > 1 and Path(argv[0]).name == STUB_NAME:
            models.setdefault(Path(argv[1]).parent.parent.name, set()).add(pid)
    return models


def repository_request(url: str, path: str, body: dict | None = None, timeout: float = 60.0) -> tuple[int, str]:
    """POST ``body`` (JSON) to ``http://<url><path>`` and return ``(status, text)``; status -1 when unreachable."""
    request = urllib.request.Request(f"http://{url}{path}", data=json.dumps(body or {}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError as error:
        return -1, str(error)


@dataclass(frozen=True)
class SupervisorEvent:
    """One thing the supervisor saw or did; ``at`` is ``time.monotonic()``."""

    at: float
    kind: str  # "stub_died", "unloaded", "reloaded", "reload_failed", "server_died"
    model: str
    detail: str = ""


class Supervisor:
    """A daemon thread that watches one started :class:`TritonServer` every ``interval_s`` seconds."""

    def __init__(self, server: TritonServer, interval_s: float = 0.1, reload_timeout_s: float = 60.0,
                 max_reloads: int = 3):
        # a weak reference: a server dropped without stop() is still stopped by its __del__
        self._server, self.process = weakref.ref(server), server.process
        self.url, self.log_path = server.http_url, server.log_path
        self.interval_s, self.reload_timeout_s, self.max_reloads = interval_s, reload_timeout_s, max_reloads
        self.events: list[SupervisorEvent] = []
        self._recovering: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"triton-supervisor-{self.process.pid}", daemon=True)

    @property
    def recovering(self) -> set[str]:
        """Models that cannot serve right now (their stub died and the reload has not finished)."""
        with self._lock:
            return set(self._recovering)

    def start(self) -> Supervisor:
        """Start watching."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (before the server is stopped on purpose, so that is no 'death')."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.reload_timeout_s + 5.0)

    def _event(self, kind: str, model: str, detail: str = "") -> None:
        self.events.append(SupervisorEvent(time.monotonic(), kind, model, detail))

    def _run(self) -> None:
        pgid = self.process.pid
        expected = stub_pids(pgid)
        while not self._stop.wait(self.interval_s) and self._server() is not None:
            if self.process.poll() is not None:
                self._event("server_died", "tritonserver", f"exit code {self.process.returncode}")
                if (server := self._server()) is not None:
                    server._died(self.process)
                return
            live = stub_pids(pgid)
            broken = sorted(model for model, pids in expected.items() if not pids <= live.get(model, set()))
            for model in broken:
                self._recover(model, expected[model] - live.get(model, set()))
            if broken:
                expected = stub_pids(pgid)  # the fresh stubs from now on

    def _recover(self, model: str, gone: set[int]) -> None:
        began = time.monotonic()
        self._event("stub_died", model, f"pids {sorted(gone)}")
        log.warning("python-backend stub of %r died (pids %s): reloading the model", model, sorted(gone))
        with self._lock:
            self._recovering.add(model)
        url = self.url
        # unloading first makes Triton's own model-ready and server-ready say "not ready" during the outage
        repository_request(url, f"/v2/repository/models/{model}/unload", timeout=self.reload_timeout_s)
        self._event("unloaded", model)
        for attempt in range(1, self.max_reloads + 1):
            if self._stop.is_set() or self.process.poll() is not None:
                return
            status, text = repository_request(url, f"/v2/repository/models/{model}/load",
                                              timeout=self.reload_timeout_s)
            if status == 200 and self._reload_dependents(url):
                seconds = time.monotonic() - began
                cleared = clear_tables(self.process.pid)
                self._event("reloaded", model, f"{seconds:.2f} s" + (", admission slots freed" if cleared else ""))
                log.warning("model %r serves again, %.2f s after its stub died", model, seconds)
                with self._lock:
                    self._recovering.discard(model)
                return
            self._event("reload_failed", model, f"attempt {attempt}: {status} {text[:200]}")
            log.error("reloading %r failed (attempt %d): %s %s", model, attempt, status, text[:200])
        log.error("model %r stays unavailable after %d reloads; see %s", model, self.max_reloads, self.log_path)

    def _reload_dependents(self, url: str) -> bool:
        """Load every model of the repository that is not ready (the ensembles that lost a step); True when all are."""
        status, text = repository_request(url, "/v2/repository/index", timeout=self.reload_timeout_s)
        if status != 200:
            return False
        with contextlib.suppress(ValueError):
            for entry in json.loads(text):
                if entry.get("state") != "READY":
                    load_status, _ = repository_request(url, f"/v2/repository/models/{entry['name']}/load",
                                                        timeout=self.reload_timeout_s)
                    if load_status != 200:
                        return False
            return True
        return False
