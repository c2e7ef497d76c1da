"""Export a Triton repository, every ``config.pbtxt`` generated from the schema: ``preprocess`` (python backend:
raw -> encoded ids with the in-process code and the fitted tables) -> ``model`` (the ONNX graph ending with the
top-k operators; onnxruntime in a python-backend model.py on CPU, the native backend on GPU), as one ``ensemble``."""

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
from sessrec_course.serving.onnx_postprocess import MODEL_INPUT, OUTPUT_IDS, OUTPUT_SCORES, append_top_k
from sessrec_course.serving.server_setup import available_backends
from sessrec_course.serving.transform import ServingState

log = logging.getLogger(__name__)

PYTHON_STEP_FILE = Path(__file__).resolve().parent / "templates" / "python_step.py"  # both python steps' model.py
TRANSFORM_FILE = Path(__file__).resolve().parent / "transform.py"
ONNX_SESSION_FILE = Path(__file__).resolve().parent.parent / "onnx_session.py"
ENSEMBLE = "ensemble"
INPUT_NAME = "item_id_list"


@dataclass(frozen=True)
class ServingConfig:
    """Knobs of the exported repository (defaults tuned on 2 CPU cores, see docs/benchmarks.md)."""

    top_k: int = 20
    max_batch_size: int = 64
    max_queue_delay_us: int = 0  # batches still form under load; no request waits for company (faster on 2 cores)
    preprocess_instances: int = 1
    model_instances: int = 1
    intra_op_num_threads: int = 1
    model_backend: str = "auto"  # "auto", "python" (onnxruntime inside the python backend) or "onnxruntime"

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.max_batch_size < 1:
            raise ValueError(f"top_k and max_batch_size must be >= 1, got {self.top_k} and {self.max_batch_size}")
        if self.model_backend not in ("auto", "python", "onnxruntime"):
            raise ValueError(f"model_backend must be 'auto', 'python' or 'onnxruntime', got {self.model_backend!r}")


def _tensor(name: str, dtype: str, dims: list[int], ragged: bool = False) -> str:
    extra = " allow_ragged_batch: true" if ragged else ""
    return f'  {{ name: "{name}" data_type: {dtype} dims: [ {", ".join(map(str, dims))} ]{extra} }}'


def _config(name: str, *, backend: str | None = None, platform: str | None = None, max_batch_size: int,
            inputs: list[str], outputs: list[str], instances: int | None = None, kind: str = "KIND_CPU",
            queue_delay_us: int | None = None, parameters: dict[str, str] | None = None, extra: str = "") -> str:
    lines = [f'name: "{name}"', f'backend: "{backend}"' if backend else f'platform: "{platform}"',
             f"max_batch_size: {max_batch_size}", "input [\n" + ",\n".join(inputs) + "\n]",
             "output [\n" + ",\n".join(outputs) + "\n]"]
    if instances:
        lines.append(f"instance_group [ {{ count: {instances} kind: {kind} }} ]")
    if queue_delay_us is not None:
        lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {queue_delay_us} }}")
    lines += [f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}' for key, value in
              (parameters or {}).items()]
    return "\n".join(lines + ([extra] if extra else [])) + "\n"


def _ensemble_config(max_batch_size: int, top_k: int) -> str:
    def step(model: str, inputs: dict[str, str], outputs: dict[str, str]) -> str:
        maps = [f'      input_map {{ key: "{k}" value: "{v}" }}' for k, v in inputs.items()]
        maps += [f'      output_map {{ key: "{k}" value: "{v}" }}' for k, v in outputs.items()]
        return f'    {{\n      model_name: "{model}"\n      model_version: -1\n' + "\n".join(maps) + "\n    }"

    encoded = {MODEL_INPUT: "encoded_item_ids"}
    steps = [step("preprocess", {INPUT_NAME: INPUT_NAME}, encoded),
             step("model", encoded, {OUTPUT_IDS: OUTPUT_IDS, OUTPUT_SCORES: OUTPUT_SCORES})]
    return _config(ENSEMBLE, platform="ensemble", max_batch_size=max_batch_size,
                   inputs=[_tensor(INPUT_NAME, "TYPE_INT64", [-1])],
                   outputs=[_tensor(OUTPUT_IDS, "TYPE_INT64", [top_k]), _tensor(OUTPUT_SCORES, "TYPE_FP32", [top_k])],
                   extra="ensemble_scheduling {\n  step [\n" + ",\n".join(steps) + "\n  ]\n}")


def export_repository(output_dir: str | Path, onnx_model: str | Path, state: ServingState,
                      config: ServingConfig | None = None) -> Path:
    """Write the repository of ``onnx_model`` (``item_ids`` int64 (B, L) -> ``scores`` (B, items)) atomically."""
    config, onnx_model = config or ServingConfig(), Path(onnx_model)
    if not onnx_model.is_file():
        raise FileNotFoundError(f"ONNX model not found: {onnx_model}")
    if config.top_k > state.item_cardinality - FIRST_ID:
        raise ValueError(f"top_k={config.top_k} exceeds the {state.item_cardinality - FIRST_ID} known items")
    backend = config.model_backend  # "auto": the native onnxruntime backend when the server ships it
    if backend == "auto":
        backend = "onnxruntime" if "onnxruntime" in available_backends() else "python"
    write_directory_atomically(output_dir, lambda tmp: _write(tmp, onnx_model, state, config, backend))
    log.info("exported Triton repository to %s (model backend: %s)", output_dir, backend)
    return Path(output_dir)


def _python_model(folder: Path, config_text: str, files: dict[str, Path]) -> Path:
    """Write ``config.pbtxt`` and ``1/``: the step template as ``model.py`` and the ``files`` it imports."""
    (folder / "1").mkdir(parents=True)
    (folder / "config.pbtxt").write_text(config_text)
    for name, source in {"model.py": PYTHON_STEP_FILE, **files}.items():
        shutil.copyfile(source, folder / "1" / name)
    return folder / "1"


def _write(repo: Path, onnx_model: Path, state: ServingState, cfg: ServingConfig, backend: str) -> None:
    length, k, threads = state.max_length, cfg.top_k, str(cfg.intra_op_num_threads)
    common = {"max_batch_size": cfg.max_batch_size, "queue_delay_us": cfg.max_queue_delay_us}
    state.save(_python_model(repo / "preprocess", _config(
        "preprocess", backend="python", inputs=[_tensor(INPUT_NAME, "TYPE_INT64", [-1], ragged=True)],
        outputs=[_tensor(MODEL_INPUT, "TYPE_INT64", [length])], instances=cfg.preprocess_instances, **common),
        {"sessrec_transform.py": TRANSFORM_FILE}) / "serving_state.npz")
    model = {"inputs": [_tensor(MODEL_INPUT, "TYPE_INT64", [length])], "instances": cfg.model_instances,
             "outputs": [_tensor(OUTPUT_IDS, "TYPE_INT64", [k]), _tensor(OUTPUT_SCORES, "TYPE_FP32", [k])], **common}
    if backend == "onnxruntime":
        from sessrec_course.environment import cuda_available

        (repo / "model" / "1").mkdir(parents=True)
        (repo / "model" / "config.pbtxt").write_text(_config(
            "model", backend="onnxruntime", kind="KIND_GPU" if cuda_available() else "KIND_CPU",
            parameters={"intra_op_thread_count": threads, "inter_op_thread_count": "1"}, **model))
    else:
        _python_model(repo / "model", _config(
            "model", backend="python", parameters={"intra_op_num_threads": threads, "inter_op_num_threads": "1"},
            **model), {"sessrec_onnx_session.py": ONNX_SESSION_FILE})
    append_top_k(onnx_model, repo / "model" / "1" / "model.onnx", state, k)  # the postprocess ends the model graph
    (repo / ENSEMBLE / "1").mkdir(parents=True)
    (repo / ENSEMBLE / "config.pbtxt").write_text(_ensemble_config(cfg.max_batch_size, k))
    (repo / "sessrec_serving.json").write_text(json.dumps({
        "top_k": k, "max_length": length, "item_cardinality": state.item_cardinality, "model_backend": backend,
        "input": INPUT_NAME, "outputs": [OUTPUT_IDS, OUTPUT_SCORES], "ensemble": ENSEMBLE, "config": cfg.__dict__},
        indent=2))


def popularity_scores(encoded_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (encoded ids by decreasing count, their share of clicks) from per-encoded-id counts."""
    counts = np.asarray(encoded_counts, dtype=np.float64)[FIRST_ID:]  # real items only
    order = order_desc(counts)
    return (order + FIRST_ID).astype(np.int64), (counts[order] / max(counts.sum(), 1.0)).astype(np.float32)
