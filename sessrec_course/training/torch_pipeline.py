"""From the ETL output to a trained model in one call, cached under ``build_dir()/models``.

``model, history = train_model("gru")`` prepares (or reuses) the default data of the active profile,
trains with validation MRR@20 early stopping, and saves ``model.pt`` + ``config.json`` + the history.
A second call with the same data, model and settings loads the checkpoint instead of training.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from sessrec_course.etl.workflow import item_category_lookup
from sessrec_course.models import ModelConfig, build_model
from sessrec_course.models.torch_export import load_model, save_model
from sessrec_course.paths import build_dir
from sessrec_course.profiles import Profile, get_profile
from sessrec_course.training.common import TRAIN_PRESETS, History, model_config
from sessrec_course.training.torch_data import (
    ITEM_COLUMN,
    make_loader,
    read_schema,
    read_sessions,
)
from sessrec_course.training.torch_recommender import TorchRecommender
from sessrec_course.training.torch_trainer import TrainConfig, fit, seed_everything

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class DatasetPaths:
    """The ETL output files a model trains on."""

    train: Path
    valid: Path
    test: Path
    schema: Path


def resolve_artifacts(artifacts) -> DatasetPaths:
    """Accept the ETL output as a folder, a mapping or an object with train/valid/test/schema paths."""
    if isinstance(artifacts, DatasetPaths):
        return artifacts
    if hasattr(artifacts, "schema_path") and callable(getattr(artifacts, "path", None)):  # etl DatasetArtifacts
        splits = {k: Path(artifacts.path(k)) for k in ("train", "valid", "test")}
        return DatasetPaths(**splits, schema=Path(artifacts.schema_path))
    if isinstance(artifacts, str | Path):
        folder = Path(artifacts)
        found = {k: folder / f"{k}.parquet" for k in ("train", "valid", "test")}
        return DatasetPaths(**found, schema=folder / "schema.json")
    get = artifacts.get if isinstance(artifacts, dict) else lambda key: getattr(artifacts, key, None)
    values = {k: get(k) for k in ("train", "valid", "test", "schema")}
    if values["schema"] is None and values["train"] is not None:
        values["schema"] = Path(values["train"]).parent / "schema.json"
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise ValueError(f"dataset artefacts lack {missing}; expected train/valid/test parquet and schema.json")
    return DatasetPaths(**{k: Path(v) for k, v in values.items()})


def default_artifacts(profile: Profile) -> DatasetPaths:
    """Prepare (or reuse) the default dataset of ``profile`` with the ETL stage."""
    from sessrec_course.etl.dataset import prepare_default_dataset

    return resolve_artifacts(prepare_default_dataset(profile))


def validation_cases(path: Path, max_length: int, max_sessions: int | None) -> tuple[np.ndarray, np.ndarray]:
    """All-prefix (prefix → next item) cases of the first ``max_sessions`` sessions of a split."""
    from sessrec_course.evaluation import all_prefixes

    column = pq.read_table(path, columns=[ITEM_COLUMN]).column(ITEM_COLUMN)
    if max_sessions is not None:
        column = column.slice(0, max_sessions)
    return all_prefixes(column, max_length=max_length)


def make_validator(prefixes: np.ndarray, targets: np.ndarray, ks=(20,)):
    """Validator for :func:`fit`: Recall/MRR@K of the model on fixed cases (``evaluation.evaluate``)."""
    from sessrec_course.evaluation import evaluate

    def validate(model: torch.nn.Module) -> dict[str, float]:
        metrics = evaluate(TorchRecommender(model), prefixes, targets, ks=ks, progress=False)
        return {k: v for k, v in metrics.items() if k.startswith(("Recall", "MRR"))}

    return validate


def _fingerprint(paths: DatasetPaths, config: ModelConfig, train: TrainConfig) -> str:
    parts = [paths.schema.read_text(encoding="utf-8")]
    for path in (paths.train, paths.valid):
        stat = path.stat()
        parts.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    parts += [json.dumps(config.to_dict(), sort_keys=True), json.dumps(vars(train), sort_keys=True, default=str)]
    code = sorted(Path(__file__).resolve().parents[1].glob("models/torch_*.py"))
    code += [Path(__file__).with_name(n) for n in ("torch_trainer.py", "torch_data.py", "common.py")]
    parts += [path.read_text(encoding="utf-8") for path in code]  # a code change retrains
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


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
    ``build_dir()/models/<profile>/<name>-<fingerprint>`` and reused when ``cache`` is true.
    """
    profile = profile or get_profile()
    paths = default_artifacts(profile) if artifacts is None else resolve_artifacts(artifacts)
    for path in (paths.train, paths.valid, paths.schema):
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run the ETL first (sessrec_course.etl)")
    schema = read_schema(paths.schema)
    config = model_config(name, schema, profile, **(model_overrides or {}))
    train_config = TrainConfig.from_profile(profile, progress=progress, **{**TRAIN_PRESETS[name], **train_overrides})
    folder = build_dir() / "models" / profile.name / f"{name}-{_fingerprint(paths, config, train_config)}"
    if cache and (folder / "model.pt").exists():
        logger.info("loading cached %s from %s", name, folder)
        history = History.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8"))["history"])
        return load_model(folder), history

    max_length = config.max_length
    train_ids = read_sessions(paths.train, max_length)
    lookup = item_category_lookup(paths.train, config.item_cardinality) if config.category_cardinality else None
    prefixes, targets = validation_cases(paths.valid, max_length, profile.eval_max_sessions)
    seed_everything(train_config.seed)
    model = build_model(config, item_category=None if lookup is None else torch.from_numpy(lookup))
    loader = make_loader(train_ids, train_config.batch_size, shuffle=True, seed=train_config.seed)

    def checkpoint(best: torch.nn.Module, history: History) -> None:
        if cache:
            save_model(best, folder, extra={"history": history.to_dict(), "train": vars(train_config)})

    history = fit(model, loader, make_validator(prefixes, targets), train_config, checkpoint=checkpoint)
    if cache:  # final write: the complete history beside the best weights
        save_model(model, folder, extra={"history": history.to_dict(), "train": vars(train_config)})
    return model.cpu().eval(), history


def test_cases(artifacts, profile: Profile, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """All-prefix (prefix → next item) cases of a split, capped at ``profile.eval_max_sessions`` sessions."""
    paths = resolve_artifacts(artifacts)
    max_length = int(read_schema(paths.schema)["max_length"])
    return validation_cases(getattr(paths, split), max_length, profile.eval_max_sessions)


def baseline_results(artifacts, profile: Profile, names=("POP", "Markov", "SR")) -> dict[str, dict[str, float]]:
    """Fit the baselines of notebook 02 on the training split and evaluate them on :func:`test_cases`."""
    from sessrec_course.baselines import default_baselines
    from sessrec_course.evaluation import evaluate

    paths = resolve_artifacts(artifacts)
    n_items = int(read_schema(paths.schema)["item_cardinality"])
    train = pq.read_table(paths.train, columns=[ITEM_COLUMN]).column(ITEM_COLUMN)
    prefixes, targets = test_cases(paths, profile)
    available = default_baselines()
    results = {}
    for name in names:
        model = available[name].fit(train, n_items)
        results[name] = evaluate(model, prefixes, targets, ks=(20,), progress=False, desc=name)
    return results
