"""Lesson 05b exercises: the references agree with the package's HSTU layer (the wrong answers:
exercise_mistakes/torch_lesson05b.py)."""

from __future__ import annotations

import torch

from sessrec_course.exercises import torch_lesson05b as ex
from sessrec_course.models import ModelConfig, build_model


def _layer(max_length: int = 5):
    torch.manual_seed(0)
    config = ModelConfig(name="hstu", item_cardinality=20, hidden_size=8, num_heads=1, max_length=max_length)
    model = build_model(config).eval()
    return model, model.layers[0]


def test_the_reference_attention_is_the_layers_attention_without_its_bias():
    model, layer = _layer()
    ids = torch.tensor([[4, 7, 1, 0, 0], [5, 3, 8, 6, 2]])  # padding and an OOV click
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 5, 8) for _ in range(3))
    with torch.no_grad():
        layer.rab.zero_()
        package = layer.attention(q[:, None], k[:, None], model.keep(ids)) @ v[:, None]
    expected = ex.pointwise_attention(q / 8**0.5, k, v, ids, model.max_length)  # the layer scales q·k by 1/√d
    torch.testing.assert_close(package[:, 0], expected)


def test_the_reference_bias_is_what_the_layer_adds_where_attention_reads():
    model, layer = _layer(max_length=4)
    with torch.no_grad():
        layer.rab.copy_(torch.tensor([0.5, -0.2, 0.1, 0.3]))
        length, zeros = 6, torch.zeros(1, 1, 6, 1)  # longer than the table: its last entry repeats
        keep = torch.ones(length, length, dtype=torch.bool).tril()[None, None]
        weights = layer.attention(zeros, zeros, keep)[0, 0]  # q·k = 0: only the bias is left
    bias = ex.relative_bias(layer.rab.detach(), length)
    torch.testing.assert_close(weights, torch.nn.functional.silu(bias).tril() / model.max_length)
