"""What ``tritonserver`` needs to start: its backend folder, environment and command line (for the wheel's copy,
a python backend folder, this interpreter's LIBDIR and the venv's ``bin`` first, so the stub finds our packages)."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import sysconfig
from pathlib import Path

from sessrec_course.environment import find_tritonserver

# the APIs that change the server (load a model = run its model.py, write files, map memory): behind a header
RESTRICTED_APIS = ("model-repository", "shared-memory", "logging", "trace")
CONTROL_HEADER = "sessrec-control-key"
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"  # Triton reads a restricted gRPC header under this prefix
SHM_DIR = Path("/dev/shm")  # where the python backend keeps each stub's shared-memory region


def server_backend_dirs(binary: Path) -> tuple[Path, Path | None]:
    """Return ``(backends folder, python stub or None)`` of the ``tritonserver`` at ``binary``."""
    root, version = binary.resolve().parents[1], f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    return root / "backends", stub if stub.is_file() else None


def available_backends() -> list[str]:
    """Return the backend names the ``tritonserver`` found ships, e.g. ``["python"]`` (none without a server)."""
    if (binary := find_tritonserver()) is None:
        return []
    backends, _ = server_backend_dirs(binary)
    return sorted(p.name for p in backends.iterdir() if p.is_dir()) if backends.is_dir() else []


def prepare_backend_dir(binary: Path, target: Path) -> Path:
    """Return a backend folder for ``binary``: for the wheel's copy, ``target`` with links to its python backend."""
    backends, stub = server_backend_dirs(binary)
    if stub is None:
        return backends
    (target / "python").mkdir(parents=True, exist_ok=True)
    links = {target / b.name: b for b in (backends.iterdir() if backends.is_dir() else ()) if b.name != "python"}
    links.update({target / "python" / s.name: s for s in (backends / "python" / "libtriton_python.so",
                                                          backends / "python" / "triton_python_backend_utils.py", stub)})
    for link, source in links.items():
        if not link.exists():
            link.symlink_to(source.resolve(), target_is_directory=source.is_dir())
    return target


def server_environment(binary: Path) -> dict[str, str]:
    """Return the environment for ``tritonserver``: this interpreter's libpython first, the venv's ``bin`` on PATH."""
    env = dict(os.environ)
    libs = binary.resolve().parents[3] / "nvidia_pytriton.libs"  # the wheel's copies (libb64, ...)
    lib_dirs = [sysconfig.get_config_var("LIBDIR"), str(libs) if libs.is_dir() else "",
                *env.get("LD_LIBRARY_PATH", "").split(os.pathsep)]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(d for d in lib_dirs if d)  # no empty entry: it would mean "."
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("PYTHONNOUSERSITE", "1")  # the python models import this interpreter's packages only
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def server_command(binary: Path, repository: Path, backend_dir: Path, *, http_port: int, grpc_port: int,
                   metrics_port: int, control_key: str, shm_prefix: str, extra_args: tuple[str, ...] = ()) -> list[str]:
    """Return the command line: every endpoint on 127.0.0.1, the control APIs behind ``control_key``, the stubs'
    shared memory under ``shm_prefix`` (so this server's regions can be removed, even those of killed stubs)."""
    restricted = f"{','.join(RESTRICTED_APIS)}:{CONTROL_HEADER}={control_key}"
    return [
        str(binary), "--model-repository", str(repository), "--backend-directory", str(backend_dir),
        "--http-address", "127.0.0.1", "--http-port", str(http_port),
        "--grpc-address", "127.0.0.1", "--grpc-port", str(grpc_port),
        "--metrics-address", "127.0.0.1", "--metrics-port", str(metrics_port),
        f"--http-restricted-api={restricted}", f"--grpc-restricted-protocol={restricted}",
        f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
        "--allow-gpu-metrics", "false", "--pinned-memory-pool-byte-size=0",
        "--strict-readiness", "true", "--exit-timeout-secs", "2",  # the wait for open connections when stopping
        *extra_args,
    ]


def tidy_shm_regions(prefix: str, mapped_by: list[int] | None = None) -> None:
    """Make this user's ``prefix*`` regions 0600 (not the backend's 0644); remove those ``mapped_by`` do not map."""
    maps = ""
    for pid in mapped_by or ():
        with contextlib.suppress(OSError):
            maps += Path(f"/proc/{pid}/maps").read_text()
    keep = set(re.findall(rf"{re.escape(str(SHM_DIR))}/({re.escape(prefix)}\S*)", maps))
    for path in SHM_DIR.glob(f"{prefix}*"):
        with contextlib.suppress(OSError):
            if (info := path.lstat()).st_uid != os.getuid() or not stat.S_ISREG(info.st_mode):  # no link followed
                continue
            if mapped_by is None or path.name in keep:
                path.chmod(0o600)
            else:
                path.unlink()
