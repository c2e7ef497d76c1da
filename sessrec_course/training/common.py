"""What both training tracks share, framework free: model presets, learning rates, the training history.

The PyTorch (``torch_pipeline``) and Keras (``keras_trainer``) tracks read the same presets, so the only
thing that differs between a model and its twin is the framework code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sessrec_course.models import ModelConfig
from sessrec_course.profiles import Profile

# Architecture per model name; sizes (hidden, max_length, catalogue) come from the profile and schema.
MODEL_PRESETS: dict[str, dict] = {
    "mlp": {"name": "mlp", "window": 5, "dropout": 0.1},
    "gru": {"name": "gru", "num_layers": 1, "dropout": 0.1},
    # no dropout for the causal transformer: on the workshop data it reached validation MRR@20 .3158 after
    # 3 epochs at 0.0 against .3100 at 0.1 (the GRU: .3113 at 0.0, .3119 at 0.1), see docs/benchmarks.md
    "transformer": {"name": "transformer", "backbone": "gpt2", "num_layers": 2, "num_heads": 2, "dropout": 0.0},
    "bert": {"name": "transformer", "backbone": "bert", "num_layers": 2, "num_heads": 2, "dropout": 0.1},
    "xlnet": {"name": "transformer", "backbone": "xlnet", "num_layers": 2, "num_heads": 2, "dropout": 0.1},
}

# Peak learning rates per model (measured on the ci data, one epoch: the GRU learns little at 2e-3 and
# most at 2e-2; the transformers are best at 1e-3..2e-3 and fall behind the Markov chain at 5e-3 and up).
TRAIN_PRESETS: dict[str, dict] = {
    "mlp": {"learning_rate": 1e-2}, "gru": {"learning_rate": 2e-2}, "transformer": {"learning_rate": 2e-3},
    "bert": {"learning_rate": 2e-3}, "xlnet": {"learning_rate": 2e-3},
}


def model_config(name: str, schema: dict, profile: Profile, presets: dict[str, dict] = MODEL_PRESETS,
                 **overrides) -> ModelConfig:
    """The :class:`ModelConfig` for preset ``name`` on data described by ``schema`` (sizes from the profile)."""
    if name not in presets:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(presets)}")
    sizes = {"item_cardinality": int(schema["item_cardinality"]),
             "category_cardinality": int(schema.get("category_cardinality") or 0),
             "hidden_size": profile.hidden_size, "max_length": int(schema["max_length"])}
    return ModelConfig(**{**presets[name], **sizes, **overrides})


@dataclass
class History:
    """What happened during training: loss per step, metrics per epoch, the best epoch."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)  # epoch, train_loss, seconds, sessions_per_s, metrics
    best_epoch: int | None = None
    best_score: float | None = None
    monitor: str = "MRR@20"

    def to_dict(self) -> dict:
        """Return a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> History:
        """Rebuild from :meth:`to_dict` output."""
        return cls(**data)

    def save(self, path: str | Path) -> None:
        """Write the history as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
