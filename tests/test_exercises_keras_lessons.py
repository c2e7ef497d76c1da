"""The TensorFlow lessons' exercises: each reference passes, the stub says "not yet", typical mistakes fail with a hint."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from sessrec_course.exercises import keras_lessons as ex  # noqa: E402


def _fails(exercise, fn, *fragments: str) -> str:
    outcome = exercise.check(fn)
    assert not outcome, f"{fn.__name__} should fail {exercise.title}"
    assert outcome.message.startswith("case '") and "Hint:" in outcome.message, outcome.message
    for fragment in fragments:
        assert fragment in outcome.message, outcome.message
    return outcome.message


def _stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5, ex.q6], ids=lambda e: e.function_name)
def test_reference_passes_and_the_stub_is_not_yet(exercise):
    assert exercise.check(exercise.reference), exercise.title
    assert exercise.check(_stub).message.startswith("not yet")
    solution = exercise.solution_source()
    for hint in exercise.hints:
        assert solution.splitlines()[-1].strip() not in hint, "a hint never gives the solution's code"


# ---- q1: padding mask ----------------------------------------------------------------------------------------------
def test_padding_mask_accepts_a_numpy_answer_and_rejects_masking_oov_or_inverting():
    assert ex.q1.check(lambda ids: np.asarray(ids) != 0)

    def masks_oov(item_ids):
        return tf.convert_to_tensor(item_ids) > 1

    def inverted(item_ids):
        return tf.equal(item_ids, 0)

    _fails(ex.q1, masks_oov, "unknown item", "OOV")
    _fails(ex.q1, inverted, "inverted")


# ---- q2: the full-catalogue loss -----------------------------------------------------------------------------------
def test_next_item_loss_equals_the_models_own_loss_formula_and_keras_crossentropy():
    hidden, ids, emb, bias = ex.q2.cases()[1].args
    logits = hidden[:, :-1] @ emb.T + bias
    targets = ids[:, 1:]
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    manual = -np.take_along_axis(log_p, targets[..., None], -1)[..., 0][targets > 1].mean()
    np.testing.assert_allclose(float(ex.next_item_loss(hidden, ids, emb, bias)), manual, rtol=1e-5)


def test_next_item_loss_rejects_unshifted_targets_and_counting_padding():
    def unshifted(hidden, item_ids, embeddings, bias):
        keep = item_ids > 1
        logits = tf.boolean_mask(hidden, keep) @ tf.transpose(embeddings) + bias
        return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
            tf.boolean_mask(item_ids, keep), logits, from_logits=True))

    def counts_padding(hidden, item_ids, embeddings, bias):
        logits = tf.einsum("blh,nh->bln", hidden[:, :-1], embeddings) + bias
        return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(item_ids[:, 1:], logits,
                                                                              from_logits=True))

    _fails(ex.q2, unshifted, "not shifted", "t + 1")
    _fails(ex.q2, counts_padding, "padded sessions", "must not count")


# ---- q3: the state at the last click --------------------------------------------------------------------------------
def test_last_hidden_rejects_the_last_column_and_an_off_by_one_position():
    def last_column(hidden, item_ids):
        return hidden[:, -1]

    def off_by_one(hidden, item_ids):
        lengths = tf.reduce_sum(tf.cast(item_ids != 0, tf.int32), 1)
        return tf.gather(hidden, tf.minimum(lengths, hidden.shape[1] - 1), batch_dims=1)

    _fails(ex.q3, last_column, "different lengths", "padding")
    _fails(ex.q3, off_by_one, "off by one", "n - 1")


def test_gru_step_reference_is_keras_own_gru_cell():
    x, h, kernel, recurrent, bias = ex.q4.cases()[0].args
    cell = tf.keras.layers.GRUCell(h.shape[1])
    cell.build((None, x.shape[1]))
    cell.set_weights([kernel, recurrent, bias])
    keras_state = cell(tf.constant(x), [tf.constant(h)])[0]
    np.testing.assert_allclose(ex.gru_step(x, h, kernel, recurrent, bias).numpy(), keras_state.numpy(), atol=1e-5)


def test_gru_step_rejects_a_swapped_update_gate_and_reset_before_the_matmul():
    def swapped(x, h, kernel, recurrent_kernel, bias):
        xz, xr, xh = tf.split(x @ kernel + bias[0], 3, -1)
        hz, hr, hh = tf.split(h @ recurrent_kernel + bias[1], 3, -1)
        z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
        return (1 - z) * h + z * tf.tanh(xh + r * hh)

    def reset_before(x, h, kernel, recurrent_kernel, bias):
        units = h.shape[1]
        xz, xr, xh = tf.split(x @ kernel + bias[0], 3, -1)
        hz, hr, _ = tf.split(h @ recurrent_kernel + bias[1], 3, -1)
        z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
        candidate = tf.tanh(xh + (r * h) @ recurrent_kernel[:, 2 * units:] + bias[1][2 * units:])
        return z * h + (1 - z) * candidate

    _fails(ex.q4, swapped, "update gate", "old state")
    _fails(ex.q4, reset_before, "reset_after=False")


# ---- q5: causal + padding mask --------------------------------------------------------------------------------------
def test_attention_mask_agrees_with_the_keras_transformer_on_non_empty_sessions():
    from sessrec_course.models import ModelConfig
    from sessrec_course.models.keras_build import build_keras_model

    model = build_keras_model(ModelConfig(name="transformer", item_cardinality=12, hidden_size=8, max_length=5,
                                          num_layers=1, num_heads=2))
    ids = np.array([[3, 4, 0, 0, 0], [5, 6, 7, 1, 0]])
    assert np.array_equal(ex.attention_mask(ids).numpy(), model.attention_mask(ids).numpy())


def test_attention_mask_rejects_seeing_the_future_no_diagonal_and_padding_on_the_query_axis():
    def sees_future(item_ids):
        keys = tf.not_equal(item_ids, 0)
        return tf.repeat(keys[:, None, :], tf.shape(item_ids)[1], axis=1)

    def strictly_past(item_ids):
        n = item_ids.shape[1]
        causal = tf.linalg.band_part(tf.ones((n, n), tf.bool), -1, 0) & ~tf.eye(n, dtype=tf.bool)
        return causal[None] & tf.not_equal(item_ids, 0)[:, None, :]

    def query_axis(item_ids):
        n = item_ids.shape[1]
        causal = tf.linalg.band_part(tf.ones((n, n), tf.bool), -1, 0)
        return causal[None] & tf.not_equal(item_ids, 0)[:, :, None]

    _fails(ex.q5, sees_future, "see the future", "s <= t")
    _fails(ex.q5, strictly_past, "attend to itself")
    _fails(ex.q5, query_axis, "padded sessions", "KEY position")


# ---- q6: masked attention -------------------------------------------------------------------------------------------
def test_masked_attention_equals_keras_dot_product_attention():
    q, k, v, mask = ex.q6.cases()[1].args
    keras_out = tf.keras.ops.dot_product_attention(q[:, :, None], k[:, :, None], v[:, :, None],
                                                   mask=mask[:, None])[:, :, 0]
    np.testing.assert_allclose(ex.masked_attention(q, k, v, mask).numpy(), keras_out.numpy(), atol=1e-5)


def test_masked_attention_rejects_no_scaling_and_masking_after_the_softmax():
    def unscaled(q, k, v, mask):
        scores = tf.where(mask, tf.matmul(q, k, transpose_b=True), -1e9)
        return tf.nn.softmax(scores) @ v

    def masked_after(q, k, v, mask):
        weights = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / np.sqrt(q.shape[-1]))
        return (weights * tf.cast(mask, weights.dtype)) @ v

    _fails(ex.q6, unscaled, "1/sqrt(d)")
    _fails(ex.q6, masked_after, "sum to 1", "before the softmax")


def test_a_wrong_shape_or_type_gets_a_hint_not_a_crash():
    outcome = ex.q2.check(lambda *a: "a string")
    assert not outcome and "Hint:" in outcome.message
    outcome = ex.q5.check(lambda ids: np.zeros((2, 2)))
    assert not outcome and "(batch, queries, keys)" in outcome.message
