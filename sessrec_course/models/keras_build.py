"""``build_keras_model``: the one place that picks the Keras model class for a config (imports TensorFlow)."""

from __future__ import annotations

import numpy as np

from sessrec_course.models.config import ModelConfig
from sessrec_course.models.keras_base import KerasSessionModel
from sessrec_course.models.keras_gru import KerasGRUSessionModel
from sessrec_course.models.keras_mlp import KerasMLPSessionModel
from sessrec_course.models.keras_transformer import KerasTransformerSessionModel

KERAS_MODELS = {"mlp": KerasMLPSessionModel, "gru": KerasGRUSessionModel,
                "transformer": KerasTransformerSessionModel}


def build_keras_model(config: ModelConfig, item_category: np.ndarray | None = None) -> KerasSessionModel:
    """Return the untrained Keras model for ``config``, its weights created (called once on padding)."""
    if config.time_features:
        raise ValueError("time_features exist in the PyTorch models only: build the Keras twin without them")
    if config.repeat_mixture:
        raise ValueError("repeat_mixture exists in the PyTorch models only (use the additive repeat_bias)")
    model = KERAS_MODELS[config.name](config, item_category=item_category, name=f"keras_{config.name}")
    model(np.zeros((1, config.max_length), dtype=np.int64))
    return model
