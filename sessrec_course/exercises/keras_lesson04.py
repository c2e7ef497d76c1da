"""Exercises of the TensorFlow lesson 04: the state at the last real click, one step of Keras' GRU."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from sessrec_course.exercises.core import Case, Exercise, like
from sessrec_course.exercises.keras_lesson03 import close_enough


def last_hidden(hidden, item_ids):
    """The state at each session's last real click ``(B, H)``; an empty session takes position 0."""
    lengths = tf.reduce_sum(tf.cast(tf.not_equal(item_ids, 0), tf.int32), axis=1)
    return tf.gather(hidden, tf.maximum(lengths - 1, 0), batch_dims=1)


def gru_step(x, h, kernel, recurrent_kernel, bias):
    """One step of ``keras.layers.GRU`` (``reset_after=True``; gates in the order z, r, candidate) → new state."""
    x_z, x_r, x_h = tf.split(tf.matmul(x, kernel) + bias[0], 3, axis=-1)
    h_z, h_r, h_h = tf.split(tf.matmul(h, recurrent_kernel) + bias[1], 3, axis=-1)
    z = tf.sigmoid(x_z + h_z)  # update gate: how much of the old state to keep
    r = tf.sigmoid(x_r + h_r)  # reset gate, applied after the recurrent matmul
    candidate = tf.tanh(x_h + r * h_h)
    return z * h + (1.0 - z) * candidate


def _state(hidden, item_ids, lowest=1, offset=-1, clamp=True):
    at = (item_ids >= lowest).sum(1) + offset
    return hidden[np.arange(len(hidden)), np.clip(at, 0, item_ids.shape[1] - 1) if clamp else at]


def _gru(x, h, kernel, recurrent, bias, swapped=False, reset_before=False):
    units = h.shape[1]
    (xz, xr, xh), (hz, hr, hh) = np.split(x @ kernel + bias[0], 3, -1), np.split(h @ recurrent + bias[1], 3, -1)
    z, r = 1 / (1 + np.exp(-xz - hz)), 1 / (1 + np.exp(-xr - hr))
    recurrent_part = (r * h) @ recurrent[:, 2 * units:] + bias[1][2 * units:] if reset_before else r * hh
    z = 1 - z if swapped else z
    return z * h + (1 - z) * np.tanh(xh + recurrent_part)


def _gru_case(label: str, batch: int, units: int, features: int, seed: int) -> Case:
    rng = np.random.default_rng(seed)
    return Case(label, (rng.normal(size=(batch, features)).astype(np.float32),
                        rng.normal(size=(batch, units)).astype(np.float32),
                        rng.normal(scale=0.5, size=(features, 3 * units)).astype(np.float32),
                        rng.normal(scale=0.5, size=(units, 3 * units)).astype(np.float32),
                        rng.normal(scale=0.5, size=(2, 3 * units)).astype(np.float32)))


def _states(seed: int, ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.asarray(ids, dtype=np.int64)
    return np.random.default_rng(seed).normal(size=(*ids.shape, 2)).astype(np.float32), ids


q1 = Exercise(
    "the state at the last real click", last_hidden,
    lambda: [Case("different lengths", _states(4, [[5, 6, 0, 0], [7, 8, 9, 2], [3, 0, 0, 0]])),
             Case("OOV clicks", _states(6, [[4, 1, 0, 0], [1, 1, 1, 0]]), "an OOV click is a click"),
             Case("an empty session", _states(5, [[0, 0, 0], [4, 5, 0]]), "an empty session takes position 0")],
    hints=["Count each session's clicks (the padding mask summed); the last click sits one before that count.",
           "tf.gather with batch_dims=1 picks one position per row."],
    mistakes={"you took the last column, which is padding in a short session": like(lambda h, i: h[:, -1]),
              "off by one: a session of n clicks has its last click at position n - 1": like(_state, offset=0),
              "an OOV click (id 1) is a click too: only padding (0) is none": like(_state, lowest=2),
              "an empty session has no last click: take position 0, not -1": like(_state, clamp=False)})
q2 = Exercise(
    "one step of Keras' GRU", gru_step,
    lambda: [_gru_case("batch of two, 3 units", 2, 3, 4, 6), _gru_case("one row, 2 units", 1, 2, 2, 7)],
    hints=["x·kernel + bias[0] and h·recurrent_kernel + bias[1], each split in (z, r, candidate) thirds.",
           "z and r: sigmoids of the sums; candidate: tanh of the input part + r times the recurrent part.",
           "The new state mixes the old state and the candidate with z: check which one z weighs in Keras."],
    atol=1e-5,
    mistakes={"gate z the other way round: z keeps the old state": like(_gru, close_enough, swapped=True),
              "that is reset_after=False, not Keras' default": like(_gru, close_enough, reset_before=True)})
