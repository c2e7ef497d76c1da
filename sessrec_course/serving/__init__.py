"""Serving: export the fitted ETL + session model as a Triton ensemble, run the server, query and load-test it.

- :mod:`~sessrec_course.serving.transform` pre/post-processing shared by the server and the reference (numpy);
- :mod:`~sessrec_course.serving.repository` ``export_repository`` writes the model repository (generated configs);
- :mod:`~sessrec_course.serving.server` ``TritonServer`` starts/stops a real ``tritonserver`` (context manager);
- :mod:`~sessrec_course.serving.server_setup` its backend folder, environment and command line;
- :mod:`~sessrec_course.serving.supervisor` reloads a model whose backend stub died, notices the server's death;
- :mod:`~sessrec_course.serving.admission` the admission limit (``ServingConfig(max_in_flight=N)``) the python steps share;
- :mod:`~sessrec_course.serving.faults` bounded fault rehearsals (kill a stub under traffic) and their figures;
- :mod:`~sessrec_course.serving.procs` ``/proc`` reading: process-group members, names, CPU seconds;
- :mod:`~sessrec_course.serving.client` ``TritonRecommender`` (HTTP/gRPC), raw ids in, DataFrame out; retries
  "unavailable" errors (``is_unavailable``) with backoff up to a deadline, never a bad request;
- :mod:`~sessrec_course.serving.reference` ``recommend_in_process``, the same pipeline without the server;
- :mod:`~sessrec_course.serving.loadtest` ``run_load_test``, a bounded load generator (Python client or perf_analyzer);
  :mod:`~sessrec_course.serving.load_generators` the Python client's levels, ``loadtest_report`` its markdown table;
- :mod:`~sessrec_course.serving.perf_analyzer` ``run_perf_analyzer``, Triton's C++ load generator, bounded.
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
from sessrec_course.serving.server import (
    TritonServer,
    TritonServerDied,
    TritonStartupError,
    find_server_processes,
)
from sessrec_course.serving.transform import ServingState

__all__ = [
    "ServingConfig", "ServingState", "ServingUnavailable", "TritonRecommender", "TritonServer", "TritonServerDied",
    "TritonStartupError", "export_repository", "find_server_processes", "is_unavailable", "onnx_scorer",
    "pad_raw_sessions", "recommend_in_process",
]
