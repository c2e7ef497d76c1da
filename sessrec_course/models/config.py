"""``ModelConfig``: everything needed to rebuild a session model, in either framework (torch-free)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

MODEL_NAMES = ("mlp", "gru", "transformer", "hstu")
BACKBONES = ("gpt2", "bert", "xlnet")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model (saved as JSON beside its state dict)."""

    name: str  # "mlp" | "gru" | "transformer" | "hstu"
    item_cardinality: int  # catalogue size incl. padding (0) and OOV (1)
    category_cardinality: int = 0  # 0: no category feature
    hidden_size: int = 64
    max_length: int = 20
    dropout: float = 0.1
    tie_weights: bool = True  # output layer = item embedding matrix (transposed)
    window: int = 5  # mlp: number of last items
    num_layers: int = 1  # gru layers / transformer blocks / hstu layers
    num_heads: int = 2  # transformer, hstu
    backbone: str = "gpt2"  # transformer: gpt2 (causal) | bert | xlnet (masked)
    mask_probability: float = 0.2  # masked backbones: share of items masked in training
    score_scale: float = 0.0  # 0: dot-product scores; > 0: cosine similarity x this scale (NISER)
    activation: str = "gelu"  # transformer feed-forward activation (exact GELU: one fused op, unlike GPT-2's tanh form)
    item_skip: bool = False  # gpt2: add each position's own item embedding to its output (SR-GNN's last-item term)
    repeat_bias: bool = False  # causal models: + a learnt score r[d] for each item clicked d steps ago (re-clicks)
    time_features: bool = False  # torch: + a linear projection of each click's time features (etl.features)
    repeat_mixture: bool = False  # torch, with repeat_bias: RepeatNet's mixture g·P(re-click) + (1-g)·P(explore)

    def __post_init__(self) -> None:
        if self.name not in MODEL_NAMES:
            raise ValueError(f"unknown model name {self.name!r}; expected one of {MODEL_NAMES}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown transformer backbone {self.backbone!r}; expected one of {BACKBONES}")
        if self.score_scale < 0:
            raise ValueError(f"score_scale must be >= 0 (0 = plain dot product), got {self.score_scale}")
        if self.item_skip and not (self.name == "transformer" and self.backbone == "gpt2"):
            raise ValueError(f"item_skip is defined for the causal transformer (gpt2) only, not {self.name}/{self.backbone}")
        if self.repeat_bias and not self.causal:
            raise ValueError(f"repeat_bias is defined for causal models only (mlp, gru, transformer/gpt2), "
                             f"not {self.name}/{self.backbone}")
        if self.repeat_mixture and not self.repeat_bias:
            raise ValueError("repeat_mixture mixes the repeat scores r[d] into the output: it needs repeat_bias=True")
        if self.item_cardinality < 3:
            raise ValueError(f"item_cardinality must be >= 3 (pad, OOV, one item), got {self.item_cardinality}")

    @property
    def causal(self) -> bool:
        """True when the model is trained to predict the next item at every position."""
        return self.name != "transformer" or self.backbone == "gpt2"

    def to_dict(self) -> dict:
        """Return the config as a plain dict; the extension switches only when on (other models' cache keys stay)."""
        data = asdict(self)
        for switch in ("time_features", "repeat_mixture"):
            if not data[switch]:
                del data[switch]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Rebuild a config from :meth:`to_dict` output, ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
