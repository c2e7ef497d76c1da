"""Exercises of the TensorFlow lessons (03–05 Keras): masks, the full-catalogue loss, the GRU step, attention in ``tf``.

``from sessrec_course.exercises import keras_lessons as ex``; 03 asks for ``q1`` (padding mask) and ``q2``
(next-item loss over the whole catalogue), 04 for ``q3`` (the last real position's state) and ``q4`` (one Keras GRU
step), 05 for ``q5`` (causal + padding attention mask) and ``q6`` (masked scaled dot-product attention).
The cases are tiny so that checking costs milliseconds once TensorFlow is imported.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from sessrec_course.exercises.core import Case, Exercise, same

__all__ = ["q1", "q2", "q3", "q4", "q5", "q6"]


# ---- references (shown by ``solution()``: short and readable) ----------------------------------------------------
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


# ---- hidden cases (not the ones shown in the lessons) ------------------------------------------------------------
def _ids(rows: list[list[int]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.int64)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _loss_case(label: str, ids: list[list[int]], n_items: int, hidden: int, seed: int, hint: str = "") -> Case:
    rng = _rng(seed)
    ids = _ids(ids)
    return Case(label, (rng.normal(size=(*ids.shape, hidden)).astype(np.float32), ids,
                        rng.normal(size=(n_items, hidden)).astype(np.float32),
                        rng.normal(size=n_items).astype(np.float32)), hint=hint)


def _gru_case(label: str, batch: int, units: int, features: int, seed: int, hint: str = "") -> Case:
    rng = _rng(seed)
    return Case(label, (rng.normal(size=(batch, features)).astype(np.float32),
                        rng.normal(size=(batch, units)).astype(np.float32),
                        rng.normal(scale=0.5, size=(features, 3 * units)).astype(np.float32),
                        rng.normal(scale=0.5, size=(units, 3 * units)).astype(np.float32),
                        rng.normal(scale=0.5, size=(2, 3 * units)).astype(np.float32)), hint=hint)


def _attention_case(label: str, ids: list[list[int]], d: int, seed: int, hint: str = "") -> Case:
    rng = _rng(seed)
    b, n = len(ids), len(ids[0])
    q, k, v = (rng.normal(scale=2.0, size=(b, n, d)).astype(np.float32) for _ in range(3))
    return Case(label, (q, k, v, attention_mask(_ids(ids)).numpy()), hint=hint)


def _mask_same(expected, got) -> bool:
    """Masks compare by their boolean pattern (0/1 integers or bools both fine), shape included."""
    try:
        got = _numpy(got)
    except (TypeError, ValueError):
        return False
    return got.shape == tuple(np.shape(expected)) and np.array_equal(np.asarray(expected).astype(bool),
                                                                     got.astype(bool))


def _close(expected, got) -> bool:
    return same(expected, got, atol=1e-5)


# ---- diagnoses of recognised wrong answers (targeted hints, never the code) -------------------------------------
def _safe(diagnose):
    """A diagnosis that cannot raise: an answer of an unexpected shape or type just gets the case's hint."""

    @functools.wraps(diagnose)
    def wrapped(case: Case, expected, got) -> str | None:
        try:
            return diagnose(case, expected, got)
        except (TypeError, ValueError, IndexError, AttributeError):
            return None

    return wrapped


@_safe
def _diagnose_padding(case: Case, expected, got) -> str | None:
    ids = np.asarray(case.args[0])
    got = _numpy(got)
    if got.shape == ids.shape and np.array_equal(got.astype(bool), ids > 1):
        return "you also masked OOV (id 1): an unknown item is still a real click, only padding (0) is masked."
    if got.shape == ids.shape and np.array_equal(got.astype(bool), ids == 0):
        return "your mask is inverted: True must mark real clicks, False the padding."
    return None


@_safe
def _diagnose_loss(case: Case, expected, got) -> str | None:
    hidden, ids, embeddings, bias = case.args
    value = float(_numpy(got))
    log_p = np.log(_softmax(hidden @ embeddings.T + bias))
    unshifted = -np.take_along_axis(log_p, ids[..., None], -1)[..., 0]
    if np.isclose(value, unshifted[ids > 1].mean(), atol=1e-4):
        return "your targets are not shifted: the state after click t predicts click t + 1, not click t."
    shifted = -np.take_along_axis(log_p[:, :-1], ids[:, 1:, None], -1)[..., 0]
    if np.isclose(value, shifted.mean(), atol=1e-4) or np.isclose(value, shifted[ids[:, 1:] > 0].mean(), atol=1e-4):
        return "positions whose target is padding (0) or OOV (1) must not count, neither in the sum nor the mean."
    return None


@_safe
def _diagnose_last(case: Case, expected, got) -> str | None:
    hidden, ids = case.args
    got = _numpy(got)
    if got.shape == hidden[:, -1].shape and np.allclose(got, hidden[:, -1]):
        return "you took the last column, which is padding for every session shorter than the batch."
    lengths = (ids != 0).sum(1)
    if got.shape == hidden[:, 0].shape and np.allclose(got, hidden[np.arange(len(ids)), np.minimum(lengths,
                                                                                             ids.shape[1] - 1)]):
        return "off by one: a session of n clicks has its last click at position n - 1."
    return None


@_safe
def _diagnose_gru(case: Case, expected, got) -> str | None:
    x, h, kernel, recurrent, bias = case.args
    got = _numpy(got)
    units = h.shape[1]
    xz, xr, xh = np.split(x @ kernel + bias[0], 3, -1)
    hz, hr, hh = np.split(h @ recurrent + bias[1], 3, -1)
    z, r = _sigmoid(xz + hz), _sigmoid(xr + hr)
    if got.shape == h.shape and np.allclose(got, (1 - z) * h + z * np.tanh(xh + r * hh), atol=1e-4):
        return "the update gate is the other way round: Keras keeps z of the old state and takes 1 - z of the candidate."
    before = np.tanh(xh + (r * h) @ recurrent[:, 2 * units:] + bias[1][2 * units:])  # reset before the matmul
    if got.shape == h.shape and np.allclose(got, z * h + (1 - z) * before, atol=1e-4):
        return "that is reset_after=False: Keras' default applies the reset gate after the recurrent matmul."
    return None


@_safe
def _diagnose_mask(case: Case, expected, got) -> str | None:
    ids = np.asarray(case.args[0])
    got, expected = _numpy(got), np.asarray(expected)
    if got.shape != expected.shape:
        return f"the mask has shape (batch, queries, keys) = {expected.shape}."
    got = got.astype(bool)
    if np.triu(got, k=1).any():
        return "a position can see the future: query t may only attend keys s <= t."
    if not np.diagonal(got, axis1=1, axis2=2)[ids != 0].all():
        return "each position may attend to itself (s = t): the diagonal is allowed."
    causal = np.tril(np.ones(expected.shape[1:], bool))[None]
    if np.array_equal(got, causal & (ids != 0)[:, :, None]):
        return "padding is masked on the wrong axis: it is the KEY position s that must hold a click."
    if np.array_equal(got, causal & (ids > 1)[:, None, :]):
        return "OOV keys (id 1) are clicks too: only padding keys are masked."
    return None


@_safe
def _diagnose_attention(case: Case, expected, got) -> str | None:
    q, k, v, mask = case.args
    got = _numpy(got)
    if got.shape != expected.shape:
        return f"the output has the shape of v: {tuple(expected.shape)}."
    raw = q @ np.swapaxes(k, 1, 2)
    if np.allclose(got, _softmax(np.where(mask, raw, -1e9)) @ v, atol=1e-4):
        return "scale the scores by 1/sqrt(d) before the softmax."
    if np.allclose(got, (_softmax(raw / np.sqrt(q.shape[-1])) * mask) @ v, atol=1e-4):
        return "the weights no longer sum to 1: mask the scores before the softmax, not the weights after it."
    return None


def _numpy(value) -> np.ndarray:
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _softmax(a: np.ndarray) -> np.ndarray:
    w = np.exp(a - a.max(-1, keepdims=True))
    return w / w.sum(-1, keepdims=True)


# ---- the exercises -----------------------------------------------------------------------------------------------
q1 = Exercise(
    "the padding mask of a batch", padding_mask,
    [Case("two sessions, one padded", (_ids([[5, 7, 0, 0], [3, 4, 9, 2]]),)),
     Case("a session with an unknown item (OOV = 1)", (_ids([[1, 6, 0], [8, 1, 1]]),),
          hint="an OOV click is a click the model saw happen."),
     Case("an empty session", (_ids([[0, 0, 0], [2, 0, 0]]),))],
    hints=["Padding is the id 0 the batch was filled with; everything else is a click.",
           "One element-wise comparison of the ids with a constant gives the whole (B, L) mask."],
    compare=_mask_same, diagnose=_diagnose_padding)

q2 = Exercise(
    "next-item cross-entropy over the whole catalogue", next_item_loss,
    lambda: [_loss_case("one session, no padding", [[3, 4, 5, 2]], 7, 4, 1),
             _loss_case("padded sessions", [[2, 6, 0, 0, 0], [5, 3, 4, 6, 0]], 8, 3, 2,
                        hint="positions whose target is padding add nothing to the loss."),
             _loss_case("an OOV target", [[4, 1, 5, 0], [3, 7, 2, 1]], 9, 5, 3,
                        hint="no loss where the target is OOV (1): the model cannot name an unknown item.")],
    hints=["The state after click t (hidden[:, t]) is trained to score click t + 1: shift one against the other.",
           "Scores over the catalogue are the hidden states times the embedding matrix transposed, plus the bias; "
           "keep only positions whose target is a real item (id > 1), then average the cross-entropy.",
           "Keras' sparse categorical cross-entropy takes integer targets and, with from_logits=True, raw scores."],
    compare=_close, diagnose=_diagnose_loss)

q3 = Exercise(
    "the state at the last real click", last_hidden,
    lambda: [Case("different lengths", (_rng(4).normal(size=(3, 4, 2)).astype(np.float32),
                                        _ids([[5, 6, 0, 0], [7, 8, 9, 2], [3, 0, 0, 0]]))),
             Case("an empty session", (_rng(5).normal(size=(2, 3, 2)).astype(np.float32),
                                       _ids([[0, 0, 0], [4, 5, 0]])),
                  hint="an empty session has no last click: take position 0, as the model does.")],
    hints=["Count each session's clicks (the padding mask summed); the last click sits one before that count.",
           "tf.gather with batch_dims=1 picks one position per row."],
    diagnose=_diagnose_last)

q4 = Exercise(
    "one step of Keras' GRU", gru_step,
    lambda: [_gru_case("batch of two, 3 units", 2, 3, 4, 6), _gru_case("one row, 2 units", 1, 2, 2, 7)],
    hints=["Compute x·kernel + bias[0] and h·recurrent_kernel + bias[1], then split each into (z, r, candidate) "
           "thirds.",
           "z and r are sigmoids of the sums; the candidate is tanh of the input part plus r times the recurrent "
           "part (reset after the matmul).",
           "The new state mixes the old state and the candidate with z: check which one z weighs in Keras."],
    diagnose=_diagnose_gru)

q5 = Exercise(
    "the causal + padding attention mask", attention_mask,
    [Case("one full session", (_ids([[4, 5, 6]]),)),
     Case("padded sessions", (_ids([[3, 9, 0, 0], [2, 7, 8, 0]]),),
          hint="no query may attend to a padding key."),
     Case("OOV clicks", (_ids([[1, 4, 1, 0]]),), hint="OOV keys are clicks: they may be attended.")],
    hints=["Two masks ANDed: a (L, L) lower triangle (keys not after the query) and a (B, 1, L) 'key is a click'.",
           "tf.linalg.band_part of a ones matrix gives a triangle; broadcasting makes it (B, L, L)."],
    compare=_mask_same, diagnose=_diagnose_mask)

q6 = Exercise(
    "masked scaled dot-product attention", masked_attention,
    lambda: [_attention_case("one padded session, d=4", [[3, 5, 6, 0]], 4, 8),
             _attention_case("two sessions, d=8", [[2, 4, 0], [7, 3, 5]], 8, 9,
                             hint="masked keys get a very negative score before the softmax, not after it.")],
    hints=["Scores are q·kᵀ divided by the square root of the key width; masked scores become very negative; the "
           "softmax over keys gives the weights that average v.",
           "Setting weights to 0 after the softmax leaves rows that no longer sum to 1."],
    compare=_close, diagnose=_diagnose_attention)
