"""The TensorFlow lessons' shared steps, one call each, so that a Keras notebook keeps only what differs.

``lesson = start_lesson("gru", "Keras GRU")`` seeds, prepares the data and the ``tf.data`` pipeline;
``lesson.build_model()``, ``lesson.check_padding(model)``, ``lesson.train_model()`` (says whether the weights come
from the cache and how to retrain), ``lesson.test_against_baselines(model)`` (table, ``record``, "beats Markov" on
the generated data, an explanation otherwise), ``lesson.export_check(model)`` (save, reload, ONNX parity); :func:`served_agreement` compares the real Triton
ensemble's answer with the in-process one. Imports TensorFlow.

Framework-neutral parts, meant to move into the shared lesson helpers later: :func:`baselines_table`,
:func:`check_beats_markov`, :func:`cache_note` and :func:`served_agreement`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from IPython.display import display

from sessrec_course import plots
from sessrec_course.baselines import MarkovChain, MostPopular
from sessrec_course.etl import item_category_lookup, prepare_default_dataset
from sessrec_course.evaluation import all_prefixes, evaluate, results_table
from sessrec_course.models.keras_base import MASKED_SCORE, KerasSessionModel
from sessrec_course.models.keras_build import build_keras_model
from sessrec_course.profiles import Profile, get_profile
from sessrec_course.report import record
from sessrec_course.training.common import History, model_config
from sessrec_course.training.keras_data import make_dataset, read_split
from sessrec_course.training.keras_export import export_onnx, load_keras_model, onnx_parity, save_keras_model
from sessrec_course.training.keras_trainer import (
    KerasRecommender,
    keras_checkpoint,
    set_seed,
    train_keras_model,
)

logger = logging.getLogger(__name__)

TABLE_COLUMNS = ["Recall@20", "MRR@20", "NDCG@20", "Recall@10", "Coverage@20"]


# ---- framework-neutral steps ------------------------------------------------------------------------------------
def baselines_table(data: Any, profile: Profile, label: str, recommender: Any) -> dict:
    """POP, Markov and ``recommender`` (anything with ``score``) on the test prefixes; display the table."""
    test = data.load("test", columns=["item_id_list"])["item_id_list"]
    if profile.eval_max_sessions is not None:
        test = test.iloc[: profile.eval_max_sessions]
    prefixes, targets = all_prefixes(test, max_length=data.schema["max_length"])
    train_sessions = data.load("train", columns=["item_id_list"])["item_id_list"]
    n_items = data.schema["item_cardinality"]
    results = {
        "POP": evaluate(MostPopular().fit(train_sessions, n_items), prefixes, targets, ks=(10, 20), desc="POP"),
        "Markov": evaluate(MarkovChain().fit(train_sessions, n_items), prefixes, targets, ks=(10, 20), desc="Markov"),
        label: evaluate(recommender, prefixes, targets, ks=(10, 20), desc=label),
    }
    display(results_table(results, columns=TABLE_COLUMNS).round(4))
    return results


def check_beats_markov(results: dict, label: str, data: Any, metric: str = "MRR@20") -> bool:
    """Assert the model beats POP and Markov on the generated data; on a learner's own log, report and explain."""
    model, markov, pop = results[label][metric], results["Markov"][metric], results["POP"][metric]
    beats = model > markov
    print(f"{label} {metric} {model:.4f} vs Markov {markov:.4f} and POP {pop:.4f}: "
          f"{'beats' if beats else 'does not beat'} Markov")
    if data.is_generated:
        assert model > pop, f"{label} learnt less than popularity ({model:.4f} <= {pop:.4f})"
        assert beats, f"{label} does not beat the Markov chain on the generated data ({model:.4f} <= {markov:.4f})"
    elif not beats:
        print(f"On '{data.source}' this is no failure: with few sessions or short ones the last click says almost "
              "everything, which is exactly what a Markov chain counts; more data or more epochs "
              "(SESSREC_PROFILE=workshop) give the model room to learn more.")
    return bool(beats)


def cache_note(folder: Path, cached: bool, seconds: float, retrain: str) -> str:
    """One sentence: were the weights trained now or loaded from the checkpoint cache, and how to retrain."""
    if cached:
        return (f"loaded in {seconds:.1f} s from the cache {folder} (same data, settings and model code as when it "
                f"was trained). To retrain: delete that folder, or call {retrain}.")
    return f"trained now in {seconds:.1f} s and cached in {folder}: the next run loads it."


def served_agreement(served: pd.DataFrame, expected: pd.DataFrame) -> tuple[float, float]:
    """Share of identical top-k ids and largest score difference between the server's answer and the reference."""
    if len(served) != len(expected):
        raise ValueError(f"the server returned {len(served)} rows, the reference {len(expected)}")
    same_ids = float((served["item_id"].to_numpy() == expected["item_id"].to_numpy()).mean())
    gap = float(np.abs(served["score"].to_numpy() - expected["score"].to_numpy()).max())
    return same_ids, gap


# ---- the Keras lesson -------------------------------------------------------------------------------------------
@dataclass
class KerasLesson:
    """What a TensorFlow lesson works on: the preset, its display label, the profile, the data and the pipeline."""

    name: str
    label: str
    profile: Profile
    data: Any
    train: dict[str, np.ndarray]
    dataset: Any
    notes: list[str] = field(default_factory=list)

    @property
    def schema(self) -> dict:
        """The ETL schema (cardinalities, ``max_length``)."""
        return self.data.schema

    def build_model(self, summary: bool = True) -> KerasSessionModel:
        """The untrained model of this lesson's preset, with its parameter count (and Keras' summary)."""
        config = model_config(self.name, self.schema, self.profile)
        lookup = item_category_lookup(self.data.path("train"), config.item_cardinality)
        model = build_keras_model(config, item_category=lookup)
        print(config)
        print(f"{model.count_params():,} parameters, of which the item embedding: "
              f"{tuple(model.item_embedding.embeddings.shape)}")
        if summary:
            model.summary(line_length=100)
        return model

    def check_padding(self, model: KerasSessionModel) -> float:
        """Extra padding changes no score, pad/OOV are never recommended, an empty session gets popularity."""
        session = self.train["item_ids"][0][self.train["mask"][0]][:4]
        short = np.r_[session, np.zeros(2, np.int64)][None]
        long = np.r_[session, np.zeros(30, np.int64)][None]
        a, b = model(short).numpy(), model(long).numpy()
        gap = float(np.abs(a - b).max())
        print(f"session {session.tolist()}: largest score change from 28 more padding positions {gap:.1e}")
        assert np.allclose(a, b, atol=1e-5), "padding changed the scores"
        assert (a[0, :2] == MASKED_SCORE).all(), "padding or OOV could be recommended"
        empty = model(np.zeros((1, 5), np.int64)).numpy()[0, 2:]
        assert np.allclose(empty, model.output_layer.bias.numpy()[2:]), "an empty session must get popularity"
        return gap

    def train_model(self, **overrides) -> tuple[KerasSessionModel, History]:
        """``train_keras_model`` for this preset, saying whether the weights were trained now or loaded from cache."""
        folder = keras_checkpoint(self.name, self.data, self.profile, **overrides)
        cached = (folder / "config.json").exists()
        t0 = time.perf_counter()
        model, history = train_keras_model(self.name, self.data, self.profile, **overrides)
        print(cache_note(folder, cached, time.perf_counter() - t0,
                         f'train_keras_model("{self.name}", cache=False)'))
        print(f"best {history.monitor} {history.best_score:.4f} at epoch {history.best_epoch}")
        epochs = pd.DataFrame(history.epochs).set_index("epoch")
        display(epochs.round(4))
        assert history.best_score == epochs[history.monitor].max()
        display(plots.learning_curves({self.label: history}))
        return model, history

    def test_against_baselines(self, model: KerasSessionModel, history: History | None = None) -> dict:
        """The shared evaluation next to POP and Markov; records the figures; asserts "beats Markov" when generated."""
        results = baselines_table(self.data, self.profile, self.label, KerasRecommender(model))
        for metric in ("Recall@20", "MRR@20"):
            record(metric, results[self.label][metric], model=self.label)
        if history is not None and history.epochs:
            record("seconds/epoch", float(np.mean([e["seconds"] for e in history.epochs])), model=self.label)
        check_beats_markov(results, self.label, self.data)
        return results

    def export_check(self, model: KerasSessionModel, n: int = 256) -> float:
        """Save and reload the model, export it to ONNX and return the largest score gap against Keras."""
        sample = self.train["item_ids"][:n]
        with TemporaryDirectory() as tmp:
            folder = save_keras_model(model, Path(tmp) / self.name)
            reloaded = load_keras_model(folder)
            assert np.array_equal(reloaded(sample).numpy(), model(sample).numpy()), "the reloaded model differs"
            print("saved and reloaded:", sorted(p.name for p in folder.iterdir()))
            path = export_onnx(model, Path(tmp) / f"{self.name}.onnx")
            gap = onnx_parity(model, path, sample)
            print(f"ONNX export: {path.stat().st_size / 1e6:.1f} MB, largest score gap vs Keras {gap:.2e}")
        assert gap < 1e-3, f"the ONNX graph scores differently from Keras (gap {gap:.2e})"
        return gap


def start_lesson(name: str, label: str, profile: Profile | None = None) -> KerasLesson:
    """Seed, print the set-up, prepare the profile's dataset and its ``tf.data`` pipeline for preset ``name``."""
    profile = profile or get_profile()
    set_seed(profile.seed)
    gpus = tf.config.list_physical_devices("GPU")
    data = prepare_default_dataset(profile)
    train = read_split(data.path("train"), data.schema["max_length"])
    dataset = make_dataset(train, batch_size=profile.batch_size, seed=profile.seed)
    print(f"profile: {profile.name} · data: {data.source} ({dataset.n_sessions:,} training sessions) · "
          f"TensorFlow {tf.__version__} · Keras {keras.__version__} · "
          f"{'GPU: ' + gpus[0].name if gpus else 'CPU only'}")
    return KerasLesson(name, label, profile, data, train, dataset)
