"""The course's dataset (generated, or ``SESSREC_DATASET``): split, fitted, cached per profile, written atomically."""

from __future__ import annotations

import json
import logging
import os
import time
from contextlib import suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from sessrec_course.data.errors import DataError
from sessrec_course.data.synthetic import generate_events
from sessrec_course.etl import learner_data
from sessrec_course.etl.split import temporal_split
from sessrec_course.etl.workflow import SessionWorkflow
from sessrec_course.paths import generated_data_dir, write_directory_atomically
from sessrec_course.profiles import Profile, get_profile

log = logging.getLogger(__name__)

DATASET_VERSION = 3  # bump when the generator or the ETL output changes
SPLITS = ("train", "valid", "test")


def split_days(profile: Profile) -> float:
    """Days of validation and of test data for a profile (about a fourteenth of the log each)."""
    return float(max(1, profile.n_days // 14))


@dataclass(frozen=True)
class DatasetArtifacts:
    """Paths of a prepared dataset and small helpers to read it."""

    root: Path
    profile: Profile
    source: str = "generated"  # "generated", or the name of the learner's dataset (SESSREC_DATASET)

    @property
    def is_generated(self) -> bool:
        """Whether this is the course's generated log (whose known structure lessons may assert on)."""
        return self.source == "generated"

    def path(self, split: str) -> Path:
        """Return the parquet file of ``split`` (train, valid or test)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return self.root / f"{split}.parquet"

    @property
    def events_path(self) -> Path:
        """The raw generated event table (parquet)."""
        return self.root / "events.parquet"

    @property
    def schema_path(self) -> Path:
        """The ``schema.json`` beside the parquet files."""
        return self.root / "schema.json"

    @cached_property
    def schema(self) -> dict[str, Any]:
        """The schema: cardinalities, max length, pad/OOV ids, feature names and types."""
        return json.loads(self.schema_path.read_text(encoding="utf-8"))

    @property
    def manifest(self) -> dict[str, Any]:
        """What was generated: sizes, seed, split days, counts, timing."""
        return json.loads((self.root / "manifest.json").read_text(encoding="utf-8"))

    def load(self, split: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Read the sessions of ``split`` as a pandas DataFrame (list columns hold numpy arrays)."""
        return pd.read_parquet(self.path(split), columns=columns)

    def events(self) -> pd.DataFrame:
        """Read the raw generated event table."""
        return pd.read_parquet(self.events_path)

    def workflow(self) -> SessionWorkflow:
        """Load the fitted workflow (numpy/pyarrow only)."""
        return SessionWorkflow.load(self.root / "workflow")


def _is_complete(root: Path, manifest: dict[str, Any]) -> bool:
    try:
        found = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return {k: found.get(k) for k in manifest} == manifest and all((root / f"{s}.parquet").exists() for s in SPLITS)


def build_dataset(profile: Profile, target: Path, events: pd.DataFrame | None = None, days: float | None = None,
                  source: str = "events") -> dict[str, Any]:
    """Generate (or take ``events``), split, fit and write every artefact into the empty folder ``target``."""
    info = {}
    with tqdm(total=4, desc=f"dataset ({profile.name})", leave=False) as bar:  # generate, split, fit, transform
        if events is None:
            events = generate_events(profile.n_events, profile.n_items, profile.n_categories, profile.n_days,
                                     profile.seed)
        events.to_parquet(target / "events.parquet", index=False)
        bar.update()
        days = split_days(profile) if days is None else days
        parts = temporal_split(events, valid_days=days, test_days=days, source=source)
        bar.update()
        workflow = SessionWorkflow(max_length=profile.max_length).fit(parts["train"], source=f"train split of {source}")
        workflow.save(target / "workflow")
        bar.update()
        for split in SPLITS:
            table = None if len(parts[split]) == 0 else workflow.transform_arrow(parts[split], source=f"{split} split")
            if table is None or table.num_rows == 0:
                raise DataError(f"the {split} split holds no session of two or more events", source=source,
                                expected=f"a log whose last {days:g} days (test) and the {days:g} before (valid) "
                                         "hold sessions")
            pq.write_table(table, target / f"{split}.parquet")
            info.update({f"{split}_sessions": table.num_rows, f"{split}_events": len(parts[split])})
        bar.update()
    (target / "schema.json").write_text(json.dumps(workflow.schema(), indent=2), encoding="utf-8")
    return info


def prepare_default_dataset(profile: Profile | str | None = None, force: bool = False) -> DatasetArtifacts:
    """The active dataset of ``profile``: generated (default) or the learner's ``$SESSREC_DATASET``, built once."""
    profile = get_profile(profile) if profile is None or isinstance(profile, str) else profile
    name = (os.environ.get(learner_data.DATASET_ENV) or learner_data.GENERATED).strip()
    if name == learner_data.GENERATED:
        root = generated_data_dir(profile.name) / "sessions"
        keys = ("n_events", "n_items", "n_categories", "n_days", "seed", "max_length")
        manifest = {"version": DATASET_VERSION, "profile": profile.name, **{k: getattr(profile, k) for k in keys},
                    "split_days": split_days(profile)}
    else:
        path = learner_data.resolve_path(name)
        manifest = learner_data.cache_key(name, path, profile.max_length, DATASET_VERSION)
        root = learner_data.cache_dir(profile.name, manifest) / "sessions"
    if not force and _is_complete(root, manifest):
        log.info("dataset (%s, %s) found in %s", name, profile.name, root)
        return DatasetArtifacts(root, profile, source=name)

    def write(tmp: Path) -> None:
        t0 = time.perf_counter()
        if name == learner_data.GENERATED:
            info = build_dataset(profile, tmp)
        else:
            events = learner_data.load_learner_events(name, path)
            days = learner_data.split_days_of(events)
            info = {"split_days": round(days, 4), **build_dataset(profile, tmp, events, days, source=str(path))}
        info["total_s"] = round(time.perf_counter() - t0, 3)
        (tmp / "manifest.json").write_text(json.dumps({**manifest, **info}, indent=2), encoding="utf-8")
        log.info("dataset (%s, %s) built in %.1f s", name, profile.name, info["total_s"])

    try:  # keep: a concurrent run finished first
        write_directory_atomically(root, write, keep=lambda existing: not force and _is_complete(existing, manifest))
    except BaseException:
        with suppress(OSError):
            root.parent.rmdir()  # the folder a failed first build created, when nothing else is in it
        raise
    return DatasetArtifacts(root, profile, source=name)
