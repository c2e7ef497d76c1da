"""Saving, loading and exporting a trained session model for serving.

- :func:`save_model` / :func:`load_model`: ``model.pt`` (state dict, loaded with ``weights_only=True``)
  + ``config.json`` (the :class:`~sessrec_course.models.ModelConfig`) in one folder, written atomically.
- :func:`export_torchscript` / :func:`export_onnx`: one input ``item_ids`` int64 ``(B, L)`` right-padded
  with 0, one output ``scores`` float32 ``(B, item_cardinality)``; batch and length are dynamic.
- :func:`check_parity`: the exported model gives the same top-k as the eager one on real sessions.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from sessrec_course.models import ModelConfig, build_model
from sessrec_course.paths import write_directory_atomically

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


def load_model(directory: str | Path, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a model saved by :func:`save_model` (state dict loaded with ``weights_only=True``), in eval mode."""
    directory = Path(directory)
    config_path, weights_path = directory / "config.json", directory / "model.pt"
    for path in (config_path, weights_path):
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: not a saved model folder (expected config.json + model.pt)")
    meta = json.loads(config_path.read_text(encoding="utf-8"))
    if "config" not in meta:
        raise ValueError(f"{config_path}: no 'config' entry")
    config = ModelConfig.from_dict(meta["config"])
    state = torch.load(weights_path, map_location=map_location, weights_only=True)
    model = build_model(config, item_category=state.get("item_category"))
    model.load_state_dict(state)
    return model.eval()


def example_input(max_length: int, batch: int = 2, item: int = 2) -> torch.Tensor:
    """A small valid ``item_ids`` batch for tracing (varying lengths, right-padded)."""
    ids = torch.zeros(batch, max_length, dtype=torch.long)
    for row in range(batch):
        ids[row, : max(1, max_length - row)] = item
    return ids


def check_servable(model: torch.nn.Module | dict) -> None:
    """Raise ValueError for a model (or its config overrides) the serving contract cannot feed (raw item ids only)."""
    settings = model if isinstance(model, dict) else model.config.to_dict()
    if settings.get("time_features"):
        raise ValueError(
            "cannot export a model trained with time_features: the course's serving contract (Triton "
            f"input {INPUT_NAME!r}) carries raw item ids only, so a server could not send the click times this model "
            "needs; train the same preset with time_features=False (model_overrides={'time_features': False}) "
            "to serve it"
        )


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def export_torchscript(model: torch.nn.Module, path: str | Path, example: torch.Tensor | None = None) -> Path:
    """Trace ``model`` to TorchScript at ``path`` (``example``: item ids used for tracing)."""
    check_servable(model)
    path = Path(path)
    model = model.eval().cpu()
    example = example_input(model.max_length) if example is None else example.long().cpu()
    tmp = _atomic_target(path)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, (example,), check_trace=False)
        traced.save(str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("TorchScript model written to %s", path)
    return path


def export_onnx(model: torch.nn.Module, path: str | Path, max_length: int | None = None) -> Path:
    """Export ``model`` to ONNX at ``path`` (input ``item_ids`` (batch, length), output ``scores``)."""
    check_servable(model)
    path = Path(path)
    model = model.eval().cpu()
    example = example_input(max_length or model.max_length)
    tmp = _atomic_target(path)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), str(tmp), dynamo=False, opset_version=ONNX_OPSET,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch", 1: "length"}, OUTPUT_NAME: {0: "batch"}},
            )
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("ONNX model written to %s", path)
    return path


def exported_scores(path: str | Path, item_ids: np.ndarray) -> np.ndarray:
    """Scores of an exported model (``.pt`` TorchScript or ``.onnx``) for ``item_ids`` on CPU."""
    path = Path(path)
    item_ids = np.ascontiguousarray(item_ids, dtype=np.int64)
    if path.suffix == ".onnx":
        from sessrec_course.onnx_session import onnx_session

        session = onnx_session(path)
        return session.run([OUTPUT_NAME], {INPUT_NAME: item_ids})[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return scripted(torch.from_numpy(item_ids)).numpy()


def check_parity(model: torch.nn.Module, path: str | Path, item_ids: np.ndarray, k: int = 20) -> dict[str, float]:
    """Compare an exported model with the eager one; raise AssertionError unless the top-k lists agree.

    Returns ``{"max_abs_diff": ..., "topk_agreement": ...}`` (share of rows with identical top-k).
    Rows whose k-th and (k+1)-th eager scores are closer than 1e-4 are not held to an exact order.
    """
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
    diff = float(np.abs(other - eager).max())
    result = {"max_abs_diff": diff, "topk_agreement": float(same.mean())}
    if not (same | near_tie).all():
        bad = int((~(same | near_tie)).sum())
        raise AssertionError(f"{path}: top-{k} differs from the eager model on {bad} of {len(same)} sessions")
    logger.info("parity of %s: %s", path, result)
    return result
