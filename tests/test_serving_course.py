"""The course pipeline served for real: default data + trained GRU -> ONNX -> Triton ensemble, raw ids in and out,
on 127.0.0.1 only.

The server must return exactly the top-k raw item ids of the in-process PyTorch model (same pre/post-processing
code, :func:`recommend_in_process`) for real raw test sessions, over HTTP and gRPC.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("tritonclient.grpc")

from sessrec_course.profiles import get_profile  # noqa: E402
from sessrec_course.serving import TritonRecommender, TritonServer, recommend_in_process  # noqa: E402
from sessrec_course.serving.server import find_tritonserver  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(find_tritonserver() is None, reason="no tritonserver binary")]

TRAIN_STEPS = 40  # a real but short training run: parity does not need a good model


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    from sessrec_course.etl.dataset import prepare_default_dataset
    from sessrec_course.serving.pipeline import export_course_model, raw_sessions
    from sessrec_course.training import TorchRecommender, train_model

    profile = get_profile()
    artifacts = prepare_default_dataset(profile)
    overrides = {"max_steps_per_epoch": TRAIN_STEPS, "progress": False}
    repository, state, _ = export_course_model("gru", artifacts, tmp_path_factory.mktemp("gru"), **overrides)
    model, _ = train_model("gru", artifacts.root, **overrides)
    sessions = raw_sessions(artifacts, max(profile.serving_sessions, 100), split="test")
    with TritonServer(repository, log_path=repository.parent / "triton.log") as server:
        yield {"server": server, "state": state, "score": TorchRecommender(model).score, "sessions": sessions,
               "workflow": artifacts.workflow()}


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_real_sessions_get_the_in_process_top_k(course, protocol):
    server, sessions = course["server"], course["sessions"]
    assert len(sessions) >= 100
    url = server.http_url if protocol == "http" else server.grpc_url
    with TritonRecommender(url, protocol) as client:
        got = client.recommend_batch(sessions, batch_size=32)
    expected = recommend_in_process(course["score"], course["state"], sessions, k=20)
    assert got["item_id"].tolist() == expected["item_id"].tolist()
    np.testing.assert_allclose(got["score"], expected["score"], rtol=1e-3, atol=1e-4)


def test_defined_answers_on_real_ids(course):
    workflow, sessions = course["workflow"], course["sessions"]
    popular = workflow.decode_item_ids(workflow.popular_items(20)).tolist()
    longest = max(sessions, key=len)
    over_long = longest * (1 + 3 * workflow.config.max_length // max(len(longest), 1))
    with TritonRecommender(course["server"].grpc_url, "grpc") as client:
        assert client.recommend([])["item_id"].tolist() == popular
        assert client.recommend([10**12, 10**12 + 1])["item_id"].tolist() == popular  # unseen raw ids
        tail = over_long[-workflow.config.max_length:]
        assert client.recommend(over_long)["item_id"].tolist() == client.recommend(tail)["item_id"].tolist()


def test_the_lesson_server_listens_on_loopback_only(course):
    from listeners import is_loopback, listening_sockets

    from sessrec_course.serving.procs import process_group_members

    server = course["server"]
    found = listening_sockets(process_group_members(server.process.pid))  # the server and its stubs
    assert {server.http_port, server.grpc_port, server.metrics_port} <= {port for _, _, port in found}, found
    assert all(is_loopback(address) for _, address, _ in found), f"listening beyond 127.0.0.1: {found}"
