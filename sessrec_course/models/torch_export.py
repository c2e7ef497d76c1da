"""Saving, loading and exporting a trained session model: ``model.pt`` + ``config.json`` in one folder; ONNX (what
Triton serves) with one input ``item_ids`` int64 ``(B, L)`` right-padded with 0 and one output ``scores`` float32
``(B, item_cardinality)``, batch and length dynamic; :func:`check_parity` compares an export with the eager model."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sessrec_course.models import ModelConfig, build_model
from sessrec_course.paths import write_directory_atomically, write_file_atomically

logger = logging.getLogger(__name__)

INPUT_NAME = "item_ids"
OUTPUT_NAME = "scores"
ONNX_OPSET = 17


def save_model(model: torch.nn.Module, directory: str | Path, extra: dict | None = None) -> Path:
    """Write ``model.pt`` (state dict) and ``config.json`` into ``directory`` (replaced atomically)."""
    def write(tmp: Path) -> None:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp / "model.pt")
        meta = {"config": model.config.to_dict(), **(extra or {})}
        (tmp / "config.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    return write_directory_atomically(directory, write)


def load_model(directory: str | Path) -> torch.nn.Module:
    """Rebuild a model saved by :func:`save_model` on the CPU (state dict loaded ``weights_only``), in eval mode."""
    directory = Path(directory)
    config_path, weights_path = directory / "config.json", directory / "model.pt"
    for path in (config_path, weights_path):
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: not a saved model folder (expected config.json + model.pt)")
    meta = json.loads(config_path.read_text(encoding="utf-8"))
    if "config" not in meta:
        raise ValueError(f"{config_path}: no 'config' entry")
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    model = build_model(ModelConfig.from_dict(meta["config"]), item_category=state.get("item_category"))
    model.load_state_dict(state)
    return model.eval()


def example_input(max_length: int) -> torch.Tensor:
    """A small valid ``item_ids`` batch for tracing: two right-padded rows, of ``max_length`` items and one less."""
    ids = torch.full((2, max_length), 2, dtype=torch.long)
    ids[1, max(1, max_length - 1) :] = 0
    return ids


def check_servable(model: torch.nn.Module | dict) -> None:
    """Raise ValueError for a model (or its config overrides) the serving contract cannot feed (raw item ids only)."""
    settings = model if isinstance(model, dict) else model.config.to_dict()
    if settings.get("time_features"):
        raise ValueError(f"cannot export a model trained with time_features: the serving contract (Triton input "
                         f"{INPUT_NAME!r}) carries raw item ids only, not the click times it needs; train the same "
                         "preset with time_features=False (model_overrides={'time_features': False}) to serve it")


def _export(model: torch.nn.Module, path: str | Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` of a servable model in eval mode on the CPU, without gradients, then renamed to ``path``."""
    check_servable(model)
    model.eval().cpu()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_file_atomically(path, write)
    logger.info("%s written", path)
    return Path(path)


def export_onnx(model: torch.nn.Module, path: str | Path, max_length: int | None = None) -> Path:
    """Export ``model`` to ONNX at ``path`` (input ``item_ids`` (batch, length), output ``scores``)."""
    example = example_input(max_length or model.max_length)
    return _export(model, path, lambda tmp: torch.onnx.export(
        model, (example,), str(tmp), dynamo=False, opset_version=ONNX_OPSET, input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME], dynamic_axes={INPUT_NAME: {0: "batch", 1: "length"}, OUTPUT_NAME: {0: "batch"}}))


def exported_scores(path: str | Path, item_ids: np.ndarray) -> np.ndarray:
    """Scores of an exported ONNX model for ``item_ids``, run by onnxruntime on CPU as the server runs it."""
    from sessrec_course.onnx_session import onnx_session

    return onnx_session(path).run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(item_ids, dtype=np.int64)})[0]


def check_parity(model: torch.nn.Module, path: str | Path, item_ids: np.ndarray, k: int = 20) -> dict[str, float]:
    """``{"max_abs_diff", "topk_agreement"}`` of an export against the eager model; AssertionError unless every top-k
    agrees (rows whose k-th and (k+1)-th eager scores are within 1e-4 are not held to an exact order)."""
    model = model.eval().cpu()
    with torch.no_grad():
        eager = model(torch.as_tensor(item_ids, dtype=torch.long)).numpy()
    other = exported_scores(path, item_ids)
    if other.shape != eager.shape:
        raise AssertionError(f"{path}: scores shape {other.shape}, eager {eager.shape}")
    top_e = np.argsort(-eager, axis=1, kind="stable")[:, : k + 1]
    top_o = np.argsort(-other, axis=1, kind="stable")[:, :k]
    same = (top_e[:, :k] == top_o).all(axis=1)
    gaps = np.take_along_axis(eager, top_e, axis=1)
    near_tie = (np.abs(np.diff(gaps, axis=1)) < 1e-4).any(axis=1)
    result = {"max_abs_diff": float(np.abs(other - eager).max()), "topk_agreement": float(same.mean())}
    if not (same | near_tie).all():
        raise AssertionError(f"{path}: top-{k} differs from the eager model on {int((~(same | near_tie)).sum())} of "
                             f"{len(same)} sessions")
    logger.info("parity of %s: %s", path, result)
    return result
