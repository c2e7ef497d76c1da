"""MLP session model, a neural n-gram: the embeddings of the last N items, concatenated, through a small MLP.

It sees a fixed window and no order beyond it; the window ending at item ``t`` predicts item ``t + 1``."""

from __future__ import annotations

import torch
from torch import nn

from sessrec_course.models.config import ModelConfig
from sessrec_course.models.torch_base import SessionModel


class MLPSessionModel(SessionModel):
    """Concatenate the last ``window`` item embeddings (zeros before the session start) → MLP → H."""

    def __init__(self, config: ModelConfig, item_category: torch.Tensor | None = None) -> None:
        super().__init__(config, item_category)
        hidden = config.hidden_size
        self.mlp = nn.Sequential(nn.Linear(config.window * hidden, 2 * hidden), nn.GELU(), nn.Dropout(config.dropout),
                                 nn.Linear(2 * hidden, hidden))
        self.norm = nn.LayerNorm(hidden)

    def sequence_hidden(self, item_ids: torch.Tensor) -> torch.Tensor:
        """Window ``[t - N + 1, t]`` of embeddings at each position ``t`` → ``(B, L, H)``."""
        x = self.embed(item_ids)  # (B, L, H), padding rows are zero
        window, length = self.config.window, x.shape[1]
        x = torch.cat([x.new_zeros(x.shape[0], window - 1, x.shape[2]), x], dim=1)  # zeros before the start
        windows = torch.cat([x[:, i : i + length] for i in range(window)], dim=2)  # oldest → newest: (B, L, N*H)
        return self.norm(self.mlp(windows) + x[:, window - 1 :])
