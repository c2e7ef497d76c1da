"""Causal Transformer (SASRec / GPT-2 style) from Keras layers, since transformers 5 has no TensorFlow models:
the twin of the ``gpt2`` backbone of :mod:`.torch_transformer`. Position ``t`` sees items ``≤ t`` only."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from sessrec_course.ids import PAD_ID
from sessrec_course.models.config import ModelConfig
from sessrec_course.models.keras_base import KerasSessionModel, gelu


class Block(keras.layers.Layer):
    """One pre-norm transformer block: ``x + attn(LN(x))`` then ``x + FFN(LN(x))``, and its attention maps."""

    def __init__(self, hidden: int, heads: int, dropout: float, **kwargs) -> None:
        super().__init__(**kwargs)
        init = keras.initializers.RandomNormal(stddev=0.02)  # GPT-2's initialisation
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
        self.attention = keras.layers.MultiHeadAttention(heads, hidden // heads, dropout=dropout,
                                                         kernel_initializer=init)
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
        self.ffn_in = keras.layers.Dense(4 * hidden, activation=gelu, kernel_initializer=init)
        self.ffn_out = keras.layers.Dense(hidden, kernel_initializer=init)
        self.dropout = keras.layers.Dropout(dropout)

    def call(self, x, mask, training=None):
        h = self.norm1(x)
        attended, scores = self.attention(h, h, attention_mask=mask, training=training,
                                          return_attention_scores=True)
        x = x + self.dropout(attended, training=training)
        x = x + self.dropout(self.ffn_out(self.ffn_in(self.norm2(x))), training=training)
        return x, scores


class KerasTransformerSessionModel(KerasSessionModel):
    """Item (+ category) + position embeddings → causal transformer blocks → hidden state per position."""

    def __init__(self, config: ModelConfig, item_category: np.ndarray | None = None, **kwargs) -> None:
        super().__init__(config, item_category, **kwargs)
        hidden, heads = config.hidden_size, config.num_heads
        if hidden % heads:
            raise ValueError(f"hidden_size {hidden} is not divisible by num_heads {heads}")
        self.position_embedding = keras.layers.Embedding(
            config.max_length, hidden, embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02))
        self.embed_dropout = keras.layers.Dropout(config.dropout)
        self.blocks = [Block(hidden, heads, config.dropout, name=f"block_{i}") for i in range(config.num_layers)]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5)

    def attention_mask(self, item_ids):
        """``(B, L, L)`` bool: query ``t`` sees keys ``s ≤ t`` holding an item, and key 0 (no empty row)."""
        positions = ops.arange(ops.shape(item_ids)[1])
        causal = positions[None, :] <= positions[:, None]
        keys = ops.logical_or(item_ids != PAD_ID, (positions == 0)[None, :])
        return ops.logical_and(causal[None, :, :], keys[:, None, :])

    def sequence_hidden(self, item_ids, training=None, return_scores=False):
        """Transformer output at each position → ``(B, L, H)`` (and the attention maps if asked)."""
        positions = ops.arange(ops.shape(item_ids)[1])
        x = self.embed(item_ids, training=training) + self.position_embedding(positions)[None]
        x = self.embed_dropout(x, training=training)
        mask, maps = self.attention_mask(item_ids), []
        for block in self.blocks:
            x, scores = block(x, mask, training=training)
            maps.append(scores)
        x = self.final_norm(x)
        if self.config.item_skip:  # the current item straight to the output layer (SR-GNN's "local" interest)
            x = x + self.item_embedding(item_ids)
        return (x, ops.stack(maps)) if return_scores else x

    def attention_weights(self, item_ids) -> np.ndarray:
        """Attention of every layer for right-padded ``item_ids`` → ``(layers, B, heads, L, L)`` (inference)."""
        _, maps = self.sequence_hidden(self.sanitize(item_ids), training=False, return_scores=True)
        return ops.convert_to_numpy(maps)
