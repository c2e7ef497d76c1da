"""Where the course reads and writes files: repository, generated data, shared research data."""

from __future__ import annotations

import os
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
