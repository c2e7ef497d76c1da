"""Research extensions of the session models, mixins that compose: ``extend(GRUSessionModel, config)``.

Each overrides only what it changes and calls the next with ``super()``: :class:`ScoreScale` (NISER, Gupta et al.
2019), :class:`RepeatBias` and :class:`RepeatMixture` (RepeatNet, Ren et al. 2019); the benchmark tree adds its own.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from sessrec_course.ids import OOV_ID, PAD_ID
from sessrec_course.models.config import ModelConfig
from sessrec_course.models.torch_base import SessionModel


def log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``log σ(x)`` from exp and log1p: exact in the tails in ONNX Runtime too (its Sigmoid is not)."""
    return torch.clamp(x, max=0.0) - torch.log1p(torch.exp(-x.abs()))


def cases(item_ids: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each training case's clicks ``(B, T, L)`` and the position it is scored at ``(B, T)`` (views, no copy)."""
    positions = torch.arange(targets.shape[1], device=item_ids.device).expand_as(targets)
    return item_ids[:, None, :].expand(-1, targets.shape[1], -1), positions


class ScoreScale(SessionModel):
    """Session and item vectors L2-normalised: a score is ``score_scale · cos(session, item)`` + the item's bias."""

    def output_weight(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, weight = super().output_weight(hidden)
        return self.config.score_scale * F.normalize(hidden, dim=-1), F.normalize(weight, dim=-1)


class RepeatWeights(SessionModel):
    """A learnt weight ``r[d]`` per click distance ``d`` (``d = 0``: the scored position's own click)."""

    def __init__(self, config: ModelConfig, item_category: torch.Tensor | None = None) -> None:
        super().__init__(config, item_category)
        self.repeat_bias = nn.Parameter(torch.zeros(config.max_length))

    def repeat_bias_at(self, item_ids: torch.Tensor, position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r[position − k], valid)`` for each click ``k`` of ``item_ids`` ``(..., L)``: valid = at or before, no padding."""
        distance = position[..., None] - torch.arange(item_ids.shape[-1], device=item_ids.device)
        valid = (distance >= 0) & (item_ids != PAD_ID)
        return self.repeat_bias[distance.clamp(0, self.repeat_bias.shape[0] - 1)], valid


class RepeatBias(RepeatWeights):
    """+ ``r[d]`` on the score of each item clicked ``d`` steps before (re-clicks add up): RepeatNet's repeat mode."""

    def repeat_scores(self, item_ids: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """The bonus of each click of ``item_ids`` ``(..., L)`` when scoring at ``position``: ``r[position − k]`` or 0."""
        bias, valid = self.repeat_bias_at(item_ids, position)
        return torch.where(valid, bias, torch.zeros_like(bias))

    def next_scores(self, hidden: torch.Tensor, item_ids: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        scores = super().next_scores(hidden, item_ids, last)
        return scores.scatter_add(1, item_ids, self.repeat_scores(item_ids, last).float())

    def next_item_loss(self, hidden: torch.Tensor, targets: torch.Tensor, item_ids: torch.Tensor) -> torch.Tensor:
        keep = targets > OOV_ID
        rows, positions = cases(item_ids, targets)  # position t may re-click any item 0..t
        return self.catalogue_loss(hidden[keep], targets[keep], (rows[keep], self.repeat_scores(rows, positions)[keep]))


class RepeatMixture(RepeatWeights):
    """RepeatNet: ``log p(i) = log(g·q(i) + (1 − g)·softmax(s)_i)``, ``g = σ(w·h + b)``, ``q(i) ∝ Σ_{k: x_k = i}
    exp r[d_k]``; each part has its own loss: softmax on every next item, gate on "a re-click?", q on re-clicks."""

    def __init__(self, config: ModelConfig, item_category: torch.Tensor | None = None) -> None:
        super().__init__(config, item_category)
        self.repeat_gate = nn.Linear(config.hidden_size, 1)  # zero: g = 1/2 for every session at the start
        nn.init.zeros_(self.repeat_gate.weight)
        nn.init.zeros_(self.repeat_gate.bias)

    def repeat_log_weights(self, item_ids: torch.Tensor, position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``log_softmax_k r[position − k]`` over the clicks at or before ``position`` (others −1e4, finite), and valid."""
        bias, valid = self.repeat_bias_at(item_ids, position)
        bias = bias.float()
        return torch.log_softmax(torch.where(valid, bias, torch.full_like(bias, -1.0e4)), dim=-1), valid

    def next_scores(self, hidden: torch.Tensor, item_ids: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        scores = super().next_scores(hidden, item_ids, last)
        gate = self.repeat_gate(hidden).squeeze(-1).float()
        explore = torch.log_softmax(scores, dim=-1) + log_sigmoid(-gate)[:, None]
        weights = self.repeat_log_weights(item_ids, last)[0].exp()
        share = torch.zeros_like(scores).scatter_add(1, item_ids, weights).gather(1, item_ids)  # q(i) at each click
        repeat = log_sigmoid(gate)[:, None] + torch.log(share)
        at_clicks = explore.gather(1, item_ids)
        top = torch.maximum(at_clicks, repeat)  # logaddexp, written out (exports to ONNX)
        return explore.scatter(1, item_ids, top + torch.log1p(torch.exp(-(at_clicks - repeat).abs())))

    def next_item_loss(self, hidden: torch.Tensor, targets: torch.Tensor, item_ids: torch.Tensor) -> torch.Tensor:
        keep = targets > OOV_ID
        rows, positions = cases(item_ids, targets)
        hidden, targets, rows = hidden[keep], targets[keep], rows[keep]
        weights, valid = self.repeat_log_weights(rows, positions[keep])
        hit = (rows == targets[:, None]) & valid  # the next item is one of the clicks 0..t
        repeat = hit.any(dim=-1).float()
        log_q = torch.logsumexp(torch.where(hit, weights, torch.full_like(weights, -1.0e4)), dim=-1)
        gate = self.repeat_gate(hidden).squeeze(-1).float()
        mode_loss = F.binary_cross_entropy_with_logits(gate, repeat) - (repeat * log_q).mean()
        return self.catalogue_loss(hidden, targets) + mode_loss


@functools.cache
def _composed(cls: type, mixins: tuple[type, ...]) -> type:
    return type("_".join(c.__name__ for c in (cls, *mixins)), (cls, *mixins), {})  # a valid TorchScript name


def extend(cls: type, config: ModelConfig, extra: tuple[type, ...] = ()) -> type:
    """``cls`` with the ``extra`` mixins and the extensions ``config`` switches on (``cls`` itself when none)."""
    if config.time_features and not any(getattr(m, "reads_time_features", False) for m in extra):
        raise ValueError("time_features is a research switch of the benchmark tree (its TimeFeatures extension): "
                         "the course's models read item ids only")
    switches = ((config.repeat_mixture, RepeatMixture), (config.repeat_bias and not config.repeat_mixture, RepeatBias),
                (config.score_scale > 0, ScoreScale))
    mixins = (*extra, *(mixin for on, mixin in switches if on))
    return _composed(cls, mixins) if mixins else cls
