"""The on-disk checkpoint cache of both frameworks: a key hashing the data, both configs and the source of the model
and training code (editing a model retrains it instead of loading stale weights), and the history reader."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from sessrec_course.models import ModelConfig
from sessrec_course.training.artifacts import DatasetPaths
from sessrec_course.training.common import History, TrainConfig

PACKAGE = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("torch", "keras")
SHARED_CODE = ("models/__init__.py", "training/common.py", "training/validation.py", "training/cache.py")


def model_code(framework: str) -> list[Path]:
    """The source files whose edits invalidate ``framework``'s checkpoints: its model and training files + shared ones."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; expected one of {FRAMEWORKS}")
    files = sorted(PACKAGE.glob(f"models/{framework}_*.py")) + sorted(PACKAGE.glob(f"training/{framework}_*.py"))
    return files + [PACKAGE / name for name in SHARED_CODE if (PACKAGE / name).exists()]


def checkpoint_key(paths: DatasetPaths, config: ModelConfig, train: TrainConfig, code: list[Path]) -> str:
    """12 hex digits hashing the schema, the train/valid files' identity, both configs and the ``code`` files."""
    parts = [paths.schema.read_text(encoding="utf-8")]
    for path in (paths.train, paths.valid):
        stat = path.stat()
        parts.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    settings = {k: v for k, v in asdict(train).items() if k != "progress"}  # the bar does not change the weights
    parts += [json.dumps(config.to_dict(), sort_keys=True), json.dumps(settings, sort_keys=True, default=str)]
    parts += [path.read_text(encoding="utf-8") for path in code]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def checkpoint_folder(root: Path, prefix: str, name: str, paths: DatasetPaths, config: ModelConfig,
                      train: TrainConfig, framework: str) -> Path:
    """``root/<prefix><name>-<key>``: where preset ``name`` trained with these settings is cached."""
    return root / f"{prefix}{name}-{checkpoint_key(paths, config, train, model_code(framework))}"


def cached_history(folder: Path) -> History:
    """The training history saved in a checkpoint's ``config.json``."""
    return History.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8"))["history"])
