"""Where the course reads and writes files: repository, generated data, shared research data."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """Return the repository root (the folder holding ``pyproject.toml``), or the working directory."""
    for candidate in (PACKAGE_DIR.parent, *Path.cwd().resolve().parents, Path.cwd().resolve()):
        if (candidate / "pyproject.toml").exists() and (candidate / "sessrec_course").is_dir():
            return candidate
    return Path.cwd().resolve()


def generated_data_dir(profile: str | None = None) -> Path:
    """Return the folder for data the package generates (``$SESSREC_DATA_DIR`` or ``data/generated``).

    With ``profile`` given, the profile's own sub-folder, so that sizes never mix.
    """
    base = Path(os.environ.get("SESSREC_DATA_DIR") or project_root() / "data" / "generated")
    return base / profile if profile else base


def build_dir() -> Path:
    """Return the folder for build artefacts: executed notebooks, exported models, logs."""
    return Path(os.environ.get("SESSREC_BUILD_DIR") or project_root() / "build")


def shared_data_dir() -> Path:
    """Return the shared research-data folder (``$SESSREC_SHARED_DATA`` or ``../shared/data``).

    The folder may be missing: callers (tests, benchmarks) check and skip with a clear reason.
    """
    env = os.environ.get("SESSREC_SHARED_DATA")
    return Path(env) if env else project_root().parent / "shared" / "data"


def require_shared(relative: str) -> Path:
    """Return ``shared_data_dir() / relative`` or raise FileNotFoundError saying what is missing."""
    path = shared_data_dir() / relative
    if not path.exists():
        raise FileNotFoundError(
            f"shared research data not found: {path}. Put the shared folder beside the repository "
            "(../shared/data) or point SESSREC_SHARED_DATA at it."
        )
    return path


def write_file_atomically(target: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a fresh sibling file, then rename it over ``target``; return ``target``.

    Readers see either the old complete file or the new one: on any error (or an interrupt) the temporary
    file is removed and ``target`` is left as it was.
    """
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


def write_directory_atomically(target: str | Path, write: Callable[[Path], object],
                               keep: Callable[[Path], bool] | None = None) -> Path:
    """Call ``write(tmp)`` on a fresh sibling folder, then swap it in for ``target``; return ``target``.

    Readers see either the old complete folder or the new one, never a half-written one: on any error
    (or an interrupt) the temporary folder is removed and ``target`` is left as it was. ``keep(target)``,
    asked when ``target`` exists once the write is done, returns True to keep it (a concurrent writer
    finished first) and drop the new folder.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write(tmp)
        if target.exists():
            if keep is not None and keep(target):
                return target
            old = target.with_name(f".{target.name}-old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.replace(tmp, target)
            except OSError:  # another writer created target meanwhile
                if keep is None or not keep(target):
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
