"""TensorFlow lesson 04: learners' wrong answers, and the mutants of the references that are equivalent to them."""

from __future__ import annotations

import tensorflow as tf

from exercise_mistakes import mistake

EQUIVALENT = {
    "keras_lesson04.q1": {"lengths = tf.reduce_sum(tf.cast(tf.not_equal(item_ids, 0), tf.int64), axis=1)":
                          "gather takes int64 positions as well"},
    "keras_lesson04.q2": {
        "x_z, x_r, x_h = tf.split(tf.matmul(x, kernel) + bias[0], 3, axis=1)": "x is 2-D: axis 1 is the last",
        "h_z, h_r, h_h = tf.split(tf.matmul(h, recurrent_kernel) + bias[1], 3, axis=1)": "h is 2-D: axis 1 is the last",
    },
}


@mistake("keras_lesson04.q1", "which is padding")
def last_column(hidden, item_ids):
    return hidden[:, -1]


@mistake("keras_lesson04.q1", "off by one")
def off_by_one(hidden, item_ids):
    lengths = tf.reduce_sum(tf.cast(item_ids != 0, tf.int32), 1)
    return tf.gather(hidden, tf.minimum(lengths, hidden.shape[1] - 1), batch_dims=1)


@mistake("keras_lesson04.q1", "OOV click (id 1) is a click")
def oov_is_no_click(hidden, item_ids):
    lengths = tf.math.count_nonzero(item_ids > 1, axis=1)
    return tf.gather(hidden, tf.maximum(lengths - 1, 0), batch_dims=1)


@mistake("keras_lesson04.q1", "not -1")
def empty_wraps_around(hidden, item_ids):
    lengths = tf.math.count_nonzero(item_ids, axis=1)
    return tf.stack([hidden[b, int(n) - 1] for b, n in enumerate(lengths)])


def _split(x, h, kernel, recurrent_kernel, bias):
    xz, xr, xh = tf.split(x @ kernel + bias[0], 3, -1)
    hz, hr, hh = tf.split(h @ recurrent_kernel + bias[1], 3, -1)
    return xz, xr, xh, hz, hr, hh


@mistake("keras_lesson04.q2", "other way round")
def swapped(x, h, kernel, recurrent_kernel, bias):
    xz, xr, xh, hz, hr, hh = _split(x, h, kernel, recurrent_kernel, bias)
    z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
    return (1 - z) * h + z * tf.tanh(xh + r * hh)


@mistake("keras_lesson04.q2", "reset_after=False")
def reset_before(x, h, kernel, recurrent_kernel, bias):
    units = h.shape[1]
    xz, xr, xh, hz, hr, _ = _split(x, h, kernel, recurrent_kernel, bias)
    z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
    candidate = tf.tanh(xh + (r * h) @ recurrent_kernel[:, 2 * units:] + bias[1][2 * units:])
    return z * h + (1 - z) * candidate


@mistake("keras_lesson04.q2")
def gates_in_the_order_r_z(x, h, kernel, recurrent_kernel, bias):
    xr, xz, xh, hr, hz, hh = _split(x, h, kernel, recurrent_kernel, bias)
    z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
    return z * h + (1 - z) * tf.tanh(xh + r * hh)


@mistake("keras_lesson04.q2")
def one_bias(x, h, kernel, recurrent_kernel, bias):
    xz, xr, xh = tf.split(x @ kernel + bias[0], 3, -1)
    hz, hr, hh = tf.split(h @ recurrent_kernel, 3, -1)
    z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
    return z * h + (1 - z) * tf.tanh(xh + r * hh)
