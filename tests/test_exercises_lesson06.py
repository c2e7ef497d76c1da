"""Lesson 06 exercises: the references keep the caller's data, and the stand-in server answers like the real one.

The wrong answers each check must reject are in ``exercise_mistakes/lesson06.py`` (``test_exercise_mutations``)."""

from __future__ import annotations

import numpy as np
import pytest

from sessrec_course.exercises import lesson06 as ex


def test_decode_leaves_the_callers_scores_alone():
    scores = np.array([9.0, 8.0, 0.1, 0.5, 0.3, 0.9, 0.2, 0.4])
    ex.decode_top_k(scores, ex._catalogue(8), 2)
    assert scores[0] == 9.0 and scores[1] == 8.0


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
    from exercise_mistakes.lesson06 import empty_session_without_columns, no_batch_dimension, sends_int32
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
        # a (1, 0) request breaks the contract (q3): the stand-in refuses it; tritonserver passes it on to the
        # models, which answer it as an empty session or refuse it, depending on the python backend's numpy
        try:
            answer = empty_session_without_columns(real, [])
        except InferenceServerException:
            answer = None
        assert answer in (None, ex.recommend_new_session(real, []))
        with pytest.raises(InferenceServerException, match="breaks the serving contract"):
            empty_session_without_columns(stand_in, [])
        real.close()
