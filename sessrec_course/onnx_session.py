"""The one onnxruntime session set-up: export parity checks, the in-process reference and the served model.

Framework-free and standalone (only onnxruntime, imported when called): the serving repository copies this
file beside the python-backend model as ``sessrec_onnx_session.py``.
"""

from __future__ import annotations

from pathlib import Path


def onnx_session(path: str | Path, intra_op_threads: int | None = None, inter_op_threads: int | None = None,
                 use_gpu: bool = False):
    """Return an onnxruntime session for ``path`` (CUDA first with ``use_gpu``); ``None`` threads: its defaults."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if intra_op_threads is not None:
        options.intra_op_num_threads = int(intra_op_threads)
    if inter_op_threads is not None:
        options.inter_op_num_threads = int(inter_op_threads)
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    wanted = ("CUDAExecutionProvider", "CPUExecutionProvider") if use_gpu else ("CPUExecutionProvider",)
    providers = [p for p in wanted if p in ort.get_available_providers()]
    return ort.InferenceSession(str(path), options, providers=providers)
