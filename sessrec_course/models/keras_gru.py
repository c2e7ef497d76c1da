"""GRU session model in Keras (GRU4Rec, Hidasi et al. 2016), the twin of :mod:`.torch_gru`: the state after
item ``t`` scores item ``t + 1``; Keras' default ``reset_after=True`` is the PyTorch/cuDNN formulation."""

from __future__ import annotations

import keras
import numpy as np

from sessrec_course.ids import PAD_ID
from sessrec_course.models.config import ModelConfig
from sessrec_course.models.keras_base import KerasSessionModel


class KerasGRUSessionModel(KerasSessionModel):
    """Embeddings → GRU (``num_layers``) → dropout; the padding mask stops the state at the last item."""

    def __init__(self, config: ModelConfig, item_category: np.ndarray | None = None, **kwargs) -> None:
        super().__init__(config, item_category, **kwargs)
        self.grus = [keras.layers.GRU(config.hidden_size, return_sequences=True, name=f"gru_{i}")
                     for i in range(config.num_layers)]
        self.dropout = keras.layers.Dropout(config.dropout)  # between GRU layers and on the output

    def sequence_hidden(self, item_ids, training=None):
        """GRU state after each item → ``(B, L, H)``."""
        x = self.embed(item_ids, training=training)
        for i, gru in enumerate(self.grus):
            if i:
                x = self.dropout(x, training=training)
            x = gru(x, mask=item_ids != PAD_ID, training=training)
        return self.dropout(x, training=training)
