"""What ``tritonserver`` needs to start: its backend folder, its environment and its command line.

For the copy bundled in the ``nvidia-pytriton`` wheel the python backend is assembled into a backend folder
and the environment is fixed (``LD_LIBRARY_PATH`` with the interpreter's LIBDIR, the venv's ``bin`` first
on ``PATH``) so that the stub finds this interpreter and its packages.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

from sessrec_course.environment import find_tritonserver


def server_backend_dirs(binary: Path) -> tuple[Path, Path | None]:
    """Return ``(backends folder, python stub)`` that belong to the ``tritonserver`` at ``binary``.

    The NVIDIA image has ``<root>/backends/<name>/``; the nvidia-pytriton wheel keeps the python stub
    apart, in ``python_backend_stubs/<major.minor>/``.
    """
    root = binary.resolve().parent.parent
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    return root / "backends", stub if stub.is_file() else None


def available_backends(binary: Path | None = None) -> list[str]:
    """Return the backend names the server at ``binary`` (default: the one found) ships, e.g. ``["python"]``."""
    binary = binary or find_tritonserver()
    if binary is None:
        return []
    backends, _ = server_backend_dirs(binary)
    return sorted(p.name for p in backends.iterdir() if p.is_dir()) if backends.is_dir() else []


def prepare_backend_dir(binary: Path, target: Path) -> Path:
    """Return a backend folder usable by ``binary``, building one under ``target`` for the wheel's copy.

    With a stub beside the server (the wheel layout) ``target/python/`` gets links to
    ``libtriton_python.so``, ``triton_python_backend_utils.py`` and the stub of this Python version;
    other backends are linked as they are. Otherwise the server's own ``backends`` folder is returned.
    """
    backends, stub = server_backend_dirs(binary)
    if stub is None:
        return backends
    target.mkdir(parents=True, exist_ok=True)
    for backend in backends.iterdir() if backends.is_dir() else ():
        if backend.name == "python":
            continue
        link = target / backend.name
        if not link.exists():
            link.symlink_to(backend.resolve(), target_is_directory=True)
    python_dir = target / "python"
    python_dir.mkdir(exist_ok=True)
    for source in (backends / "python" / "libtriton_python.so",
                   backends / "python" / "triton_python_backend_utils.py", stub):
        link = python_dir / source.name
        if not link.exists():
            link.symlink_to(source.resolve())
    return target


def server_environment(binary: Path) -> dict[str, str]:
    """Return the environment for ``tritonserver``: this interpreter's libpython first, the venv's ``bin`` on PATH."""
    env = dict(os.environ)
    lib_dirs = [sysconfig.get_config_var("LIBDIR") or ""]
    libs = binary.resolve().parent.parent.parent.parent / "nvidia_pytriton.libs"
    if libs.is_dir():
        lib_dirs.append(str(libs))
    lib_dirs += [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(d for d in lib_dirs if d)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # the python models must import this interpreter's packages (numpy, onnxruntime), never the user site
    env.setdefault("PYTHONNOUSERSITE", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def server_command(binary: Path, repository: Path, backend_dir: Path, *, http_port: int, grpc_port: int,
                   metrics_port: int, exit_timeout: int, log_verbose: int = 0,
                   extra_args: tuple[str, ...] = (), explicit_model_control: bool = False) -> list[str]:
    """Return the ``tritonserver`` command line: every endpoint on 127.0.0.1, CPU-friendly memory settings.

    ``explicit_model_control`` loads every model at start and lets a client unload / load one (the
    supervisor's reload of a model whose stub died), unless ``extra_args`` choose a mode themselves.
    """
    control = []
    if explicit_model_control and not any(arg.startswith("--model-control-mode") for arg in extra_args):
        control = ["--model-control-mode=explicit", "--load-model=*"]
    return [
        str(binary), "--model-repository", str(repository),
        "--backend-directory", str(backend_dir),
        "--http-address", "127.0.0.1", "--http-port", str(http_port),
        "--grpc-address", "127.0.0.1", "--grpc-port", str(grpc_port),
        "--metrics-address", "127.0.0.1", "--metrics-port", str(metrics_port),
        "--allow-gpu-metrics", "false", "--pinned-memory-pool-byte-size=0",
        "--strict-readiness", "true", "--exit-timeout-secs", str(exit_timeout), f"--log-verbose={log_verbose}",
        *control, *extra_args,
    ]
