"""Training the Keras models with ``model.fit`` and callbacks, the twin of :mod:`.torch_trainer`: AdamW with
warm-up and cosine decay, early stopping on the shared validation MRR@20, the shared ``History``."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm.keras import TqdmCallback

from sessrec_course.etl.workflow import item_category_lookup
from sessrec_course.models.keras_base import KerasSessionModel
from sessrec_course.models.keras_build import build_keras_model
from sessrec_course.paths import build_dir
from sessrec_course.profiles import Profile
from sessrec_course.training.cache import cached_history, checkpoint_folder
from sessrec_course.training.common import KERAS_PRESETS, History, TrainConfig, training_setup
from sessrec_course.training.keras_data import make_dataset, read_split
from sessrec_course.training.keras_export import OUTPUT_NAME, serving_function
from sessrec_course.training.validation import BatchScorer, make_validator, validation_cases

logger = logging.getLogger(__name__)


def set_seed(seed: int, deterministic: bool | None = None) -> None:
    """Seed Python, numpy and TensorFlow; deterministic TF kernels if ``deterministic`` (None: if no GPU)."""
    keras.utils.set_random_seed(seed)
    if deterministic or (deterministic is None and not tf.config.list_physical_devices("GPU")):
        tf.config.experimental.enable_op_determinism()


class KerasRecommender(BatchScorer):
    """``score(item_ids (B, L) int64 numpy) -> (B, item_cardinality) float32`` for a Keras model (inference mode)."""

    def __init__(self, model: keras.Model, batch_size: int = 1024) -> None:
        super().__init__(model, batch_size, model.name)
        self._score = serving_function(model)

    def score_batch(self, item_ids: np.ndarray) -> np.ndarray:
        """Scores of one batch through the traced inference graph."""
        return self._score(tf.constant(item_ids, tf.int64))[OUTPUT_NAME].numpy()


class HistoryCallback(keras.callbacks.Callback):
    """Fill a :class:`History`; validate after each epoch (metrics go into ``logs`` for early stopping)."""

    def __init__(self, validate, history: History, sessions_per_epoch: int) -> None:
        super().__init__()
        self.validate, self.history, self.sessions_per_epoch = validate, history, sessions_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.first_step = time.perf_counter(), len(self.history.losses)

    def on_train_batch_end(self, batch, logs=None):
        self.history.steps.append(len(self.history.steps) + 1)
        self.history.losses.append(float(logs["loss"]))

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.start
        logs["loss"] = float(np.mean(self.history.losses[self.first_step:]))  # the epoch's mean loss
        record = {"epoch": epoch + 1, "train_loss": logs["loss"], "seconds": seconds,
                  "sessions_per_s": self.sessions_per_epoch / seconds if seconds else float("nan")}
        if self.validate is not None:
            record.update(self.validate(self.model))
        logs.update({k: v for k, v in record.items() if k not in ("epoch", "train_loss")})
        self.history.epochs.append(record)
        score = record.get(self.history.monitor)
        if score is not None and (self.history.best_score is None or score > self.history.best_score):
            self.history.best_epoch, self.history.best_score = epoch + 1, score
        logger.info("epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in record.items()})


def make_optimizer(config: TrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
    """AdamW, linear warm-up then cosine decay to ``min_lr_fraction``, global-norm clipping."""
    warmup = max(1, int(config.warmup_fraction * total_steps))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=max(1, total_steps - warmup), alpha=config.min_lr_fraction,
        warmup_target=config.learning_rate, warmup_steps=warmup)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay,
                                       global_clipnorm=config.grad_clip)
    optimizer.exclude_from_weight_decay(var_names=["embeddings", "bias", "gamma", "beta"])
    return optimizer


def fit(model: keras.Model, dataset, validate, config: TrainConfig) -> History:
    """Train on a :func:`~.keras_data.make_dataset` dataset, stopped early on ``validate(model)``."""
    steps = int(dataset.cardinality())
    sessions = getattr(dataset, "n_sessions", steps * config.batch_size)
    if config.max_steps_per_epoch is not None and config.max_steps_per_epoch < steps:
        sessions = config.max_steps_per_epoch * config.batch_size
        steps, dataset = config.max_steps_per_epoch, dataset.take(config.max_steps_per_epoch)
    history = History(monitor=config.monitor)
    model.compile(optimizer=make_optimizer(config, steps * config.epochs), jit_compile=False)
    callbacks: list[keras.callbacks.Callback] = [HistoryCallback(validate, history, sessions)]
    if validate is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=config.monitor, mode="max", patience=config.patience,
                                                       restore_best_weights=True))
    if config.progress:  # after HistoryCallback: the epoch bar shows the mean loss and the validation metrics
        callbacks.append(TqdmCallback(config.epochs, desc=f"training {model.name}"))
    logger.info("training %s on %s", model.name, "GPU" if tf.config.list_physical_devices("GPU") else "CPU")
    model.fit(dataset, epochs=config.epochs, callbacks=callbacks, verbose=0, shuffle=False)
    return history


def keras_checkpoint(name: str, artifacts=None, profile: Profile | None = None, *, model_overrides: dict | None = None,
                     **train_overrides) -> Path:
    """The folder where :func:`train_keras_model` caches preset ``name`` with these data and settings."""
    profile, paths, config, train = training_setup(name, artifacts, profile, KERAS_PRESETS, model_overrides,
                                                   **train_overrides)
    return checkpoint_folder(build_dir() / "models" / profile.name, "keras-", name, paths, config, train, "keras")


def train_keras_model(name: str, artifacts=None, profile: Profile | None = None, *, cache: bool = True,
                      progress: bool = True, model_overrides: dict | None = None,
                      **train_overrides) -> tuple[KerasSessionModel, History]:
    """``(model, history)`` of Keras preset ``name`` on the ETL output, cached (:func:`keras_checkpoint`)."""
    from sessrec_course.training.keras_export import load_keras_model, save_keras_model

    profile, paths, config, train = training_setup(name, artifacts, profile, KERAS_PRESETS, model_overrides,
                                                   progress=progress, **train_overrides)
    target = keras_checkpoint(name, artifacts, profile, model_overrides=model_overrides, **train_overrides)
    if cache and (target / "config.json").exists():
        logger.info("loading cached Keras %s from %s", name, target)
        return load_keras_model(target), cached_history(target)
    set_seed(train.seed, train.deterministic)
    split = read_split(paths.train, config.max_length, side_features=False)
    lookup = item_category_lookup(paths.train, config.item_cardinality) if config.category_cardinality else None
    prefixes, targets = validation_cases(paths.valid, config.max_length, profile.eval_max_sessions)
    model = build_keras_model(config, item_category=lookup)
    dataset = make_dataset(split, train.batch_size, shuffle=True, seed=train.seed)
    history = fit(model, dataset, make_validator(prefixes, targets, KerasRecommender), train)
    if cache:
        save_keras_model(model, target, extra={"history": history.to_dict(), "train": asdict(train)})
    return model, history
