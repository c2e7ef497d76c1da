"""What both training tracks share, framework free: the presets, the two configs, the history (a model and its
Keras twin differ in the framework code only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import NamedTuple

from sessrec_course.models import ModelConfig
from sessrec_course.profiles import Profile, get_profile
from sessrec_course.training.artifacts import DatasetPaths, read_schema, training_paths

# Architecture per model name; sizes (hidden, max_length, catalogue) come from the profile and schema.
MODEL_PRESETS: dict[str, dict] = {
    "mlp": {"name": "mlp", "window": 5, "dropout": 0.1},
    "gru": {"name": "gru", "num_layers": 1, "dropout": 0.1},
    # no dropout for the causal transformer: it validated better without (docs/history/training.md)
    "transformer": {"name": "transformer", "backbone": "gpt2", "num_layers": 2, "num_heads": 2, "dropout": 0.0},
    "bert": {"name": "transformer", "backbone": "bert", "num_layers": 2, "num_heads": 2, "dropout": 0.1},
    "xlnet": {"name": "transformer", "backbone": "xlnet", "num_layers": 2, "num_heads": 2, "dropout": 0.1},
    "hstu": {"name": "hstu", "num_layers": 2, "num_heads": 2, "dropout": 0.0},
}

# The causal presets: the Keras track has no masked BERT/XLNet.
KERAS_PRESETS: dict[str, dict] = {k: v for k, v in MODEL_PRESETS.items() if k in ("mlp", "gru", "transformer")}

# Peak learning rate per model, the best of a sweep on the ci data (docs/history/training.md).
TRAIN_PRESETS: dict[str, dict] = {
    "mlp": {"learning_rate": 1e-2}, "gru": {"learning_rate": 2e-2}, "transformer": {"learning_rate": 2e-3},
    "bert": {"learning_rate": 2e-3}, "xlnet": {"learning_rate": 2e-3}, "hstu": {"learning_rate": 5e-3},
}


def model_config(name: str, schema: dict, profile: Profile | None = None, presets: dict[str, dict] = MODEL_PRESETS,
                 **overrides) -> ModelConfig:
    """Preset ``name`` sized by ``schema`` (catalogue, categories, max length) and ``profile`` (hidden), + overrides."""
    if name not in presets:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(presets)}")
    sizes = {"item_cardinality": int(schema["item_cardinality"]),
             "category_cardinality": int(schema.get("category_cardinality") or 0),
             "max_length": int(schema["max_length"])}
    if profile is not None:
        sizes["hidden_size"] = profile.hidden_size
    return ModelConfig(**{**presets[name], **sizes, **overrides})


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of both frameworks (sizes come from the profile, see :meth:`from_profile`)."""

    epochs: int = 1
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 0.01  # not on embeddings, biases and layer norms
    warmup_fraction: float = 0.05  # share of all steps spent warming up linearly
    min_lr_fraction: float = 0.05  # cosine decays to this share of the peak learning rate
    grad_clip: float | None = 1.0  # global gradient norm
    patience: int = 2  # epochs without improvement before stopping
    monitor: str = "MRR@20"
    seed: int = 42
    device: str | None = None  # PyTorch; None: CUDA when present, else CPU (TensorFlow places ops itself)
    bf16: bool | str | None = None  # PyTorch; None or "auto": bf16 autocast where native (use_bf16)
    deterministic: bool | None = None  # Keras: deterministic TF kernels; None: on CPU only (some GPU kernels lack them)
    max_steps_per_epoch: int | None = None
    progress: bool = True

    @classmethod
    def from_profile(cls, profile: Profile, **overrides) -> TrainConfig:
        """Settings from a :class:`~sessrec_course.profiles.Profile` (+ keyword overrides)."""
        base = {"epochs": profile.epochs, "batch_size": profile.batch_size,
                "learning_rate": profile.learning_rate, "seed": profile.seed}
        return cls(**{**base, **overrides})


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
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(**data)

    def best_postfix(self) -> dict[str, str]:
        """``{"best_<monitor>": "0.1234"}`` for a progress bar, empty before the first validation."""
        return {} if self.best_score is None else {f"best_{self.monitor}": f"{self.best_score:.4f}"}


class TrainingSetup(NamedTuple):
    """Everything a pipeline needs before training: the profile, the data files, both configs."""

    profile: Profile
    paths: DatasetPaths
    model: ModelConfig
    train: TrainConfig


def training_setup(name: str, artifacts=None, profile: Profile | None = None, presets: dict[str, dict] = MODEL_PRESETS,
                   model_overrides: dict | None = None, **train_overrides) -> TrainingSetup:
    """Resolve the profile (default: :func:`get_profile`) and the data, and build preset ``name``'s two configs."""
    profile = profile or get_profile()
    paths = training_paths(artifacts, profile)
    config = model_config(name, read_schema(paths.schema), profile, presets, **(model_overrides or {}))
    train = TrainConfig.from_profile(profile, **{**TRAIN_PRESETS[name], **train_overrides})  # the preset's rate
    return TrainingSetup(profile, paths, config, train)
