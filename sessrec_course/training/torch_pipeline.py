"""From the ETL output to a trained model in one call: ``model, history = train_model("gru")`` trains with validation
MRR@20 early stopping and caches the best checkpoint under ``build_dir()/models``, reused while data, settings and
model code are unchanged."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from sessrec_course.etl.workflow import item_category_lookup
from sessrec_course.models import ModelConfig, build_model
from sessrec_course.models.torch_export import load_model, save_model
from sessrec_course.paths import build_dir
from sessrec_course.profiles import Profile
from sessrec_course.training.cache import cached_history, checkpoint_folder
from sessrec_course.training.common import History, TrainConfig, TrainingSetup, training_setup
from sessrec_course.training.torch_callbacks import standard_callbacks
from sessrec_course.training.torch_data import make_loader, read_sessions
from sessrec_course.training.torch_recommender import TorchRecommender
from sessrec_course.training.torch_trainer import Callback, Validator, fit, seed_everything
from sessrec_course.training.validation import make_validator, validation_cases

logger = logging.getLogger(__name__)


def torch_validator(prefixes: np.ndarray, targets: np.ndarray, ks=(20,)) -> Validator:
    """Validator for :func:`fit`: Recall/MRR@K of the model on fixed cases, scored by :class:`TorchRecommender`."""
    return make_validator(prefixes, targets, TorchRecommender, ks=ks)


def new_model(config: ModelConfig, seed: int, item_category: np.ndarray | None = None,
              extensions: tuple[type, ...] = ()) -> torch.nn.Module:
    """``config``'s untrained model (+ ``extensions``), its weights drawn from ``seed``."""
    seed_everything(seed)
    return build_model(config, None if item_category is None else torch.from_numpy(item_category), extensions)


def fit_model(config: ModelConfig, train_ids: np.ndarray, train: TrainConfig, callbacks: Iterable[Callback] = (), *,
              item_category: np.ndarray | None = None,
              extensions: tuple[type, ...] = ()) -> tuple[torch.nn.Module, History]:
    """Build ``config``'s model (seeded), batch ``train_ids`` (padded matrix) and :func:`fit`; ``(model, history)``."""
    model = new_model(config, train.seed, item_category, extensions)
    loader = make_loader(train_ids, train.batch_size, shuffle=True, seed=train.seed)
    return model, fit(model, loader, train, callbacks)


def training_data(setup: TrainingSetup) -> tuple[np.ndarray, np.ndarray | None, tuple[np.ndarray, np.ndarray]]:
    """The training matrix, the item→category lookup (None without categories) and the validation cases."""
    config, paths = setup.model, setup.paths
    train_ids = read_sessions(paths.train, config.max_length)
    lookup = item_category_lookup(paths.train, config.item_cardinality) if config.category_cardinality else None
    return train_ids, lookup, validation_cases(paths.valid, config.max_length, setup.profile.eval_max_sessions)


def _checkpoint_folder(name: str, profile: Profile, paths, config: ModelConfig, train: TrainConfig) -> Path:
    return checkpoint_folder(build_dir() / "models" / profile.name, "", name, paths, config, train, "torch")


def checkpoint_path(name: str, artifacts=None, profile: Profile | None = None, *, model_overrides: dict | None = None,
                    **train_overrides) -> Path:
    """The folder where :func:`train_model` caches preset ``name`` with these settings (``model.pt`` once trained)."""
    setup = training_setup(name, artifacts, profile, model_overrides=model_overrides, **train_overrides)
    return _checkpoint_folder(name, setup.profile, setup.paths, setup.model, setup.train)


def train_model(name: str, artifacts=None, profile: Profile | None = None, *, cache: bool = True,
                progress: bool = True, model_overrides: dict | None = None,
                **train_overrides) -> tuple[torch.nn.Module, History]:
    """Train preset ``name`` (mlp, gru, transformer, bert, xlnet) on the ETL output ``artifacts`` (None: the profile's
    default data); ``(model, history)``, the best checkpoint cached at :func:`checkpoint_path` and reused if ``cache``."""
    setup = training_setup(name, artifacts, profile, model_overrides=model_overrides, progress=progress,
                           **train_overrides)
    folder = _checkpoint_folder(name, *setup)
    if cache and (folder / "model.pt").exists():
        logger.info("loading cached %s from %s", name, folder)
        return load_model(folder), cached_history(folder)
    train_ids, lookup, (prefixes, targets) = training_data(setup)

    def save(model: torch.nn.Module, history: History) -> None:
        save_model(model, folder, extra={"history": history.to_dict(), "train": asdict(setup.train)})

    callbacks = standard_callbacks(setup.train, torch_validator(prefixes, targets), save if cache else None)
    model, history = fit_model(setup.model, train_ids, setup.train, callbacks, item_category=lookup)
    if cache:  # final write: the complete history beside the best weights
        save(model, history)
    return model.cpu().eval(), history
