"""What every session model shares: the item embeddings, the scores over the catalogue and the next-item loss.

A subclass implements :meth:`SessionModel.sequence_hidden`: ids ``(B, L)`` → one hidden vector per position
``(B, L, H)``. Padding, unseen ids, long and empty sessions are handled here, once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sessrec_course.ids import OOV_ID, PAD_ID
from sessrec_course.models.config import ModelConfig

MASKED_SCORE = -1.0e9  # score given to padding and OOV so that they are never recommended


class SessionModel(nn.Module):
    """Base class: ``forward(item_ids (B, L) int64) -> scores (B, item_cardinality) float32``."""

    def __init__(self, config: ModelConfig, item_category: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config, self.n_items, self.max_length = config, config.item_cardinality, config.max_length
        self.mask_id = self.n_items  # extra embedding row: the [MASK] token of masked models
        hidden = config.hidden_size
        self.item_embedding = nn.Embedding(self.n_items + 1, hidden, padding_idx=PAD_ID)
        nn.init.normal_(self.item_embedding.weight, std=hidden**-0.5)
        with torch.no_grad():
            self.item_embedding.weight[PAD_ID].zero_()
        lookup = torch.zeros(self.n_items + 1, dtype=torch.long)  # item id → category id (0: none)
        if item_category is not None:
            item_category = torch.as_tensor(item_category, dtype=torch.long)
            if item_category.shape[0] > self.n_items + 1:
                raise ValueError(f"item_category has {item_category.shape[0]} rows, more than {self.n_items} items")
            lookup[: item_category.shape[0]] = item_category.clamp(min=0)
        self.register_buffer("item_category", lookup)
        self.category_embedding = None
        if config.category_cardinality > 0:
            if int(lookup.max()) >= config.category_cardinality:
                raise ValueError(f"item_category holds category {int(lookup.max())} but category_cardinality is "
                                 f"{config.category_cardinality}")
            self.category_embedding = nn.Embedding(config.category_cardinality, hidden, padding_idx=PAD_ID)
            nn.init.normal_(self.category_embedding.weight, std=0.5 * hidden**-0.5)
        self.input_dropout = nn.Dropout(config.dropout)
        self.output = None if config.tie_weights else nn.Linear(hidden, self.n_items, bias=False)
        self.output_bias = nn.Parameter(torch.zeros(self.n_items))

    def sequence_hidden(self, item_ids: torch.Tensor) -> torch.Tensor:
        """One hidden vector per position ``(B, L, H)`` for right-padded ``item_ids`` (each model's own part)."""
        raise NotImplementedError

    def sanitize(self, item_ids: torch.Tensor) -> torch.Tensor:
        """Map negative ids to padding and ids outside the catalogue to OOV (defined answers, no crash)."""
        item_ids = item_ids.long()
        item_ids = torch.where(item_ids < 0, torch.zeros_like(item_ids), item_ids)
        return torch.where(item_ids >= self.n_items, torch.full_like(item_ids, OOV_ID), item_ids)

    def last_items(self, item_ids: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the last ``width`` items of each right-padded row: ``(ids (B, width), lengths (B,))``."""
        lengths = (item_ids != PAD_ID).sum(dim=1)
        index = (lengths - width).clamp(min=0)[:, None] + torch.arange(width, device=item_ids.device)[None, :]
        ids = item_ids.gather(1, index.clamp(max=item_ids.shape[1] - 1))
        return torch.where(index < lengths[:, None], ids, torch.zeros_like(ids)), lengths.clamp(max=width)

    def embed(self, item_ids: torch.Tensor) -> torch.Tensor:
        """Item embedding (+ category embedding) → ``(B, L, H)``; padding is 0."""
        x = self.item_embedding(item_ids)
        if self.category_embedding is not None:
            x = x + self.category_embedding(self.item_category[item_ids])
        return self.input_dropout(x)

    def output_weight(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(hidden, weight)`` pair the output layer multiplies (``weight``: one row per item)."""
        return hidden, self.item_embedding.weight[: self.n_items] if self.output is None else self.output.weight

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores over the catalogue for hidden vectors ``(..., H)`` → ``(..., item_cardinality)``."""
        hidden, weight = self.output_weight(hidden)
        return F.linear(hidden, weight.to(hidden.dtype), self.output_bias.to(hidden.dtype))

    def next_scores(self, hidden: torch.Tensor, item_ids: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """Scores of the next item from the state at position ``last`` of ``item_ids`` (extensions read the clicks)."""
        return self.logits(hidden).float()

    def forward(self, item_ids: torch.Tensor) -> torch.Tensor:
        """Next-item scores ``(B, item_cardinality)``; long sessions keep their last items, empty ones get the bias."""
        causal = self.config.causal
        ids, lengths = self.last_items(self.sanitize(item_ids), self.max_length if causal else self.max_length - 1)
        if causal:  # the state after the last item
            last = (lengths - 1).clamp(min=0)
        else:  # masked model: ask for the item at a [MASK] after the session
            ids = torch.cat([ids, torch.zeros_like(ids[:, :1])], dim=1)
            ids = ids.scatter(1, lengths[:, None], torch.full_like(lengths[:, None], self.mask_id))
            last = lengths
        hidden = self.sequence_hidden(ids)[torch.arange(ids.shape[0], device=ids.device), last]
        scores = self.next_scores(hidden, ids, last)
        scores = torch.where((lengths == 0)[:, None], self.output_bias.float()[None, :].expand_as(scores), scores)
        return torch.cat([torch.full_like(scores[:, :2], MASKED_SCORE), scores[:, 2:]], dim=1)

    def loss(self, item_ids: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the catalogue of every next item (causal) or every masked item (masked models)."""
        item_ids = self.sanitize(item_ids)
        if item_ids.shape[1] > self.max_length:  # wider batches keep each session's last items
            item_ids = self.last_items(item_ids, self.max_length)[0]
        if self.config.causal:  # the state after item t predicts item t + 1
            return self.next_item_loss(self.sequence_hidden(item_ids)[:, :-1], item_ids[:, 1:], item_ids)
        inputs, targets = self.mask_items(item_ids)
        return self.next_item_loss(self.sequence_hidden(inputs), targets, item_ids)

    def next_item_loss(self, hidden: torch.Tensor, targets: torch.Tensor, item_ids: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy at every position whose target is a known item (no loss on padding or OOV)."""
        keep = targets > OOV_ID
        return self.catalogue_loss(hidden[keep], targets[keep])

    def catalogue_loss(self, hidden: torch.Tensor, targets: torch.Tensor,
                       extra: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Cross-entropy of the logits of ``hidden`` ``(N, H)``, ``extra = (ids, values) (N, K)`` added at ids."""
        logits = self.logits(hidden)
        if extra is not None:
            logits = logits.scatter_add(1, extra[0], extra[1].to(logits.dtype))
        return F.cross_entropy(logits, targets)

    def mask_items(self, item_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked training: a random share of items (and always the last) become [MASK]; targets are 0 elsewhere."""
        present = item_ids != PAD_ID
        lengths = present.sum(dim=1)
        chosen = (torch.rand(item_ids.shape, device=item_ids.device) < self.config.mask_probability) & present
        chosen = chosen | (torch.zeros_like(present).scatter(1, (lengths - 1).clamp(min=0)[:, None], True) & present)
        inputs = torch.where(chosen, torch.full_like(item_ids, self.mask_id), item_ids)
        return inputs, torch.where(chosen, item_ids, torch.zeros_like(item_ids))
