"""What every Keras session model shares: input embeddings, the tied output layer and the training loss.

The Keras twin of :mod:`sessrec_course.models.torch_base`: same config (:class:`~sessrec_course.models.ModelConfig`),
same padding rules, same full-catalogue softmax. A subclass only implements
:meth:`KerasSessionModel.sequence_hidden`: item ids ``(B, L)`` → one hidden vector per position ``(B, L, H)``.
Keras 3 with the TensorFlow backend; this module imports TensorFlow, so import it only when needed.
``repeat_bias`` works as in PyTorch: + ``r[d]`` on the score of each item clicked ``d`` steps before.
"""

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
    """Scores over the catalogue: ``hidden @ E[:n_items].T + bias`` with ``E`` the item embedding matrix.

    With ``score_scale > 0`` both sides are L2-normalised and the score is ``scale · cos(hidden, item)`` (NISER).
    """

    def __init__(self, embedding: keras.layers.Embedding, n_items: int, score_scale: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.embedding = embedding
        self.n_items = n_items
        self.score_scale = score_scale

    def build(self, input_shape) -> None:
        self.bias = self.add_weight(shape=(self.n_items,), initializer="zeros", name="output_bias")

    def call(self, hidden):
        weight = self.embedding.embeddings[: self.n_items]
        if self.score_scale > 0:
            hidden = self.score_scale * ops.normalize(hidden, axis=-1, epsilon=1e-12)
            weight = ops.normalize(weight, axis=-1, epsilon=1e-12)
        return ops.matmul(hidden, ops.transpose(weight)) + self.bias


class KerasSessionModel(keras.Model):
    """Base class: ``model(item_ids (B, L) int64) -> scores (B, item_cardinality) float32``."""

    def __init__(self, config: ModelConfig, item_category: np.ndarray | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not config.causal:
            raise ValueError("the Keras track has causal models only (transformer backbone 'gpt2')")
        self.config = config
        n_items, hidden = config.item_cardinality, config.hidden_size
        self.n_items, self.max_length = n_items, config.max_length
        self.item_embedding = keras.layers.Embedding(
            n_items + 1, hidden, embeddings_initializer=keras.initializers.RandomNormal(stddev=hidden**-0.5),
            name="item_embedding")
        lookup = np.zeros(n_items + 1, dtype=np.int64)
        if item_category is not None:
            item_category = np.asarray(item_category, dtype=np.int64)
            if item_category.shape[0] > n_items:
                raise ValueError(f"item_category has {item_category.shape[0]} rows, more than {n_items} items")
            lookup[: item_category.shape[0]] = np.clip(item_category, 0, None)
        self.item_category = lookup
        self.category_embedding = None
        if config.category_cardinality > 0:
            if int(lookup.max()) >= config.category_cardinality:
                raise ValueError(f"item_category holds category {int(lookup.max())} but category_cardinality "
                                 f"is {config.category_cardinality}")
            self.category_embedding = keras.layers.Embedding(
                config.category_cardinality, hidden, name="category_embedding",
                embeddings_initializer=keras.initializers.RandomNormal(stddev=0.5 * hidden**-0.5))
        self.input_dropout = keras.layers.Dropout(config.dropout)
        self.output_layer = TiedOutput(self.item_embedding, n_items, config.score_scale, name="tied_output")
        if not config.tie_weights:
            raise ValueError("the Keras models always tie the output layer to the item embeddings")
        self.repeat_bias = None
        if config.repeat_bias:
            self.repeat_bias = self.add_weight(shape=(config.max_length,), initializer="zeros", name="repeat_bias")
        self.loss_tracker = keras.metrics.Mean(name="loss")

    # ---- inputs -------------------------------------------------------------------------------
    def sanitize(self, item_ids):
        """Map negative ids to padding and ids outside the catalogue to OOV (defined answers, no crash)."""
        item_ids = ops.cast(item_ids, "int64")
        item_ids = ops.where(item_ids < 0, ops.zeros_like(item_ids), item_ids)
        return ops.where(item_ids >= self.n_items, ops.full_like(item_ids, OOV_ID), item_ids)

    def last_items(self, item_ids, width: int):
        """Keep the last ``width`` items of each right-padded row: ``(ids (B, width), lengths (B,))``."""
        lengths = ops.sum(ops.cast(item_ids != PAD_ID, "int64"), axis=1)
        start = ops.maximum(lengths - width, 0)
        index = start[:, None] + ops.arange(width, dtype="int64")[None, :]
        valid = index < lengths[:, None]
        index = ops.minimum(index, ops.cast(ops.shape(item_ids)[1] - 1, "int64"))
        ids = ops.where(valid, ops.take_along_axis(item_ids, index, axis=1), ops.zeros_like(index))
        return ids, ops.minimum(lengths, width)

    def embed(self, item_ids, training=None):
        """Item embedding (+ category embedding looked up from the item) → ``(B, L, H)``; padding is 0."""
        x = self.item_embedding(item_ids)
        if self.category_embedding is not None:
            categories = ops.take(ops.convert_to_tensor(self.item_category), item_ids, axis=0)
            cat = self.category_embedding(categories)
            x = x + cat * ops.cast(categories != PAD_ID, x.dtype)[..., None]
        x = x * ops.cast(item_ids != PAD_ID, x.dtype)[..., None]
        return self.input_dropout(x, training=training)

    # ---- to implement -------------------------------------------------------------------------
    def sequence_hidden(self, item_ids, training=None):
        """Return one hidden vector per position ``(B, L, H)`` for right-padded ``item_ids``."""
        raise NotImplementedError

    # ---- outputs ------------------------------------------------------------------------------
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
        """Score the next item of each session: ``(B, L)`` right-padded ids → ``(B, item_cardinality)``.

        Longer sessions keep their last ``max_length`` items, extra padding changes nothing, an empty
        session gets the learnt popularity (the output bias), padding and OOV get a very low score.
        """
        ids, lengths = self.last_items(self.sanitize(item_ids), self.max_length)
        hidden = self.sequence_hidden(ids, training=training)
        last = ops.maximum(lengths - 1, 0)
        scores = ops.cast(self.output_layer(tf.gather(hidden, last, batch_dims=1)), "float32")
        if self.repeat_bias is not None:
            scores = self.add_at(scores, ids, self.repeat_scores(ids, last))
        bias = ops.cast(self.output_layer.bias, "float32")[None, :]
        scores = ops.where((lengths == 0)[:, None], bias + ops.zeros_like(scores), scores)
        masked = ops.full_like(scores[:, :2], MASKED_SCORE)
        return ops.concatenate([masked, scores[:, 2:]], axis=1)

    def sequence_loss(self, item_ids, training=None):
        """Full-catalogue cross-entropy of the next item at every position (no loss on padding or OOV)."""
        item_ids = self.sanitize(item_ids)
        hidden = self.sequence_hidden(item_ids, training=training)[:, :-1]
        targets = item_ids[:, 1:]
        keep = targets > OOV_ID
        logits = self.output_layer(tf.boolean_mask(hidden, keep))
        if self.repeat_bias is not None:  # position t may re-click any item 0..t
            positions = ops.arange(ops.shape(targets)[1], dtype="int64")
            rows = ops.broadcast_to(item_ids[:, None, :], (ops.shape(targets)[0], ops.shape(targets)[1],
                                                           ops.shape(item_ids)[1]))
            bonus = self.repeat_scores(rows, ops.broadcast_to(positions[None, :], ops.shape(targets)))
            logits = self.add_at(logits, tf.boolean_mask(rows, keep), tf.boolean_mask(bonus, keep))
        losses = keras.losses.sparse_categorical_crossentropy(tf.boolean_mask(targets, keep), logits,
                                                              from_logits=True)
        return ops.mean(losses)

    # ---- model.fit hooks ----------------------------------------------------------------------
    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        """One optimisation step on a batch of right-padded sessions (the model computes its own loss)."""
        item_ids = data["item_ids"] if isinstance(data, dict) else data
        with tf.GradientTape() as tape:
            loss = self.sequence_loss(item_ids, training=True)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        """Validation loss of a batch (ranking metrics come from the shared evaluation, not from here)."""
        item_ids = data["item_ids"] if isinstance(data, dict) else data
        self.loss_tracker.update_state(self.sequence_loss(item_ids, training=False))
        return {"loss": self.loss_tracker.result()}
