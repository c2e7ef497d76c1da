"""Bounded admission: at most ``N`` requests between the ensemble's first step and the end of its model step.

Why not Triton's own queue policy: on Triton 2.51 any ``default_queue_policy`` turns off the dynamic batcher's
payload prefetching; the batcher then waits for a free model instance on a condition variable that the
instance never signals when it becomes free (it signals just *before*), so a request can sit ~500 ms (the
batcher's fixed wait) in front of an idle instance (docs/serving_faults.md). Here the queues stay without a
policy and the course's own python-backend steps bound what the server accepts:

- the first step (``preprocess``) takes a free slot of a shared table for each request it admits and hands
  the slot on as a ticket (an extra tensor ``[slot, stamp]``); a request that finds no free slot gets an
  ``UNAVAILABLE`` error at once, before any work is done for it;
- the model step frees the slots of the requests it ran.

The table is ``N`` int64 admission times (``time.monotonic_ns()``, 0 = free) in a file under ``/dev/shm``,
named by the server's pid (the stubs' parent) and the repository, shared by the stub processes and guarded by
``flock``. Tickets get lost when a request fails between the steps: a dead model stub answers for it
without running it. So the course's supervisor frees every slot once it has reloaded a model
(:func:`clear_tables`; a request still holding one then finishes with its release refused by the stamp: the
limit may be exceeded once, by at most ``N``), and a slot older than the lease counts as free again, so any
other lost ticket (a request cancelled in the model's queue) costs capacity for at most the lease.

This file is copied beside the python-backend ``model.py`` files as ``sessrec_admission.py``; it needs only
numpy and the standard library.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import tempfile
import time
from pathlib import Path

import numpy as np

TICKET = "admission_ticket"  # the tensor that carries [slot, stamp] from the first step to the model step
PREFIX = "sessrec-admission-"
DEFAULT_LEASE_MS = 2000.0  # far above an admitted request's way to the end of the model step (ms on 2 cores)


def table_dir() -> Path:
    """Return the folder of the tables: ``/dev/shm`` (memory) where it exists, else the temp folder."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def table_path(repository: str | Path, server_pid: int | None = None) -> Path:
    """Return the table file of ``repository`` served by the server ``server_pid`` (default: this stub's parent)."""
    pid = os.getppid() if server_pid is None else int(server_pid)
    key = hashlib.sha1(str(Path(repository).resolve()).encode()).hexdigest()[:12]
    return table_dir() / f"{PREFIX}{pid}-{key}"


def remove_tables(server_pid: int) -> list[Path]:
    """Delete the tables of the server ``server_pid`` (it stopped); return the deleted paths."""
    removed = []
    for path in table_dir().glob(f"{PREFIX}{int(server_pid)}-*"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def clear_tables(server_pid: int) -> list[Path]:
    """Free every slot of every table of the server ``server_pid`` (after a model reload); return their paths."""
    cleared = []
    for path in table_dir().glob(f"{PREFIX}{int(server_pid)}-*"):
        with contextlib.suppress(FileNotFoundError):
            fd = os.open(path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # released by close
                os.pwrite(fd, bytes(os.fstat(fd).st_size), 0)
                cleared.append(path)
            finally:
                os.close(fd)
    return cleared


def remove_stale_tables() -> list[Path]:
    """Delete the tables whose server process no longer exists; return the deleted paths."""
    removed = []
    for path in table_dir().glob(f"{PREFIX}*-*"):
        pid = path.name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


class AdmissionTable:
    """``slots`` admission slots shared by processes through the file ``path`` (created when missing)."""

    def __init__(self, path: str | Path, slots: int, lease_ms: float = DEFAULT_LEASE_MS):
        if slots < 1 or lease_ms <= 0:
            raise ValueError(f"an admission table needs slots >= 1 and lease_ms > 0, got {slots} and {lease_ms}")
        self.path, self.slots, self.lease_ns = Path(path), int(slots), int(lease_ms * 1e6)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        size = self.slots * 8
        with self._locked():
            found = os.fstat(self._fd).st_size
            if found == 0:
                os.ftruncate(self._fd, size)
        if found not in (0, size):
            os.close(self._fd)
            raise ValueError(f"{self.path} holds {found // 8} admission slots, this step expects {self.slots}: "
                             "two repositories with different limits share one table")
        self._map = mmap.mmap(self._fd, size)
        self._stamps = np.frombuffer(self._map, dtype=np.int64)

    @contextlib.contextmanager
    def _locked(self):
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def admit(self, count: int) -> np.ndarray:
        """Take up to ``count`` free slots; return ``(admitted, 2)`` tickets ``[slot, stamp]``, in request order.

        The first ``len(result)`` requests are admitted, the others must be rejected.
        """
        now = time.monotonic_ns()
        with self._locked():
            free = np.flatnonzero((self._stamps == 0) | (now - self._stamps > self.lease_ns))[:count]
            self._stamps[free] = now
        return np.stack([free.astype(np.int64), np.full(free.size, now, dtype=np.int64)], axis=1)

    def release(self, tickets: np.ndarray) -> int:
        """Free the slots of ``tickets`` still held by them (a slot re-let after its lease stays taken)."""
        tickets = np.asarray(tickets, dtype=np.int64).reshape(-1, 2)
        valid = tickets[(tickets[:, 0] >= 0) & (tickets[:, 0] < self.slots)]
        with self._locked():
            held = valid[self._stamps[valid[:, 0]] == valid[:, 1]]
            self._stamps[held[:, 0]] = 0
        return int(held.shape[0])

    def clear(self) -> None:
        """Free every slot."""
        with self._locked():
            self._stamps[:] = 0

    def in_use(self) -> int:
        """Return how many slots are taken and within their lease."""
        now = time.monotonic_ns()
        with self._locked():
            return int(((self._stamps != 0) & (now - self._stamps <= self.lease_ns)).sum())

    def close(self) -> None:
        """Unmap and close the file (the file stays for the other steps)."""
        del self._stamps
        self._map.close()
        os.close(self._fd)
