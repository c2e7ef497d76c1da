"""Lesson 06 exercises: encode a raw session, decode a top-k, build a request, ask a server (numpy, tritonclient).

q4 needs no server: an in-process stand-in answers and refuses like the exported ensemble (``serving/transform.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from sessrec_course.exercises.core import Case, Exercise, like, same
from sessrec_course.ids import RAW_PAD
from sessrec_course.serving.transform import ServingState

INPUT_NAME, OUTPUT_IDS, OUTPUT_SCORES = "item_id_list", "item_id_topk", "score_topk"  # the ensemble's contract


def encode_session(raw_session, vocabulary, max_length):
    """Raw item ids (oldest first) -> the model's input row: encoded, last max_length kept, right-padded with 0."""
    encoded = [vocabulary.get(item, 1) for item in raw_session]  # an item unseen in training -> OOV (1)
    encoded = encoded[-max_length:]  # the most recent events say most about the next click
    return np.array(encoded + [0] * (max_length - len(encoded)), dtype=np.int64)  # right padding with 0


def decode_top_k(scores, raw_of_encoded, k):
    """Scores over encoded ids -> the raw ids of the k best real items (never padding or OOV), ties to the lower id."""
    scores = np.array(scores, dtype=np.float64)  # a copy: the caller's scores stay as they were
    scores[[0, 1]] = -np.inf  # padding (0) and OOV (1) are not products
    best = np.argsort(-scores, kind="stable")[:k]  # stable sort: equal scores keep the lower encoded id first
    return np.asarray(raw_of_encoded)[best]


def request_matrix(sessions):
    """A batch of raw sessions -> the ensemble's input: int64 (B, longest), right-padded with -1 (>= 1 column)."""
    width = max([len(session) for session in sessions] + [1])  # an empty session still sends one column
    matrix = np.full((len(sessions), width), -1, dtype=np.int64)  # -1, not 0: raw id 0 may be a real product
    for row, session in enumerate(sessions):
        matrix[row, :len(session)] = session
    return matrix


def recommend_new_session(client, session):
    """Ask the served ensemble (a tritonclient HTTP client) for the raw ids it recommends after one raw session."""
    import tritonclient.http as httpclient

    raw = np.full((1, max(len(session), 1)), -1, dtype=np.int64)  # a batch of one, padded with -1
    raw[0, :len(session)] = session
    tensor = httpclient.InferInput("item_id_list", list(raw.shape), "INT64")
    tensor.set_data_from_numpy(raw)
    result = client.infer("ensemble", [tensor])
    return result.as_numpy("item_id_topk")[0].tolist()  # row 0: our only session


def _int64_array(expected: Any, got: Any) -> bool:
    """The contract's arrays: a numpy int64 array equal to ``expected``."""
    return isinstance(got, np.ndarray) and got.dtype == np.int64 and same(expected, got)


def _not_int64(case: Case, expected: Any, got: Any) -> bool:
    return not (isinstance(got, np.ndarray) and got.dtype == np.int64)


_INT64 = "the contract is a numpy int64 array (INT64 on the server); a list or another dtype is refused"


def _encoded(raw_session, vocabulary, max_length, keep="last", left=False, unseen=1, drop=False, raw=False):
    ids = [item if raw else vocabulary.get(item, unseen) for item in raw_session if not drop or item in vocabulary]
    ids = ids[-max_length:] if keep == "last" else ids[:max_length]
    fill = [0] * (max_length - len(ids))
    return np.array(fill + ids if left else ids + fill, dtype=np.int64)


_VOCAB = {501: 2, 502: 3, 503: 4, 777: 5, 0: 6}  # raw id -> encoded id, as a fitted workflow holds it
q1 = Exercise(
    "encode a raw session for the model (the preprocess step)", encode_session,
    [Case("a short session", ([502, 501, 503], _VOCAB, 5)),
     Case("an item added after training", ([503, 999, 501], _VOCAB, 5),
          "an id missing from the vocabulary has an id of its own in the contract"),
     Case("raw id 0 is a real item", ([0, 777], _VOCAB, 4), "raw 0 is in the vocabulary like any other id"),
     Case("longer than max_length", ([501, 502, 503, 777, 502, 503], _VOCAB, 4),
          "training kept a fixed number of events of each long session: which ones?"),
     Case("an empty session", ([], _VOCAB, 3), "an empty session is a row of padding only")],
    hints=["Look every raw id up in the vocabulary, keep at most max_length events, pad the row up to max_length.",
           "Unseen items become 1 (OOV), padding is 0 on the right, a long session keeps its most recent events.",
           "The row is a numpy int64 array, as the model's input."],
    compare=_int64_array,
    mistakes={"your row keeps the OLDEST events of a long session; the model was trained on the most recent ones":
                  like(_encoded, keep="first"),
              "your padding is on the left; the model was trained on right-padded rows": like(_encoded, left=True),
              "an unseen item became 0, the padding id (no event at all); unseen items get the OOV id 1":
                  like(_encoded, unseen=0),
              "you dropped the unseen item; it still happened, so it stays, as the OOV id 1": like(_encoded, drop=True),
              "your row holds the raw ids; the model knows encoded ids only: look each one up in the vocabulary":
                  like(_encoded, raw=True),
              _INT64: _not_int64})


def _decoded(scores, raw_of_encoded, k, encoded=False, shift=0):
    scores = np.array(scores, dtype=np.float64)
    scores[[0, 1]] = -np.inf
    best = np.argsort(-scores[shift:], kind="stable")[:k]
    return best if encoded else np.asarray(raw_of_encoded)[best]


def _tie_misplaced(case: Case, expected: Any, got: Any) -> bool:
    """The answer's scores are the expected ones, position by position: only tied items are in another order."""
    scores, raw, k = case.args
    encoded = {int(r): e for e, r in enumerate(raw) if e >= 2}
    picked, wanted = ([encoded[int(r)] for r in np.ravel(ids)] for ids in (got, expected))
    return scores[picked].tolist() == scores[wanted].tolist()


def _catalogue(n: int) -> np.ndarray:
    return np.concatenate([[RAW_PAD, RAW_PAD], 1000 + np.arange(2, n)]).astype(np.int64)


q2 = Exercise(
    "decode a top-k back to raw ids (the postprocess step)", decode_top_k,
    [Case("padding and OOV score highest", (np.array([9.0, 8.0, 0.1, 0.5, 0.3, 0.9, 0.2, 0.4]), _catalogue(8), 3),
          "a model may score padding and OOV high; they are still not products"),
     Case("equal scores", (np.array([0.0, 0.0, 0.2, 0.7, 0.7, 0.1, 0.7, 0.0]), _catalogue(8), 4),
          "when two items score the same, which goes first?"),
     Case("k = 1", (np.array([0.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), _catalogue(8), 1)),
     Case("negative scores", (np.array([0.0, 0.0, -2.0, -0.5, -1.5, -3.0, -0.7, -0.9]), _catalogue(8), 3),
          "padding and OOV are left out, whatever the other scores are"),
     Case("5,000 items on 3 score levels", (np.random.default_rng(6).integers(0, 3, 5002) / 4, _catalogue(5002), 10),
          "thousands of equal scores are common: which ids go first?"),
     Case("integer scores (click counts)", (np.array([9, 9, 4, 7, 7, 1]), _catalogue(6), 2)),
     Case("scores apart in the 9th digit", (np.array([0.0, 0.0, 0.3, 0.3 + 1e-9, 0.1]), _catalogue(5), 1),
          "keep the scores as precise as they come")],
    hints=["Leave out encoded ids 0 (padding) and 1 (OOV), sort the rest by score, best first, keep k, and turn "
           "each encoded id into its raw id.",
           "Exclude 0 and 1 with a score no item can have, and keep the positions equal to encoded ids.",
           "Equal scores keep their id order only with a stable sort."],
    mistakes={"these are encoded ids; the shop knows raw ids only (raw_of_encoded)": like(_decoded, encoded=True),
              "your ids are off by two: after dropping columns 0 and 1, position p of the rest is encoded id p + 2":
                  like(_decoded, shift=2),
              "your list holds the raw id of padding or OOV (-1): they are no products, whatever their scores":
                  lambda case, expected, got: (np.asarray(got) == RAW_PAD).any(),
              "equal scores go to the lower encoded id first; a default (unstable) sort puts them in any order":
                  _tie_misplaced})


q3 = Exercise(
    "build the request arrays for a batch of sessions", request_matrix,
    [Case("sessions of different lengths", ([[7, 3, 9], [4]],), "a shorter session is filled up on the right"),
     Case("raw id 0 is a product", ([[0, 5], [0]],), "which value can never be a raw item id?"),
     Case("an empty session in the batch", ([[11, 12], []],), "an empty session is a row of padding"),
     Case("one empty session", ([[]],), "the server needs at least one column")],
    hints=["One int64 row per session, as wide as the longest one (at least 1): its events, then -1 as padding.",
           "A matrix full of -1 of the right shape, then each session written into its row."],
    compare=_int64_array,
    mistakes={_INT64: _not_int64,
              "the padding is 0, but 0 can be a real raw id: raw sessions are padded with -1":
                  lambda case, expected, got: (np.asarray(got)[expected == RAW_PAD] == 0).any(),
              "the shape is (sessions, longest session) with at least one column: an empty session is one -1":
                  lambda case, expected, got: np.shape(got)[1] == 0})


_ID = "[request id: <id_unknown>]"


class StandInClient:
    """An in-process stand-in of ``tritonclient.http.InferenceServerClient`` for the exported ensemble."""

    def __init__(self, state: ServingState, score: Callable[[np.ndarray], np.ndarray], k: int = 5) -> None:
        self.state, self.score, self.k = state, score, k

    def infer(self, model_name: str, inputs: Sequence[Any], outputs: Any = None, **_: Any) -> SimpleNamespace:
        """Refuse what Triton refuses, in its words, and a request without columns; else answer as the ensemble."""
        from tritonclient.utils import InferenceServerException

        named = {tensor.name(): tensor for tensor in inputs}
        tensor = named.get(INPUT_NAME)
        kind, shape = (tensor.datatype(), [int(d) for d in tensor.shape()]) if tensor is not None else ("", [])
        refused = next((why for wrong, why in [
            (model_name != "ensemble", f"Request for unknown model: '{model_name}' is not found"),
            (tensor is None or len(named) != 1, f"{_ID} expected 1 inputs but got {len(named)} inputs for model "
             f"'ensemble'. Got input(s) {sorted(named)}, but missing required input(s) ['{INPUT_NAME}']"),
            (kind != "INT64", f"{_ID} inference input '{INPUT_NAME}' data-type is '{kind}', but model 'ensemble' "
             "expects 'INT64'"),
            (len(shape) != 2, f"{_ID} unexpected shape for input '{INPUT_NAME}' for model 'ensemble'. Expected "
             f"[-1,-1], got {shape}. NOTE: Setting a non-zero max_batch_size in the model config requires a batch "
             "dimension to be prepended to each input shape."),
            (0 in shape, f"input '{INPUT_NAME}' of shape {shape} breaks the serving contract: at least one row and "
             "one column; an empty session is one row holding -1")] if wrong), None)  # Triton passes (1, 0) on
        if refused:
            raise InferenceServerException(refused)
        data = tensor._get_binary_data()
        raw = (np.frombuffer(data, np.int64) if data is not None else np.asarray(tensor._data, np.int64)).reshape(shape)
        encoded = self.state.encode(raw)
        ids, scores = self.state.top_k(self.score(encoded), encoded, self.k)
        return SimpleNamespace(as_numpy={OUTPUT_IDS: ids, OUTPUT_SCORES: scores}.get)  # None for an unknown name


def stand_in_client(k: int = 5) -> StandInClient:
    """A stand-in ensemble over 6 items: raw ids 0, 10, ..., 50; it recommends what follows the last known item."""
    raw_of_encoded = np.array([RAW_PAD, RAW_PAD, 0, 10, 20, 30, 40, 50], dtype=np.int64)
    state = ServingState(raw_of_encoded, max_length=4, popular=np.array([7, 6, 5, 4, 3, 2]),
                         popular_scores=np.array([0.3, 0.25, 0.2, 0.1, 0.1, 0.05]))
    successor = np.roll(np.eye(8, dtype=np.float32), 1, axis=1) + np.arange(8) / 80

    def score(encoded: np.ndarray) -> np.ndarray:
        return successor[[row[row >= 2][-1] if (row >= 2).any() else 0 for row in encoded]]  # after the last item

    return StandInClient(state, score, k)


def _ask(client, session, output=OUTPUT_IDS, empty=-1):
    import tritonclient.http as httpclient

    tensor = httpclient.InferInput(INPUT_NAME, [1, max(len(session), 1)], "INT64")
    tensor.set_data_from_numpy(np.array([list(session) or [empty]], dtype=np.int64))
    return client.infer("ensemble", [tensor]).as_numpy(output)[0].tolist()


q4 = Exercise(
    "a client call that recommends for a new session", recommend_new_session,
    lambda: [Case(label, (stand_in_client(), session), hint) for label, session, hint in [
        ("a session of known items", [10, 30], "send the session as a batch of one"),
        ("raw id 0 and an unseen item", [0, 12345], "raw ids go to the server as they are"),
        ("an empty session", [], "the contract: an empty session is one row of -1"),
        ("a long session", [0, 10, 20, 30, 40, 50, 0], "the server keeps the last events itself")]],
    hints=["Make the session a 2-D INT64 array of one row (an empty session: one -1), wrap it in an InferInput named "
           "'item_id_list', ask the model 'ensemble', and read the output 'item_id_topk'.",
           "InferInput needs the shape as a list and the data from numpy; the output is a (1, k) array.",
           "Return the raw ids of the only row, as a list."],
    mistakes={"you returned the scores: the raw ids are the output 'item_id_topk'": like(_ask, output=OUTPUT_SCORES),
              "an empty session is one -1: 0 is a real raw id (a click on item 0)": like(_ask, empty=0)})
