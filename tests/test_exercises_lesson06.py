"""Lesson 06 exercises: each check passes the reference and fails the stub and the typical wrong answers."""

from __future__ import annotations

import numpy as np
import pytest

from sessrec_course.exercises import lesson06 as ex


def _fails(exercise, fn, case: str, *hint_words: str) -> str:
    outcome = exercise.check(fn)
    assert not outcome, f"{fn.__name__} should fail"
    assert outcome.case == case, outcome.message
    for word in hint_words:
        assert word in outcome.message, outcome.message
    return outcome.message


@pytest.mark.parametrize(("exercise", "reference"), [
    (ex.q1, ex.encode_session), (ex.q2, ex.decode_top_k), (ex.q3, ex.request_matrix),
    (ex.q4, ex.recommend_new_session)])
def test_reference_passes_and_untouched_stub_is_not_yet(exercise, reference):
    assert exercise.check(reference), exercise.check(reference).message

    def stub(*args):
        raise NotImplementedError  # your code here

    assert exercise.check(stub).message.startswith("not yet")
    assert exercise.function_name == reference.__name__


# q1: encode ---------------------------------------------------------------------------------------------------

def _pad(ids, max_length, left=False):
    fill = [0] * (max_length - len(ids))
    return np.array(fill + ids if left else ids + fill, dtype=np.int64)


def keeps_the_oldest(raw_session, vocabulary, max_length):
    return _pad([vocabulary.get(i, 1) for i in raw_session][:max_length], max_length)


def pads_on_the_left(raw_session, vocabulary, max_length):
    return _pad([vocabulary.get(i, 1) for i in raw_session][-max_length:], max_length, left=True)


def unseen_becomes_padding(raw_session, vocabulary, max_length):
    return _pad([vocabulary.get(i, 0) for i in raw_session][-max_length:], max_length)


def drops_unseen(raw_session, vocabulary, max_length):
    return _pad([vocabulary[i] for i in raw_session if i in vocabulary][-max_length:], max_length)


def returns_raw_ids(raw_session, vocabulary, max_length):
    return _pad(list(raw_session)[-max_length:], max_length)


def test_encode_names_each_typical_mistake():
    _fails(ex.q1, pads_on_the_left, "a short session", "expected [3 2 4 0 0], got [0 0 3 2 4]", "padding is on the left")
    _fails(ex.q1, unseen_becomes_padding, "an item added after training", "OOV id 1", "padding id")
    _fails(ex.q1, drops_unseen, "an item added after training", "dropped the unseen item")
    _fails(ex.q1, keeps_the_oldest, "longer than max_length", "OLDEST events")
    _fails(ex.q1, returns_raw_ids, "a short session", "got [502 501 503   0   0]", "encoded ids only")


# q2: decode ---------------------------------------------------------------------------------------------------

def returns_encoded_ids(scores, raw_of_encoded, k):
    s = np.array(scores, dtype=float)
    s[[0, 1]] = -np.inf
    return np.argsort(-s, kind="stable")[:k]


def recommends_padding(scores, raw_of_encoded, k):
    return raw_of_encoded[np.argsort(-np.asarray(scores), kind="stable")[:k]]


def forgets_the_offset(scores, raw_of_encoded, k):
    return raw_of_encoded[np.argsort(-np.asarray(scores)[2:], kind="stable")[:k]]


def ties_to_the_higher_id(scores, raw_of_encoded, k):
    s = np.array(scores, dtype=float)
    s[[0, 1]] = -np.inf
    return raw_of_encoded[np.argsort(s, kind="stable")[::-1][:k]]


def test_decode_names_each_typical_mistake():
    _fails(ex.q2, recommends_padding, "padding and OOV score highest", "got [  -1   -1 1005]", "never be recommended")
    _fails(ex.q2, returns_encoded_ids, "padding and OOV score highest", "encoded ids", "raw_of_encoded")
    _fails(ex.q2, forgets_the_offset, "padding and OOV score highest", "off by two")
    _fails(ex.q2, ties_to_the_higher_id, "equal scores", "lower encoded id first")


def test_decode_leaves_the_callers_scores_alone():
    scores = np.array([9.0, 8.0, 0.1, 0.5, 0.3, 0.9, 0.2, 0.4])
    ex.decode_top_k(scores, ex._RAW_OF_ENCODED, 2)
    assert scores[0] == 9.0 and scores[1] == 8.0


# q3: request matrix -------------------------------------------------------------------------------------------

def pads_with_zero(sessions):
    width = max([len(s) for s in sessions] + [1])
    return np.array([list(s) + [0] * (width - len(s)) for s in sessions], dtype=np.int64)


def float_matrix(sessions):
    return ex.request_matrix(sessions).astype(np.float32)


def int32_matrix(sessions):
    return ex.request_matrix(sessions).astype(np.int32)


def no_column_for_empty(sessions):
    width = max(len(s) for s in sessions)
    return np.array([list(s) + [-1] * (width - len(s)) for s in sessions], dtype=np.int64).reshape(len(sessions),
                                                                                                 width)


def nested_list(sessions):
    return ex.request_matrix(sessions).tolist()


def test_request_names_each_typical_mistake():
    _fails(ex.q3, pads_with_zero, "sessions of different lengths", "padded with -1")
    _fails(ex.q3, float_matrix, "sessions of different lengths", "INT64", "float32")
    _fails(ex.q3, int32_matrix, "sessions of different lengths", "int32")
    _fails(ex.q3, no_column_for_empty, "one empty session", "at least one column", "(1, 0)")
    _fails(ex.q3, nested_list, "sessions of different lengths", "not a list")


# q4: client call ----------------------------------------------------------------------------------------------

def no_batch_dimension(client, session):
    import tritonclient.http as httpclient

    raw = np.array(list(session) or [-1], dtype=np.int64)
    tensor = httpclient.InferInput("item_id_list", list(raw.shape), "INT64")
    tensor.set_data_from_numpy(raw)
    return client.infer("ensemble", [tensor]).as_numpy("item_id_topk")[0].tolist()


def sends_int32(client, session):
    import tritonclient.http as httpclient

    raw = np.array([list(session) or [-1]], dtype=np.int32)
    tensor = httpclient.InferInput("item_id_list", list(raw.shape), "INT32")
    tensor.set_data_from_numpy(raw)
    return client.infer("ensemble", [tensor]).as_numpy("item_id_topk")[0].tolist()


def returns_the_scores(client, session):
    import tritonclient.http as httpclient

    raw = np.array([list(session) or [-1]], dtype=np.int64)
    tensor = httpclient.InferInput("item_id_list", list(raw.shape), "INT64")
    tensor.set_data_from_numpy(raw)
    return client.infer("ensemble", [tensor]).as_numpy("score_topk")[0].tolist()


def empty_session_as_zero(client, session):
    import tritonclient.http as httpclient

    raw = np.array([list(session) or [0]], dtype=np.int64)  # 0 is a real raw id, not "nothing"
    tensor = httpclient.InferInput("item_id_list", list(raw.shape), "INT64")
    tensor.set_data_from_numpy(raw)
    return client.infer("ensemble", [tensor]).as_numpy("item_id_topk")[0].tolist()


def test_client_call_names_each_typical_mistake():
    _fails(ex.q4, no_batch_dimension, "a session of known items", "Expected [-1,-1], got [2]", "batch of one")
    _fails(ex.q4, sends_int32, "a session of known items", "expects 'INT64'")
    _fails(ex.q4, returns_the_scores, "a session of known items", "expected [40, 50", "Hint:")
    _fails(ex.q4, empty_session_as_zero, "an empty session", "one row of -1")


def test_stand_in_answers_like_the_served_pipeline():
    from sessrec_course.serving.reference import recommend_in_process

    client = ex.stand_in_client(k=3)
    sessions = [[10, 30], [0, 12345], [], [0, 10, 20, 30, 40, 50, 0]]
    frame = recommend_in_process(client.score, client.state, sessions, k=3)
    for index, session in enumerate(sessions):
        assert ex.recommend_new_session(client, session) == frame[frame["session"] == index]["item_id"].tolist()
    assert ex.recommend_new_session(client, [10, 30])[0] == 40, "the stand-in recommends the successor"
    assert ex.recommend_new_session(client, []) == [50, 40, 30], "an empty session gets the popular items"


@pytest.mark.slow
def test_stand_in_answers_and_refuses_like_a_real_tritonserver(tmp_path):
    """The check's stand-in is only honest if a real server over the same tables says the same (~10 s, integration)."""
    pytest.importorskip("torch")
    from serving_helpers import tiny_onnx
    from tritonclient.http import InferenceServerClient
    from tritonclient.utils import InferenceServerException

    from sessrec_course.serving import ServingConfig, TritonServer, export_repository, onnx_scorer
    from sessrec_course.serving.server import find_tritonserver

    if find_tritonserver() is None:
        pytest.skip("no tritonserver binary (nvidia-pytriton bundles one)")
    state = ex.stand_in_client().state
    onnx_path = tiny_onnx(tmp_path / "model.onnx", state.item_cardinality)
    repo = export_repository(tmp_path / "repo", onnx_path, state,
                             ServingConfig(top_k=5, max_batch_size=8, model_backend="python"))
    stand_in = ex.StandInClient(state, onnx_scorer(onnx_path), k=5)
    with TritonServer(repo, log_path=tmp_path / "triton.log") as server:
        real = InferenceServerClient(server.http_url)
        for session in ([10, 30], [0, 12345], [], [0, 10, 20, 30, 40, 50, 0]):
            assert ex.recommend_new_session(real, session) == ex.recommend_new_session(stand_in, session)
        for wrong in (no_batch_dimension, sends_int32):
            with pytest.raises(InferenceServerException) as from_server:
                wrong(real, [10, 30])
            with pytest.raises(InferenceServerException) as from_stand_in:
                wrong(stand_in, [10, 30])
            assert str(from_stand_in.value) in str(from_server.value)
        real.close()
