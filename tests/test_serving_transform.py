"""Serving pre/post-processing and repository generation on hand-computed cases (no server, seconds)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from serving_helpers import tiny_onnx

from sessrec_course.serving.client import pad_raw_sessions, to_frame
from sessrec_course.serving.repository import (
    TRANSFORM_FILE,
    ServingConfig,
    export_repository,
    popularity_scores,
)
from sessrec_course.serving.transform import ServingState

# encoded 2..5 <-> raw 100, 200, 300, 400; popularity: 300 > 100 > 400 > 200
RAW = np.array([-1, -1, 100, 200, 300, 400])
POPULAR, POPULAR_SCORES = popularity_scores(np.array([0, 0, 30, 10, 40, 20]))


@pytest.fixture
def state() -> ServingState:
    return ServingState(RAW, max_length=3, popular=POPULAR, popular_scores=POPULAR_SCORES)


def test_popularity_order_and_shares_by_hand():
    assert POPULAR.tolist() == [4, 2, 5, 3]
    np.testing.assert_allclose(POPULAR_SCORES, [0.4, 0.3, 0.2, 0.1], rtol=1e-6)


def test_encode_maps_unseen_truncates_and_pads(state):
    raw = pad_raw_sessions([[200, 999, 100], [100, 200, 300, 400, 100], [], [999], [400]])
    assert raw.tolist()[2] == [-1, -1, -1, -1, -1]
    assert state.encode(raw).tolist() == [[3, 1, 2], [4, 5, 2], [0, 0, 0], [1, 0, 0], [5, 0, 0]]


def test_encode_accepts_padding_anywhere_and_zero_width(state):
    assert state.encode(np.array([[100, -1, 200, -1]])).tolist() == [[2, 3, 0]]
    assert state.encode(np.zeros((2, 0), dtype=np.int64)).tolist() == [[0, 0, 0], [0, 0, 0]]


def test_encode_rejects_bad_input(state):
    with pytest.raises(ValueError, match="2-D"):
        state.encode(np.array([100, 200]))
    with pytest.raises(ValueError, match="integers"):
        state.encode(np.array([[1.5]]))


def test_top_k_masks_pad_and_oov_breaks_ties_by_lower_id(state):
    scores = np.array([[9.0, 9.0, 0.5, 2.0, 2.0, 1.0]], dtype=np.float32)
    ids, top = state.top_k(scores, np.array([[2, 0, 0]]), k=3)
    assert ids.tolist() == [[200, 300, 400]]
    assert top.tolist() == [[2.0, 2.0, 1.0]]


def test_top_k_falls_back_to_popular_items_without_known_items(state):
    scores = np.tile(np.arange(6, dtype=np.float32), (3, 1))
    ids, top = state.top_k(scores, np.array([[0, 0, 0], [1, 1, 0], [1, 3, 0]]), k=2)
    assert ids.tolist() == [[300, 100], [300, 100], [400, 300]]
    np.testing.assert_allclose(top[:2], [[0.4, 0.3], [0.4, 0.3]], rtol=1e-6)


def test_state_round_trip(tmp_path, state):
    state.save(tmp_path / "s.npz")
    loaded = ServingState.load(tmp_path / "s.npz")
    raw = pad_raw_sessions([[400, 300], [7]])
    assert loaded.encode(raw).tolist() == state.encode(raw).tolist()
    assert loaded.popular.tolist() == state.popular.tolist()


def test_pad_raw_sessions_rejects_negative_ids():
    with pytest.raises(ValueError, match="session 1"):
        pad_raw_sessions([[1], [2, -5]])


def test_to_frame_is_long_format():
    frame = to_frame(np.array([[7, 8], [9, 10]]), np.array([[0.5, 0.25], [1.0, 0.0]]), ["a", "b"])
    expected = pd.DataFrame({"session": ["a", "a", "b", "b"], "rank": [1, 2, 1, 2], "item_id": [7, 8, 9, 10],
                             "score": np.array([0.5, 0.25, 1.0, 0.0], dtype=np.float32)})
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)


def _tiny_onnx(path, n_items: int, n_out: int | None = None):
    pytest.importorskip("torch")
    return tiny_onnx(path, n_items, n_out)


def _dims(config: str, name: str) -> list[int]:
    match = re.search(rf'name: "{name}" data_type: \w+ dims: \[ ([-\d, ]+) \]', config)
    assert match, f"{name} not in config"
    return [int(v) for v in match.group(1).split(",")]


def test_export_generates_configs_from_the_state(tmp_path, state):
    import onnx

    onnx_path = _tiny_onnx(tmp_path / "m.onnx", state.item_cardinality)
    repo = export_repository(tmp_path / "repo", onnx_path, state,
                             ServingConfig(top_k=3, model_backend="python", max_queue_delay_us=150))
    pre = (repo / "preprocess" / "config.pbtxt").read_text()
    model = (repo / "model" / "config.pbtxt").read_text()
    ensemble = (repo / "ensemble" / "config.pbtxt").read_text()
    assert _dims(pre, "item_ids") == [3] and _dims(model, "item_ids") == [3]
    assert _dims(model, "item_id_topk") == [3] and _dims(model, "score_topk") == [3] and "scores" not in model
    assert _dims(ensemble, "score_topk") == [3]
    assert all("max_queue_delay_microseconds: 150" in c for c in (pre, model))
    assert 'platform: "ensemble"' in ensemble
    assert re.findall(r'model_name: "(\w+)"', ensemble) == ["preprocess", "model"]
    assert not (repo / "postprocess").exists()
    assert (repo / "preprocess" / "1" / "sessrec_transform.py").read_bytes() == TRANSFORM_FILE.read_bytes()
    assert ServingState.load(repo / "preprocess" / "1" / "serving_state.npz").max_length == 3
    graph = onnx.load(str(repo / "model" / "1" / "model.onnx")).graph
    assert [o.name for o in graph.output] == ["item_id_topk", "score_topk"]
    assert {"TopK", "Gather", "Where"} <= {n.op_type for n in graph.node}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".repo")], "temporary folder left behind"
    with pytest.raises(ValueError, match="top_k and max_batch_size must be >= 1"):
        ServingConfig(top_k=0)


def _lookup_scorer(path, table: np.ndarray, opset: int):
    """An ONNX model whose scores are ``table[first item id]``: any scores, ties included, by construction."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(table.astype(np.float32), "table"),
             numpy_helper.from_array(np.array([0], np.int64), "zero"),
             numpy_helper.from_array(np.array([1], np.int64), "one")]
    nodes = [helper.make_node("Slice", ["item_ids", "zero", "one", "one"], ["first"]),
             helper.make_node("Gather", ["table", "first"], ["rows"], axis=0),
             helper.make_node("Flatten", ["rows"], ["scores"], axis=1)]
    graph = helper.make_graph(nodes, "lookup", [helper.make_tensor_value_info("item_ids", TensorProto.INT64, ["b", "l"])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["b", table.shape[1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("opset", [13, 18])
def test_graph_postprocess_matches_the_numpy_one_id_for_id(tmp_path, opset):
    """TopK + Gather + Where in the graph == ServingState.top_k: ties, pad/OOV masking, popular fallback."""
    import onnxruntime as ort

    from sessrec_course.serving.onnx_postprocess import append_top_k

    rng = np.random.default_rng(opset)
    n_items = 40
    raw = np.r_[-1, -1, 5000 + rng.permutation(n_items - 2) * 3]
    popular, shares = popularity_scores(np.r_[0, 0, rng.integers(1, 50, n_items - 2)])
    big = ServingState(raw, 4, popular, shares)
    table = rng.integers(0, 6, size=(n_items, n_items)).astype(np.float32)  # few values: many ties
    table[:, :2] = 100.0  # pad and OOV score highest and must still never appear
    path = append_top_k(_lookup_scorer(tmp_path / "lookup.onnx", table, opset), tmp_path / "post.onnx", big, 7)
    encoded = np.array([[first, 0, 0, 0] for first in range(2, n_items)]
                       + [[0, 0, 0, 0], [1, 1, 0, 0], [1, 7, 0, 0], [3, 39, 2, 1]], dtype=np.int64)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids, top = session.run(["item_id_topk", "score_topk"], {"item_ids": encoded})
    want_ids, want_top = big.top_k(table[encoded[:, 0]], encoded, 7)
    assert ids.dtype == np.int64 and top.dtype == np.float32
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(top, want_top)
    assert ids[-4].tolist() == raw[popular[:7]].tolist() == ids[-3].tolist()  # empty and OOV-only: popular
    assert (ids[:-3] != raw[popular[:7]]).any()  # sessions with a known item do not get the fallback
    with pytest.raises(ValueError, match="k=39 must be between 1 and the 38 known items"):
        append_top_k(tmp_path / "lookup.onnx", tmp_path / "bad.onnx", big, 39)
    assert not (tmp_path / "bad.onnx").exists()


def test_export_rejects_a_model_of_another_catalogue(tmp_path, state):
    onnx_path = _tiny_onnx(tmp_path / "wrong.onnx", state.item_cardinality, n_out=9)
    with pytest.raises(ValueError, match="9 columns.*item_cardinality=6"):
        export_repository(tmp_path / "repo", onnx_path, state, ServingConfig(top_k=2, model_backend="python"))
    assert not (tmp_path / "repo").exists()
    with pytest.raises(ValueError, match="top_k=7 exceeds"):
        export_repository(tmp_path / "repo", _tiny_onnx(tmp_path / "m.onnx", 6), state, ServingConfig(top_k=7))


def test_sparse_and_dense_lookups_agree():
    huge = np.array([-1, -1, 5, 10**12, 7, 3])  # one id beyond the dense table: binary search
    small = np.array([-1, -1, 5, 11, 7, 3])
    sparse_state = ServingState(huge, 3, POPULAR, POPULAR_SCORES)
    dense_state = ServingState(small, 3, POPULAR, POPULAR_SCORES)
    raw_huge = pad_raw_sessions([[3, 10**12, 8], [7, 7, 5, 3], [], [10**13]])
    raw_small = np.where(raw_huge == 10**12, 11, raw_huge)
    expected = [[5, 3, 1], [4, 2, 5], [0, 0, 0], [1, 0, 0]]
    assert sparse_state.encode(raw_huge).tolist() == expected
    assert dense_state.encode(raw_small).tolist() == expected


def test_load_generator_counts_errors_without_a_server():
    pytest.importorskip("tritonclient.grpc")
    from sessrec_bench.loadtest import run_load_test

    from sessrec_course.serving.server import free_port

    # every request fails at once: 3000 of them must neither recurse nor hang
    result = run_load_test(f"127.0.0.1:{free_port()}", [[1, 2]], (4,), 3000, warmup=0, progress=False, timeout_s=60)
    level = result.levels[0]
    assert (level.requests, level.errors, level.latencies_ms.size) == (3000, 3000, 0)
    assert "UNAVAILABLE" in level.first_error


def test_schema_mismatch_is_reported(state):
    from sessrec_course.serving.pipeline import check_against_schema

    check_against_schema(state, {"item_cardinality": 6, "max_length": 3, "pad_id": 0, "oov_id": 1})
    with pytest.raises(ValueError, match="max_length: schema 20 vs workflow 3"):
        check_against_schema(state, {"item_cardinality": 6, "max_length": 20})


def test_export_for_the_native_onnxruntime_backend(tmp_path, state):
    """The GPU container's layout (not servable here: the bundled server has only the python backend)."""
    onnx_path = _tiny_onnx(tmp_path / "m.onnx", state.item_cardinality)
    repo = export_repository(tmp_path / "repo", onnx_path, state, ServingConfig(top_k=3, model_backend="onnxruntime"))
    config = (repo / "model" / "config.pbtxt").read_text()
    assert 'backend: "onnxruntime"' in config and "intra_op_thread_count" in config
    assert _dims(config, "item_ids") == [3] and _dims(config, "item_id_topk") == [3]
    assert sorted(p.name for p in (repo / "model" / "1").iterdir()) == ["model.onnx"]
    with pytest.raises(ValueError, match="model_backend"):
        export_repository(tmp_path / "other", onnx_path, state, ServingConfig(top_k=3, model_backend="tensorrt"))
