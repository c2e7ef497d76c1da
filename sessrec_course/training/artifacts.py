"""The ETL output a model trains on: its four files, checked, and its schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sessrec_course.profiles import Profile


@dataclass(frozen=True)
class DatasetPaths:
    """The ETL output files a model trains on."""

    train: Path
    valid: Path
    test: Path
    schema: Path


def resolve_artifacts(artifacts) -> DatasetPaths:
    """The ETL output given as a folder, its :class:`DatasetPaths` or ``prepare_default_dataset()``'s result."""
    if isinstance(artifacts, DatasetPaths):
        return artifacts
    if not isinstance(artifacts, str | Path) and not hasattr(artifacts, "schema_path"):
        raise TypeError(f"expected the ETL output as a folder or prepare_default_dataset()'s result, not {artifacts!r}")
    folder = Path(artifacts.root if hasattr(artifacts, "schema_path") else artifacts)  # a folder or DatasetArtifacts
    return DatasetPaths(*(folder / f"{k}.parquet" for k in ("train", "valid", "test")), folder / "schema.json")


def training_paths(artifacts, profile: Profile) -> DatasetPaths:
    """The ETL output to train on (None: the profile's default data, prepared if needed), its files checked."""
    if artifacts is None:
        from sessrec_course.etl.dataset import prepare_default_dataset

        artifacts = prepare_default_dataset(profile)
    paths = resolve_artifacts(artifacts)
    for path in (paths.train, paths.valid, paths.schema):
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run the ETL first (sessrec_course.etl)")
    return paths


def read_schema(path: str | Path) -> dict:
    """Read the ETL ``schema.json`` and check the keys the models need."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the ETL first (sessrec_course.etl)")
    schema = json.loads(path.read_text(encoding="utf-8"))
    for key in ("item_cardinality", "max_length"):
        if key not in schema:
            raise ValueError(f"{path}: schema has no {key!r} (keys: {sorted(schema)})")
    return schema
