"""Serving: export the fitted ETL + session model as a Triton ensemble, run the server, query it (lesson 06).
Opt-in layers over it (appendix 06b): :mod:`~.supervisor`, :mod:`~.admission` and :mod:`~.traffic`."""

from sessrec_course.serving.client import ServingUnavailable, TritonRecommender, pad_raw_sessions
from sessrec_course.serving.reference import onnx_scorer, recommend_in_process
from sessrec_course.serving.repository import ServingConfig, export_repository
from sessrec_course.serving.server import TritonServer, TritonStartupError
from sessrec_course.serving.transform import ServingState

__all__ = [
    "ServingConfig", "ServingState", "ServingUnavailable", "TritonRecommender", "TritonServer", "TritonStartupError",
    "export_repository", "onnx_scorer", "pad_raw_sessions", "recommend_in_process",
]
