"""Export a Triton model repository: preprocess (ETL) -> session model (+ postprocess: top-k), as one ensemble.

Every ``config.pbtxt`` is generated from the saved schema (names, dims and types), never copied by hand::

    <repo>/preprocess/  python backend: raw ids (-1 padded) -> encoded ids (max_length); its model.py,
                        sessrec_transform.py (the in-process code) and serving_state.npz (the fitted tables)
    <repo>/model/       model.onnx, the session model with the postprocess operators (top-k, raw ids) at its end,
                        run by onnxruntime in a python-backend model.py (CPU) or by the native backend (GPU)
    <repo>/ensemble/    platform "ensemble" chaining preprocess -> model

``postprocess="python"`` keeps the model's scores and adds a third python step ``postprocess`` (numpy top-k).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sessrec_course.arrays import order_desc
from sessrec_course.ids import FIRST_ID
from sessrec_course.paths import write_directory_atomically
from sessrec_course.serving.onnx_postprocess import OUTPUT_IDS, OUTPUT_SCORES, append_top_k
from sessrec_course.serving.transform import ServingState

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
TRANSFORM_FILE = Path(__file__).resolve().parent / "transform.py"
TRITON_COMMON_FILE = TEMPLATES / "_triton_common.py"  # travels beside every python-backend model.py
ONNX_SESSION_FILE = Path(__file__).resolve().parent.parent / "onnx_session.py"
ENSEMBLE = "ensemble"
INPUT_NAME = "item_id_list"
POSTPROCESS_CHOICES = ("onnx", "python")


@dataclass(frozen=True)
class ServingConfig:
    """Knobs of the exported repository (defaults tuned on 2 CPU cores, see docs/benchmarks.md)."""

    top_k: int = 20
    max_batch_size: int = 64
    max_queue_delay_us: int = 0  # batches still form under load; no request waits for company (faster on 2 cores)
    preprocess_instances: int = 1
    model_instances: int = 1
    postprocess_instances: int = 1
    intra_op_num_threads: int = 1
    model_backend: str = "auto"  # "auto", "python" (onnxruntime inside the python backend) or "onnxruntime"
    postprocess: str = "onnx"  # "onnx": top-k as operators of the model graph, one python hand-off fewer than "python"

    def __post_init__(self) -> None:
        if self.postprocess not in POSTPROCESS_CHOICES:
            raise ValueError(f"postprocess must be one of {POSTPROCESS_CHOICES}, got {self.postprocess!r}")
        if self.top_k < 1 or self.max_batch_size < 1:
            raise ValueError(f"top_k and max_batch_size must be >= 1, got {self.top_k} and {self.max_batch_size}")


def _tensor(name: str, dtype: str, dims: list[int], ragged: bool = False) -> str:
    extra = " allow_ragged_batch: true" if ragged else ""
    return f'  {{ name: "{name}" data_type: {dtype} dims: [ {", ".join(map(str, dims))} ]{extra} }}'


def _config(name: str, *, backend: str | None, platform: str | None, max_batch_size: int,
            inputs: list[str], outputs: list[str], instances: int | None = None, kind: str = "KIND_CPU",
            queue_delay_us: int | None = None, parameters: dict[str, str] | None = None,
            extra: str = "") -> str:
    lines = [f'name: "{name}"']
    if backend:
        lines.append(f'backend: "{backend}"')
    if platform:
        lines.append(f'platform: "{platform}"')
    lines.append(f"max_batch_size: {max_batch_size}")
    lines.append("input [\n" + ",\n".join(inputs) + "\n]")
    lines.append("output [\n" + ",\n".join(outputs) + "\n]")
    if instances:
        lines.append(f"instance_group [ {{ count: {instances} kind: {kind} }} ]")
    if queue_delay_us is not None:
        lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {queue_delay_us} }}")
    for key, value in (parameters or {}).items():
        lines.append(f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}')
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


def _ensemble_config(max_batch_size: int, top_k: int, postprocess: str) -> str:
    def step(model: str, inputs: dict[str, str], outputs: dict[str, str]) -> str:
        maps = [f'      input_map {{ key: "{k}" value: "{v}" }}' for k, v in inputs.items()]
        maps += [f'      output_map {{ key: "{k}" value: "{v}" }}' for k, v in outputs.items()]
        return f'    {{\n      model_name: "{model}"\n      model_version: -1\n' + "\n".join(maps) + "\n    }"

    final = {OUTPUT_IDS: OUTPUT_IDS, OUTPUT_SCORES: OUTPUT_SCORES}
    steps = [step("preprocess", {INPUT_NAME: INPUT_NAME}, {"item_ids": "encoded_item_ids"})]
    if postprocess == "onnx":
        steps.append(step("model", {"item_ids": "encoded_item_ids"}, final))
    else:
        steps += [step("model", {"item_ids": "encoded_item_ids"}, {"scores": "item_scores"}),
                  step("postprocess", {"scores": "item_scores", "item_ids": "encoded_item_ids"}, final)]
    scheduling = "ensemble_scheduling {\n  step [\n" + ",\n".join(steps) + "\n  ]\n}"
    return _config(ENSEMBLE, backend=None, platform="ensemble", max_batch_size=max_batch_size,
                   inputs=[_tensor(INPUT_NAME, "TYPE_INT64", [-1])],
                   outputs=[_tensor(OUTPUT_IDS, "TYPE_INT64", [top_k]),
                            _tensor(OUTPUT_SCORES, "TYPE_FP32", [top_k])],
                   extra=scheduling)


def _steps(postprocess: str) -> list[str]:
    return ["preprocess", "model"] + (["postprocess"] if postprocess == "python" else [])


def resolve_model_backend(requested: str = "auto") -> str:
    """Return ``onnxruntime`` when asked or when ``auto`` finds that backend in the server, else ``python``."""
    if requested not in ("auto", "python", "onnxruntime"):
        raise ValueError(f"model_backend must be 'auto', 'python' or 'onnxruntime', got {requested!r}")
    if requested != "auto":
        return requested
    from sessrec_course.serving.server_setup import available_backends

    return "onnxruntime" if "onnxruntime" in available_backends() else "python"


def export_repository(output_dir: str | Path, onnx_model: str | Path, state: ServingState,
                      config: ServingConfig | None = None, *, input_name: str = "item_ids",
                      output_name: str = "scores") -> Path:
    """Write the repository for ``onnx_model`` (``input_name`` int64 (B, L) -> ``output_name`` float32 (B, items)).

    It is built in a temporary folder and moved into place: a failed export leaves nothing half-written.
    """
    config = config or ServingConfig()
    onnx_model = Path(onnx_model)
    if not onnx_model.is_file():
        raise FileNotFoundError(f"ONNX model not found: {onnx_model}")
    _check_onnx_signature(onnx_model, input_name, output_name, state)
    if config.top_k > state.item_cardinality - FIRST_ID:
        raise ValueError(f"top_k={config.top_k} exceeds the {state.item_cardinality - FIRST_ID} known items")
    backend = resolve_model_backend(config.model_backend)
    output_dir = Path(output_dir)
    write_directory_atomically(
        output_dir, lambda tmp: _write(tmp, onnx_model, state, config, backend, input_name, output_name))
    log.info("exported Triton repository to %s (model backend: %s)", output_dir, backend)
    return output_dir


def _check_onnx_signature(path: Path, input_name: str, output_name: str, state: ServingState) -> None:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inputs = {i.name: i for i in graph.input}
    outputs = {o.name: o for o in graph.output}
    if input_name not in inputs or output_name not in outputs:
        raise ValueError(f"{path}: expected input {input_name!r} and output {output_name!r}, found inputs "
                         f"{sorted(inputs)} and outputs {sorted(outputs)}")
    if inputs[input_name].type.tensor_type.elem_type != onnx.TensorProto.INT64:
        raise ValueError(f"{path}: input {input_name!r} must be int64")
    dims = outputs[output_name].type.tensor_type.shape.dim
    if len(dims) == 2 and dims[1].HasField("dim_value") and dims[1].dim_value != state.item_cardinality:
        raise ValueError(f"{path}: output {output_name!r} has {dims[1].dim_value} columns, the schema says "
                         f"item_cardinality={state.item_cardinality}")


def _python_model(folder: Path, template: str, config_text: str, state: ServingState | None) -> None:
    version = folder / "1"
    version.mkdir(parents=True)
    shutil.copyfile(TEMPLATES / template, version / "model.py")
    shutil.copyfile(TRITON_COMMON_FILE, version / TRITON_COMMON_FILE.name)
    (folder / "config.pbtxt").write_text(config_text)
    if state is not None:
        shutil.copyfile(TRANSFORM_FILE, version / "sessrec_transform.py")
        state.save(version / "serving_state.npz")


def _write(repo: Path, onnx_model: Path, state: ServingState, cfg: ServingConfig, backend: str,
           input_name: str, output_name: str) -> None:
    length, n_items, batch = state.max_length, state.item_cardinality, cfg.max_batch_size
    delay = cfg.max_queue_delay_us
    _python_model(repo / "preprocess", "preprocess.py", _config(
        "preprocess", backend="python", platform=None, max_batch_size=batch,
        inputs=[_tensor(INPUT_NAME, "TYPE_INT64", [-1], ragged=True)],
        outputs=[_tensor("item_ids", "TYPE_INT64", [length])],
        instances=cfg.preprocess_instances, queue_delay_us=delay), state)
    model_dir = repo / "model"
    (model_dir / "1").mkdir(parents=True)
    graph = model_dir / "1" / "model.onnx"
    if cfg.postprocess == "onnx":  # the postprocess operators go at the end of the model graph
        append_top_k(onnx_model, graph, state, cfg.top_k, input_name, output_name)
        outputs = [_tensor(OUTPUT_IDS, "TYPE_INT64", [cfg.top_k]), _tensor(OUTPUT_SCORES, "TYPE_FP32", [cfg.top_k])]
    else:
        shutil.copyfile(onnx_model, graph)
        outputs = [_tensor("scores" if backend == "python" else output_name, "TYPE_FP32", [n_items])]
    if backend == "onnxruntime":
        from sessrec_course.environment import cuda_available

        if input_name != "item_ids" or (cfg.postprocess == "python" and output_name != "scores"):
            raise ValueError("the native onnxruntime backend needs the ONNX names item_ids -> scores")
        (model_dir / "config.pbtxt").write_text(_config(
            "model", backend="onnxruntime", platform=None, max_batch_size=batch,
            inputs=[_tensor(input_name, "TYPE_INT64", [length])], outputs=outputs, instances=cfg.model_instances,
            kind="KIND_GPU" if cuda_available() else "KIND_CPU", queue_delay_us=delay,
            parameters={"intra_op_thread_count": str(cfg.intra_op_num_threads), "inter_op_thread_count": "1"}))
    else:
        shutil.copyfile(TEMPLATES / "model_onnx.py", model_dir / "1" / "model.py")
        shutil.copyfile(TRITON_COMMON_FILE, model_dir / "1" / TRITON_COMMON_FILE.name)
        shutil.copyfile(ONNX_SESSION_FILE, model_dir / "1" / "sessrec_onnx_session.py")
        (model_dir / "config.pbtxt").write_text(_config(
            "model", backend="python", platform=None, max_batch_size=batch,
            inputs=[_tensor("item_ids", "TYPE_INT64", [length])], outputs=outputs,
            instances=cfg.model_instances, queue_delay_us=delay,
            parameters={"intra_op_num_threads": str(cfg.intra_op_num_threads), "inter_op_num_threads": "1"}))
    if cfg.postprocess == "python":
        _python_model(repo / "postprocess", "postprocess.py", _config(
            "postprocess", backend="python", platform=None, max_batch_size=batch,
            inputs=[_tensor("scores", "TYPE_FP32", [n_items]), _tensor("item_ids", "TYPE_INT64", [length])],
            outputs=[_tensor(OUTPUT_IDS, "TYPE_INT64", [cfg.top_k]),
                     _tensor(OUTPUT_SCORES, "TYPE_FP32", [cfg.top_k])],
            instances=cfg.postprocess_instances, queue_delay_us=delay,
            parameters={"top_k": str(cfg.top_k)}), state)
    (repo / ENSEMBLE / "1").mkdir(parents=True)
    (repo / ENSEMBLE / "config.pbtxt").write_text(_ensemble_config(batch, cfg.top_k, cfg.postprocess))
    (repo / "sessrec_serving.json").write_text(json.dumps({
        "top_k": cfg.top_k, "max_length": length, "item_cardinality": n_items, "model_backend": backend,
        "postprocess": cfg.postprocess, "steps": _steps(cfg.postprocess),
        "input": INPUT_NAME, "outputs": [OUTPUT_IDS, OUTPUT_SCORES], "ensemble": ENSEMBLE,
        "config": cfg.__dict__}, indent=2))


def popularity_scores(encoded_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (encoded ids by decreasing count, their share of clicks) from per-encoded-id counts."""
    counts = np.asarray(encoded_counts, dtype=np.float64).copy()
    counts[:FIRST_ID] = -1.0
    order = order_desc(counts)
    order = order[counts[order] >= 0]
    total = max(counts[order].sum(), 1.0)
    return order.astype(np.int64), (counts[order] / total).astype(np.float32)
