"""Serving: export the fitted ETL + session model as a Triton ensemble, run the server, query it.

The lesson path (06): :mod:`~.transform` (pre/post-processing, numpy, shared by server and reference),
:mod:`~.repository` (``export_repository``), :mod:`~.server` (``TritonServer``), :mod:`~.client`
(``TritonRecommender``), :mod:`~.reference` (``recommend_in_process``), :mod:`~.pipeline` (course glue).
Opt-in layers on top (06b): :mod:`~.supervisor` (``SupervisedServer``: recovery, liveness, truthful readiness),
:mod:`~.admission` (``limit_admission``) and :mod:`~.traffic` (``send_traffic``, the one traffic loop).
"""

from __future__ import annotations

from sessrec_course.serving.client import (
    ServingUnavailable,
    TritonRecommender,
    is_unavailable,
    pad_raw_sessions,
)
from sessrec_course.serving.reference import onnx_scorer, recommend_in_process
from sessrec_course.serving.repository import ServingConfig, export_repository
from sessrec_course.serving.server import TritonServer, TritonStartupError, find_server_processes
from sessrec_course.serving.transform import ServingState

__all__ = [
    "ServingConfig", "ServingState", "ServingUnavailable", "TritonRecommender", "TritonServer", "TritonStartupError",
    "export_repository", "find_server_processes", "is_unavailable", "onnx_scorer", "pad_raw_sessions",
    "recommend_in_process",
]
