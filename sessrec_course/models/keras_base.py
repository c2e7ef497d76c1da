"""What every Keras session model shares (the Keras 3 twin of :mod:`.torch_base`): embeddings, output, loss;
a subclass implements :meth:`KerasSessionModel.sequence_hidden`: ids ``(B, L)`` → hidden ``(B, L, H)``."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from sessrec_course.ids import OOV_ID, PAD_ID
from sessrec_course.models.config import ModelConfig

MASKED_SCORE = -1.0e9  # score given to padding and OOV so that they are never recommended


def gelu(x):
    """Exact GELU ``x * Φ(x)`` written with ``erf`` (Keras' own uses ``erfc``, which ONNX has no op for)."""
    return 0.5 * x * (1.0 + ops.erf(x * 0.7071067811865476))


class TiedOutput(keras.layers.Layer):
    """Scores ``hidden @ E[:n_items].T + bias`` (``E``: item embeddings), or ``score_scale · cos`` (NISER)."""

    def __init__(self, embedding: keras.layers.Embedding, n_items: int, score_scale: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.embedding, self.n_items, self.score_scale = embedding, n_items, score_scale
        self.bias = self.add_weight(shape=(n_items,), initializer="zeros", name="output_bias")

    def call(self, hidden):
        weight = self.embedding.embeddings[: self.n_items]
        if self.score_scale > 0:  # NISER: both sides L2-normalised
            hidden = self.score_scale * ops.normalize(hidden, axis=-1, epsilon=1e-12)
            weight = ops.normalize(weight, axis=-1, epsilon=1e-12)
        return ops.matmul(hidden, ops.transpose(weight)) + self.bias


class KerasSessionModel(keras.Model):
    """Base class: ``model(item_ids (B, L) int64) -> scores (B, item_cardinality) float32``."""

    def __init__(self, config: ModelConfig, item_category: np.ndarray | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not config.causal:
            raise ValueError("the Keras track has causal models only (transformer backbone 'gpt2')")
        if not config.tie_weights:
            raise ValueError("the Keras models always tie the output layer to the item embeddings")
        self.config, self.n_items, self.max_length = config, config.item_cardinality, config.max_length
        n_items, hidden = config.item_cardinality, config.hidden_size
        self.item_embedding = keras.layers.Embedding(
            n_items + 1, hidden, embeddings_initializer=keras.initializers.RandomNormal(stddev=hidden**-0.5),
            name="item_embedding")
        self.item_category = np.zeros(n_items + 1, dtype=np.int64)  # item id → category id (0: none)
        if item_category is not None:
            item_category = np.asarray(item_category, dtype=np.int64)
            if item_category.shape[0] > n_items:
                raise ValueError(f"item_category has {item_category.shape[0]} rows, more than {n_items} items")
            self.item_category[: item_category.shape[0]] = np.clip(item_category, 0, None)
        self.category_embedding = None
        if config.category_cardinality > 0:
            if int(self.item_category.max()) >= config.category_cardinality:
                raise ValueError(f"item_category holds category {int(self.item_category.max())} but "
                                 f"category_cardinality is {config.category_cardinality}")
            self.category_embedding = keras.layers.Embedding(
                config.category_cardinality, hidden, name="category_embedding",
                embeddings_initializer=keras.initializers.RandomNormal(stddev=0.5 * hidden**-0.5))
        self.input_dropout = keras.layers.Dropout(config.dropout)
        self.output_layer = TiedOutput(self.item_embedding, n_items, config.score_scale, name="tied_output")
        self.repeat_bias = None if not config.repeat_bias else self.add_weight(
            shape=(config.max_length,), initializer="zeros", name="repeat_bias")

    def sanitize(self, item_ids):
        """Map negative ids to padding and ids outside the catalogue to OOV (defined answers, no crash)."""
        item_ids = ops.maximum(ops.cast(item_ids, "int64"), PAD_ID)
        return ops.where(item_ids >= self.n_items, ops.full_like(item_ids, OOV_ID), item_ids)

    def last_items(self, item_ids, width: int):
        """Keep the last ``width`` items of each right-padded row: ``(ids (B, width), lengths (B,))``."""
        lengths = ops.sum(ops.cast(item_ids != PAD_ID, "int64"), axis=1)
        index = ops.maximum(lengths - width, 0)[:, None] + ops.arange(width, dtype="int64")[None, :]
        valid = index < lengths[:, None]
        index = ops.minimum(index, ops.cast(ops.shape(item_ids)[1] - 1, "int64"))
        ids = ops.where(valid, ops.take_along_axis(item_ids, index, axis=1), ops.zeros_like(index))
        return ids, ops.minimum(lengths, width)

    def embed(self, item_ids, training=None):
        """Item embedding (+ category embedding looked up from the item) → ``(B, L, H)``; padding is 0."""
        x = self.item_embedding(item_ids)
        if self.category_embedding is not None:
            categories = ops.take(ops.convert_to_tensor(self.item_category), item_ids, axis=0)
            x = x + self.category_embedding(categories) * ops.cast(categories != PAD_ID, x.dtype)[..., None]
        x = x * ops.cast(item_ids != PAD_ID, x.dtype)[..., None]
        return self.input_dropout(x, training=training)

    def sequence_hidden(self, item_ids, training=None):
        """Return one hidden vector per position ``(B, L, H)`` for right-padded ``item_ids``."""
        raise NotImplementedError

    def repeat_scores(self, item_ids, position):
        """Repeat bonus ``r[position - k]`` of each item ``k ≤ position`` of ``item_ids`` ``(..., L)``; 0 elsewhere."""
        distance = position[..., None] - ops.arange(ops.shape(item_ids)[-1], dtype="int64")
        valid = ops.logical_and(distance >= 0, item_ids != PAD_ID)
        bias = ops.take(self.repeat_bias, ops.clip(distance, 0, self.max_length - 1), axis=0)
        return ops.where(valid, bias, ops.zeros_like(bias))

    @staticmethod
    def add_at(scores, item_ids, values):
        """``scores (R, N)`` plus ``values (R, K)`` at columns ``item_ids (R, K)`` (repeated ids add up)."""
        rows = ops.broadcast_to(ops.arange(ops.shape(item_ids)[0], dtype="int64")[:, None], ops.shape(item_ids))
        return tf.tensor_scatter_nd_add(scores, ops.stack([rows, item_ids], axis=-1), ops.cast(values, scores.dtype))

    def call(self, item_ids, training=None):
        """Next-item scores ``(B, item_cardinality)``; an empty session gets the output bias (popularity)."""
        ids, lengths = self.last_items(self.sanitize(item_ids), self.max_length)
        last = ops.maximum(lengths - 1, 0)
        hidden = tf.gather(self.sequence_hidden(ids, training=training), last, batch_dims=1)
        scores = ops.cast(self.output_layer(hidden), "float32")
        if self.repeat_bias is not None:
            scores = self.add_at(scores, ids, self.repeat_scores(ids, last))
        bias = ops.cast(self.output_layer.bias, "float32")[None, :]
        scores = ops.where((lengths == 0)[:, None], bias + ops.zeros_like(scores), scores)
        return ops.concatenate([ops.full_like(scores[:, :2], MASKED_SCORE), scores[:, 2:]], axis=1)

    def sequence_loss(self, item_ids, training=None):
        """Full-catalogue cross-entropy of the next item at every position (no loss on padding or OOV)."""
        item_ids = self.sanitize(item_ids)
        hidden = self.sequence_hidden(item_ids, training=training)[:, :-1]
        targets = item_ids[:, 1:]
        keep = targets > OOV_ID
        logits = self.output_layer(tf.boolean_mask(hidden, keep))
        if self.repeat_bias is not None:  # position t may re-click any item 0..t
            (batch, length), width = ops.shape(targets), ops.shape(item_ids)[1]
            rows = ops.broadcast_to(item_ids[:, None, :], (batch, length, width))
            bonus = self.repeat_scores(rows, ops.arange(length, dtype="int64"))
            logits = self.add_at(logits, tf.boolean_mask(rows, keep), tf.boolean_mask(bonus, keep))
        targets = tf.boolean_mask(targets, keep)
        return ops.mean(keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True))

    def train_step(self, data):
        """One optimisation step on a batch of right-padded sessions; returns the batch's loss."""
        item_ids = data["item_ids"] if isinstance(data, dict) else data
        with tf.GradientTape() as tape:
            loss = self.sequence_loss(item_ids, training=True)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {"loss": loss}
