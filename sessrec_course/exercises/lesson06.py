"""Lesson 06 exercises: encode a raw session, decode a top-k, build a request, ask a server (numpy, tritonclient).

No exercise needs a running server: q4's checks hand the learner's function an in-process stand-in client that
answers like the exported ensemble (same preprocessing and top-k code, ``serving/transform.py``, around a small
scorer) and refuses a malformed request the way Triton does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sessrec_course.exercises.core import Case, Exercise, same
from sessrec_course.ids import OOV_ID, PAD_ID, RAW_PAD
from sessrec_course.serving.transform import ServingState

INPUT_NAME, OUTPUT_IDS, OUTPUT_SCORES = "item_id_list", "item_id_topk", "score_topk"  # the ensemble's contract


# q1: the preprocess step --------------------------------------------------------------------------------------

def encode_session(raw_session, vocabulary, max_length):
    """Raw item ids (oldest first) -> the model's input row: encoded, last max_length kept, right-padded with 0."""
    encoded = [vocabulary.get(item, 1) for item in raw_session]  # an item unseen in training -> OOV (1)
    encoded = encoded[-max_length:]  # the most recent events say most about the next click
    return np.array(encoded + [0] * (max_length - len(encoded)), dtype=np.int64)  # right padding with 0


_VOCAB = {501: 2, 502: 3, 503: 4, 777: 5, 0: 6}  # raw id -> encoded id, as a fitted workflow holds it


def _encode_variants(raw_session, vocabulary, max_length) -> dict[str, np.ndarray]:
    """The usual wrong encodings of a case, to name the mistake behind a wrong answer."""
    def pad(ids, left=False):
        fill = [PAD_ID] * (max_length - len(ids))
        return np.array(fill + ids if left else ids + fill, dtype=np.int64)

    ids = [vocabulary.get(item, OOV_ID) for item in raw_session]
    return {
        "oldest": pad(ids[:max_length]),
        "left": pad(ids[-max_length:], left=True),
        "unseen0": pad([vocabulary.get(item, PAD_ID) for item in raw_session][-max_length:]),
        "dropped": pad([vocabulary[item] for item in raw_session if item in vocabulary][-max_length:]),
        "raw": pad(list(raw_session)[-max_length:]),
    }


_ENCODE_HINTS = {
    "oldest": "your row keeps the OLDEST events of an over-long session; the model was trained on the last "
              "max_length events (the recent clicks), keep those.",
    "left": "your padding is on the left; the model was trained on right-padded rows (events first, then 0s).",
    "unseen0": "an unseen item became 0, the padding id, so the model treats it as no event at all; unseen items "
               "get the OOV id 1.",
    "raw": "your row holds the raw ids; the model knows encoded ids only: look each raw id up in `vocabulary`.",
    "dropped": "you dropped the unseen item; it still happened, so it keeps its place in the session as the OOV id 1.",
}


def _diagnose_encode(case: Case, expected: Any, got: Any) -> str | None:
    for name, wrong in _encode_variants(*case.args).items():
        if not same(expected, wrong) and same(wrong, got):
            return _ENCODE_HINTS[name]
    return None


q1 = Exercise(
    "encode a raw session for the model (the preprocess step)", encode_session,
    [Case("a short session", ([502, 501, 503], _VOCAB, 5), hint="each raw id becomes its encoded id, then padding"),
     Case("an item added after training", ([503, 999, 501], _VOCAB, 5),
          hint="an id missing from the vocabulary has an id of its own in the contract"),
     Case("raw id 0 is a real item", ([0, 777], _VOCAB, 4), hint="raw 0 is in the vocabulary like any other id"),
     Case("longer than max_length", ([501, 502, 503, 777, 502, 503], _VOCAB, 4),
          hint="training kept a fixed number of events of each long session: which ones?"),
     Case("an empty session", ([], _VOCAB, 3), hint="an empty session is a row of padding only")],
    hints=["Map every raw id through `vocabulary` (with a default for unseen ids), keep at most `max_length` "
           "events, and fill the row up to `max_length` with the padding id.",
           "Unseen items become 1 (OOV), padding is 0 and goes on the right, and a long session keeps its most "
           "recent events: `dict.get(key, default)` and a negative slice do most of the work."],
    diagnose=_diagnose_encode)


# q2: the postprocess step -------------------------------------------------------------------------------------

def decode_top_k(scores, raw_of_encoded, k):
    """Scores over encoded ids -> the raw ids of the k best real items (never padding or OOV), ties to the lower id."""
    scores = np.array(scores, dtype=np.float64)  # a copy: the caller's scores stay as they were
    scores[[0, 1]] = -np.inf  # padding (0) and OOV (1) are not products
    best = np.argsort(-scores, kind="stable")[:k]  # stable sort: equal scores keep the lower encoded id first
    return np.asarray(raw_of_encoded)[best]


_RAW_OF_ENCODED = np.array([-1, -1, 1002, 1003, 1004, 1005, 1006, 1007], dtype=np.int64)  # entries 0, 1 unused


def _decode_variants(scores, raw_of_encoded, k) -> dict[str, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    masked = scores.copy()
    masked[[0, 1]] = -np.inf
    best = np.argsort(-masked, kind="stable")[:k]
    return {"encoded": best, "unmasked": raw_of_encoded[np.argsort(-scores, kind="stable")[:k]],
            "shifted": raw_of_encoded[np.argsort(-scores[2:], kind="stable")[:k]],
            "ties": raw_of_encoded[np.argsort(masked, kind="stable")[::-1][:k]]}


_DECODE_HINTS = {
    "encoded": "these are encoded ids; the shop knows raw ids only: look each one up in `raw_of_encoded`.",
    "unmasked": "your list holds the raw id of padding or OOV (-1): entries 0 and 1 are no products, so they "
                "may never be recommended, whatever the model scored them.",
    "shifted": "your ids are off by two: after dropping columns 0 and 1, position p of what is left is "
               "encoded id p + 2.",
    "ties": "equal scores must go to the lower encoded id first (the course's one tie rule), yours go to the higher.",
}


def _diagnose_decode(case: Case, expected: Any, got: Any) -> str | None:
    for name, wrong in _decode_variants(*case.args).items():
        if not same(expected, wrong) and same(wrong, got):
            return _DECODE_HINTS[name]
    return None


q2 = Exercise(
    "decode a top-k back to raw ids (the postprocess step)", decode_top_k,
    [Case("padding and OOV score highest", (np.array([9.0, 8.0, 0.1, 0.5, 0.3, 0.9, 0.2, 0.4]), _RAW_OF_ENCODED, 3),
          hint="a model may score padding and OOV high; they are still not products"),
     Case("equal scores", (np.array([0.0, 0.0, 0.2, 0.7, 0.7, 0.1, 0.7, 0.0]), _RAW_OF_ENCODED, 4),
          hint="when two items score the same, which goes first?"),
     Case("k = 1", (np.array([0.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), _RAW_OF_ENCODED, 1),
          hint="the answer is raw ids, best first")],
    hints=["Leave out encoded ids 0 (padding) and 1 (OOV), sort the rest by score, best first, keep `k`, and "
           "turn each encoded id into its raw id.",
           "Setting the scores of 0 and 1 to -inf keeps the indices equal to encoded ids; a stable sort of the "
           "negated scores puts equal scores in id order; `raw_of_encoded[ids]` decodes."],
    diagnose=_diagnose_decode)


# q3: the request a client sends -------------------------------------------------------------------------------

def request_matrix(sessions):
    """A batch of raw sessions -> the ensemble's input: int64 (B, longest), right-padded with -1 (>= 1 column)."""
    width = max([len(session) for session in sessions] + [1])  # an empty session still sends one column
    matrix = np.full((len(sessions), width), -1, dtype=np.int64)  # -1, not 0: raw id 0 may be a real product
    for row, session in enumerate(sessions):
        matrix[row, :len(session)] = session
    return matrix


def _same_request(expected: np.ndarray, got: Any) -> bool:
    return isinstance(got, np.ndarray) and got.dtype == np.int64 and same(expected, got)


def _diagnose_request(case: Case, expected: np.ndarray, got: Any) -> str | None:
    if not isinstance(got, np.ndarray):
        return f"return a numpy array (tritonclient sends numpy arrays), not a {type(got).__name__}."
    if got.dtype != np.int64:
        return f"the ensemble's input is INT64; your array is {got.dtype}, which the server refuses."
    if got.shape != expected.shape:
        return (f"the shape is (sessions, longest session) with at least one column; yours is {got.shape}, "
                f"expected {expected.shape}.")
    if (got[expected == RAW_PAD] == 0).any():
        return "the padding is 0, but 0 can be a real raw id: raw sessions are padded with -1."
    return None


q3 = Exercise(
    "build the request arrays for a batch of sessions", request_matrix,
    [Case("sessions of different lengths", ([[7, 3, 9], [4]],), hint="a shorter session is filled up on the right"),
     Case("raw id 0 is a product", ([[0, 5], [0]],), hint="which value can never be a raw item id?"),
     Case("an empty session in the batch", ([[11, 12], []],), hint="an empty session is a row of padding"),
     Case("one empty session", ([[]],), hint="the server needs at least one column")],
    hints=["One row per session, as wide as the longest session (at least 1), int64, events first and the "
           "padding value -1 after them.",
           "`np.full((rows, width), -1, dtype=np.int64)` and a slice assignment per row; never pad with 0."],
    compare=_same_request, diagnose=_diagnose_request)


# q4: a client call -------------------------------------------------------------------------------------------

def recommend_new_session(client, session):
    """Ask the served ensemble (a tritonclient HTTP client) for the raw ids it recommends after one raw session."""
    import tritonclient.http as httpclient

    raw = np.full((1, max(len(session), 1)), -1, dtype=np.int64)  # a batch of one, padded with -1
    raw[0, :len(session)] = session
    tensor = httpclient.InferInput("item_id_list", list(raw.shape), "INT64")
    tensor.set_data_from_numpy(raw)
    result = client.infer("ensemble", [tensor])
    return result.as_numpy("item_id_topk")[0].tolist()  # row 0: our only session


class _StandInResult:
    """What ``client.infer`` returns: ``as_numpy(name)`` of an output, None for a name the model lacks."""

    def __init__(self, outputs: dict[str, np.ndarray]) -> None:
        self._outputs = outputs

    def as_numpy(self, name: str) -> np.ndarray | None:
        return self._outputs.get(name)


class StandInClient:
    """An in-process stand-in of ``tritonclient.http.InferenceServerClient`` for the exported ensemble.

    It checks a request as Triton checks the ensemble's config (model name, input name, INT64, 2-D
    ``(batch, events)``) and answers with the served pipeline's code: ``ServingState.encode``, a scorer, ``top_k``.
    """

    def __init__(self, state: ServingState, score: Callable[[np.ndarray], np.ndarray], k: int = 5) -> None:
        self.state, self.score, self.k = state, score, k

    def infer(self, model_name: str, inputs: Sequence[Any], outputs: Any = None, **_: Any) -> _StandInResult:
        from tritonclient.utils import InferenceServerException, triton_to_np_dtype

        if model_name != "ensemble":
            raise InferenceServerException(f"Request for unknown model: '{model_name}' is not found")
        named = {tensor.name(): tensor for tensor in inputs}
        if INPUT_NAME not in named or len(named) != 1:
            raise InferenceServerException(f"[request id: <id_unknown>] expected 1 inputs but got {len(named)} "
                                           f"inputs for model 'ensemble'. Got input(s) {sorted(named)}, but "
                                           f"missing required input(s) ['{INPUT_NAME}']")
        tensor = named[INPUT_NAME]
        if tensor.datatype() != "INT64":
            raise InferenceServerException(f"[request id: <id_unknown>] inference input '{INPUT_NAME}' data-type "
                                           f"is '{tensor.datatype()}', but model 'ensemble' expects 'INT64'")
        shape = [int(d) for d in tensor.shape()]
        if len(shape) != 2:
            raise InferenceServerException(f"[request id: <id_unknown>] unexpected shape for input '{INPUT_NAME}' "
                                           f"for model 'ensemble'. Expected [-1,-1], got {shape}. NOTE: Setting a "
                                           "non-zero max_batch_size in the model config requires a batch "
                                           "dimension to be prepended to each input shape.")
        data = tensor._get_binary_data()
        raw = (np.frombuffer(data, dtype=triton_to_np_dtype("INT64")) if data is not None
               else np.asarray(tensor._data, dtype=np.int64)).reshape(shape)
        encoded = self.state.encode(raw)
        ids, scores = self.state.top_k(self.score(encoded), encoded, self.k)
        return _StandInResult({OUTPUT_IDS: ids, OUTPUT_SCORES: scores})


def stand_in_client(k: int = 5) -> StandInClient:
    """A stand-in ensemble over 6 items: raw ids 0, 10, ..., 50; it recommends what follows the last known item."""
    raw_of_encoded = np.array([RAW_PAD, RAW_PAD, 0, 10, 20, 30, 40, 50], dtype=np.int64)
    state = ServingState(raw_of_encoded, max_length=4, popular=np.array([7, 6, 5, 4, 3, 2]),
                         popular_scores=np.array([0.3, 0.25, 0.2, 0.1, 0.1, 0.05]))
    n_items = raw_of_encoded.size
    successor = np.roll(np.eye(n_items, dtype=np.float32), 1, axis=1) + np.arange(n_items) / (10 * n_items)

    def score(encoded: np.ndarray) -> np.ndarray:
        last = [row[row >= 2][-1] if (row >= 2).any() else 0 for row in encoded]  # last known item, 0 if none
        return successor[last]

    return StandInClient(state, score, k)


def _q4_cases() -> list[Case]:
    client = stand_in_client()
    return [Case("a session of known items", (client, [10, 30]), hint="send the session as a batch of one"),
            Case("raw id 0 and an unseen item", (client, [0, 12345]), hint="raw ids go to the server as they are"),
            Case("an empty session", (client, []), hint="the contract: an empty session is one row of -1"),
            Case("a long session", (client, [0, 10, 20, 30, 40, 50, 0]),
                 hint="a long session goes to the server as it is: the server keeps its last events")]


q4 = Exercise(
    "a client call that recommends for a new session", recommend_new_session, _q4_cases,
    hints=["Make the session a 2-D INT64 array of one row (an empty session: one -1), wrap it in "
           "`tritonclient.http.InferInput('item_id_list', shape, 'INT64')`, call `client.infer('ensemble', [...])` "
           "and read the output `item_id_topk`.",
           "`InferInput` needs the shape as a list, `set_data_from_numpy` the array; `as_numpy(...)` gives a "
           "(1, k) array: return its first row as a list of raw ids."])
