"""Ask the served ensemble for recommendations over HTTP or gRPC (tritonclient), raw ids in and out."""

from __future__ import annotations

import importlib
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np
import pandas as pd

from sessrec_course.ids import RAW_PAD
from sessrec_course.serving.repository import ENSEMBLE, INPUT_NAME, OUTPUT_IDS, OUTPUT_SCORES

T = TypeVar("T")

# "cannot serve now, may soon" (a model reloading, a dead stub, a full queue, a server starting or gone)
UNAVAILABLE_STATUS = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "503")
UNAVAILABLE_MESSAGES = ("is not healthy", "has no available versions", "exceeds maximum queue size",
                        "request timeout expired", "failed to connect", "connection refused", "socket closed",
                        "is not ready")


class ServingUnavailable(RuntimeError):
    """The server could not serve the request before the retry deadline (its last error is ``__cause__``)."""


def is_unavailable(error: BaseException) -> bool:
    """True when ``error`` means "the server cannot serve this now, retry"; False for a bad request."""
    if isinstance(error, ServingUnavailable | ConnectionError | TimeoutError):
        return True
    status = getattr(error, "status", None)
    status = str(status() if callable(status) else status or "")
    if "INVALID_ARGUMENT" in status or status == "400":
        return False
    message = str(error).lower()
    return any(code in status for code in UNAVAILABLE_STATUS) or any(m in message for m in UNAVAILABLE_MESSAGES)


def call_with_retry(call: Callable[[float], T], deadline_s: float, backoff_s: float = 0.05) -> T:
    """Return ``call(seconds left)``, retried on "unavailable" errors with jittered backoff for ``deadline_s``."""
    deadline, attempt = time.monotonic() + deadline_s, 0
    while True:
        try:
            return call(max(deadline - time.monotonic(), 0.001))
        except Exception as error:
            if not is_unavailable(error):
                raise
            pause = random.uniform(0, min(1.0, backoff_s * 2 ** attempt))  # jitter spreads clients; 1 s at most
            attempt += 1
            if time.monotonic() + pause >= deadline:
                raise ServingUnavailable(f"the server stayed unavailable for {deadline_s:.1f} s "
                                         f"({attempt} attempts): {error}") from error
            time.sleep(pause)


def pad_raw_sessions(sessions: Iterable[Sequence[int]]) -> np.ndarray:
    """Return raw sessions (ids ``>= 0``) as a right-padded int64 matrix (padding -1, at least one column)."""
    rows = [np.asarray(list(s), dtype=np.int64) for s in sessions]
    matrix = np.full((len(rows), max([row.size for row in rows] + [1])), RAW_PAD, dtype=np.int64)
    for index, row in enumerate(rows):
        if row.size and row.min() < 0:
            raise ValueError(f"session {index}: raw item ids must be >= 0 (-1 is padding), got {row.min()}")
        matrix[index, :row.size] = row
    return matrix


def to_frame(item_ids: np.ndarray, scores: np.ndarray, session_index: Sequence | None = None) -> pd.DataFrame:
    """Return a long DataFrame ``session, rank, item_id, score`` from (B, k) ids and scores."""
    n_rows, k = item_ids.shape
    sessions = np.asarray(session_index if session_index is not None else np.arange(n_rows))
    return pd.DataFrame({"session": np.repeat(sessions, k), "rank": np.tile(np.arange(1, k + 1), n_rows),
                         "item_id": item_ids.reshape(-1).astype(np.int64), "score": scores.reshape(-1).astype(np.float32)})


def frame_in_batches(sessions: Sequence[Sequence[int]], batch_size: int,
                     top_k: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """Return ``session, rank, item_id, score`` from ``top_k(padded raw matrix)`` of ``batch_size`` sessions a time."""
    frames = [to_frame(*top_k(pad_raw_sessions(sessions[start:start + batch_size])),
                       np.arange(start, min(start + batch_size, len(sessions))))
              for start in range(0, len(sessions), batch_size)]
    return pd.concat(frames or [to_frame(np.empty((0, 0)), np.empty((0, 0)))], ignore_index=True)


# a restarted local server is found again within a second (gRPC's default backoff grows to minutes)
GRPC_RECONNECT = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                  ("grpc.max_reconnect_backoff_ms", 1000), ("grpc.max_send_message_length", 2**31 - 1),
                  ("grpc.max_receive_message_length", 2**31 - 1)]


class TritonRecommender:
    """A client of the ensemble at ``url``: each call waits at most ``timeout_s``; "unavailable" answers are retried
    with backoff for ``retry_deadline_s`` (0: never), then :class:`ServingUnavailable`; a bad request fails at once."""

    def __init__(self, url: str, protocol: str = "grpc", model_name: str = ENSEMBLE, timeout_s: float = 30.0,
                 retry_deadline_s: float = 10.0):
        if protocol not in ("http", "grpc"):
            raise ValueError(f"protocol must be 'http' or 'grpc', got {protocol!r}")
        self.protocol, self.model_name = protocol, model_name
        self.timeout_s, self.retry_deadline_s = timeout_s, retry_deadline_s
        self._module = importlib.import_module(f"tritonclient.{protocol}")
        options = ({"connection_timeout": timeout_s, "network_timeout": timeout_s} if protocol == "http" else
                   {"channel_args": GRPC_RECONNECT})
        self.client = self._module.InferenceServerClient(url, **options)

    def infer_matrix(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Send a padded raw matrix (B, L) and return top-k raw ids (B, k) and scores (B, k)."""
        raw = np.ascontiguousarray(raw)
        tensor = self._module.InferInput(INPUT_NAME, list(raw.shape), "INT64")
        tensor.set_data_from_numpy(raw)
        outputs = [self._module.InferRequestedOutput(OUTPUT_IDS), self._module.InferRequestedOutput(OUTPUT_SCORES)]

        def once(seconds_left: float):  # tritonclient.http takes its timeouts at construction
            timeout = {"client_timeout": min(self.timeout_s, seconds_left)} if self.protocol == "grpc" else {}
            return self.client.infer(self.model_name, [tensor], outputs=outputs, **timeout)

        result = call_with_retry(once, self.retry_deadline_s) if self.retry_deadline_s > 0 else once(self.timeout_s)
        return result.as_numpy(OUTPUT_IDS), result.as_numpy(OUTPUT_SCORES)

    def recommend_batch(self, sessions: Sequence[Sequence[int]], batch_size: int = 32) -> pd.DataFrame:
        """Return ``session, rank, item_id, score`` for every session (sent ``batch_size`` sessions a request)."""
        return frame_in_batches(sessions, batch_size, self.infer_matrix)

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
