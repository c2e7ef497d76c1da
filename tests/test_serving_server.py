"""A real tritonserver serving a tiny real model + a fitted SessionWorkflow: parity, defined answers, bad requests.

The server starts once for the module (a few seconds); every test talks to it over HTTP and/or gRPC.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc")
pytest.importorskip("torch")

from serving_helpers import tiny_events, tiny_onnx  # noqa: E402

from sessrec_course.etl import SessionWorkflow  # noqa: E402
from sessrec_course.serving import (  # noqa: E402
    ServingConfig,
    TritonRecommender,
    TritonServer,
    TritonStartupError,
    export_repository,
    onnx_scorer,
    recommend_in_process,
)
from sessrec_course.serving.pipeline import serving_state_from_workflow  # noqa: E402
from sessrec_course.serving.procs import process_group_members  # noqa: E402
from sessrec_course.serving.server import find_tritonserver  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(find_tritonserver() is None, reason="no tritonserver binary")]

TOP_K = 5
MAX_LENGTH = 6


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serving")
    events = tiny_events()
    workflow = SessionWorkflow(max_length=MAX_LENGTH).fit(events)
    workflow = SessionWorkflow.load(workflow.save(folder / "workflow"))  # the saved state, as in production
    state = serving_state_from_workflow(workflow)
    onnx_path = tiny_onnx(folder / "model.onnx", state.item_cardinality)
    repo = export_repository(folder / "repo", onnx_path, state,
                             ServingConfig(top_k=TOP_K, max_batch_size=16, model_backend="python"))
    server = TritonServer(repo, log_path=folder / "triton.log").start()
    sessions = events.groupby("session_id")["item_id"].apply(list).tolist()
    yield {"server": server, "state": state, "workflow": workflow, "score": onnx_scorer(onnx_path),
           "sessions": sessions, "catalogue": sorted(set(events["item_id"]))}
    pgid = server.process.pid
    server.stop()
    assert process_group_members(pgid) == [], "server processes survived stop()"


def reference(served, sessions):
    return recommend_in_process(served["score"], served["state"], sessions, k=TOP_K)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_server_matches_in_process_reference(served, protocol):
    server = served["server"]
    rng = np.random.default_rng(1)
    sessions = [list(s) for s in served["sessions"][:120]]
    # unseen raw ids in the middle of some sessions
    for session in sessions[::7]:
        session.insert(int(rng.integers(0, len(session))), 99_999)
    with TritonRecommender(server.http_url if protocol == "http" else server.grpc_url, protocol) as client:
        got = client.recommend_batch(sessions, batch_size=16)
    expected = reference(served, sessions)
    assert len(got) == len(sessions) * TOP_K
    assert got["item_id"].tolist() == expected["item_id"].tolist()
    np.testing.assert_allclose(got["score"], expected["score"], rtol=1e-4, atol=1e-5)
    assert set(got["item_id"]) <= set(served["catalogue"]), "only raw catalogue ids come back"


def test_preprocessing_agrees_with_the_workflow(served):
    from sessrec_course.serving.client import pad_raw_sessions

    sessions = served["sessions"][:50] + [[], [5, 6], list(served["catalogue"]) * 2]
    np.testing.assert_array_equal(served["state"].encode(pad_raw_sessions(sessions)),
                                  served["workflow"].encode_item_ids(sessions))


def test_empty_and_unseen_only_sessions_get_popular_items(served):
    popular = served["workflow"].decode_item_ids(served["workflow"].popular_items(TOP_K)).tolist()
    with TritonRecommender(served["server"].grpc_url, "grpc") as client:
        empty = client.recommend([])
        unseen = client.recommend([5, 6, 99_999])
    assert empty["item_id"].tolist() == popular
    assert unseen["item_id"].tolist() == popular
    assert (np.diff(empty["score"]) <= 0).all()


def test_over_long_session_is_truncated_to_its_last_events(served):
    long_session = served["catalogue"][::-1] * 3  # 120 events > MAX_LENGTH
    with TritonRecommender(served["server"].http_url, "http") as client:
        full = client.recommend(long_session)
        tail = client.recommend(long_session[-MAX_LENGTH:])
        other_tail = client.recommend(long_session[-MAX_LENGTH - 1:-1])
    assert full["item_id"].tolist() == tail["item_id"].tolist()
    assert full["item_id"].tolist() != other_tail["item_id"].tolist() or \
        not np.allclose(full["score"], other_tail["score"])


def _send(client_module, client, data, name="item_id_list", datatype="INT64"):
    tensor = client_module.InferInput(name, list(data.shape), datatype)
    tensor.set_data_from_numpy(data)
    return client.infer("ensemble", [tensor])


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_malformed_requests_get_errors_and_the_server_keeps_serving(served, protocol):
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    module = httpclient if protocol == "http" else grpcclient
    server = served["server"]
    client = module.InferenceServerClient(server.http_url if protocol == "http" else server.grpc_url)
    good = np.array([served["sessions"][0][:3]], dtype=np.int64)
    bad_requests = {
        "wrong dtype": (good.astype(np.float32), "item_id_list", "FP32"),
        "wrong shape (1-D)": (good[0], "item_id_list", "INT64"),
        "wrong shape (3-D)": (good[None], "item_id_list", "INT64"),
        "wrong input name": (good, "items", "INT64"),
        "batch too large": (np.repeat(good, 17, axis=0), "item_id_list", "INT64"),
    }
    for label, (data, name, datatype) in bad_requests.items():
        with pytest.raises(InferenceServerException):
            _send(module, client, data, name, datatype)
        assert server.running and server.is_ready(), f"server down after {label}"
    answer = _send(module, client, good)
    expected = reference(served, [good[0].tolist()])
    assert answer.as_numpy("item_id_topk")[0].tolist() == expected["item_id"].tolist()
    client.close()


def test_a_broken_model_fails_start_with_its_log(tmp_path):
    model = tmp_path / "repo" / "broken"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(
        'name: "broken"\nbackend: "python"\nmax_batch_size: 1\n'
        'input [ { name: "x" data_type: TYPE_INT64 dims: [ 1 ] } ]\n'
        'output [ { name: "y" data_type: TYPE_INT64 dims: [ 1 ] } ]\n')
    (model / "1" / "model.py").write_text(
        "class TritonPythonModel:\n    def initialize(self, args):\n        raise RuntimeError('boom-sessrec-42')\n")
    server = TritonServer(tmp_path / "repo", log_path=tmp_path / "triton.log", startup_timeout=60)
    with pytest.raises(TritonStartupError, match="boom-sessrec-42") as info:
        server.start()
    assert "triton.log" in str(info.value)
    assert not server.running


def test_missing_repository_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.pbtxt"):
        TritonServer(tmp_path / "nothing")


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_load_generator_counts_every_request(served, protocol):
    from sessrec_bench.figures import latency_histogram, throughput_latency
    from sessrec_bench.loadtest import run_load_test

    server = served["server"]
    url = server.http_url if protocol == "http" else server.grpc_url
    result = run_load_test(url, served["sessions"][:30], concurrencies=(1, 3), requests=45, protocol=protocol,
                           warmup=5, progress=False)
    table = result.summary()
    assert table["concurrency"].tolist() == [1, 3]
    assert table["requests"].tolist() == [45, 45] and table["errors"].tolist() == [0, 0]
    assert all(level.latencies_ms.size == 45 for level in result.levels)
    assert (table["p50_ms"] <= table["p99_ms"]).all() and (table["throughput_per_s"] > 0).all()
    assert len(latency_histogram(result).axes[0].get_legend().get_texts()) == 2
    assert len(throughput_latency(result).axes) == 2


def test_load_generator_reports_failed_requests(served):
    from sessrec_bench.loadtest import run_load_test

    result = run_load_test(served["server"].grpc_url, served["sessions"][:5], concurrencies=(2,), requests=10,
                           model="no_such_model", warmup=0, progress=False)
    level = result.levels[0]
    assert (level.requests, level.errors, level.latencies_ms.size) == (10, 10, 0)
    assert "no_such_model" in level.first_error
