"""An opt-in admission limit: at most ``N`` requests between the ensemble's first step and the end of its model step.

:func:`limit_admission` puts an exported repository behind it: the first step (``preprocess``) takes a free slot of a
shared table for each request it admits and hands it on as a ticket ``[slot, stamp]``; a request that finds none is
answered ``UNAVAILABLE`` at once; the model step frees the slots of the requests it ran. Why not Triton's own queue
policy, and the figures: docs/serving_faults.md.

The table is ``N`` int64 admission times (``time.monotonic_ns()``, 0 = free) in a file named by the server's pid and
the repository, in this user's private folder (``/dev/shm/sessrec-admission-<uid>``, mode 0700), shared by the stubs
under ``flock``. A ticket lost with a dead stub is freed when the supervisor reloads the model (:func:`clear_tables`),
any other after the lease. This file travels beside the python steps as ``sessrec_admission.py`` (numpy + stdlib).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import mmap
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

import numpy as np

TICKET = "admission_ticket"  # the tensor that carries [slot, stamp] from the first step to the model step
PREFIX = "sessrec-admission-"
DEFAULT_LEASE_MS = 2000.0  # far above an admitted request's way to the end of the model step (ms on 2 cores)
STEP_TEMPLATE = Path(__file__).resolve().parent / "templates" / "admission_step.py"


def table_dir(base: str | Path | None = None) -> Path:
    """Return this user's private folder of tables under ``base`` (``/dev/shm``), made 0700 if missing.

    A link, a file or another user's folder there is refused with PermissionError; a folder of ours that others
    could enter is made private.
    """
    if base is None:
        shm = Path("/dev/shm")
        base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    path = Path(base) / f"{PREFIX}{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        raise PermissionError(f"{path} must be a folder of uid {os.geteuid()} (mode 0700), not a link or a file "
                              f"({error.strerror}): remove it") from error
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            raise PermissionError(f"{path} belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()}): "
                                  "admission tables are never shared between users; remove it")
        if info.st_mode & 0o077:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return path


def table_path(repository: str | Path, server_pid: int | None = None) -> Path:
    """Return the table of ``repository`` served by the server ``server_pid`` (default: this stub's parent)."""
    pid = os.getppid() if server_pid is None else int(server_pid)
    key = hashlib.sha1(str(Path(repository).resolve()).encode()).hexdigest()[:12]
    return table_dir() / f"{pid}-{key}"


def _own_tables(pattern: str) -> list[Path]:
    """Entries of the private folder matching ``pattern`` that belong to this user (others' are left alone)."""
    try:
        folder = table_dir()
    except PermissionError:
        return []
    found = []
    for path in folder.glob(pattern):
        with contextlib.suppress(FileNotFoundError):
            if os.lstat(path).st_uid == os.geteuid():
                found.append(path)
    return found


def remove_tables(server_pid: int) -> list[Path]:
    """Delete the tables of the server ``server_pid`` (it stopped); a link is removed, never followed."""
    removed = []
    for path in _own_tables(f"{int(server_pid)}-*"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def clear_tables(server_pid: int) -> list[Path]:
    """Free every slot of the tables of the server ``server_pid`` (after a reload); links and others' files are skipped."""
    cleared = []
    for path in _own_tables(f"{int(server_pid)}-*"):
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:  # gone, or a link (ELOOP)
            continue
        try:
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
                fcntl.flock(fd, fcntl.LOCK_EX)  # released by close
                os.pwrite(fd, bytes(info.st_size), 0)
                cleared.append(path)
        finally:
            os.close(fd)
    return cleared


def remove_stale_tables() -> list[Path]:
    """Delete this user's tables whose server process no longer exists; return their paths."""
    removed = []
    for path in _own_tables("*-*"):
        pid = path.name.split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def _open_table(path: Path, size: int) -> int:
    """Open the table ``path`` of ``size`` bytes, or create it (O_EXCL); anything else found there is replaced."""
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)  # the steps of one server open their table one at a time
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
            info = os.fstat(fd)
            if (stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and info.st_nlink == 1
                    and info.st_size == size):
                return fd  # made by another step of this server
            os.close(fd)
            os.unlink(path)  # a leftover, another size, another user's, a hard link: not ours to use
        except FileNotFoundError:
            pass
        except OSError as error:
            if error.errno != errno.ELOOP:
                raise
            os.unlink(path)  # a link where the table goes: removed, its target untouched
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.ftruncate(fd, size)
        return fd
    finally:
        os.close(folder)  # releases the lock


class AdmissionTable:
    """``slots`` admission slots shared by processes through the file ``path`` (created when missing)."""

    def __init__(self, path: str | Path, slots: int, lease_ms: float = DEFAULT_LEASE_MS):
        if slots < 1 or lease_ms <= 0:
            raise ValueError(f"an admission table needs slots >= 1 and lease_ms > 0, got {slots} and {lease_ms}")
        self.path, self.slots, self.lease_ns = Path(path), int(slots), int(lease_ms * 1e6)
        self._fd = _open_table(self.path, self.slots * 8)
        self._map = mmap.mmap(self._fd, self.slots * 8)
        self._stamps = np.frombuffer(self._map, dtype=np.int64)

    @contextlib.contextmanager
    def _locked(self):
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _taken(self, now: int) -> np.ndarray:
        """Slots held within their lease (a stamp from the future is garbage: free)."""
        return (self._stamps != 0) & (now - self._stamps <= self.lease_ns) & (self._stamps <= now)

    def admit(self, count: int) -> np.ndarray:
        """Take up to ``count`` free slots; return ``(admitted, 2)`` tickets ``[slot, stamp]`` for the first requests."""
        now = time.monotonic_ns()
        with self._locked():
            free = np.flatnonzero(~self._taken(now))[:count]
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

    def in_use(self) -> int:
        """Return how many slots are taken and within their lease."""
        with self._locked():
            return int(self._taken(time.monotonic_ns()).sum())

    def close(self) -> None:
        """Unmap and close the file (the file stays for the other steps)."""
        del self._stamps
        self._map.close()
        os.close(self._fd)


def _insert(text: str, anchor: str, end: str, addition: str) -> str:
    """Insert ``addition`` before the first ``end`` after ``anchor`` in a generated config."""
    at = text.index(end, text.index(anchor))
    return text[:at] + addition + text[at:]


def limit_admission(repository: str | Path, max_in_flight: int, lease_ms: float = DEFAULT_LEASE_MS) -> Path:
    """Put the exported ``repository`` behind an admission limit of ``max_in_flight`` requests; return its path.

    ``preprocess`` and ``model`` get ``templates/admission_step.py`` as ``model.py`` over their own (now
    ``sessrec_step.py``), the limit and the ticket tensor; the ensemble passes the ticket on. Written to a copy
    swapped in at the end.
    """
    from sessrec_course.paths import write_directory_atomically

    repository = Path(repository)
    meta = json.loads((repository / "sessrec_serving.json").read_text())
    if max_in_flight < 1 or lease_ms <= 0:
        raise ValueError(f"max_in_flight must be >= 1 and lease_ms > 0, got {max_in_flight} and {lease_ms}")
    if meta["model_backend"] != "python":
        raise ValueError(f"max_in_flight needs model_backend='python' (its model step frees the admission slots), "
                         f"the {meta['model_backend']!r} backend of {repository} cannot")
    if "admission" in meta:
        raise ValueError(f"{repository} is already behind an admission limit: {meta['admission']}")
    parameters = "".join(f'parameters {{ key: "admission_{key}" value: {{ string_value: "{value}" }} }}\n'
                         for key, value in (("max_in_flight", max_in_flight), ("lease_ms", f"{lease_ms:g}")))

    def write(tmp: Path) -> None:
        shutil.copytree(repository, tmp, dirs_exist_ok=True, symlinks=True)
        for step, block in (("preprocess", "output ["), ("model", "input [")):
            version, config = tmp / step / "1", tmp / step / "config.pbtxt"
            os.replace(version / "model.py", version / "sessrec_step.py")
            shutil.copyfile(STEP_TEMPLATE, version / "model.py")
            shutil.copyfile(__file__, version / "sessrec_admission.py")
            ticket = f',\n  {{ name: "{TICKET}" data_type: TYPE_INT64 dims: [ 2 ] }}'
            config.write_text(_insert(config.read_text(), block, "\n]", ticket) + parameters)
        ensemble = tmp / meta["ensemble"] / "config.pbtxt"
        text = _insert(ensemble.read_text(), 'model_name: "preprocess"', "\n    }",
                       f'\n      output_map {{ key: "{TICKET}" value: "{TICKET}" }}')
        ensemble.write_text(_insert(text, 'model_name: "model"', "\n    }",
                                    f'\n      input_map {{ key: "{TICKET}" value: "{TICKET}" }}'))
        meta["admission"] = {"max_in_flight": max_in_flight, "lease_ms": lease_ms}
        (tmp / "sessrec_serving.json").write_text(json.dumps(meta, indent=2))

    return write_directory_atomically(repository, write)
