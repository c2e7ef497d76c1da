"""The python-backend models of an exported repository, run in this process with a stand-in for Triton's pb_utils.

The dynamic batcher hands ``execute`` several requests at once: every model must answer each request with its
own rows, equal to what the in-process reference computes (no server, seconds).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types

import numpy as np
import pytest
from serving_helpers import tiny_onnx

from sessrec_course.onnx_session import onnx_session
from sessrec_course.serving.client import pad_raw_sessions
from sessrec_course.serving.reference import onnx_scorer
from sessrec_course.serving.repository import ServingConfig, export_repository
from sessrec_course.serving.transform import ServingState

RAW = np.array([-1, -1, 100, 200, 300, 400])
SHARED = ("sessrec_transform", "sessrec_onnx_session", "sessrec_admission", "sessrec_step")


class _Tensor:
    def __init__(self, name, value):
        self.name, self.value = name, np.asarray(value)

    def as_numpy(self):
        return self.value


class _Response:
    def __init__(self, output_tensors=(), error=None):
        self._tensors, self.error = list(output_tensors), error
        self.outputs = {t.name: t.value for t in self._tensors}

    def output_tensors(self):
        return self._tensors


class _TritonError:
    UNAVAILABLE = "UNAVAILABLE"

    def __init__(self, message, code=None):
        self.message, self.code = message, code


@pytest.fixture
def load_model(monkeypatch):
    """Return ``load(version_dir, config)``: the folder's TritonPythonModel, initialised as Triton would."""
    fake = types.ModuleType("triton_python_backend_utils")
    fake.Tensor, fake.InferenceResponse, fake.TritonError = _Tensor, _Response, _TritonError
    fake.get_input_tensor_by_name = lambda request, name: _Tensor(name, request[name])
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", fake)
    monkeypatch.setattr(sys, "path", list(sys.path))

    def load(folder, config, repository=None):
        for name in SHARED:  # each model folder brings its own copies
            monkeypatch.delitem(sys.modules, name, raising=False)
        spec = importlib.util.spec_from_file_location(f"model_{folder.parent.name}", folder / "model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.TritonPythonModel()
        args = {"model_config": json.dumps(config)}
        if repository is not None:  # Triton passes the model's folder
            args["model_repository"] = str(repository / folder.parent.name)
        model.initialize(args)
        return model

    yield load
    for name in SHARED:
        sys.modules.pop(name, None)


def _io(names):
    return [{"name": n} for n in names]


@pytest.fixture
def state() -> ServingState:
    popular = np.array([4, 2, 5, 3])
    return ServingState(RAW, max_length=3, popular=popular, popular_scores=np.full(4, 0.25, np.float32))


def test_each_request_of_a_batch_gets_its_own_rows(tmp_path, state, load_model):
    onnx_path = tiny_onnx(tmp_path / "m.onnx", state.item_cardinality)
    repo = export_repository(tmp_path / "repo", onnx_path, state, ServingConfig(top_k=2, model_backend="python"))
    # each version folder holds everything its model.py imports (loaded below with no module shared between them)
    assert {p.name for p in (repo / "preprocess" / "1").iterdir()} == {"model.py", "sessrec_transform.py",
                                                                        "serving_state.npz"}
    assert {p.name for p in (repo / "model" / "1").iterdir()} == {"model.py", "sessrec_onnx_session.py", "model.onnx"}
    sessions = [[[200, 100], [999]], [[300, 400, 100, 200]], [[]]]  # three requests, different widths
    requests = [{"item_id_list": pad_raw_sessions(r)} for r in sessions]

    pre = load_model(repo / "preprocess" / "1", {"input": _io(["item_id_list"]), "output": _io(["item_ids"])})
    encoded = [r.outputs["item_ids"] for r in pre.execute(requests)]
    assert [e.shape[0] for e in encoded] == [2, 1, 1]
    for e, r in zip(encoded, requests, strict=True):
        np.testing.assert_array_equal(e, state.encode(r["item_id_list"]))

    model = load_model(repo / "model" / "1", {"input": _io(["item_ids"]), "output": _io(["item_id_topk", "score_topk"]),
                                              "parameters": {"intra_op_num_threads": {"string_value": "1"}}})
    answers = [r.outputs for r in model.execute([{"item_ids": e} for e in encoded])]
    scores = [onnx_scorer(str(onnx_path))(e) for e in encoded]
    for answer, e, s in zip(answers, encoded, scores, strict=True):
        ids, top = state.top_k(s, e, 2)
        np.testing.assert_array_equal(answer["item_id_topk"], ids)
        np.testing.assert_allclose(answer["score_topk"], top, rtol=1e-5, atol=1e-6)


def test_the_first_step_admits_at_most_the_limit_and_the_model_step_frees_the_slots(tmp_path, state, load_model):
    from sessrec_course.serving.admission import AdmissionTable, limit_admission, table_path

    onnx_path = tiny_onnx(tmp_path / "m.onnx", state.item_cardinality)
    repo = limit_admission(export_repository(tmp_path / "repo", onnx_path, state,
                                             ServingConfig(top_k=2, model_backend="python")), 2, lease_ms=60_000)
    gate = {"admission_max_in_flight": {"string_value": "2"}, "admission_lease_ms": {"string_value": "60000"}}
    pre = load_model(repo / "preprocess" / "1", {"input": _io(["item_id_list"]),
                                                  "output": _io(["item_ids", "admission_ticket"]),
                                                  "parameters": gate}, repository=repo)
    model = load_model(repo / "model" / "1", {"input": _io(["item_ids", "admission_ticket"]),
                                              "output": _io(["item_id_topk", "score_topk"]),
                                              "parameters": {**gate, "intra_op_num_threads": {"string_value": "1"}}},
                       repository=repo)
    table = AdmissionTable(table_path(repo), 2, 60_000)
    try:
        requests = [{"item_id_list": pad_raw_sessions(r)} for r in ([[200, 100], [999]], [[300]], [[400]])]
        first = pre.execute(requests)
        assert [r.error is None for r in first] == [True, True, False] and table.in_use() == 2
        assert first[2].error.code == "UNAVAILABLE" and "max_in_flight=2" in first[2].error.message
        assert first[0].outputs["admission_ticket"].shape == (2, 2)  # one ticket row per session of the request
        np.testing.assert_array_equal(first[0].outputs["item_ids"], state.encode(requests[0]["item_id_list"]))
        assert all(r.error is not None for r in pre.execute(requests[2:])), "admitted past the limit"
        answers = model.execute([r.outputs for r in first[:2]])  # the model step frees the slots of its batch
        assert table.in_use() == 0 and all(a.outputs["item_id_topk"].shape[1] == 2 for a in answers)
        third = pre.execute(requests[2:])
        assert [r.error is None for r in third] == [True]
        other = table.admit(1)  # another request on its way
        model.execute([third[0].outputs])
        assert table.in_use() == 1 and table.release(other) == 1, "the model step freed a slot it did not hold"
    finally:
        table.close()
        table.path.unlink()


def test_onnx_session_sets_threads_and_stays_on_cpu(tmp_path):
    session = onnx_session(tiny_onnx(tmp_path / "m.onnx", 6), intra_op_threads=2, inter_op_threads=1)
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert session.get_session_options().intra_op_num_threads == 2
    scores = session.run(["scores"], {"item_ids": np.array([[2, 3, 0]], dtype=np.int64)})[0]
    assert scores.shape == (1, 6)
