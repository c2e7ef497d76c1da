"""TensorFlow lesson 03: learners' wrong answers, and the mutants of the references that are equivalent to them."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from exercise_mistakes import mistake

_CAST = "the cases hold float32 states and int64 ids already; float64 or int32 give the same loss to 1e-5"
EQUIVALENT = {
    "keras_lesson03.q2": {
        "deleted: hidden, item_ids = (tf.convert_to_tensor(hidden, tf.float32), tf.convert_to_tensor(item_ids, "
        "tf.int64))": _CAST,
        "hidden, item_ids = (tf.convert_to_tensor(hidden, tf.float64), tf.convert_to_tensor(item_ids, tf.int64))": _CAST,
        "hidden, item_ids = (tf.convert_to_tensor(hidden, tf.float32), tf.convert_to_tensor(item_ids, tf.int32))": _CAST,
    },
}


@mistake("keras_lesson03.q1", "also masked OOV")
def masks_oov(item_ids):
    return tf.convert_to_tensor(item_ids) > 1


@mistake("keras_lesson03.q1", "inverted")
def inverted(item_ids):
    return tf.equal(item_ids, 0)


@mistake("keras_lesson03.q1")
def first_row_only(item_ids):
    return np.asarray(item_ids)[0] != 0


@mistake("keras_lesson03.q2", "not shifted")
def unshifted(hidden, item_ids, embeddings, bias):
    keep = item_ids > 1
    logits = tf.boolean_mask(hidden, keep) @ tf.transpose(embeddings) + bias
    return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
        tf.boolean_mask(item_ids, keep), logits, from_logits=True))


@mistake("keras_lesson03.q2", "padding (0) must not count")
def counts_padding(hidden, item_ids, embeddings, bias):
    logits = tf.einsum("blh,nh->bln", hidden[:, :-1], embeddings) + bias
    return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(item_ids[:, 1:], logits, from_logits=True))


@mistake("keras_lesson03.q2", "OOV (1) must not count")
def counts_oov(hidden, item_ids, embeddings, bias):
    keep = item_ids[:, 1:] != 0
    logits = tf.boolean_mask(hidden[:, :-1], keep) @ tf.transpose(embeddings) + bias
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.boolean_mask(item_ids[:, 1:], keep),
                                                                         logits))


@mistake("keras_lesson03.q2")
def masked_zeros_in_the_mean(hidden, item_ids, embeddings, bias):
    targets = item_ids[:, 1:]
    logits = tf.einsum("blh,nh->bln", hidden[:, :-1], embeddings) + bias
    losses = tf.keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    return tf.reduce_mean(losses * tf.cast(targets > 1, tf.float32))  # zeros still count in the mean
