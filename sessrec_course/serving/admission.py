"""An opt-in admission limit (appendix 06b): at most ``N`` requests between the ensemble's first step and the end
of its model step, the surplus answered ``UNAVAILABLE`` at once. A table of ``N`` int64 admission stamps (0 = free)
in this user's folder ``/dev/shm/sessrec-admission-<uid>`` (0700) is shared by the steps' stubs under ``flock``.
Copied beside the steps as ``sessrec_admission.py`` (numpy only). Why not Triton's queue: docs/serving_faults.md."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import mmap
import os
import shutil
import stat
import time
from pathlib import Path

import numpy as np

TICKET = "admission_ticket"  # the tensor that carries [slot, stamp] from the first step to the model step
PREFIX = "sessrec-admission-"
DEFAULT_LEASE_MS = 2000.0  # far above an admitted request's way to the end of the model step (ms on 2 cores)
STEP_TEMPLATE = Path(__file__).resolve().parent / "templates" / "admission_step.py"


def table_dir(base: str | Path = "/dev/shm") -> Path:
    """Return this user's folder of tables under ``base``, made 0700; a link or another user's folder is refused."""
    path = Path(base) / f"{PREFIX}{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        raise PermissionError(f"{path} must be a folder of uid {os.geteuid()} (mode 0700), not a link or a file "
                              f"({error.strerror}): remove it") from error
    try:
        if (owner := os.fstat(fd).st_uid) != os.geteuid():
            raise PermissionError(f"{path} belongs to uid {owner}, not to this user (uid {os.geteuid()}): "
                                  "admission tables are never shared between users; remove it")
        os.fchmod(fd, 0o700)  # ours: private whatever its mode was
    finally:
        os.close(fd)
    return path


def table_path(repository: str | Path, server_pid: int | None = None) -> Path:
    """Return the table of ``repository`` served by the server ``server_pid`` (default: this stub's parent)."""
    key = hashlib.sha1(str(Path(repository).resolve()).encode()).hexdigest()[:12]
    return table_dir() / f"{os.getppid() if server_pid is None else int(server_pid)}-{key}"


def _own_tables(pattern: str) -> list[Path]:
    """Entries of the private folder matching ``pattern`` that belong to this user (others' are left alone)."""
    try:
        found = list(table_dir().glob(pattern))
    except PermissionError:
        return []
    owned = []
    for path in found:
        with contextlib.suppress(FileNotFoundError):
            owned += [path] if path.lstat().st_uid == os.geteuid() else []  # a link's own owner: never followed
    return owned


def remove_tables(server_pid: int | None = None) -> list[Path]:
    """Delete the tables of the server ``server_pid`` (it stopped), or of every server gone (None); links unfollowed."""
    tables = _own_tables("*-*" if server_pid is None else f"{int(server_pid)}-*")
    gone = [p for p in tables if server_pid is not None or not Path(f"/proc/{p.name.split('-', 1)[0]}").exists()]
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


def _open_own(path: Path) -> tuple[int, os.stat_result] | None:
    """Open ``path`` read-write, never through a link: ``(fd, stat)`` of a regular file of this user, else None."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # gone, a link (ELOOP) or not ours to open
        return None
    if stat.S_ISREG((info := os.fstat(fd)).st_mode) and info.st_uid == os.geteuid():
        return fd, info
    os.close(fd)
    return None


def clear_tables(server_pid: int) -> list[Path]:
    """Free every slot of the tables of the server ``server_pid`` (after a reload); links are skipped."""
    cleared = []
    for path in _own_tables(f"{int(server_pid)}-*"):
        if (opened := _open_own(path)) is not None:
            fd, info = opened
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # released by close
                os.pwrite(fd, bytes(info.st_size), 0)
                cleared.append(path)
            finally:
                os.close(fd)
    return cleared


def _open_table(path: Path, size: int) -> int:
    """Open the table ``path`` of ``size`` bytes, or create it (O_EXCL); anything else found there is replaced."""
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)  # the steps of one server open their table one at a time
        if (opened := _open_own(path)) is not None:
            fd, info = opened
            if (info.st_nlink, info.st_size) == (1, size):
                return fd  # made by another step of this server
            os.close(fd)
        # a leftover of another size, a hard link, another user's file, a link (its target untouched): replaced
        path.unlink(missing_ok=True)
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
            yield time.monotonic_ns()
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _taken(self, now: int) -> np.ndarray:
        """Slots held within their lease (a stamp from the future is garbage: free)."""
        return (self._stamps != 0) & (now - self._stamps <= self.lease_ns) & (self._stamps <= now)

    def admit(self, count: int) -> np.ndarray:
        """Take up to ``count`` free slots; return ``(admitted, 2)`` tickets ``[slot, stamp]`` for the first requests."""
        with self._locked() as now:
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
        with self._locked() as now:
            return int(self._taken(now).sum())

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
    """Put the exported ``repository`` behind an admission limit of ``max_in_flight`` requests; return its path:
    ``preprocess`` and ``model`` get ``templates/admission_step.py`` over their own model (``sessrec_step.py``)."""
    from sessrec_course.paths import write_directory_atomically

    meta = json.loads((Path(repository) / "sessrec_serving.json").read_text())
    if max_in_flight < 1 or lease_ms <= 0:
        raise ValueError(f"max_in_flight must be >= 1 and lease_ms > 0, got {max_in_flight} and {lease_ms}")
    if "admission" in meta:
        raise ValueError(f"{repository} is already behind an admission limit: {meta['admission']}")
    if meta["model_backend"] != "python":
        raise ValueError(f"max_in_flight needs model_backend='python' (its model step frees the slots), "
                         f"the {meta['model_backend']!r} backend of {repository} cannot")
    parameters = "".join(f'parameters {{ key: "admission_{key}" value: {{ string_value: "{value}" }} }}\n'
                         for key, value in (("max_in_flight", max_in_flight), ("lease_ms", f"{lease_ms:g}")))
    ticket = f'{{ key: "{TICKET}" value: "{TICKET}" }}'

    def write(tmp: Path) -> None:
        shutil.copytree(repository, tmp, dirs_exist_ok=True, symlinks=True)
        for step, block in (("preprocess", "output ["), ("model", "input [")):
            version, config = tmp / step / "1", tmp / step / "config.pbtxt"
            os.replace(version / "model.py", version / "sessrec_step.py")
            shutil.copyfile(STEP_TEMPLATE, version / "model.py")
            shutil.copyfile(__file__, version / "sessrec_admission.py")
            tensor = f',\n  {{ name: "{TICKET}" data_type: TYPE_INT64 dims: [ 2 ] }}'
            config.write_text(_insert(config.read_text(), block, "\n]", tensor) + parameters)
        ensemble = tmp / meta["ensemble"] / "config.pbtxt"
        text = _insert(ensemble.read_text(), 'model_name: "preprocess"', "\n    }", f"\n      output_map {ticket}")
        ensemble.write_text(_insert(text, 'model_name: "model"', "\n    }", f"\n      input_map {ticket}"))
        (tmp / "sessrec_serving.json").write_text(json.dumps(
            {**meta, "admission": {"max_in_flight": max_in_flight, "lease_ms": lease_ms}}, indent=2))

    return write_directory_atomically(repository, write)
