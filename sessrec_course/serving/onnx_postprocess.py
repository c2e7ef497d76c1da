"""The postprocess as ONNX operators appended to the model's graph (no hand-off to a Python stub), computing what
:meth:`ServingState.top_k` does: padding and OOV dropped, ties to the lower id, popular items without a known item."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sessrec_course.ids import FIRST_ID
from sessrec_course.serving.transform import ServingState

MODEL_INPUT, MODEL_OUTPUT = "item_ids", "scores"  # the exported model: int64 (B, L) -> float32 (B, items)
OUTPUT_IDS = "item_id_topk"
OUTPUT_SCORES = "score_topk"
_PREFIX = "sessrec_post_"  # names of everything this module adds to a graph


def append_top_k(onnx_model: str | Path, output_path: str | Path, state: ServingState, k: int) -> Path:
    """Write ``onnx_model`` + the operators to ``output_path``: same input, ``item_id_topk`` and ``score_topk`` out."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = (model := onnx.load(str(onnx_model))).graph
    inputs, outputs = {i.name: i for i in graph.input}, {o.name: o for o in graph.output}
    if MODEL_INPUT not in inputs or MODEL_OUTPUT not in outputs:
        raise ValueError(f"{onnx_model}: expected input {MODEL_INPUT!r} and output {MODEL_OUTPUT!r}, found inputs "
                         f"{sorted(inputs)} and outputs {sorted(outputs)}")
    if inputs[MODEL_INPUT].type.tensor_type.elem_type != TensorProto.INT64:
        raise ValueError(f"{onnx_model}: input {MODEL_INPUT!r} must be int64")
    n_items, k = state.item_cardinality, int(k)
    columns = outputs[MODEL_OUTPUT].type.tensor_type.shape.dim
    if len(columns) == 2 and columns[1].HasField("dim_value") and columns[1].dim_value != n_items:
        raise ValueError(f"{onnx_model}: output {MODEL_OUTPUT!r} has {columns[1].dim_value} columns, the schema says "
                         f"item_cardinality={n_items}")
    if not 0 < k <= n_items - FIRST_ID:
        raise ValueError(f"k={k} must be between 1 and the {n_items - FIRST_ID} known items")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 11:
        raise ValueError(f"{onnx_model}: opset {opset} is too old for TopK with tie-breaking (needs >= 11)")

    def name(suffix: str) -> str:
        return _PREFIX + suffix

    def const(suffix: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value), name(suffix)))
        return name(suffix)

    graph.node.extend([
        # scores of real items only (columns 2..n), best k with their positions
        helper.make_node("Slice", [MODEL_OUTPUT, const("start", np.array([FIRST_ID], np.int64)),
                                   const("end", np.array([n_items], np.int64)), const("axis", np.array([1], np.int64))],
                         [name("item_scores")]),
        helper.make_node("TopK", [name("item_scores"), const("k", np.array([k], np.int64))],
                         [name("top_scores"), name("top_index")], axis=1, largest=1, sorted=1),
        helper.make_node("Gather", [const("raw_ids", state.raw_of_encoded[FIRST_ID:]), name("top_index")],
                         [name("top_raw")], axis=0),
        # does the session hold a known item (its largest id >= 2)? then its top-k, else the popular items
        helper.make_node("TopK", [MODEL_INPUT, const("one", np.array([1], np.int64))],
                         [name("row_max"), name("row_max_at")], axis=1),
        helper.make_node("Greater", [name("row_max"), const("oov", np.array(FIRST_ID - 1, np.int64))],
                         [name("has_known")]),
        helper.make_node("Where", [name("has_known"), name("top_raw"),
                                   const("popular_raw", state.raw_of_encoded[state.popular[None, :k]])], [OUTPUT_IDS]),
        helper.make_node("Where", [name("has_known"), name("top_scores"),
                                   const("popular_scores", state.popular_scores[:k][None, :].astype(np.float32))],
                         [OUTPUT_SCORES]),
    ])
    batch = inputs[MODEL_INPUT].type.tensor_type.shape.dim[0]
    batch = batch.dim_value if batch.HasField("dim_value") else (batch.dim_param or "batch")
    del graph.output[:]
    graph.output.extend([helper.make_tensor_value_info(OUTPUT_IDS, TensorProto.INT64, [batch, k]),
                         helper.make_tensor_value_info(OUTPUT_SCORES, TensorProto.FLOAT, [batch, k])])
    onnx.checker.check_model(model)
    onnx.save(model, str(output_path))
    return Path(output_path)


def postprocess_operators(onnx_model: str | Path) -> list[str]:
    """Return the operator types :func:`append_top_k` added to ``onnx_model`` (empty for a plain model)."""
    import onnx

    graph = onnx.load(str(onnx_model), load_external_data=False).graph
    return [node.op_type for node in graph.node
            if any(name.startswith(_PREFIX) or name in (OUTPUT_IDS, OUTPUT_SCORES) for name in node.output)]
