"""The benchmark's opt-in chunked loss: the same value and gradients as ``F.cross_entropy(F.linear(...))``, with and
without the repeat bias's scattered scores, and as an extension of every model."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from sessrec_bench.chunked_loss import ChunkedLoss, linear_cross_entropy  # noqa: E402

from sessrec_course.models import ModelConfig, build_model  # noqa: E402


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_chunked_cross_entropy_equals_the_plain_one(chunk):
    torch.manual_seed(0)
    hidden = torch.randn(50, 8, requires_grad=True)
    weight = torch.randn(30, 8, requires_grad=True)
    bias = torch.randn(30, requires_grad=True)
    targets = torch.randint(0, 30, (50,))
    plain = F.cross_entropy(F.linear(hidden, weight, bias), targets)
    expected = torch.autograd.grad(2 * plain, (hidden, weight, bias))
    chunked = linear_cross_entropy(hidden, weight, bias, targets, chunk=chunk)
    got = torch.autograd.grad(2 * chunked, (hidden, weight, bias))
    torch.testing.assert_close(chunked, plain)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("chunk", [3, 1000])
def test_chunked_cross_entropy_with_scattered_scores_equals_the_plain_one(chunk):
    """Repeat scores: ``values`` added at ``ids`` (repeated ids add up) before the softmax, gradients included."""
    torch.manual_seed(1)
    hidden = torch.randn(20, 8, requires_grad=True)
    weight = torch.randn(30, 8, requires_grad=True)
    bias = torch.randn(30, requires_grad=True)
    targets = torch.randint(0, 30, (20,))
    ids = torch.randint(0, 30, (20, 5))
    ids[:, 1] = ids[:, 0]  # a re-clicked item: its two values add up
    values = torch.randn(20, 5, requires_grad=True)
    logits = F.linear(hidden, weight, bias).scatter_add(1, ids, values)
    plain = F.cross_entropy(logits, targets)
    chunked = linear_cross_entropy(hidden, weight, bias, targets, chunk=chunk, repeats=(ids, values))
    torch.testing.assert_close(chunked, plain)
    got = torch.autograd.grad(chunked, (hidden, weight, bias, values))
    for a, b in zip(got, torch.autograd.grad(plain, (hidden, weight, bias, values)), strict=True):
        torch.testing.assert_close(a, b)
    assert float(got[3].abs().sum()) > 0  # the scattered scores are learnt


@pytest.mark.parametrize("switches", [{}, {"repeat_bias": True, "score_scale": 16.0},
                                      {"repeat_bias": True, "repeat_mixture": True, "score_scale": 16.0}])
@pytest.mark.parametrize("name", ["mlp", "gru", "transformer"])
def test_a_model_with_the_chunked_loss_trains_like_the_plain_one(name, switches):
    config = ModelConfig(name=name, item_cardinality=40, hidden_size=16, max_length=6, dropout=0.0, **switches)
    torch.manual_seed(0)
    plain = build_model(config)
    torch.manual_seed(0)
    chunked = build_model(config, extensions=(ChunkedLoss,))
    assert isinstance(chunked, ChunkedLoss) and not isinstance(plain, ChunkedLoss)
    with torch.no_grad():
        if switches:  # distinct re-click weights, so that the scattered scores matter
            for model in (plain, chunked):
                model.repeat_bias.copy_(torch.linspace(2.0, -1.0, 6))
    ids = torch.tensor([[2, 3, 2, 4, 0, 0], [7, 7, 8, 9, 7, 0], [5, 6, 0, 0, 0, 0]])
    a, b = plain.loss(ids), chunked.loss(ids)
    torch.testing.assert_close(b, a)
    names = [key for key, _ in plain.named_parameters()]
    grads_a = torch.autograd.grad(a, list(plain.parameters()), allow_unused=True)
    grads_b = torch.autograd.grad(b, list(chunked.parameters()), allow_unused=True)
    assert sum(g is not None for g in grads_a) > 3
    for key, ga, gb in zip(names, grads_a, grads_b, strict=True):
        assert (ga is None) == (gb is None), key
        if ga is not None:  # (the padding row's gradient under the score scale is 1/eps-large: relative to the max)
            torch.testing.assert_close(gb, ga, rtol=1e-5, atol=1e-5 * float(ga.abs().max()), msg=key)
