"""Glue between the course's stages and serving: fitted workflow -> serving state, trained model -> repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sessrec_course.ids import FIRST_ID
from sessrec_course.paths import build_dir
from sessrec_course.serving.repository import ServingConfig, export_repository, popularity_scores
from sessrec_course.serving.transform import ServingState


def serving_state_from_workflow(workflow: Any) -> ServingState:
    """Return the serving tables of a fitted ``SessionWorkflow`` (the popular items scored by their click share)."""
    raw_of_encoded = np.asarray(workflow.decode_item_ids(np.arange(workflow.item_cardinality)), dtype=np.int64)
    popular, scores = popularity_scores(np.r_[np.zeros(FIRST_ID), np.asarray(workflow.item_count, dtype=np.float64)])
    return ServingState(raw_of_encoded, int(workflow.config.max_length), popular, scores)


def raw_sessions(artifacts: Any, n: int | None = None, split: str = "test", seed: int = 0) -> list[list[int]]:
    """Return up to ``n`` sessions of ``split`` as raw item-id lists with every event, as a live system sends them."""
    ids = pd.read_parquet(artifacts.path(split), columns=["session_id"])["session_id"].to_numpy()
    if n is not None and n < len(ids):
        ids = np.sort(np.random.default_rng(seed).choice(ids, size=n, replace=False))
    events = pd.read_parquet(artifacts.events_path, columns=["session_id", "item_id", "timestamp"],
                             filters=[("session_id", "in", ids.tolist())])
    events = events.sort_values(["session_id", "timestamp"], kind="stable")
    grouped = events.groupby("session_id", sort=True)["item_id"].apply(list)
    return [list(map(int, grouped[i])) for i in ids if i in grouped.index]


def check_against_schema(state: ServingState, schema: dict, source: str = "schema.json") -> None:
    """Raise ValueError when the serving tables disagree with the saved schema (cardinality, length, ids)."""
    expected = {"item_cardinality": state.item_cardinality, "max_length": state.max_length, "pad_id": 0, "oov_id": 1}
    wrong = {k: (schema.get(k), v) for k, v in expected.items() if k in schema and int(schema[k]) != v}
    if wrong:
        details = ", ".join(f"{k}: schema {a} vs workflow {b}" for k, (a, b) in wrong.items())
        raise ValueError(f"{source} does not match the saved workflow ({details}): re-run the ETL")


def export_course_model(model_name: str = "gru", artifacts: Any = None, output_dir: str | Path | None = None,
                        config: ServingConfig | None = None, **train_overrides) -> tuple[Path, ServingState, Path]:
    """Train (or load the cached) course model, export ONNX and its repository; return ``(repository, state, onnx)``."""
    from sessrec_course.etl.dataset import prepare_default_dataset
    from sessrec_course.models.torch_export import check_servable, export_onnx
    from sessrec_course.training import train_model

    check_servable(train_overrides.get("model_overrides") or {})  # before training a model that cannot be served
    artifacts = artifacts or prepare_default_dataset()
    model, _ = train_model(model_name, artifacts.root, **train_overrides)
    state = serving_state_from_workflow(artifacts.workflow())
    check_against_schema(state, artifacts.schema, str(artifacts.schema_path))  # the model's width: export_repository
    output_dir = Path(output_dir or build_dir() / "serving" / artifacts.profile.name / model_name)
    output_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(model, output_dir / f"{model_name}.onnx")
    return export_repository(output_dir / "repository", onnx_path, state, config), state, onnx_path

