"""Ask the served ensemble for recommendations over HTTP or gRPC (tritonclient), raw ids in and out.

>>> client = TritonRecommender(server.grpc_url, protocol="grpc")   # doctest: +SKIP
>>> client.recommend([214536502, 214577561])                       # doctest: +SKIP
   session  rank    item_id     score
0        0     1  214536500  7.215...
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from sessrec_course.ids import RAW_PAD
from sessrec_course.serving.repository import ENSEMBLE, INPUT_NAME, OUTPUT_IDS, OUTPUT_SCORES


def pad_raw_sessions(sessions: Iterable[Sequence[int]]) -> np.ndarray:
    """Return raw sessions as a right-padded int64 matrix (padding -1, at least one column).

    An empty session becomes a row of padding; raw ids must be integers ``>= 0``.
    """
    rows = [np.asarray(list(s), dtype=np.int64) for s in sessions]
    for index, row in enumerate(rows):
        if row.size and row.min() < 0:
            raise ValueError(f"session {index}: raw item ids must be >= 0 (-1 is padding), got {row.min()}")
    width = max([row.size for row in rows] + [1])
    matrix = np.full((len(rows), width), RAW_PAD, dtype=np.int64)
    for index, row in enumerate(rows):
        matrix[index, :row.size] = row
    return matrix


def to_frame(item_ids: np.ndarray, scores: np.ndarray, session_index: Sequence | None = None) -> pd.DataFrame:
    """Return a long DataFrame ``session, rank, item_id, score`` from (B, k) ids and scores."""
    n_rows, k = item_ids.shape
    sessions = np.asarray(session_index if session_index is not None else np.arange(n_rows))
    return pd.DataFrame({
        "session": np.repeat(sessions, k),
        "rank": np.tile(np.arange(1, k + 1), n_rows),
        "item_id": item_ids.reshape(-1).astype(np.int64),
        "score": scores.reshape(-1).astype(np.float32),
    })


class TritonRecommender:
    """A client of the exported ensemble: ``recommend(session)`` and ``recommend_batch(sessions)``.

    ``url`` is ``host:port`` of the HTTP or gRPC endpoint (``server.http_url`` / ``server.grpc_url``).
    """

    def __init__(self, url: str, protocol: str = "grpc", model_name: str = ENSEMBLE, timeout_s: float = 30.0):
        if protocol == "http":
            import tritonclient.http as module
        elif protocol == "grpc":
            import tritonclient.grpc as module
        else:
            raise ValueError(f"protocol must be 'http' or 'grpc', got {protocol!r}")
        self.protocol, self.model_name, self.timeout_s = protocol, model_name, timeout_s
        self._module = module
        self.client = module.InferenceServerClient(url)

    def infer_matrix(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Send a padded raw matrix (B, L) and return top-k raw ids (B, k) and scores (B, k)."""
        raw = np.ascontiguousarray(raw)
        tensor = self._module.InferInput(INPUT_NAME, list(raw.shape), "INT64")
        tensor.set_data_from_numpy(raw)
        outputs = [self._module.InferRequestedOutput(OUTPUT_IDS), self._module.InferRequestedOutput(OUTPUT_SCORES)]
        if self.protocol == "grpc":
            result = self.client.infer(self.model_name, [tensor], outputs=outputs, client_timeout=self.timeout_s)
        else:
            result = self.client.infer(self.model_name, [tensor], outputs=outputs)
        return result.as_numpy(OUTPUT_IDS), result.as_numpy(OUTPUT_SCORES)

    def recommend_batch(self, sessions: Sequence[Sequence[int]], batch_size: int = 32) -> pd.DataFrame:
        """Return ``session, rank, item_id, score`` for every session (sent ``batch_size`` sessions a request)."""
        frames = []
        for start in range(0, len(sessions), batch_size):
            chunk = sessions[start:start + batch_size]
            ids, scores = self.infer_matrix(pad_raw_sessions(chunk))
            frames.append(to_frame(ids, scores, np.arange(start, start + len(chunk))))
        if not frames:
            return to_frame(np.empty((0, 0), np.int64), np.empty((0, 0), np.float32))
        return pd.concat(frames, ignore_index=True)

    def recommend(self, session: Sequence[int]) -> pd.DataFrame:
        """Return ``rank, item_id, score`` for one raw session (a list of raw item ids, oldest first)."""
        return self.recommend_batch([session]).drop(columns="session")

    def close(self) -> None:
        """Close the connection."""
        self.client.close()

    def __enter__(self) -> TritonRecommender:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
