"""The CUDA device of this machine (torch is imported only to ask, and only when installed)."""

from __future__ import annotations

import functools
import importlib.util


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
