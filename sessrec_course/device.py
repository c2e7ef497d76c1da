"""This machine's hardware for torch: the device, the CPU threads, native bf16 (torch is imported only to ask)."""

from __future__ import annotations

import functools
import importlib.util
import os


@functools.cache
def cuda_available() -> bool:
    """Return True when PyTorch is installed and sees a CUDA device."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def cuda_device() -> dict | None:
    """Return name and memory (GiB) of CUDA device 0, or None on a CPU-only machine."""
    if not cuda_available():
        return None
    import torch

    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}", "count": torch.cuda.device_count()}


# CPU feature flags (/proc/cpuinfo) and torch CPU capabilities with native bf16 matrix products
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
BF16_CPU_CAPABILITIES = frozenset({"AVX512_BF16", "AMX", "AMX_BF16"})


@functools.cache
def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where ``path`` is absent, e.g. not Linux)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return frozenset()
    return next((frozenset(line.split(":", 1)[1].split()) for line in lines
                 if line.startswith("flags") and ":" in line), frozenset())


def use_bf16(setting: bool | str | None, device_type: str, cpu_capability: str = "", flags=()) -> bool:
    """Whether to train in bf16 autocast: ``setting`` True/False wins; None or ``"auto"``: only where bf16 is native,
    on CUDA or a CPU with AVX-512-BF16 or AMX (elsewhere it is emulated, several times slower than fp32)."""
    if isinstance(setting, bool):
        return setting
    if setting not in (None, "auto"):
        raise ValueError(f"bf16 must be true, false or 'auto', got {setting!r}")
    if device_type != "cpu":
        return device_type == "cuda"
    return cpu_capability.upper() in BF16_CPU_CAPABILITIES or bool(BF16_CPU_FLAGS & set(flags))


def select_device(device: str | None = None):
    """``torch.device(device)`` or, when None, CUDA if available (this rank's GPU under torchrun), else the CPU."""
    import torch

    if device is None and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(device or "cpu")


@functools.cache
def _threads() -> int:
    if os.environ.get("SESSREC_TORCH_THREADS"):
        return max(1, int(os.environ["SESSREC_TORCH_THREADS"]))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 1 if cores > 1 and os.getloadavg()[0] >= cores else cores  # OpenMP threads spin on a busy machine


def configure_threads() -> int:
    """Set torch's CPU threads once per process: ``$SESSREC_TORCH_THREADS``, else every core, but 1 on a busy machine."""
    import torch

    if torch.get_num_threads() != _threads():
        torch.set_num_threads(_threads())
    return _threads()
