"""The in-process twin of the served ensemble: same pre/post-processing code, the model called directly."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from sessrec_course.onnx_session import onnx_session
from sessrec_course.serving.client import pad_raw_sessions, to_frame
from sessrec_course.serving.transform import ServingState

ScoreFn = Callable[[np.ndarray], np.ndarray]


def recommend_in_process(score: ScoreFn, state: ServingState, sessions: Sequence[Sequence[int]], k: int = 20,
                         batch_size: int = 256) -> pd.DataFrame:
    """Return ``session, rank, item_id, score`` as the server would: ``state`` encodes and ranks around ``score``.

    ``score`` maps int64 (B, max_length) encoded ids to float32 (B, item_cardinality) (the recommender protocol)."""
    frames = []
    for start in range(0, len(sessions), batch_size):
        chunk = sessions[start:start + batch_size]
        encoded = state.encode(pad_raw_sessions(chunk))
        ids, top = state.top_k(np.asarray(score(encoded), dtype=np.float32), encoded, k)
        frames.append(to_frame(ids, top, np.arange(start, start + len(chunk))))
    return pd.concat(frames, ignore_index=True)


def onnx_scorer(path: str, threads: int = 1) -> ScoreFn:
    """Return a ``score`` function running the ONNX model at ``path`` with onnxruntime (as the server does)."""
    session = onnx_session(path, intra_op_threads=threads, inter_op_threads=1)
    name_in, name_out = session.get_inputs()[0].name, session.get_outputs()[0].name
    return lambda encoded: session.run([name_out], {name_in: np.asarray(encoded, dtype=np.int64)})[0]
