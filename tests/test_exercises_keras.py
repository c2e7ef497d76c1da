"""The TensorFlow lessons' exercises: each reference is what Keras itself computes (integration tier: TensorFlow).

The wrong answers each check must reject are in ``exercise_mistakes/keras_lesson0*.py``
(``test_exercise_mutations_keras``)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from sessrec_course.exercises import keras_lesson03, keras_lesson04, keras_lesson05  # noqa: E402

pytestmark = pytest.mark.slow


def test_padding_mask_accepts_a_numpy_answer():
    assert keras_lesson03.q1.check(lambda ids: np.asarray(ids) != 0)


def test_next_item_loss_equals_the_models_own_loss_formula_and_keras_crossentropy():
    hidden, ids, emb, bias = keras_lesson03.q2.cases()[1].args
    logits = hidden[:, :-1] @ emb.T + bias
    targets = ids[:, 1:]
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    manual = -np.take_along_axis(log_p, targets[..., None], -1)[..., 0][targets > 1].mean()
    np.testing.assert_allclose(float(keras_lesson03.next_item_loss(hidden, ids, emb, bias)), manual, rtol=1e-5)


def test_gru_step_reference_is_keras_own_gru_cell():
    x, h, kernel, recurrent, bias = keras_lesson04.q2.cases()[0].args
    cell = tf.keras.layers.GRUCell(h.shape[1])
    cell.build((None, x.shape[1]))
    cell.set_weights([kernel, recurrent, bias])
    keras_state = cell(tf.constant(x), [tf.constant(h)])[0]
    np.testing.assert_allclose(keras_lesson04.gru_step(x, h, kernel, recurrent, bias).numpy(), keras_state.numpy(),
                               atol=1e-5)


def test_attention_mask_agrees_with_the_keras_transformer_on_non_empty_sessions():
    from sessrec_course.models import ModelConfig
    from sessrec_course.models.keras_build import build_keras_model

    model = build_keras_model(ModelConfig(name="transformer", item_cardinality=12, hidden_size=8, max_length=5,
                                          num_layers=1, num_heads=2))
    ids = np.array([[3, 4, 0, 0, 0], [5, 6, 7, 1, 0]])
    assert np.array_equal(keras_lesson05.attention_mask(ids).numpy(), model.attention_mask(ids).numpy())


def test_masked_attention_equals_keras_dot_product_attention():
    q, k, v, mask = keras_lesson05.q2.cases()[1].args
    keras_out = tf.keras.ops.dot_product_attention(q[:, :, None], k[:, :, None], v[:, :, None],
                                                   mask=mask[:, None])[:, :, 0]
    np.testing.assert_allclose(keras_lesson05.masked_attention(q, k, v, mask).numpy(), keras_out.numpy(), atol=1e-5)


def test_a_wrong_shape_or_type_gets_a_readable_difference_not_a_crash():
    outcome = keras_lesson03.q2.check(lambda *a: "a string")
    assert not outcome and "a number or an array expected, got a str" in outcome.message
    outcome = keras_lesson05.q1.check(lambda ids: np.zeros((2, 2)))
    assert not outcome and "shape (1, 3, 3) expected, got (2, 2)" in outcome.message
    outcome = keras_lesson04.q1.check(lambda hidden, ids: tf.zeros_like(hidden[:, 0]))
    assert "tf.Tensor" not in outcome.message and "expected [[" in outcome.message, outcome.message
