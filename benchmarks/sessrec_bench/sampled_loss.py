"""Sampled softmax with a logQ correction: a cheaper training step where the catalogue is large.

``build_model(config, extensions=(sampled_loss(4096), ChunkedLoss))`` scores each case against one shared candidate
set instead of the whole catalogue: every target and every clicked item of the batch (so the repeat scores still
land) plus ``negatives`` ids drawn uniformly. A drawn id's logit loses ``log Q``, Q = negatives / catalogue, its chance
to be drawn (Bengio & Senécal 2008; Yi et al. 2019): it stands for the ids not drawn, so the loss estimates the
full softmax's; the batch's own items are always in the set (Q = 1).
Inference is untouched: the model still scores the whole catalogue.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from sessrec_course.models.torch_base import SessionModel


class SampledLoss(SessionModel):
    """A session model trained with sampled softmax over ``negatives`` uniform ids + the batch's own items."""

    negatives = 4096  # uniform draws per step (the recipe's setting where the catalogue is large)

    def catalogue_loss(self, hidden: torch.Tensor, targets: torch.Tensor,
                       extra: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        n_items = int(self.output_bias.shape[0])
        if not self.training or self.negatives >= n_items // 2:  # no saving: the exact loss
            return super().catalogue_loss(hidden, targets, extra)
        forced = targets if extra is None else torch.cat([targets, extra[0].reshape(-1)])
        drawn = torch.randint(0, n_items, (self.negatives,), device=targets.device)
        candidates, column = torch.unique(torch.cat([forced, drawn]), return_inverse=True)
        forced_here = torch.zeros(len(candidates), dtype=torch.bool, device=targets.device)
        forced_here[column[: len(forced)]] = True
        log_q = torch.where(forced_here, 0.0, math.log(self.negatives / n_items))  # a draw stands for n/k ids
        hidden, weight = self.output_weight(hidden)
        logits = F.linear(hidden, weight[candidates].to(hidden.dtype), self.output_bias[candidates].to(hidden.dtype))
        logits = logits.float() - log_q
        if extra is not None:
            logits = logits.scatter_add(1, column[len(targets) : len(forced)].view_as(extra[0]), extra[1].float())
        return F.cross_entropy(logits, column[: len(targets)])


@functools.cache
def sampled_loss(negatives: int) -> type:
    """The :class:`SampledLoss` mixin with ``negatives`` uniform draws per step (one class per count)."""
    return type(f"SampledLoss{negatives}", (SampledLoss,), {"negatives": int(negatives)})
