"""Lesson 06: learners' wrong answers, and the mutants of the references that are equivalent to them."""

from __future__ import annotations

import numpy as np
import tritonclient.http as httpclient

from exercise_mistakes import mistake
from sessrec_course.exercises import lesson06 as ex

_DEFAULT_INT = "numpy's default integer is int64 (numpy 2, every platform)"
_UNKNOWN = "the server maps an unknown raw id to OOV, and a session of OOV only gets the popular items, as an empty one"
EQUIVALENT = {
    "lesson06.q1": {"return np.array(encoded + [0] * (max_length - len(encoded)))": _DEFAULT_INT},
    "lesson06.q3": {"matrix = np.full((len(sessions), width), -1)": _DEFAULT_INT},
    "lesson06.q4": {
        "raw = np.full((1, max(len(session), 1)), -1)": _DEFAULT_INT,
        "raw = np.full((1, max(len(session), 1)), 1, dtype=np.int64)": _UNKNOWN,
        "raw = np.full((1, max(len(session), 1)), -2, dtype=np.int64)": _UNKNOWN,
        "raw = np.full((2, max(len(session), 1)), -1, dtype=np.int64)":
            "the second row is an empty session; row 0 still answers this one",
        "raw[-1, :len(session)] = session": "a batch of one: row -1 is row 0",
        "return result.as_numpy('item_id_topk')[-1].tolist()": "a batch of one: row -1 is row 0",
        "raw = np.full((1, max(len(session), 2)), -1, dtype=np.int64)": "an extra column of -1 is padding",
    },
}


# ---- q1: encode ----------------------------------------------------------------------------------------------------
def _pad(ids, max_length, left=False):
    fill = [0] * (max_length - len(ids))
    return np.array(fill + ids if left else ids + fill, dtype=np.int64)


@mistake("lesson06.q1", "OLDEST")
def keeps_the_oldest(raw_session, vocabulary, max_length):
    return _pad([vocabulary.get(i, 1) for i in raw_session][:max_length], max_length)


@mistake("lesson06.q1", "padding is on the left")
def pads_on_the_left(raw_session, vocabulary, max_length):
    return _pad([vocabulary.get(i, 1) for i in raw_session][-max_length:], max_length, left=True)


@mistake("lesson06.q1", "the padding id")
def unseen_becomes_padding(raw_session, vocabulary, max_length):
    return _pad([vocabulary.get(i, 0) for i in raw_session][-max_length:], max_length)


@mistake("lesson06.q1", "dropped the unseen item")
def drops_unseen(raw_session, vocabulary, max_length):
    return _pad([vocabulary[i] for i in raw_session if i in vocabulary][-max_length:], max_length)


@mistake("lesson06.q1", "holds the raw ids")
def returns_raw_ids(raw_session, vocabulary, max_length):
    return _pad(list(raw_session)[-max_length:], max_length)


@mistake("lesson06.q1", "int64")
def int32_row(raw_session, vocabulary, max_length):
    row = np.zeros(max_length, dtype=np.int32)
    ids = [vocabulary.get(i, 1) for i in raw_session][-max_length:]
    row[:len(ids)] = ids
    return row


@mistake("lesson06.q1", "int64")
def a_list(raw_session, vocabulary, max_length):
    ids = [vocabulary.get(i, 1) for i in raw_session][-max_length:]
    return ids + [0] * (max_length - len(ids))


# ---- q2: decode ----------------------------------------------------------------------------------------------------
@mistake("lesson06.q2", "unstable")
def default_argsort(scores, raw_of_encoded, k):
    s = np.array(scores, dtype=float)
    s[:2] = -np.inf
    return raw_of_encoded[np.argsort(-s)[:k]]


@mistake("lesson06.q2", "(-1)")
def pad_and_oov_set_to_zero(scores, raw_of_encoded, k):
    s = np.array(scores, dtype=float)
    s[0] = s[1] = 0.0  # "removes" them, unless every real item scores below 0
    return raw_of_encoded[np.argsort(-s, kind="stable")[:k]]


@mistake("lesson06.q2", "encoded ids")
def returns_encoded_ids(scores, raw_of_encoded, k):
    s = np.array(scores, dtype=float)
    s[[0, 1]] = -np.inf
    return np.argsort(-s, kind="stable")[:k]


@mistake("lesson06.q2", "(-1)")
def recommends_padding(scores, raw_of_encoded, k):
    return raw_of_encoded[np.argsort(-np.asarray(scores), kind="stable")[:k]]


@mistake("lesson06.q2", "off by two")
def forgets_the_offset(scores, raw_of_encoded, k):
    return raw_of_encoded[np.argsort(-np.asarray(scores)[2:], kind="stable")[:k]]


@mistake("lesson06.q2", "lower encoded id first")
def ties_to_the_higher_id(scores, raw_of_encoded, k):
    s = np.array(scores, dtype=float)
    s[[0, 1]] = -np.inf
    return raw_of_encoded[np.argsort(s, kind="stable")[::-1][:k]]


@mistake("lesson06.q2")
def worst_first(scores, raw_of_encoded, k):
    order = [e for e in np.argsort(scores, kind="stable") if e >= 2]
    return raw_of_encoded[order[:k]]


# ---- q3: request ---------------------------------------------------------------------------------------------------
@mistake("lesson06.q3", "padded with -1")
def pads_with_zero(sessions):
    width = max([len(s) for s in sessions] + [1])
    return np.array([list(s) + [0] * (width - len(s)) for s in sessions], dtype=np.int64)


@mistake("lesson06.q3", "INT64")
def float_matrix(sessions):
    return ex.request_matrix(sessions).astype(np.float32)


@mistake("lesson06.q3", "INT64")
def int32_matrix(sessions):
    width = max(max(len(s) for s in sessions), 1)
    return np.array([list(s) + [-1] * (width - len(s)) for s in sessions], dtype=np.int32)


@mistake("lesson06.q3", "at least one column")
def no_column_for_empty(sessions):
    width = max(len(s) for s in sessions)
    return np.array([list(s) + [-1] * (width - len(s)) for s in sessions], dtype=np.int64).reshape(len(sessions),
                                                                                                 width)


@mistake("lesson06.q3", "INT64")
def nested_list(sessions):
    return ex.request_matrix(sessions).tolist()


@mistake("lesson06.q3")
def left_padding(sessions):
    width = max([len(s) for s in sessions] + [1])
    return np.array([[-1] * (width - len(s)) + list(s) for s in sessions], dtype=np.int64)


# ---- q4: the client call -------------------------------------------------------------------------------------------
def _send(client, raw, datatype="INT64", output="item_id_topk"):
    tensor = httpclient.InferInput("item_id_list", list(raw.shape), datatype)
    tensor.set_data_from_numpy(raw)
    return client.infer("ensemble", [tensor]).as_numpy(output)


@mistake("lesson06.q4", "Expected [-1,-1], got [2]")
def no_batch_dimension(client, session):
    return _send(client, np.array(list(session) or [-1], dtype=np.int64))[0].tolist()


@mistake("lesson06.q4", "expects 'INT64'")
def sends_int32(client, session):
    return _send(client, np.array([list(session) or [-1]], dtype=np.int32), "INT32")[0].tolist()


@mistake("lesson06.q4", "returned the scores")
def returns_the_scores(client, session):
    return _send(client, np.array([list(session) or [-1]], dtype=np.int64), output="score_topk")[0].tolist()


@mistake("lesson06.q4", "a real raw id")
def empty_session_as_zero(client, session):
    return _send(client, np.array([list(session) or [0]], dtype=np.int64))[0].tolist()


@mistake("lesson06.q4", "breaks the serving contract")
def empty_session_without_columns(client, session):
    return _send(client, np.array([session], dtype=np.int64).reshape(1, len(session)))[0].tolist()


@mistake("lesson06.q4")
def whole_batch(client, session):
    return _send(client, np.array([list(session) or [-1]], dtype=np.int64)).tolist()
