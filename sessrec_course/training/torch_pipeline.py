"""From the ETL output to a trained model in one call, cached under ``build_dir()/models``.

``model, history = train_model("gru")`` prepares (or reuses) the default data of the active profile,
trains with validation MRR@20 early stopping, and saves ``model.pt`` + ``config.json`` + the history.
A second call with the same data, model, settings and model code loads the checkpoint instead of training.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from sessrec_course.etl.features import read_time_features
from sessrec_course.etl.workflow import item_category_lookup
from sessrec_course.models import ModelConfig, build_model
from sessrec_course.models.torch_export import load_model, save_model
from sessrec_course.paths import build_dir
from sessrec_course.profiles import Profile
from sessrec_course.training.cache import cached_history, checkpoint_folder
from sessrec_course.training.common import History, TrainConfig, training_setup
from sessrec_course.training.torch_data import make_distributed_loader, make_loader, read_sessions
from sessrec_course.training.torch_recommender import TorchRecommender
from sessrec_course.training.torch_trainer import Validator, distributed_world, fit, seed_everything
from sessrec_course.training.validation import make_validator, validation_cases

logger = logging.getLogger(__name__)

BeforeFit = Callable[[torch.nn.Module, Iterable, TrainConfig], Iterable]


def torch_validator(prefixes: np.ndarray, targets: np.ndarray, ks=(20,), features: np.ndarray | None = None) -> Validator:
    """Validator for :func:`fit`: Recall/MRR@K of the model on fixed cases, scored by :class:`TorchRecommender`."""
    return make_validator(prefixes, targets, TorchRecommender, ks=ks, features=features)


def fit_model(config: ModelConfig, train_ids: np.ndarray, validate: Validator | None, train: TrainConfig, *,
              item_category: np.ndarray | None = None, checkpoint=None, before_fit: BeforeFit | None = None,
              train_features: np.ndarray | None = None) -> tuple[torch.nn.Module, History]:
    """Seed, build ``config``'s model, batch ``train_ids`` (padded matrix) and :func:`fit`; return ``(model, history)``.

    ``before_fit(model, loader, train)`` may adjust ``train`` and returns the loader to train on (the
    benchmark plans its time budget there). Under ``torchrun`` every process takes its share of each global
    batch of ``train.batch_size`` (see :func:`make_distributed_loader`). A ``time_features`` config needs
    ``train_features`` ``(N, L, F)`` aligned with ``train_ids`` (``etl.features.read_time_features``).
    """
    if config.time_features != (train_features is not None):
        raise ValueError("config.time_features is on: pass train_features aligned with train_ids" if
                         config.time_features else "train_features given but config.time_features is off")
    seed_everything(train.seed)
    model = build_model(config, item_category=None if item_category is None else torch.from_numpy(item_category))
    rank, world = distributed_world()
    loader = (make_loader(train_ids, train.batch_size, shuffle=True, seed=train.seed, features=train_features)
              if world == 1 and rank == 0 and "RANK" not in os.environ else
              make_distributed_loader(train_ids, train.batch_size, rank, world, seed=train.seed,
                                      features=train_features))
    if before_fit is not None:
        loader = before_fit(model, loader, train)
    return model, fit(model, loader, validate, train, checkpoint=checkpoint)


def _checkpoint_folder(name: str, profile: Profile, paths, config: ModelConfig, train: TrainConfig) -> Path:
    return checkpoint_folder(build_dir() / "models" / profile.name, "", name, paths, config, train, "torch")


def checkpoint_path(name: str, artifacts=None, profile: Profile | None = None, *, model_overrides: dict | None = None,
                    **train_overrides) -> Path:
    """The folder where :func:`train_model` caches preset ``name`` with these settings (``model.pt`` once trained)."""
    setup = training_setup(name, artifacts, profile, model_overrides=model_overrides, **train_overrides)
    return _checkpoint_folder(name, setup.profile, setup.paths, setup.model, setup.train)


def train_model(
    name: str,
    artifacts=None,
    profile: Profile | None = None,
    *,
    cache: bool = True,
    progress: bool = True,
    model_overrides: dict | None = None,
    **train_overrides,
) -> tuple[torch.nn.Module, History]:
    """Train preset ``name`` (mlp, gru, transformer, bert, xlnet) on the ETL output; return ``(model, history)``.

    ``artifacts``: ETL output (folder, mapping or object with train/valid/test/schema); None prepares the
    default data of ``profile`` (default: :func:`get_profile`). The best checkpoint is cached under
    ``build_dir()/models/<profile>/<name>-<key>`` and reused when ``cache`` is true.
    """
    profile, paths, config, train = training_setup(name, artifacts, profile, model_overrides=model_overrides,
                                                   progress=progress, **train_overrides)
    folder = _checkpoint_folder(name, profile, paths, config, train)
    if cache and (folder / "model.pt").exists():
        logger.info("loading cached %s from %s", name, folder)
        return load_model(folder), cached_history(folder)

    train_ids = read_sessions(paths.train, config.max_length)
    train_features = read_time_features(paths.train, config.max_length) if config.time_features else None
    lookup = item_category_lookup(paths.train, config.item_cardinality) if config.category_cardinality else None
    cases = validation_cases(paths.valid, config.max_length, profile.eval_max_sessions, features=config.time_features)
    rank, world = distributed_world()
    if world > 1:  # equal shares of the validation cases: the mean of the ranks' metrics is the metric
        share = len(cases[1]) // world
        cases = tuple(part[rank::world][:share] for part in cases)
    prefixes, targets, features = cases if config.time_features else (*cases, None)

    def checkpoint(best: torch.nn.Module, history: History) -> None:
        if cache:
            save_model(best, folder, extra={"history": history.to_dict(), "train": asdict(train)})

    model, history = fit_model(config, train_ids, torch_validator(prefixes, targets, features=features), train,
                               item_category=lookup, checkpoint=checkpoint, train_features=train_features)
    if cache and rank == 0:  # final write: the complete history beside the best weights
        save_model(model, folder, extra={"history": history.to_dict(), "train": asdict(train)})
    return model.cpu().eval(), history
