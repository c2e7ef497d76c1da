"""TensorFlow lesson 05: learners' wrong answers, and the mutants of the references that are equivalent to them."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from exercise_mistakes import mistake

EQUIVALENT = {
    "keras_lesson05.q1": {"causal = tf.linalg.band_part(tf.ones((length, length), tf.bool), -2, 0)":
                          "band_part keeps the whole lower triangle for any negative num_lower"},
    "keras_lesson05.q2": {
        "return tf.matmul(tf.nn.softmax(scores), v)": "softmax's default axis is the last, the keys",
        "scores = tf.where(mask, scores, tf.fill(tf.shape(scores), tf.constant(-1000000001.0, q.dtype)))":
            "any score near -1e9 gets a weight of exactly 0",
        "scores = tf.where(mask, scores, tf.fill(tf.shape(scores), tf.constant(-999999999.0, q.dtype)))":
            "any score near -1e9 gets a weight of exactly 0",
    },
}


def _triangle(n, k=0):
    return tf.linalg.band_part(tf.ones((n, n), tf.bool), -1, 0) if k == 0 else tf.constant(np.tril(np.ones((n, n)), k) > 0)


@mistake("keras_lesson05.q1", "see the future")
def sees_future(item_ids):
    keys = tf.not_equal(item_ids, 0)
    return tf.repeat(keys[:, None, :], tf.shape(item_ids)[1], axis=1)


@mistake("keras_lesson05.q1", "attend to itself")
def strictly_past(item_ids):
    return _triangle(item_ids.shape[1], -1)[None] & tf.not_equal(item_ids, 0)[:, None, :]


@mistake("keras_lesson05.q1", "KEY position")
def query_axis(item_ids):
    return _triangle(item_ids.shape[1])[None] & tf.not_equal(item_ids, 0)[:, :, None]


@mistake("keras_lesson05.q1", "OOV keys (id 1) are clicks")
def oov_keys_masked(item_ids):
    return _triangle(item_ids.shape[1])[None] & (item_ids > 1)[:, None, :]


@mistake("keras_lesson05.q1")
def causal_only(item_ids):
    n = item_ids.shape[1]
    return tf.tile(_triangle(n)[None], [len(item_ids), 1, 1])


@mistake("keras_lesson05.q2", "1/sqrt(d)")
def unscaled(q, k, v, mask):
    scores = tf.where(mask, tf.matmul(q, k, transpose_b=True), -1e9)
    return tf.nn.softmax(scores) @ v


@mistake("keras_lesson05.q2", "no longer sum to 1")
def masked_after(q, k, v, mask):
    weights = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / np.sqrt(q.shape[-1]))
    return (weights * tf.cast(mask, weights.dtype)) @ v


@mistake("keras_lesson05.q2")
def softmax_over_queries(q, k, v, mask):
    scores = tf.where(mask, tf.matmul(q, k, transpose_b=True) / np.sqrt(q.shape[-1]), -1e9)
    return tf.nn.softmax(scores, axis=1) @ v


@mistake("keras_lesson05.q2")
def scaled_by_d(q, k, v, mask):
    scores = tf.where(mask, tf.matmul(q, k, transpose_b=True) / q.shape[-1], -1e9)
    return tf.nn.softmax(scores) @ v
