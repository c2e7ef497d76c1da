"""Serving the Keras models: ONNX export parity, and the real Triton ensemble gives the in-process top-k.

The Keras model is exported to ONNX (tf2onnx) and served by the very repository generator and ensemble
(preprocess → model with the top-k in its graph) that serve the PyTorch model. Skipped with a reason when tf2onnx or
the tritonserver binary is missing.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx", reason="ONNX export of Keras models needs tf2onnx (see docs/benchmarks.md)")

from sessrec_course.models import ModelConfig  # noqa: E402
from sessrec_course.models.keras_build import build_keras_model  # noqa: E402
from sessrec_course.training.common import TrainConfig  # noqa: E402
from sessrec_course.training.keras_export import export_onnx, onnx_parity  # noqa: E402
from sessrec_course.training.keras_trainer import KerasRecommender, fit  # noqa: E402

TOP_K = 5
MAX_LENGTH = 6


@pytest.mark.parametrize("name", ["mlp", "gru", "transformer", "transformer+repeat_bias", "gru+score_scale"])
def test_onnx_export_matches_keras(name, tmp_path):
    name, _, flag = name.partition("+")
    config = ModelConfig(name=name, item_cardinality=30, category_cardinality=4, hidden_size=16, max_length=MAX_LENGTH,
                         window=3, num_layers=2, repeat_bias=flag == "repeat_bias",
                         score_scale=16.0 if flag == "score_scale" else 0.0)
    model = build_keras_model(config, item_category=np.arange(30) % 4)
    if flag == "repeat_bias":  # large, distinct bonuses that the export must carry
        model.repeat_bias.assign(np.linspace(6.0, -3.0, MAX_LENGTH))
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 40, size=(9, 11))  # unseen ids, over-long rows
    ids[2] = 0  # an empty session
    ids[3, 3:] = 0  # a short one
    assert onnx_parity(model, path, ids) < 1e-4
    assert onnx_parity(model, path, ids[:1, :MAX_LENGTH]) < 1e-4  # another batch size and length
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"


@pytest.mark.slow
def test_served_keras_transformer_matches_in_process(tmp_path):
    pytest.importorskip("tritonclient.grpc")
    from serving_helpers import tiny_events

    from sessrec_course.etl import SessionWorkflow
    from sessrec_course.serving import (
        ServingConfig,
        TritonRecommender,
        TritonServer,
        export_repository,
        recommend_in_process,
    )
    from sessrec_course.serving.pipeline import serving_state_from_workflow
    from sessrec_course.serving.server import find_tritonserver
    from sessrec_course.training.keras_data import make_dataset

    if find_tritonserver() is None:
        pytest.skip("no tritonserver binary")
    events = tiny_events()
    workflow = SessionWorkflow(max_length=MAX_LENGTH).fit(events)
    state = serving_state_from_workflow(workflow)
    sessions = events.groupby("session_id")["item_id"].apply(list).tolist()
    encoded = workflow.encode_item_ids(sessions)
    config = ModelConfig(name="transformer", item_cardinality=state.item_cardinality, hidden_size=16,
                         max_length=MAX_LENGTH, num_layers=1)
    model = build_keras_model(config)
    fit(model, make_dataset({"item_ids": encoded}, batch_size=32, seed=0), None,
        TrainConfig(epochs=2, learning_rate=1e-2, progress=False))

    onnx_path = export_onnx(model, tmp_path / "keras_transformer.onnx")
    repo = export_repository(tmp_path / "repo", onnx_path, state,
                             ServingConfig(top_k=TOP_K, max_batch_size=16, model_backend="python"))
    requests = [list(s) for s in sessions[:100]] + [[], [99_999], sessions[0] * 5]  # empty, unseen, over-long
    with TritonServer(repo, log_path=tmp_path / "triton.log") as server, \
            TritonRecommender(server.grpc_url, "grpc") as client:
        served = client.recommend_batch(requests, batch_size=16)
    expected = recommend_in_process(KerasRecommender(model).score, state, requests, k=TOP_K)
    assert len(served) == len(requests) * TOP_K
    assert served["item_id"].tolist() == expected["item_id"].tolist()
    np.testing.assert_allclose(served["score"], expected["score"], rtol=1e-4, atol=1e-4)
