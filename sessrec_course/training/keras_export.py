"""Saving and loading Keras session models (one folder, written atomically), and their ONNX export with the
Triton ensemble's model contract (``item_ids`` → ``scores``): served exactly like a PyTorch model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from sessrec_course.models import ModelConfig
from sessrec_course.models.keras_base import KerasSessionModel
from sessrec_course.models.keras_build import build_keras_model
from sessrec_course.paths import write_directory_atomically, write_file_atomically

WEIGHTS_FILE, CONFIG_FILE, CATEGORY_FILE = "model.weights.h5", "config.json", "item_category.npy"
INPUT_NAME, OUTPUT_NAME = "item_ids", "scores"


def save_keras_model(model: KerasSessionModel, directory: str | Path, extra: dict | None = None) -> Path:
    """Write weights, config (+ ``extra``, e.g. the history) and the item→category lookup to ``directory``."""

    def write(tmp: Path) -> None:
        model.save_weights(tmp / WEIGHTS_FILE)
        np.save(tmp / CATEGORY_FILE, model.item_category[: model.n_items])
        payload = {"framework": "keras", "model": model.config.to_dict(), **(extra or {})}
        (tmp / CONFIG_FILE).write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")

    return write_directory_atomically(directory, write)


def load_keras_model(directory: str | Path) -> KerasSessionModel:
    """Rebuild a model saved by :func:`save_keras_model` (inference ready)."""
    directory = Path(directory)
    for name in (WEIGHTS_FILE, CONFIG_FILE, CATEGORY_FILE):
        if not (directory / name).exists():
            raise FileNotFoundError(f"{directory / name} not found: not a folder written by save_keras_model()")
    config = ModelConfig.from_dict(json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))["model"])
    model = build_keras_model(config, item_category=np.load(directory / CATEGORY_FILE))
    model.load_weights(directory / WEIGHTS_FILE)
    return model


def serving_function(model: KerasSessionModel):
    """The traced inference graph: ``item_ids`` int64 (B, L) → ``{"scores": float32 (B, n_items)}``."""
    spec = tf.TensorSpec((None, None), tf.int64, name=INPUT_NAME)
    return tf.function(lambda item_ids: {OUTPUT_NAME: model(item_ids, training=False)}, input_signature=[spec])


def export_onnx(model: KerasSessionModel, path: str | Path, opset: int = 17) -> Path:
    """Export the serving graph as ONNX (dynamic batch and length) to ``path``; needs ``tf2onnx``."""
    import tf2onnx

    function = serving_function(model)
    write_file_atomically(path, lambda tmp: tf2onnx.convert.from_function(
        function, input_signature=function.input_signature, opset=opset, output_path=str(tmp)))
    return Path(path)


def onnx_parity(model: KerasSessionModel, path: str | Path, item_ids: np.ndarray) -> float:
    """Return the largest absolute score difference between ONNX Runtime and the Keras model on ``item_ids``."""
    from sessrec_course.onnx_session import onnx_session

    ids = np.asarray(item_ids, dtype=np.int64)
    served = onnx_session(path).run([OUTPUT_NAME], {INPUT_NAME: ids})[0]
    return float(np.abs(served - model(ids, training=False).numpy()).max())
