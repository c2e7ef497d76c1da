"""HSTU, the Hierarchical Sequential Transduction Unit (Zhai et al., ICML 2024, "Actions Speak Louder than Words").

One layer: ``U, V, Q, K = split(SiLU(f1(Norm(X))))``; ``A = SiLU(α Q Kᵀ + rab) / n`` under the causal mask, with
``rab`` a learnt bias per distance and ``n`` the model's window (``max_length``); ``X + f2(Norm(A V) ⊙ U)``. No
softmax: the weights need not sum to one, so the output keeps how many earlier clicks were relevant. Positions only:
the course's models read item ids, so the paper's relative time bias is left out (lesson 05b says why).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sessrec_course.ids import PAD_ID
from sessrec_course.models.config import ModelConfig
from sessrec_course.models.torch_base import SessionModel


class HSTULayer(nn.Module):
    """Pointwise (SiLU) attention with a relative position bias, gated by ``U``, plus the residual: ``(B, L, H)``."""

    def __init__(self, hidden: int, heads: int, max_length: int, dropout: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden_size {hidden} is not divisible by num_heads {heads}")
        self.heads, self.max_length = heads, max_length
        self.f1 = nn.Linear(hidden, 4 * hidden)  # U, V, Q, K from one matrix product
        self.f2 = nn.Linear(hidden, hidden)
        self.norm_x, self.norm_av = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.rab = nn.Parameter(torch.zeros(max_length))  # one bias per distance i - j (causal: 0 ≤ i - j)
        self.dropout = nn.Dropout(dropout)

    def attention(self, q: torch.Tensor, k: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Weights ``(B, heads, L, L)``: ``SiLU(α q·k + rab[i - j]) / n`` where ``keep`` allows it, else 0."""
        position = torch.arange(q.shape[-2], device=q.device)
        distance = (position[:, None] - position[None, :]).clamp(0, self.max_length - 1)
        scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5 + self.rab[distance]  # α = 1/√d, as Meta's STU has
        return torch.where(keep, F.silu(scores) / self.max_length, 0.0)  # zeroed after SiLU: SiLU(-inf) is NaN

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """One layer on ``x`` ``(B, L, H)``; ``keep`` ``(B, 1, L, L)`` says which key each position may read."""
        u, v, q, k = F.silu(self.f1(self.norm_x(x))).chunk(4, dim=-1)
        v, q, k = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (v, q, k))  # (B, heads, L, H/heads)
        av = (self.attention(q, k, keep) @ v).transpose(1, 2).flatten(2)
        return x + self.f2(self.dropout(self.norm_av(av) * u))  # elementwise gate, then the residual


class HSTUSessionModel(SessionModel):
    """Embeddings → ``num_layers`` HSTU layers → LayerNorm; causal, so trailing padding is harmless."""

    def __init__(self, config: ModelConfig, item_category: torch.Tensor | None = None) -> None:
        super().__init__(config, item_category)
        self.layers = nn.ModuleList(HSTULayer(config.hidden_size, config.num_heads, config.max_length, config.dropout)
                                    for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.hidden_size)

    def keep(self, item_ids: torch.Tensor) -> torch.Tensor:
        """``(B, 1, L, L)``: position i reads key j when j ≤ i and both are clicks (padding neither reads nor is read)."""
        length = item_ids.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=item_ids.device).tril()
        click = item_ids != PAD_ID
        return (causal[None] & click[:, None, :] & click[:, :, None])[:, None]

    def sequence_hidden(self, item_ids: torch.Tensor) -> torch.Tensor:
        """HSTU state after each item → ``(B, L, H)``."""
        x, keep = self.embed(item_ids), self.keep(item_ids)
        for layer in self.layers:
            x = layer(x, keep)
        return self.norm(x)
