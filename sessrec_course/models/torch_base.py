"""What every session model shares: input embeddings, the output layer and the training loss.

A subclass only implements :meth:`SessionModel.sequence_hidden`: item ids ``(B, L)`` → one hidden
vector per position ``(B, L, H)``, where position ``t`` summarises the session up to item ``t``.
Scoring, padding rules, unseen ids and the full-catalogue cross-entropy live here, once.

With ``time_features`` every click also carries the continuous features of :mod:`sessrec_course.etl.features`
``(B, L, 5)``, aligned with the ids. As in Transformers4Rec they are projected to the hidden size by a linear
layer and fused with the item embedding, here by a sum: the hidden size, the tied output layer and the
backbones stay as they are, and the projection starts at zero, so training starts from the id-only model.
Its output is scaled by ``0.1 / sqrt(hidden)`` (a tenth of the item embeddings' initial scale): the projection
is updated at every position of every batch, an item's embedding only where the item occurs, and unscaled, Adam's
steps on it shook the inputs enough to cost the GRU 2 MRR@20 points on data whose timing is noise
(docs/history/benchmarks.md). The features are truncated and padded exactly like the ids; padding stays zero.

With ``repeat_bias`` a learnt scalar ``r[d]`` is added to the score of every item the session clicked ``d``
steps before the scored position (``d = 0`` is the last click). It is the simplest form of RepeatNet's
"repeat mode" (Ren et al. 2019): in YOOCHOOSE a quarter of next clicks are re-clicks, which a softmax over
the whole catalogue learns only slowly through the embeddings.

With ``repeat_mixture`` as well, the scores are RepeatNet's mixture instead of a sum: a gate ``g = σ(w·h + b)``
read off the session's hidden vector picks between *repeat mode*, a softmax over the session's clicks by their
distance, ``q(i) ∝ Σ_{k: x_k = i} exp(r[d_k])`` (all ``r = 0`` is S-POP's click count), and *explore mode*, the
softmax over the catalogue: ``log p(i) = log(g·q(i) + (1 − g)·softmax(s)_i)``. A sum of logits cannot say "a
re-click of one of twenty earlier items, or else the usual successor"; a mixture of two distributions can.
Training sees the mode, so each part gets its own loss: the softmax the full cross-entropy on every next item
(as without the mixture), the gate a logistic loss on "the next item is one of the session's clicks", and q the
likelihood of the re-clicked ones. Trained as one latent mixture instead, the softmax learnt only from the
cases the repeat side could not explain and fell far behind (docs/history/benchmarks.md, session 11).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sessrec_course.etl.features import N_TIME_FEATURES
from sessrec_course.ids import OOV_ID, PAD_ID
from sessrec_course.models.config import ModelConfig

MASKED_SCORE = -1.0e9  # score given to padding and OOV so that they are never recommended


def log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``log σ(x)`` written out from exp and log1p: exact in the tails in ONNX Runtime too (its Sigmoid is not)."""
    return torch.clamp(x, max=0.0) - torch.log1p(torch.exp(-x.abs()))


@dataclass
class FeatureBatch:
    """A training batch of a time-feature model: ids ``(B, L)`` and their features ``(B, L, F)``, moved together."""

    item_ids: torch.Tensor
    features: torch.Tensor

    def to(self, device, non_blocking: bool = False) -> FeatureBatch:
        """Both tensors on ``device``."""
        return FeatureBatch(self.item_ids.to(device, non_blocking=non_blocking),
                            self.features.to(device, non_blocking=non_blocking))

    def __len__(self) -> int:
        return len(self.item_ids)


def split_batch(batch: torch.Tensor | FeatureBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(item_ids, features or None)`` of a plain id batch or a :class:`FeatureBatch`."""
    return (batch.item_ids, batch.features) if isinstance(batch, FeatureBatch) else (batch, None)


class SessionModel(nn.Module):
    """Base class: ``forward(item_ids (B, L) int64) -> scores (B, item_cardinality) float32``."""

    def __init__(self, config: ModelConfig, item_category: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        n_items, hidden = config.item_cardinality, config.hidden_size
        self.n_items = n_items
        self.mask_id = n_items  # extra embedding row: the [MASK] token of masked models
        self.max_length = config.max_length
        self.item_embedding = nn.Embedding(n_items + 1, hidden, padding_idx=PAD_ID)
        nn.init.normal_(self.item_embedding.weight, std=hidden**-0.5)
        with torch.no_grad():
            self.item_embedding.weight[PAD_ID].zero_()
        lookup = torch.zeros(n_items + 1, dtype=torch.long)
        if item_category is not None:
            item_category = torch.as_tensor(item_category, dtype=torch.long)
            if item_category.shape[0] > n_items + 1:
                raise ValueError(f"item_category has {item_category.shape[0]} rows, more than {n_items} items")
            lookup[: item_category.shape[0]] = item_category.clamp(min=0)
        self.register_buffer("item_category", lookup)
        self.category_embedding = None
        if config.category_cardinality > 0:
            if int(lookup.max()) >= config.category_cardinality:
                raise ValueError(
                    f"item_category holds category {int(lookup.max())} but category_cardinality is "
                    f"{config.category_cardinality}"
                )
            self.category_embedding = nn.Embedding(config.category_cardinality, hidden, padding_idx=PAD_ID)
            nn.init.normal_(self.category_embedding.weight, std=0.5 * hidden**-0.5)
        self.input_dropout = nn.Dropout(config.dropout)
        self.output = None if config.tie_weights else nn.Linear(hidden, n_items, bias=False)
        self.output_bias = nn.Parameter(torch.zeros(n_items))
        self.repeat_bias = nn.Parameter(torch.zeros(config.max_length)) if config.repeat_bias else None
        self.repeat_gate = None
        if config.repeat_mixture:  # starts at g = 1/2 for every session (zero weights: no random draw)
            self.repeat_gate = nn.Linear(hidden, 1)
            nn.init.zeros_(self.repeat_gate.weight)
            nn.init.zeros_(self.repeat_gate.bias)
        self.time_projection = None
        if config.time_features:  # drawn from no random stream: the other weights start as in the id-only model
            with torch.random.fork_rng(devices=[]):
                self.time_projection = nn.Linear(N_TIME_FEATURES, hidden)
            nn.init.zeros_(self.time_projection.weight)
            nn.init.zeros_(self.time_projection.bias)
        self.time_scale = 0.1 * hidden**-0.5

    # ---- inputs -------------------------------------------------------------------------------
    def sanitize(self, item_ids: torch.Tensor) -> torch.Tensor:
        """Map negative ids to padding and ids outside the catalogue to OOV (defined answers, no crash)."""
        item_ids = item_ids.long()
        item_ids = torch.where(item_ids < 0, torch.zeros_like(item_ids), item_ids)
        return torch.where(item_ids >= self.n_items, torch.full_like(item_ids, OOV_ID), item_ids)

    def check_features(self, item_ids: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor | None:
        """``features`` as float, checked against the ids; a clear error when the config and the input disagree."""
        if self.time_projection is None:
            if features is not None:
                raise ValueError("this model was built without time_features; score it with item ids only")
            return None
        if features is None:
            raise ValueError("this model was trained with time_features: pass each click's features (B, L, "
                             f"{N_TIME_FEATURES}) beside the item ids (sessrec_course.etl.features)")
        if features.shape != (*item_ids.shape, N_TIME_FEATURES):
            raise ValueError(f"features have shape {tuple(features.shape)}, expected "
                             f"{(*item_ids.shape, N_TIME_FEATURES)} (one vector per item id)")
        return features.float()

    def last_items(self, item_ids: torch.Tensor, width: int, features: torch.Tensor | None = None):
        """Keep the last ``width`` items of each right-padded row: ``(ids (B, width), lengths (B,))``.

        With ``features`` ``(B, L, F)`` their rows are kept the same way: ``(ids, lengths, features (B, width, F))``.
        """
        lengths = (item_ids != PAD_ID).sum(dim=1)
        start = (lengths - width).clamp(min=0)
        index = start[:, None] + torch.arange(width, device=item_ids.device)[None, :]
        valid = index < lengths[:, None]
        index = index.clamp(max=item_ids.shape[1] - 1)
        ids = torch.where(valid, item_ids.gather(1, index), torch.zeros_like(index))
        if features is None:
            return ids, lengths.clamp(max=width)
        kept = features.gather(1, index[..., None].expand(-1, -1, features.shape[-1]))
        return ids, lengths.clamp(max=width), torch.where(valid[..., None], kept, torch.zeros_like(kept))

    def embed(self, item_ids: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """Item embedding (+ category embedding, + projected time features) → ``(B, L, H)``; padding is 0."""
        x = self.item_embedding(item_ids)
        if self.category_embedding is not None:
            x = x + self.category_embedding(self.item_category[item_ids])
        if self.time_projection is not None:
            if features is None:
                raise ValueError("this model was trained with time_features: pass the features beside the ids")
            projected = self.time_scale * self.time_projection(features.to(x.dtype))
            x = x + projected * (item_ids != PAD_ID)[..., None].to(x.dtype)
        return self.input_dropout(x)

    # ---- to implement -------------------------------------------------------------------------
    def sequence_hidden(self, item_ids: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """Return one hidden vector per position ``(B, L, H)`` for right-padded ``item_ids`` (and their features)."""
        raise NotImplementedError

    def hidden_states(self, item_ids: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        """:meth:`sequence_hidden`, called with the ids alone when there are no features (a subclass may take only ids)."""
        return self.sequence_hidden(item_ids) if features is None else self.sequence_hidden(item_ids, features)

    # ---- outputs ------------------------------------------------------------------------------
    def output_weight(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(hidden, weight)`` pair that the output layer multiplies (``weight``: one row per item).

        With ``score_scale > 0`` both sides are L2-normalised and the hidden side is scaled, so a score is
        ``scale · cos(session, item)`` (NISER, Gupta et al. 2019): popular items can no longer win by
        growing long embeddings, which mostly helps the long tail.
        """
        weight = self.item_embedding.weight[: self.n_items] if self.output is None else self.output.weight
        if self.config.score_scale > 0:
            hidden = self.config.score_scale * F.normalize(hidden, dim=-1)
            weight = F.normalize(weight, dim=-1)
        return hidden, weight

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores over the catalogue for hidden vectors ``(N, H)`` → ``(N, item_cardinality)``."""
        hidden, weight = self.output_weight(hidden)
        return F.linear(hidden, weight.to(hidden.dtype), self.output_bias.to(hidden.dtype))

    def repeat_scores(self, item_ids: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Repeat bonus of each item in ``item_ids`` ``(..., L)`` when scoring at ``position`` ``(...)``.

        Returns ``(..., L)``: ``r[position - k]`` for item ``k`` at or before ``position``, 0 for later items
        and for padding. Added to the scores at the ids with ``scatter_add`` (re-clicked items add up).
        """
        bias, valid = self.repeat_bias_at(item_ids, position)
        return torch.where(valid, bias, torch.zeros_like(bias))

    def repeat_bias_at(self, item_ids: torch.Tensor, position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r[position − k], valid)`` for each click ``k`` of ``item_ids`` ``(..., L)``: valid = at or before, not padding."""
        distance = position[..., None] - torch.arange(item_ids.shape[-1], device=item_ids.device)
        valid = (distance >= 0) & (item_ids != PAD_ID)
        return self.repeat_bias[distance.clamp(0, self.repeat_bias.shape[0] - 1)], valid

    def repeat_log_weights(self, item_ids: torch.Tensor, position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Repeat mode's log-weights ``log_softmax_k r[position − k]`` over the clicks at or before ``position``.

        ``item_ids`` ``(..., L)``, ``position`` ``(...)`` → ``(weights, valid)``, both ``(..., L)``; later clicks
        and padding get −1e4 (finite, so that rows without a match still have finite gradients).
        """
        bias, valid = self.repeat_bias_at(item_ids, position)
        bias = bias.float()
        return torch.log_softmax(torch.where(valid, bias, torch.full_like(bias, -1.0e4)), dim=-1), valid

    def mixture_scores(self, scores: torch.Tensor, hidden: torch.Tensor, ids: torch.Tensor,
                       last: torch.Tensor) -> torch.Tensor:
        """``log(g·q(i) + (1 − g)·softmax(scores)_i)`` for every item: scores ``(B, N)``, hidden ``(B, H)``."""
        gate = self.repeat_gate(hidden).squeeze(-1).float()
        explore = torch.log_softmax(scores, dim=-1) + log_sigmoid(-gate)[:, None]
        weights = self.repeat_log_weights(ids, last)[0].exp()
        share = torch.zeros_like(scores).scatter_add(1, ids, weights).gather(1, ids)  # q(i) at each click
        repeat = log_sigmoid(gate)[:, None] + torch.log(share)
        at_clicks = explore.gather(1, ids)
        top = torch.maximum(at_clicks, repeat)  # logaddexp, written out (exports to ONNX)
        mixed = top + torch.log1p(torch.exp(-(at_clicks - repeat).abs()))
        return explore.scatter(1, ids, mixed)

    def forward(self, item_ids: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """Score the next item of each session: ``(B, L)`` right-padded ids → ``(B, item_cardinality)``.

        Longer sessions keep their last ``max_length`` items, extra padding changes nothing, an empty
        session gets the learnt popularity (the output bias), padding and OOV get a very low score.
        A ``time_features`` model needs ``features`` ``(B, L, F)`` aligned with the ids (others take none).
        """
        item_ids = self.sanitize(item_ids)
        features = self.check_features(item_ids, features)
        width = self.max_length if self.config.causal else self.max_length - 1
        if features is None:
            ids, lengths = self.last_items(item_ids, width)
        else:
            ids, lengths, features = self.last_items(item_ids, width, features)
        if not self.config.causal:  # masked model: ask for the item at a [MASK] after the session
            ids = torch.cat([ids, torch.zeros_like(ids[:, :1])], dim=1)
            ids = ids.scatter(1, lengths[:, None], torch.full_like(lengths[:, None], self.mask_id))
            if features is not None:  # the [MASK] slot has no click yet: no features
                features = torch.cat([features, torch.zeros_like(features[:, :1])], dim=1)
            last = lengths
        else:
            last = (lengths - 1).clamp(min=0)
        hidden = self.hidden_states(ids, features)
        rows = torch.arange(ids.shape[0], device=ids.device)
        scores = self.logits(hidden[rows, last]).float()
        if self.repeat_gate is not None:
            scores = self.mixture_scores(scores, hidden[rows, last], ids, last)
        elif self.repeat_bias is not None:
            scores = scores.scatter_add(1, ids, self.repeat_scores(ids, last).float())
        empty = (lengths == 0)[:, None]
        scores = torch.where(empty, self.output_bias.float()[None, :].expand_as(scores), scores)
        return torch.cat([torch.full_like(scores[:, :2], MASKED_SCORE), scores[:, 2:]], dim=1)

    def loss(self, batch: torch.Tensor | FeatureBatch) -> torch.Tensor:
        """Full-catalogue cross-entropy of a training batch (right-padded ``(B, L)`` ids, or a :class:`FeatureBatch`)."""
        item_ids, features = split_batch(batch)
        item_ids = self.sanitize(item_ids)
        features = self.check_features(item_ids, features)
        if item_ids.shape[1] > self.max_length:  # wider batches keep each session's last items
            kept = self.last_items(item_ids, self.max_length, features)
            item_ids, features = kept[0], kept[2] if features is not None else None
        if self.config.causal:  # next item at every position
            hidden = self.hidden_states(item_ids, features)[:, :-1]
            targets = item_ids[:, 1:]
        else:  # masked items: a masked click's features are hidden with it, as at the [MASK] slot when scoring
            inputs, targets = self.mask_items(item_ids)
            if features is not None:
                features = torch.where((targets != PAD_ID)[..., None], torch.zeros_like(features), features)
            hidden = self.hidden_states(inputs, features)
        keep = targets > OOV_ID  # no loss on padding or on unknown items
        hidden = hidden[keep]
        repeats = mode_loss = None
        if self.repeat_bias is not None:  # position t may re-click any item 0..t: (B, L-1, L) → (rows, L)
            positions = torch.arange(targets.shape[1], device=item_ids.device).expand_as(targets)
            rows = item_ids[:, None, :].expand(-1, targets.shape[1], -1)
            if self.repeat_gate is None:
                repeats = (rows[keep], self.repeat_scores(rows, positions)[keep])
            else:  # the mode is observed in training: is the next item one of the clicks 0..t?
                weights, valid = self.repeat_log_weights(rows[keep], positions[keep])
                hit = (rows[keep] == targets[keep][:, None]) & valid
                repeat = hit.any(dim=-1).float()
                log_q = torch.logsumexp(torch.where(hit, weights, torch.full_like(weights, -1.0e4)), dim=-1)
                gate = self.repeat_gate(hidden).squeeze(-1).float()
                mode_loss = F.binary_cross_entropy_with_logits(gate, repeat) - (repeat * log_q).mean()
        hidden, weight = self.output_weight(hidden)
        loss = linear_cross_entropy(hidden, weight, self.output_bias, targets[keep], repeats=repeats)
        return loss if mode_loss is None else loss + mode_loss

    def mask_items(self, item_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked training: replace a random share of items (and always the last) by [MASK].

        Returns ``(inputs, targets)`` where targets are 0 at positions with no loss.
        """
        present = item_ids != PAD_ID
        lengths = present.sum(dim=1)
        chosen = (torch.rand(item_ids.shape, device=item_ids.device) < self.config.mask_probability) & present
        last = torch.zeros_like(present).scatter(1, (lengths - 1).clamp(min=0)[:, None], True) & present
        chosen = chosen | last
        inputs = torch.where(chosen, torch.full_like(item_ids, self.mask_id), item_ids)
        targets = torch.where(chosen, item_ids, torch.zeros_like(item_ids))
        return inputs, targets


class _LinearCrossEntropy(torch.autograd.Function):
    """Exact full-catalogue softmax cross-entropy of ``hidden @ weight.T + bias``, computed in row chunks.

    Same value and gradients as ``F.cross_entropy(F.linear(hidden, weight, bias), targets)``, but the
    ``(rows, catalogue)`` logits never exist all at once: each chunk's logits give its loss and its
    gradient (softmax − one-hot) straight away. On CPU this halves the memory traffic that dominates
    a step with a large catalogue. Matrix products run in ``dtype`` (bf16 under autocast), the softmax in fp32.
    Optional sparse extra scores (``repeat_ids``, ``repeat_values``, both ``(rows, K)``) are added to the
    logits at those ids; their gradient is (softmax − one-hot) read at the same ids.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, repeat_ids, repeat_values, dtype, chunk):
        n = hidden.shape[0]
        w = weight.detach().to(dtype)
        grad_hidden = torch.empty_like(hidden, dtype=torch.float32)
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        grad_bias = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device)
        grad_repeat = None if repeat_values is None else torch.empty_like(repeat_values, dtype=torch.float32)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, n, chunk):
            h = hidden[start : start + chunk].detach().to(dtype)
            t = targets[start : start + chunk]
            logits = torch.addmm(bias.detach().to(dtype), h, w.t()).float()
            if grad_repeat is not None:
                ids = repeat_ids[start : start + chunk]
                logits.scatter_add_(1, ids, repeat_values[start : start + chunk].detach().float())
            target_logit = logits.gather(1, t[:, None]).squeeze(1)
            top = logits.amax(dim=1, keepdim=True)
            probs = logits.sub_(top).exp_()  # in place, one pass: unnormalised softmax
            norm = probs.sum(dim=1, keepdim=True)
            total += (top.squeeze(1) + norm.squeeze(1).log() - target_logit).sum()
            probs.div_(norm)
            probs[torch.arange(len(t), device=t.device), t] -= 1.0
            if grad_repeat is not None:
                grad_repeat[start : start + chunk] = probs.gather(1, ids)
            g = probs.to(dtype)
            grad_hidden[start : start + chunk] = (g @ w).float()
            grad_weight += (g.t() @ h).float()
            grad_bias += probs.sum(0)
        grads = [grad_hidden, grad_weight, grad_bias] + ([] if grad_repeat is None else [grad_repeat])
        ctx.save_for_backward(*grads)
        ctx.dtypes = (hidden.dtype, weight.dtype, bias.dtype) + (() if repeat_values is None else (repeat_values.dtype,))
        return total / max(1, n)

    @staticmethod
    def backward(ctx, grad_output):
        grads = ctx.saved_tensors
        scale = grad_output / max(1, grads[0].shape[0])
        out = [(g * scale).to(dtype) for g, dtype in zip(grads, ctx.dtypes, strict=True)]
        grad_repeat = out[3] if len(out) == 4 else None
        return out[0], out[1], out[2], None, None, grad_repeat, None, None


def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor, chunk: int = 128,
    repeats: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of ``F.linear(hidden, weight, bias)`` against ``targets``, chunked (exact).

    ``repeats``: optional ``(ids, values)`` of shape ``(rows, K)`` whose values are added to the logits at
    those ids before the softmax (``scatter_add``: repeated ids add up).
    """
    device_type = hidden.device.type
    dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else hidden.dtype
    repeat_ids, repeat_values = (None, None) if repeats is None else repeats
    with torch.autocast(device_type=device_type, enabled=False):
        return _LinearCrossEntropy.apply(hidden, weight, bias, targets, repeat_ids, repeat_values, dtype, chunk)
