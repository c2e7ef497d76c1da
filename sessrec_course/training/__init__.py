"""Training the session models of both frameworks: data → tensors, the trainers, the numpy Recommender adapters.

- :mod:`.common`            presets, :func:`model_config`, :class:`TrainConfig`, :class:`History`
- :mod:`.artifacts`         the ETL output's files (:class:`DatasetPaths`) and schema
- :mod:`.validation`        validation cases, the validator, the baselines, the numpy scoring adapter base
- :mod:`.cache`             the checkpoint key (data, configs and model code) of both frameworks
- :mod:`.torch_data`        ETL parquet → padded int64 matrix → batches
- :mod:`.torch_trainer`     :func:`fit`, the PyTorch loop, and its hooks
- :mod:`.torch_callbacks`   precision, schedule, bar, validation, early stopping, checkpoints
- :mod:`.torch_recommender` :class:`TorchRecommender` (``score(item_ids) -> scores`` in numpy)
- :mod:`.torch_pipeline`    :func:`train_model` (default data + profile → trained model, cached on disk)
- :mod:`.torch_ddp`         :func:`train_distributed` (``torchrun`` launched from Python), the DDP callback
- :mod:`.keras_data`, :mod:`.keras_trainer`, :mod:`.keras_export`  the Keras twins (``train_keras_model``)
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "fit": "torch_trainer", "standard_callbacks": "torch_callbacks", "TrainConfig": "common", "History": "common",
    "TorchRecommender": "torch_recommender", "make_loader": "torch_data", "read_sessions": "torch_data",
    "read_schema": "artifacts", "train_model": "torch_pipeline", "MODEL_PRESETS": "common", "TRAIN_PRESETS": "common",
    "KERAS_PRESETS": "common", "DatasetPaths": "artifacts", "resolve_artifacts": "artifacts", "model_config": "common",
    "training_setup": "common", "test_cases": "validation",
    "baseline_results": "validation", "run_baselines": "validation", "fit_model": "torch_pipeline",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
