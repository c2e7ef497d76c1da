"""Transformer session models on Hugging Face backbones built from configs (no hub download):

- ``gpt2``, causal (SASRec): position ``t`` sees items ``≤ t`` and predicts ``t + 1``;
- ``bert``, bidirectional (BERT4Rec), and ``xlnet`` (as Transformers4Rec): fill in a [MASK] after the session.
"""

from __future__ import annotations

import torch

from sessrec_course.ids import PAD_ID
from sessrec_course.models.config import ModelConfig
from sessrec_course.models.torch_base import SessionModel


def build_backbone(config: ModelConfig, attn_implementation: str = "sdpa") -> torch.nn.Module:
    """Return a randomly initialised Hugging Face encoder for ``config.backbone``."""
    from transformers import BertConfig, BertModel, GPT2Config, GPT2Model, XLNetConfig, XLNetModel

    hidden, layers, heads, drop = config.hidden_size, config.num_layers, config.num_heads, config.dropout
    if hidden % heads:
        raise ValueError(f"hidden_size {hidden} is not divisible by num_heads {heads}")
    no_tokens = {"vocab_size": 1, "bos_token_id": None, "eos_token_id": None, "pad_token_id": None}
    if config.backbone == "gpt2":
        hf = GPT2Config(n_positions=config.max_length, n_embd=hidden, n_layer=layers, n_head=heads, n_inner=4 * hidden,
                        resid_pdrop=drop, embd_pdrop=drop, attn_pdrop=drop, activation_function=config.activation,
                        **no_tokens)
        hf._attn_implementation = attn_implementation
        return GPT2Model(hf)
    if config.backbone == "bert":
        hf = BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=4 * hidden, hidden_dropout_prob=drop, attention_probs_dropout_prob=drop,
                        max_position_embeddings=config.max_length, hidden_act=config.activation, type_vocab_size=1,
                        **no_tokens)
        hf._attn_implementation = attn_implementation
        return BertModel(hf, add_pooling_layer=False)
    hf = XLNetConfig(d_model=hidden, n_layer=layers, n_head=heads, d_inner=4 * hidden, dropout=drop,
                     ff_activation=config.activation, **no_tokens)
    return XLNetModel(hf)


class TransformerSessionModel(SessionModel):
    """Item (+ category) embeddings → Hugging Face transformer → hidden state per position."""

    def __init__(self, config: ModelConfig, item_category: torch.Tensor | None = None) -> None:
        super().__init__(config, item_category)
        self.backbone = build_backbone(config)

    def attention_mask(self, item_ids: torch.Tensor) -> torch.Tensor:
        """1 for real items (and [MASK]), 0 for padding; an empty row keeps position 0 to avoid NaNs."""
        mask = (item_ids != PAD_ID).long()
        return torch.cat([torch.ones_like(mask[:, :1]), mask[:, 1:]], dim=1)

    def sequence_hidden(self, item_ids: torch.Tensor) -> torch.Tensor:
        """Transformer output at each position → ``(B, L, H)``."""
        out = self.backbone(inputs_embeds=self.embed(item_ids), attention_mask=self.attention_mask(item_ids))
        if self.config.item_skip:  # the current item straight to the output layer, as SR-GNN's "local" interest
            return out.last_hidden_state + self.item_embedding(item_ids)
        return out.last_hidden_state

    @torch.no_grad()
    def attention_weights(self, item_ids: torch.Tensor) -> torch.Tensor:
        """Attention of every layer for right-padded ``item_ids`` → ``(layers, B, heads, L, L)`` (eval mode)."""
        if self.config.backbone == "xlnet":
            raise ValueError("attention pictures are drawn for the gpt2 and bert backbones only")
        eager = build_backbone(self.config, attn_implementation="eager").to(item_ids.device)
        eager.load_state_dict(self.backbone.state_dict())
        eager.eval()
        item_ids = self.sanitize(item_ids)
        out = eager(inputs_embeds=self.embed(item_ids), attention_mask=self.attention_mask(item_ids),
                    output_attentions=True)
        return torch.stack(out.attentions)
