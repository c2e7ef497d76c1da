"""Training the Keras session models with ``model.fit`` and callbacks; the twin of :mod:`.torch_trainer`.

AdamW with linear warm-up then cosine decay, early stopping on validation MRR@20 computed by the shared
:func:`sessrec_course.evaluation.evaluate` (best weights restored), a tqdm bar, and a history with the
very fields of the PyTorch :class:`~sessrec_course.training.torch_trainer.History`, so the same
learning-curve plots draw both frameworks. TensorFlow uses a GPU by itself when one is visible.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from sessrec_course.etl.workflow import item_category_lookup
from sessrec_course.models import ModelConfig
from sessrec_course.models.keras_base import KerasSessionModel
from sessrec_course.models.keras_build import build_keras_model
from sessrec_course.paths import build_dir
from sessrec_course.profiles import Profile, get_profile
from sessrec_course.training import common
from sessrec_course.training.common import MODEL_PRESETS as _ALL_PRESETS
from sessrec_course.training.common import TRAIN_PRESETS, History
from sessrec_course.training.keras_data import make_dataset, read_schema, read_split

logger = logging.getLogger(__name__)

# The PyTorch presets, causal models only (no masked BERT/XLNet in the Keras track).
MODEL_PRESETS: dict[str, dict] = {k: v for k, v in _ALL_PRESETS.items() if k in ("mlp", "gru", "transformer")}

@dataclass
class KerasTrainConfig:
    """Optimisation settings, field for field those of the PyTorch ``TrainConfig``."""

    epochs: int = 1
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 0.01  # not on embeddings, biases and layer norms
    warmup_fraction: float = 0.05
    min_lr_fraction: float = 0.05
    grad_clip: float | None = 1.0  # global norm
    patience: int = 2
    monitor: str = "MRR@20"
    seed: int = 42
    deterministic: bool | None = None  # deterministic TF kernels; None: on CPU only (some GPU kernels lack them)
    max_steps_per_epoch: int | None = None
    progress: bool = True

    @classmethod
    def from_profile(cls, profile: Profile, **overrides) -> KerasTrainConfig:
        """Settings from a :class:`~sessrec_course.profiles.Profile` (+ keyword overrides)."""
        base = {"epochs": profile.epochs, "batch_size": profile.batch_size,
                "learning_rate": profile.learning_rate, "seed": profile.seed}
        return cls(**{**base, **overrides})


def set_seed(seed: int, deterministic: bool | None = None) -> None:
    """Seed Python, numpy and TensorFlow; with ``deterministic`` (default: when no GPU), deterministic TF kernels."""
    keras.utils.set_random_seed(seed)
    if deterministic is None:
        deterministic = not tf.config.list_physical_devices("GPU")
    if deterministic:
        tf.config.experimental.enable_op_determinism()


class KerasRecommender:
    """``score(item_ids (B, L) int64 numpy) -> (B, item_cardinality) float32`` for a Keras model (inference mode)."""

    def __init__(self, model: keras.Model, batch_size: int = 1024) -> None:
        self.model, self.batch_size, self.name = model, batch_size, model.name
        spec = tf.TensorSpec((None, None), tf.int64, name="item_ids")
        self._score = tf.function(lambda ids: model(ids, training=False), input_signature=[spec])

    def score(self, item_ids: np.ndarray) -> np.ndarray:
        """Return float32 scores ``(B, item_cardinality)`` for right-padded ``item_ids``."""
        item_ids = np.asarray(item_ids)
        if item_ids.ndim != 2:
            raise ValueError(f"item_ids must be a 2-D (batch, length) matrix, got shape {item_ids.shape}")
        out = [self._score(tf.constant(item_ids[i : i + self.batch_size], tf.int64)).numpy()
               for i in range(0, len(item_ids), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.model.n_items), np.float32)

    __call__ = score


def make_validator(prefixes: np.ndarray, targets: np.ndarray, ks=(20,)) -> Callable[[keras.Model], dict]:
    """Validator: Recall/MRR@K of the model on fixed cases, through the shared ``evaluation.evaluate``."""
    from sessrec_course.evaluation import evaluate

    recommenders: dict[int, KerasRecommender] = {}

    def validate(model: keras.Model) -> dict[str, float]:
        recommender = recommenders.setdefault(id(model), KerasRecommender(model))
        metrics = evaluate(recommender, prefixes, targets, ks=ks, progress=False)
        return {k: v for k, v in metrics.items() if k.startswith(("Recall", "MRR"))}

    return validate


class HistoryCallback(keras.callbacks.Callback):
    """Validate after each epoch (the metrics go into ``logs`` for early stopping) and fill a :class:`History`."""

    def __init__(self, validate, history: History, sessions_per_epoch: int, checkpoint=None) -> None:
        super().__init__()
        self.validate, self.history, self.checkpoint = validate, history, checkpoint
        self.sessions_per_epoch = sessions_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.epoch_losses = time.perf_counter(), []

    def on_train_batch_end(self, batch, logs=None):
        # Keras reports the running mean over the epoch; store the batch's own loss like the torch loop.
        mean = float(logs["loss"])
        n = len(self.epoch_losses)
        self.epoch_losses.append(mean)
        value = mean * (n + 1) - (self.epoch_losses[-2] * n if n else 0.0)
        self.history.steps.append(len(self.history.steps) + 1)
        self.history.losses.append(value)

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.start
        record = {"epoch": epoch + 1, "train_loss": float(logs["loss"]), "seconds": seconds,
                  "sessions_per_s": self.sessions_per_epoch / seconds if seconds else float("nan")}
        if self.validate is not None:
            record.update(self.validate(self.model))
        logs.update({k: v for k, v in record.items() if k not in ("epoch", "train_loss")})
        self.history.epochs.append(record)
        score = record.get(self.history.monitor)
        if score is not None and (self.history.best_score is None or score > self.history.best_score):
            self.history.best_epoch, self.history.best_score = epoch + 1, score
            if self.checkpoint is not None:
                self.checkpoint(self.model, self.history)
        logger.info("epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in record.items()})


class TqdmCallback(keras.callbacks.Callback):
    """One tqdm bar over all training steps with the live loss and the best validation score."""

    def __init__(self, total: int, history: History, desc: str) -> None:
        super().__init__()
        self.bar = tqdm(total=total, desc=desc, unit="batch")
        self.history = history

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)
        if batch % 10 == 0:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}", **self._best())

    def on_epoch_end(self, epoch, logs=None):
        self.bar.set_postfix(epoch=epoch + 1, loss=f"{float(logs['loss']):.3f}", **self._best())

    def on_train_end(self, logs=None):
        self.bar.close()

    def _best(self) -> dict[str, str]:
        h = self.history
        return {} if h.best_score is None else {f"best_{h.monitor}": f"{h.best_score:.4f}"}


def make_optimizer(config: KerasTrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
    """AdamW, linear warm-up then cosine decay to ``min_lr_fraction``, global-norm clipping."""
    warmup = max(1, int(config.warmup_fraction * total_steps))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=max(1, total_steps - warmup), alpha=config.min_lr_fraction,
        warmup_target=config.learning_rate, warmup_steps=warmup)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay,
                                       global_clipnorm=config.grad_clip)
    optimizer.exclude_from_weight_decay(var_names=["embeddings", "bias", "gamma", "beta"])
    return optimizer


def fit(model: keras.Model, dataset, validate, config: KerasTrainConfig, checkpoint=None) -> History:
    """Train ``model`` on a :func:`~.keras_data.make_dataset` dataset with ``model.fit``; return the history.

    ``validate(model)`` returns metrics (e.g. ``{"MRR@20": 0.2}``); training stops after ``patience``
    epochs without improvement of ``config.monitor`` and the best weights are restored.
    """
    steps = int(dataset.cardinality())
    sessions = getattr(dataset, "n_sessions", steps * config.batch_size)
    if config.max_steps_per_epoch is not None and config.max_steps_per_epoch < steps:
        sessions = config.max_steps_per_epoch * config.batch_size
        steps, dataset = config.max_steps_per_epoch, dataset.take(config.max_steps_per_epoch)
    history = History(monitor=config.monitor)
    model.compile(optimizer=make_optimizer(config, steps * config.epochs), jit_compile=False)
    callbacks: list[keras.callbacks.Callback] = [HistoryCallback(validate, history, sessions, checkpoint)]
    if validate is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=config.monitor, mode="max", patience=config.patience,
                                                       restore_best_weights=True))
    if config.progress:
        callbacks.append(TqdmCallback(steps * config.epochs, history, f"training {model.name}"))
    logger.info("training %s on %s", model.name, "GPU" if tf.config.list_physical_devices("GPU") else "CPU")
    model.fit(dataset, epochs=config.epochs, callbacks=callbacks, verbose=0, shuffle=False)
    return history


def model_config(name: str, schema: dict, profile: Profile, **overrides) -> ModelConfig:
    """The :class:`ModelConfig` for Keras preset ``name`` (the causal PyTorch presets)."""
    return common.model_config(name, schema, profile, MODEL_PRESETS, **overrides)


def dataset_folder(artifacts=None, profile: Profile | None = None) -> Path:
    """The folder holding ``train/valid/test.parquet`` + ``schema.json`` (default: the profile's default data)."""
    if artifacts is None:
        from sessrec_course.etl.dataset import prepare_default_dataset

        artifacts = prepare_default_dataset(profile or get_profile())
    folder = Path(artifacts) if isinstance(artifacts, str | Path) else Path(artifacts.root)
    for name in ("train.parquet", "valid.parquet", "schema.json"):
        if not (folder / name).exists():
            raise FileNotFoundError(f"{folder / name} not found: run the ETL first (sessrec_course.etl)")
    return folder


def validation_cases(path: Path, max_length: int, max_sessions: int | None) -> tuple[np.ndarray, np.ndarray]:
    """All-prefix (prefix → next item) cases of the first ``max_sessions`` sessions of a split."""
    import pyarrow.parquet as pq

    from sessrec_course.evaluation import all_prefixes

    column = pq.read_table(path, columns=["item_id_list"]).column("item_id_list")
    return all_prefixes(column if max_sessions is None else column.slice(0, max_sessions), max_length=max_length)


def train_keras_model(name: str, artifacts=None, profile: Profile | None = None, *, cache: bool = True,
                      progress: bool = True, model_overrides: dict | None = None,
                      **train_overrides) -> tuple[KerasSessionModel, History]:
    """Train Keras preset ``name`` (mlp, gru, transformer) on the ETL output; return ``(model, history)``.

    ``artifacts``: the ETL output folder (or ``prepare_default_dataset()``'s result); None prepares the
    default data of ``profile``. The best weights are cached under ``build_dir()/models/<profile>/keras-…``
    and reused by a second call with the same data, model and settings.
    """
    from sessrec_course.training.keras_export import load_keras_model, save_keras_model

    profile = profile or get_profile()
    folder = dataset_folder(artifacts, profile)
    schema = read_schema(folder / "schema.json")
    config = model_config(name, schema, profile, **(model_overrides or {}))
    train_config = KerasTrainConfig.from_profile(profile, progress=progress, **{**TRAIN_PRESETS[name], **train_overrides})
    parts = [json.dumps(schema, sort_keys=True), json.dumps(config.to_dict(), sort_keys=True),
             json.dumps({k: v for k, v in asdict(train_config).items() if k != "progress"}, sort_keys=True)]
    parts += [f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
              for p in (folder / "train.parquet", folder / "valid.parquet")]
    target = build_dir() / "models" / profile.name / f"keras-{name}-{hashlib.sha256(''.join(parts).encode()).hexdigest()[:12]}"
    if cache and (target / "config.json").exists():
        logger.info("loading cached Keras %s from %s", name, target)
        history = json.loads((target / "config.json").read_text(encoding="utf-8"))["history"]
        return load_keras_model(target), History.from_dict(history)

    set_seed(train_config.seed, train_config.deterministic)
    train = read_split(folder / "train.parquet", config.max_length, side_features=False)
    lookup = item_category_lookup(folder / "train.parquet", config.item_cardinality) \
        if config.category_cardinality else None
    prefixes, targets = validation_cases(folder / "valid.parquet", config.max_length, profile.eval_max_sessions)
    model = build_keras_model(config, item_category=lookup)
    dataset = make_dataset(train, train_config.batch_size, shuffle=True, seed=train_config.seed)
    history = fit(model, dataset, make_validator(prefixes, targets), train_config)
    if cache:
        save_keras_model(model, target, extra={"history": history.to_dict(), "train": asdict(train_config)})
    return model, history
