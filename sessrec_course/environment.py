"""What this machine offers the course: package versions, CUDA device, cuDF, the Triton server binary, and Linux's
parent-death signal, with which servers and ranks end with the Python process that started them."""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata as md
import importlib.util
import os
import platform
import shutil
import signal
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sessrec_course.device import cuda_available, cuda_device  # noqa: F401 - cuda_available: re-exported
from sessrec_course.profiles import get_profile

PR_SET_PDEATHSIG = 1  # linux/prctl.h
PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None  # loaded before forks
REPORTED_PACKAGES = (
    "numpy", "pandas", "pyarrow", "torch", "transformers", "tensorflow-cpu", "tensorflow", "keras",
    "onnx", "onnxruntime", "nvidia-pytriton", "tritonclient", "cudf-cu12", "nvtabular", "jupyterlab", "nbval",
)


def die_with_parent(parent: int | None = None) -> None:
    """Have Linux SIGKILL this process when its parent ends; end it now if its parent is no longer ``parent``."""
    if PRCTL is not None:
        PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)
        if parent is not None and os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)


def package_version(name: str) -> str | None:
    """Return the installed version of distribution ``name``, or None."""
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


@functools.cache
def cudf_usable() -> tuple[bool, str]:
    """Return (usable, reason): cuDF imports and runs a tiny operation on a GPU."""
    if importlib.util.find_spec("cudf") is None:
        return False, "cudf is not installed (pandas is used)"
    try:
        import cudf

        int(cudf.Series([1, 2, 3]).sum())
    except Exception as exc:  # any failure means: fall back to pandas
        return False, f"cudf is installed but unusable: {type(exc).__name__}: {exc}"[:300]
    return True, "cudf works on the GPU"


def find_tritonserver() -> Path | None:
    """Return the ``tritonserver`` binary: ``$TRITONSERVER``, PATH, /opt/tritonserver, or nvidia-pytriton's copy."""
    candidates = [os.environ.get("TRITONSERVER"), shutil.which("tritonserver"), "/opt/tritonserver/bin/tritonserver"]
    spec = importlib.util.find_spec("pytriton")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(str(Path(location) / "tritonserver" / "bin" / "tritonserver"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


@dataclass
class EnvironmentReport:
    """A snapshot of the machine as the course sees it."""

    python: str
    platform: str
    cpu_count: int
    torch_threads: int | None
    device: str
    cuda: dict | None
    cudf: bool
    cudf_reason: str
    tritonserver: str | None
    profile: str
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Return the report as a plain dict."""
        return asdict(self)

    def to_text(self) -> str:
        """Return the report as an aligned, human-readable block."""
        rows = [
            ("python", self.python), ("platform", self.platform), ("cpu cores", str(self.cpu_count)),
            ("device", self.device), ("cuDF", self.cudf_reason),
            ("tritonserver", self.tritonserver or "not found (pip install nvidia-pytriton)"),
            ("profile", self.profile),
        ]
        rows += [(name, version) for name, version in self.versions.items()]
        width = max(len(key) for key, _ in rows)
        return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)

    def _repr_html_(self) -> str:
        cells = "".join(f"<tr><td>{k}</td><td><code>{v}</code></td></tr>"
                        for k, v in (line.split("  ", 1) for line in self.to_text().splitlines()))
        return f"<table>{cells}</table>"


def environment_report() -> EnvironmentReport:
    """Collect versions, device, cuDF usability, the Triton binary and the active profile."""
    cuda = cuda_device()
    torch_threads = None
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch_threads = torch.get_num_threads()
    device = f"cuda ({cuda['name']}, {cuda['memory_gib']} GiB)" if cuda else "cpu"
    cudf_ok, cudf_reason = cudf_usable()
    server = find_tritonserver()
    versions = {name: v for name in REPORTED_PACKAGES if (v := package_version(name))}
    return EnvironmentReport(
        python=sys.version.split()[0], platform=platform.platform(), cpu_count=os.cpu_count() or 1,
        torch_threads=torch_threads, device=device, cuda=cuda, cudf=cudf_ok, cudf_reason=cudf_reason,
        tritonserver=str(server) if server else None, profile=get_profile().name, versions=versions,
    )
