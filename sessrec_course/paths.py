"""Where the course reads and writes files: repository, generated data, shared research data."""

from __future__ import annotations

import fcntl
import glob
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())  # in temporary folder names, with the writer's pid


def project_root() -> Path:
    """Return the repository root (the folder holding ``pyproject.toml``), or the working directory."""
    for candidate in (PACKAGE_DIR.parent, *Path.cwd().resolve().parents, Path.cwd().resolve()):
        if (candidate / "pyproject.toml").exists() and (candidate / "sessrec_course").is_dir():
            return candidate
    return Path.cwd().resolve()


def generated_data_dir(profile: str | None = None) -> Path:
    """Folder for generated data (``$SESSREC_DATA_DIR`` or ``data/generated``), per profile when given."""
    base = Path(os.environ.get("SESSREC_DATA_DIR") or project_root() / "data" / "generated")
    return base / profile if profile else base


def build_dir() -> Path:
    """Return the folder for build artefacts: executed notebooks, exported models, logs."""
    return Path(os.environ.get("SESSREC_BUILD_DIR") or project_root() / "build")


def shared_data_dir() -> Path:
    """The shared research-data folder (``$SESSREC_SHARED_DATA`` or ``../shared/data``); it may be missing."""
    env = os.environ.get("SESSREC_SHARED_DATA")
    return Path(env) if env else project_root().parent / "shared" / "data"


def write_file_atomically(target: str | Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` on a sibling file, then rename it over ``target``: readers never see half a file."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temporaries(target: Path, max_age_s: float = 86_400.0) -> list[Path]:
    """Remove the temporary folders of killed writers of ``target`` (older than ``max_age_s`` if from another host)."""
    pattern = re.compile(rf"\.{re.escape(target.name)}-(?:tmp|old)-(?P<host>.+)-(?P<pid>\d+)-[a-z0-9_]+")
    removed = []
    for path in target.parent.glob(f".{glob.escape(target.name)}-*"):
        try:
            info = path.lstat()
        except FileNotFoundError:  # its writer has just removed it
            continue
        found = pattern.fullmatch(path.name)
        if not found or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():  # no symlink, nobody else's
            continue
        if not _alive(int(found["pid"])) if found["host"] == _HOST else time.time() - info.st_mtime > max_age_s:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def write_directory_atomically(target: str | Path, write: Callable[[Path], object],
                               keep: Callable[[Path], bool] | None = None) -> Path:
    """Call ``write(tmp)`` on a fresh sibling folder, then swap it in for ``target`` (readers never see half of it).
    On an error ``target`` stays as it was. Of concurrent writers the last one wins, unless ``keep(target)``, asked
    under the parent folder's lock, returns True to keep what another finished first."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    prefix = f".{target.name}-{{}}-{_HOST}-{os.getpid()}-"
    tmp, old = Path(tempfile.mkdtemp(prefix=prefix.format("tmp"), dir=target.parent)), None
    lock = os.open(target.parent, os.O_RDONLY)
    try:
        write(tmp)
        fcntl.flock(lock, fcntl.LOCK_EX)  # the swap happens under the parent folder's lock, released by close
        if target.exists():
            if keep is not None and keep(target):
                return target
            old = Path(tempfile.mkdtemp(prefix=prefix.format("old"), dir=target.parent))
            os.replace(target, old)
        os.replace(tmp, target)
    finally:
        os.close(lock)
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target
