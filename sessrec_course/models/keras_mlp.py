"""MLP session model in Keras (a neural n-gram, the twin of :mod:`.torch_mlp`): the last N item embeddings,
concatenated, through a small MLP; the window ending at item ``t`` predicts item ``t + 1``."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from sessrec_course.models.config import ModelConfig
from sessrec_course.models.keras_base import KerasSessionModel, gelu


class KerasMLPSessionModel(KerasSessionModel):
    """Concatenate the last ``window`` item embeddings (zeros before the session start) → MLP → H."""

    def __init__(self, config: ModelConfig, item_category: np.ndarray | None = None, **kwargs) -> None:
        super().__init__(config, item_category, **kwargs)
        self.mlp = keras.Sequential([
            keras.layers.Dense(2 * config.hidden_size, activation=gelu),
            keras.layers.Dropout(config.dropout),
            keras.layers.Dense(config.hidden_size),
        ], name="mlp")
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5)

    def sequence_hidden(self, item_ids, training=None):
        """Window ``[t - N + 1, t]`` of embeddings at each position ``t`` → ``(B, L, H)``."""
        x = self.embed(item_ids, training=training)  # (B, L, H), padding rows are zero
        window, length = self.config.window, ops.shape(x)[1]
        padded = ops.pad(x, [[0, 0], [window - 1, 0], [0, 0]])  # zeros before the first item
        windows = ops.concatenate([padded[:, k : k + length] for k in range(window)], axis=-1)  # oldest → newest
        return self.norm(self.mlp(windows, training=training) + x)
