"""The benchmark's sampled softmax: exact where the candidates cover the catalogue, an estimate of the full loss
(the logQ correction) where they do not, and the exact loss outside training."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from sessrec_bench.chunked_loss import ChunkedLoss  # noqa: E402
from sessrec_bench.sampled_loss import SampledLoss, sampled_loss  # noqa: E402

from sessrec_course.models import ModelConfig, build_model  # noqa: E402


def _models(cardinality: int, negatives: int, **switches):
    config = ModelConfig(name="transformer", item_cardinality=cardinality, hidden_size=16, max_length=6, dropout=0.0,
                         **switches)
    torch.manual_seed(0)
    exact = build_model(config, extensions=(ChunkedLoss,))
    torch.manual_seed(0)
    sampled = build_model(config, extensions=(sampled_loss(negatives), ChunkedLoss))
    assert isinstance(sampled, SampledLoss) and sampled.negatives == negatives
    return exact.train(), sampled.train()


@pytest.mark.parametrize("switches", [{}, {"repeat_bias": True, "score_scale": 16.0}])
def test_the_sampled_loss_is_exact_when_the_batch_covers_the_catalogue(switches):
    exact, sampled = _models(12, 1, **switches)
    hidden = torch.randn(24, 16)
    targets = torch.arange(24) % 12  # every id is a target: all candidates are forced, no correction
    extra = None
    if switches:
        extra = (torch.randint(0, 12, (24, 4)), torch.randn(24, 4))
    torch.testing.assert_close(sampled.catalogue_loss(hidden, targets, extra),
                               exact.catalogue_loss(hidden, targets, extra))


def test_the_logq_correction_makes_a_uniform_model_score_the_full_loss():
    """All scores equal: the full loss is log(catalogue); the drawn ids must stand for the ids not drawn."""
    cardinality, negatives = 20_000, 500
    exact, sampled = _models(cardinality, negatives)
    with torch.no_grad():
        sampled.output_bias.zero_()
        sampled.item_embedding.weight.zero_()
    hidden, targets = torch.randn(64, 16), torch.randint(2, cardinality, (64,))
    losses = [float(sampled.catalogue_loss(hidden, targets).detach()) for _ in range(5)]
    assert all(abs(loss - math.log(cardinality)) < 0.02 * math.log(cardinality) for loss in losses), losses


def test_outside_training_and_on_small_catalogues_the_loss_is_the_exact_one():
    exact, sampled = _models(40, 8)  # 8 draws from 40 ids: sampled in training ...
    hidden, targets = torch.randn(10, 16), torch.randint(2, 40, (10,))
    torch.manual_seed(3)
    assert float(sampled.catalogue_loss(hidden, targets).detach()) != pytest.approx(float(exact.catalogue_loss(hidden, targets).detach()))
    sampled.eval()  # ... and exact in evaluation
    torch.testing.assert_close(sampled.catalogue_loss(hidden, targets), exact.catalogue_loss(hidden, targets))
    small_exact, small = _models(40, 20)  # half the catalogue or more: nothing to save
    torch.testing.assert_close(small.catalogue_loss(hidden, targets), small_exact.catalogue_loss(hidden, targets))
