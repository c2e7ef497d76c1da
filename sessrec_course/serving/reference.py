"""The in-process twin of the served ensemble: same pre/post-processing code, the model called directly."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from sessrec_course.onnx_session import onnx_session
from sessrec_course.serving.client import frame_in_batches
from sessrec_course.serving.transform import ServingState

ScoreFn = Callable[[np.ndarray], np.ndarray]  # int64 (B, max_length) encoded ids -> float32 (B, item_cardinality)


def recommend_in_process(score: ScoreFn, state: ServingState, sessions: Sequence[Sequence[int]], k: int = 20,
                         batch_size: int = 256) -> pd.DataFrame:
    """Return ``session, rank, item_id, score`` as the server would: ``state`` encodes and ranks around ``score``."""

    def top_k(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        encoded = state.encode(raw)
        return state.top_k(np.asarray(score(encoded), dtype=np.float32), encoded, k)

    return frame_in_batches(sessions, batch_size, top_k)


def onnx_scorer(path: str, threads: int = 1) -> ScoreFn:
    """Return a ``score`` function running the ONNX model at ``path`` with onnxruntime (as the server does)."""
    session = onnx_session(path, intra_op_threads=threads, inter_op_threads=1)
    name_in, name_out = session.get_inputs()[0].name, session.get_outputs()[0].name
    return lambda encoded: session.run([name_out], {name_in: np.asarray(encoded, dtype=np.int64)})[0]
