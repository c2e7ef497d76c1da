"""Export a Triton model repository: preprocess (ETL) -> session model -> postprocess (top-k), as one ensemble.

Every ``config.pbtxt`` is generated here from the saved schema (names, dims and types), never copied by
hand. Layout written by :func:`export_repository` (default ``postprocess="onnx"``)::

    <repo>/preprocess/config.pbtxt   python backend, raw ids (-1 padded) -> encoded ids (max_length)
    <repo>/preprocess/1/model.py, sessrec_transform.py, serving_state.npz
    <repo>/model/config.pbtxt        python backend running model.onnx with onnxruntime (CPU), or the
    <repo>/model/1/model.onnx        native onnxruntime backend when the server has one (GPU container);
                                     the graph ends with the postprocess operators (top-k, raw ids)
    <repo>/ensemble/config.pbtxt     platform "ensemble" chaining preprocess -> model

With ``ServingConfig(max_in_flight=N)`` the first step admits at most ``N`` requests into the ensemble at a time
(:mod:`~sessrec_course.serving.admission`): both python steps get ``sessrec_admission.py`` and the ensemble
passes an ``admission_ticket`` from ``preprocess`` to ``model``.

With ``postprocess="python"`` the model returns all scores and a third python-backend step
``<repo>/postprocess/`` takes the top-k in numpy (one more server <-> Python hand-off per request).
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
from sessrec_course.serving.admission import DEFAULT_LEASE_MS, TICKET
from sessrec_course.serving.onnx_postprocess import OUTPUT_IDS, OUTPUT_SCORES, append_top_k
from sessrec_course.serving.transform import ServingState

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
TRANSFORM_FILE = Path(__file__).resolve().parent / "transform.py"
TRITON_COMMON_FILE = TEMPLATES / "_triton_common.py"  # travels beside every python-backend model.py
ONNX_SESSION_FILE = Path(__file__).resolve().parent.parent / "onnx_session.py"
ADMISSION_FILE = Path(__file__).resolve().parent / "admission.py"
ENSEMBLE = "ensemble"
INPUT_NAME = "item_id_list"
POSTPROCESS_CHOICES = ("onnx", "python")


@dataclass(frozen=True)
class ServingConfig:
    """Knobs of the exported repository (defaults tuned on 2 CPU cores, see docs/benchmarks.md)."""

    top_k: int = 20
    max_batch_size: int = 64
    # dynamic batching stays on (batches form under load) without making a request wait for others, the
    # faster setting on 2 cores (docs/history/serving.md)
    max_queue_delay_us: int = 0
    # bounded overload: the first step admits at most max_in_flight requests into the ensemble at a time and
    # rejects the others at once with UNAVAILABLE (0: no limit; admission.py). Off by default: the lesson
    # sets it where it shows overload
    max_in_flight: int = 0
    admission_lease_ms: float = DEFAULT_LEASE_MS
    # Triton's own queue policy per step (max waiting requests, timeout; 0 turns a limit off). Kept to show
    # why it is not used: with any policy Triton 2.51 holds some accepted requests ~500 ms (a missed wake-up
    # of its dynamic batcher, docs/serving_faults.md)
    max_queue_size: int = 0
    queue_timeout_ms: float = 0.0
    preprocess_instances: int = 1
    model_instances: int = 1
    postprocess_instances: int = 1
    intra_op_num_threads: int = 1
    model_backend: str = "auto"  # "auto", "python" (onnxruntime inside the python backend) or "onnxruntime"
    # "onnx": top-k + raw ids as operators at the end of the model graph, one python hand-off fewer than
    # "python" (a third numpy step), hence faster (docs/history/serving.md)
    postprocess: str = "onnx"

    def __post_init__(self) -> None:
        if self.postprocess not in POSTPROCESS_CHOICES:
            raise ValueError(f"postprocess must be one of {POSTPROCESS_CHOICES}, got {self.postprocess!r}")
        if self.max_in_flight < 0 or self.admission_lease_ms <= 0:
            raise ValueError(f"max_in_flight must be >= 0 and admission_lease_ms > 0, got {self.max_in_flight} "
                             f"and {self.admission_lease_ms}")
        if self.max_queue_size < 0 or self.queue_timeout_ms < 0:
            raise ValueError(f"max_queue_size and queue_timeout_ms must be >= 0, got {self.max_queue_size} "
                             f"and {self.queue_timeout_ms}")
        if self.top_k < 1 or self.max_batch_size < 1:
            raise ValueError(f"top_k and max_batch_size must be >= 1, got {self.top_k} and {self.max_batch_size}")


def _tensor(name: str, dtype: str, dims: list[int], ragged: bool = False) -> str:
    extra = " allow_ragged_batch: true" if ragged else ""
    return f'  {{ name: "{name}" data_type: {dtype} dims: [ {", ".join(map(str, dims))} ]{extra} }}'


def _config(name: str, *, backend: str | None, platform: str | None, max_batch_size: int,
            inputs: list[str], outputs: list[str], instances: int | None = None, kind: str = "KIND_CPU",
            queue_delay_us: int | None = None, policy: str = "", parameters: dict[str, str] | None = None,
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
        lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {queue_delay_us}{policy} }}")
    for key, value in (parameters or {}).items():
        lines.append(f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}')
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


def _ensemble_config(max_batch_size: int, top_k: int, postprocess: str, admission: bool = False) -> str:
    def step(model: str, inputs: dict[str, str], outputs: dict[str, str]) -> str:
        maps = [f'      input_map {{ key: "{k}" value: "{v}" }}' for k, v in inputs.items()]
        maps += [f'      output_map {{ key: "{k}" value: "{v}" }}' for k, v in outputs.items()]
        return f'    {{\n      model_name: "{model}"\n      model_version: -1\n' + "\n".join(maps) + "\n    }"

    final = {OUTPUT_IDS: OUTPUT_IDS, OUTPUT_SCORES: OUTPUT_SCORES}
    ticket = {TICKET: TICKET} if admission else {}
    steps = [step("preprocess", {INPUT_NAME: INPUT_NAME}, {"item_ids": "encoded_item_ids", **ticket})]
    if postprocess == "onnx":
        steps.append(step("model", {"item_ids": "encoded_item_ids", **ticket}, final))
    else:
        steps += [step("model", {"item_ids": "encoded_item_ids", **ticket}, {"scores": "item_scores"}),
                  step("postprocess", {"scores": "item_scores", "item_ids": "encoded_item_ids"}, final)]
    scheduling = "ensemble_scheduling {\n  step [\n" + ",\n".join(steps) + "\n  ]\n}"
    return _config(ENSEMBLE, backend=None, platform="ensemble", max_batch_size=max_batch_size,
                   inputs=[_tensor(INPUT_NAME, "TYPE_INT64", [-1])],
                   outputs=[_tensor(OUTPUT_IDS, "TYPE_INT64", [top_k]),
                            _tensor(OUTPUT_SCORES, "TYPE_FP32", [top_k])],
                   extra=scheduling)


def queue_policy(max_queue_size: int, timeout_ms: float) -> str:
    """Return the ``default_queue_policy`` of a dynamic batcher (empty when both limits are off).

    ``REJECT`` answers a request that waited too long with an error instead of running it late; a client may
    ask for a shorter wait per request (``allow_timeout_override``).
    """
    if not max_queue_size and not timeout_ms:
        return ""
    timeout_us = int(round(timeout_ms * 1000))
    return (f" default_queue_policy {{ timeout_action: REJECT default_timeout_microseconds: {timeout_us}"
            f" allow_timeout_override: true max_queue_size: {int(max_queue_size)} }}")


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
    """Write the Triton repository for ``onnx_model`` + ``state`` to ``output_dir`` and return its path.

    ``onnx_model`` takes ``input_name`` int64 (B, max_length) and returns ``output_name`` float32
    (B, item_cardinality). The repository is built in a temporary folder and moved into place, so a
    failed export never leaves a half-written repository behind.
    """
    config = config or ServingConfig()
    onnx_model = Path(onnx_model)
    if not onnx_model.is_file():
        raise FileNotFoundError(f"ONNX model not found: {onnx_model}")
    _check_onnx_signature(onnx_model, input_name, output_name, state)
    if config.top_k > state.item_cardinality - FIRST_ID:
        raise ValueError(f"top_k={config.top_k} exceeds the {state.item_cardinality - FIRST_ID} known items")
    backend = resolve_model_backend(config.model_backend)
    if config.max_in_flight and backend != "python":
        raise ValueError(f"max_in_flight needs model_backend='python' (its model step frees the admission slots), "
                         f"the {backend!r} backend cannot")
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


def _python_model(folder: Path, template: str, config_text: str, state: ServingState | None,
                  admission: bool = False) -> None:
    version = folder / "1"
    version.mkdir(parents=True)
    shutil.copyfile(TEMPLATES / template, version / "model.py")
    shutil.copyfile(TRITON_COMMON_FILE, version / TRITON_COMMON_FILE.name)
    if admission:
        shutil.copyfile(ADMISSION_FILE, version / "sessrec_admission.py")
    (folder / "config.pbtxt").write_text(config_text)
    if state is not None:
        shutil.copyfile(TRANSFORM_FILE, version / "sessrec_transform.py")
        state.save(version / "serving_state.npz")


def _write(repo: Path, onnx_model: Path, state: ServingState, cfg: ServingConfig, backend: str,
           input_name: str, output_name: str) -> None:
    length, n_items, batch = state.max_length, state.item_cardinality, cfg.max_batch_size
    delay = cfg.max_queue_delay_us
    policy = queue_policy(cfg.max_queue_size, cfg.queue_timeout_ms)
    admission = cfg.max_in_flight > 0
    gate = {"admission_max_in_flight": str(cfg.max_in_flight),
            "admission_lease_ms": f"{cfg.admission_lease_ms:g}"} if admission else {}
    ticket = [_tensor(TICKET, "TYPE_INT64", [2])] if admission else []
    _python_model(repo / "preprocess", "preprocess.py", _config(
        "preprocess", backend="python", platform=None, max_batch_size=batch,
        inputs=[_tensor(INPUT_NAME, "TYPE_INT64", [-1], ragged=True)],
        outputs=[_tensor("item_ids", "TYPE_INT64", [length])] + ticket,
        instances=cfg.preprocess_instances, queue_delay_us=delay, policy=policy, parameters=gate), state, admission)
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
            kind="KIND_GPU" if cuda_available() else "KIND_CPU", queue_delay_us=delay, policy=policy,
            parameters={"intra_op_thread_count": str(cfg.intra_op_num_threads), "inter_op_thread_count": "1"}))
    else:
        shutil.copyfile(TEMPLATES / "model_onnx.py", model_dir / "1" / "model.py")
        shutil.copyfile(TRITON_COMMON_FILE, model_dir / "1" / TRITON_COMMON_FILE.name)
        shutil.copyfile(ONNX_SESSION_FILE, model_dir / "1" / "sessrec_onnx_session.py")
        if admission:
            shutil.copyfile(ADMISSION_FILE, model_dir / "1" / "sessrec_admission.py")
        (model_dir / "config.pbtxt").write_text(_config(
            "model", backend="python", platform=None, max_batch_size=batch,
            inputs=[_tensor("item_ids", "TYPE_INT64", [length])] + ticket, outputs=outputs,
            instances=cfg.model_instances, queue_delay_us=delay, policy=policy,
            parameters={"intra_op_num_threads": str(cfg.intra_op_num_threads), "inter_op_num_threads": "1", **gate}))
    if cfg.postprocess == "python":
        _python_model(repo / "postprocess", "postprocess.py", _config(
            "postprocess", backend="python", platform=None, max_batch_size=batch,
            inputs=[_tensor("scores", "TYPE_FP32", [n_items]), _tensor("item_ids", "TYPE_INT64", [length])],
            outputs=[_tensor(OUTPUT_IDS, "TYPE_INT64", [cfg.top_k]),
                     _tensor(OUTPUT_SCORES, "TYPE_FP32", [cfg.top_k])],
            instances=cfg.postprocess_instances, queue_delay_us=delay, policy=policy,
            parameters={"top_k": str(cfg.top_k)}), state)
    (repo / ENSEMBLE / "1").mkdir(parents=True)
    (repo / ENSEMBLE / "config.pbtxt").write_text(_ensemble_config(batch, cfg.top_k, cfg.postprocess, admission))
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
