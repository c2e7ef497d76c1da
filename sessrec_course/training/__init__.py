"""Training the PyTorch session models: data → tensors, the one trainer, the numpy Recommender adapter.

- :mod:`.torch_data`        ETL parquet → padded int64 matrix → batches
- :mod:`.common`            presets and :class:`History`, shared with the Keras track (``keras_*``)
- :mod:`.torch_trainer`     :func:`fit`, :class:`TrainConfig`
- :mod:`.torch_recommender` :class:`TorchRecommender` (``score(item_ids) -> scores`` in numpy)
- :mod:`.torch_pipeline`    :func:`train_model` (default data + profile → trained model, cached on disk)
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "fit": "torch_trainer", "TrainConfig": "torch_trainer", "History": "common",
    "TorchRecommender": "torch_recommender", "make_loader": "torch_data", "read_sessions": "torch_data",
    "read_schema": "torch_data", "train_model": "torch_pipeline", "MODEL_PRESETS": "common", "TRAIN_PRESETS": "common",
    "DatasetPaths": "torch_pipeline", "resolve_artifacts": "torch_pipeline", "model_config": "common",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
