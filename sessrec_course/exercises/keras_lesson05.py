"""Exercises of the TensorFlow lesson 05: the causal + padding attention mask, masked scaled dot-product attention."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from sessrec_course.exercises.core import Case, Exercise, like, same_mask
from sessrec_course.exercises.keras_lesson03 import _ids, close_enough


def attention_mask(item_ids):
    """``(B, L, L)`` bool: query position t may attend key position s when s <= t and s holds a click."""
    length = tf.shape(item_ids)[1]
    causal = tf.linalg.band_part(tf.ones((length, length), tf.bool), -1, 0)  # lower triangle, diagonal included
    keys = tf.not_equal(item_ids, 0)
    return tf.logical_and(causal[None, :, :], keys[:, None, :])


def masked_attention(q, k, v, mask):
    """Scaled dot-product attention ``softmax(q kᵀ / √d) v`` where ``mask`` (B, Lq, Lk) False gets no weight."""
    scores = tf.matmul(q, k, transpose_b=True) / tf.sqrt(tf.cast(tf.shape(q)[-1], q.dtype))
    scores = tf.where(mask, scores, tf.fill(tf.shape(scores), tf.constant(-1e9, q.dtype)))
    return tf.matmul(tf.nn.softmax(scores, axis=-1), v)


def _mask(item_ids, lowest=1, keys=True, diagonal=0, causal=True):
    n = item_ids.shape[1]
    square = np.tril(np.ones((n, n), bool), diagonal) if causal else np.ones((n, n), bool)
    real = item_ids >= lowest
    return square[None] & (real[:, None, :] if keys else real[:, :, None])


def _attention(q, k, v, mask, scaled=True, after=False):
    scores = q @ np.swapaxes(k, 1, 2) / (np.sqrt(q.shape[-1]) if scaled else 1)
    weights = tf.nn.softmax(scores).numpy() * mask if after else tf.nn.softmax(np.where(mask, scores, -1e9))
    return np.asarray(weights) @ v


def _attention_case(label: str, ids: list[list[int]], d: int, seed: int, hint: str = "") -> Case:
    rng, ids = np.random.default_rng(seed), _ids(ids)
    q, k, v = (rng.normal(scale=2.0, size=(*ids.shape, d)).astype(np.float32) for _ in range(3))
    return Case(label, (q, k, v, _mask(ids)), hint)


q1 = Exercise(
    "the causal + padding attention mask", attention_mask,
    [Case("one full session", (_ids([[4, 5, 6]]),)),
     Case("padded sessions", (_ids([[3, 9, 0, 0], [2, 7, 8, 0]]),), "no query may attend to a padding key"),
     Case("OOV clicks", (_ids([[1, 4, 1, 0]]),), "OOV keys are clicks: they may be attended")],
    hints=["Two masks ANDed: a (L, L) lower triangle (keys not after the query) and a (B, 1, L) 'key is a click'.",
           "tf.linalg.band_part of a ones matrix gives a triangle; broadcasting makes it (B, L, L)."],
    compare=same_mask,
    mistakes={"query t can see the future: only keys s <= t": like(_mask, same_mask, causal=False),
              "each position may attend to itself (s = t)": like(_mask, same_mask, diagonal=-1),
              "the KEY position s must hold a click, not the query": like(_mask, same_mask, keys=False),
              "OOV keys (id 1) are clicks too: only padding keys are masked": like(_mask, same_mask, lowest=2)})
q2 = Exercise(
    "masked scaled dot-product attention", masked_attention,
    lambda: [_attention_case("one padded session, d=4", [[3, 5, 6, 0]], 4, 8),
             _attention_case("two sessions, d=8", [[2, 4, 0], [7, 3, 5]], 8, 9, "masked keys get no weight")],
    hints=["Scores are q·kᵀ / √(key width), masked ones very negative; their softmax over keys weighs v.",
           "Setting weights to 0 after the softmax leaves rows that no longer sum to 1."],
    atol=1e-5,
    mistakes={"scale the scores by 1/sqrt(d) before the softmax": like(_attention, close_enough, scaled=False),
              "the weights no longer sum to 1: mask the scores before the softmax":
                  like(_attention, close_enough, after=True)})
