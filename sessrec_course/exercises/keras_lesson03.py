"""Exercises of the TensorFlow lesson 03: the padding mask of a batch, the next-item loss over the catalogue."""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from sessrec_course.exercises.core import Case, Exercise, like, same, same_mask


def padding_mask(item_ids):
    """True on real clicks (OOV included), False on padding (id 0): ``(B, L)`` bool."""
    return tf.not_equal(tf.convert_to_tensor(item_ids), 0)


def next_item_loss(hidden, item_ids, embeddings, bias):
    """Mean full-catalogue cross-entropy of the next item; no loss where the target is padding (0) or OOV (1)."""
    hidden, item_ids = tf.convert_to_tensor(hidden, tf.float32), tf.convert_to_tensor(item_ids, tf.int64)
    inputs, targets = hidden[:, :-1], item_ids[:, 1:]  # the state after click t predicts click t + 1
    keep = targets > 1
    logits = tf.matmul(tf.boolean_mask(inputs, keep), embeddings, transpose_b=True) + bias
    losses = tf.keras.losses.sparse_categorical_crossentropy(tf.boolean_mask(targets, keep), logits,
                                                             from_logits=True)
    return tf.reduce_mean(losses)


_ids = functools.partial(np.asarray, dtype=np.int64)  # hand-written rows of encoded ids


def _loss(hidden, item_ids, embeddings, bias, shift=1, lowest=2):
    log_p = hidden @ embeddings.T + bias
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    targets = item_ids[:, shift:]
    picked = -np.take_along_axis(log_p[:, : log_p.shape[1] - shift], targets[..., None], -1)[..., 0]
    return picked[targets >= lowest].mean()


def _loss_case(label: str, ids: list[list[int]], n_items: int, width: int, seed: int, hint: str = "") -> Case:
    rng, ids = np.random.default_rng(seed), _ids(ids)
    return Case(label, (rng.normal(size=(*ids.shape, width)).astype(np.float32), ids,
                        rng.normal(size=(n_items, width)).astype(np.float32),
                        rng.normal(size=n_items).astype(np.float32)), hint)


q1 = Exercise(
    "the padding mask of a batch", padding_mask,
    [Case("two sessions, one padded", (_ids([[5, 7, 0, 0], [3, 4, 9, 2]]),)),
     Case("a session with an unknown item (OOV = 1)", (_ids([[1, 6, 0], [8, 1, 1]]),),
          "an OOV click is a click the model saw happen"),
     Case("an empty session", (_ids([[0, 0, 0], [2, 0, 0]]),))],
    hints=["Padding is the id 0 the batch was filled with; everything else is a click.",
           "One element-wise comparison of the ids with a constant gives the whole (B, L) mask."],
    compare=same_mask,
    mistakes={"you also masked OOV (id 1): an unknown item is a click": like(lambda i: i > 1, same_mask),
              "your mask is inverted: True marks real clicks, False the padding": like(lambda i: i == 0, same_mask)})
close_enough = functools.partial(same, atol=1e-4)  # a mistake's numpy twin agrees to 1e-4
q2 = Exercise(
    "next-item cross-entropy over the whole catalogue", next_item_loss,
    lambda: [_loss_case("one session, no padding", [[3, 4, 5, 2]], 7, 4, 1),
             _loss_case("padded sessions", [[2, 6, 0, 0, 0], [5, 3, 4, 6, 0]], 8, 3, 2),
             _loss_case("an OOV target", [[4, 1, 5, 0], [3, 7, 2, 1]], 9, 5, 3, "an unknown item has no name")],
    hints=["The state after click t (hidden[:, t]) is trained to score click t + 1: shift one against the other.",
           "Scores: the states times the item embeddings plus the bias, where the target is an item.",
           "Keras' sparse categorical cross-entropy takes integer targets and, from logits, raw scores."],
    atol=1e-5,
    mistakes={"targets not shifted: state t predicts click t + 1": like(_loss, close_enough, shift=0),
              "padding (0) must not count, in the sum or the mean": like(_loss, close_enough, lowest=0),
              "OOV (1) must not count: the model cannot name it": like(_loss, close_enough, lowest=1)})
