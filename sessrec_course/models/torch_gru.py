"""GRU session model in the GRU4Rec spirit (Hidasi et al., ICLR 2016): the state after item ``t`` scores item
``t + 1``, at every position at once, with a full-catalogue softmax instead of GRU4Rec's sampled ranking losses."""

from __future__ import annotations

import torch
from torch import nn

from sessrec_course.models.config import ModelConfig
from sessrec_course.models.torch_base import SessionModel


class GRUSessionModel(SessionModel):
    """Embeddings → GRU (``num_layers``) → dropout; causal by construction, so trailing padding is harmless."""

    def __init__(self, config: ModelConfig, item_category: torch.Tensor | None = None) -> None:
        super().__init__(config, item_category)
        hidden, layers = config.hidden_size, config.num_layers
        self.gru = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True,
                          dropout=config.dropout if layers > 1 else 0.0)
        self.output_dropout = nn.Dropout(config.dropout)

    def sequence_hidden(self, item_ids: torch.Tensor) -> torch.Tensor:
        """GRU state after each item → ``(B, L, H)``."""
        states, _ = self.gru(self.embed(item_ids))
        return self.output_dropout(states)
