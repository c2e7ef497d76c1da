"""The checkpoint cache key of both frameworks: data, configs and the framework's model code (no framework needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sessrec_course.models import ModelConfig
from sessrec_course.training import cache
from sessrec_course.training.common import DatasetPaths, TrainConfig

CONFIG = ModelConfig(name="gru", item_cardinality=10, hidden_size=8, max_length=4)


def _package_copy(tmp_path: Path) -> Path:
    """A copy of the package's models/ and training/ sources that a test may edit."""
    package = tmp_path / "package"
    for sub in ("models", "training"):
        shutil.copytree(cache.PACKAGE / sub, package / sub, ignore=shutil.ignore_patterns("__pycache__"))
    return package


def _dataset(tmp_path: Path) -> DatasetPaths:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "schema.json").write_text(json.dumps({"item_cardinality": 10, "max_length": 4}))
    for split in ("train", "valid", "test"):
        (folder / f"{split}.parquet").write_bytes(split.encode())
    return DatasetPaths(*(folder / f"{s}.parquet" for s in ("train", "valid", "test")), schema=folder / "schema.json")


def _append_comment(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")


@pytest.mark.parametrize(("framework", "prefix", "edited", "other"), [
    ("keras", "keras-", "models/keras_gru.py", "models/torch_gru.py"),
    ("torch", "", "models/torch_gru.py", "models/keras_gru.py"),
])
def test_checkpoint_folder_changes_when_the_framework_model_code_changes(tmp_path, monkeypatch, framework, prefix,
                                                                         edited, other):
    package = _package_copy(tmp_path)
    monkeypatch.setattr(cache, "PACKAGE", package)
    paths = _dataset(tmp_path)

    def folder() -> Path:
        return cache.checkpoint_folder(tmp_path / "models", prefix, "gru", paths, CONFIG, TrainConfig(), framework)

    before = folder()
    assert before.name.startswith(f"{prefix}gru-") and folder() == before
    assert package / edited in cache.model_code(framework)
    _append_comment(package / other)  # the other framework's model is not this checkpoint's code
    assert folder() == before
    _append_comment(package / edited)
    assert folder() != before


def test_checkpoint_key_follows_data_and_settings_not_the_progress_bar(tmp_path):
    paths, code = _dataset(tmp_path), cache.model_code("torch")
    key = cache.checkpoint_key(paths, CONFIG, TrainConfig(progress=True), code)
    assert cache.checkpoint_key(paths, CONFIG, TrainConfig(progress=False), code) == key
    assert cache.checkpoint_key(paths, CONFIG, TrainConfig(seed=7), code) != key
    assert cache.checkpoint_key(paths, ModelConfig(name="gru", item_cardinality=10, hidden_size=16, max_length=4),
                                TrainConfig(), code) != key
    paths.train.write_bytes(b"retrained data")
    assert cache.checkpoint_key(paths, CONFIG, TrainConfig(), code) != key
    with pytest.raises(ValueError, match="unknown framework 'jax'"):
        cache.model_code("jax")
