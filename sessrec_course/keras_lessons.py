"""The TensorFlow lessons' steps, one call each (``lesson = start_lesson("gru", "Keras GRU")``, then its
methods), so a Keras notebook keeps only what differs; the framework-neutral ones are :mod:`.lesson`'s."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from IPython.display import display

from sessrec_course import lesson, plots
from sessrec_course.etl import item_category_lookup, prepare_default_dataset
from sessrec_course.evaluation import evaluate
from sessrec_course.models.keras_base import MASKED_SCORE, KerasSessionModel
from sessrec_course.models.keras_build import build_keras_model
from sessrec_course.profiles import Profile, get_profile
from sessrec_course.report import record
from sessrec_course.training import keras_trainer
from sessrec_course.training.common import History, model_config
from sessrec_course.training.keras_data import make_dataset, read_split
from sessrec_course.training.keras_export import export_onnx, load_keras_model, onnx_parity, save_keras_model


@dataclass
class KerasLesson:
    """What a TensorFlow lesson works on: the preset, its display label, the profile, the data and the pipeline."""

    name: str
    label: str
    profile: Profile
    data: Any
    train: dict[str, np.ndarray]
    dataset: Any

    def build_model(self) -> KerasSessionModel:
        """The untrained model of this lesson's preset, with its parameter count and Keras' summary."""
        config = model_config(self.name, self.data.schema, self.profile)
        lookup = item_category_lookup(self.data.path("train"), config.item_cardinality)
        model = build_keras_model(config, item_category=lookup)
        print(config)
        print(f"{model.count_params():,} parameters, of which the item embedding: "
              f"{tuple(model.item_embedding.embeddings.shape)}")
        model.summary(line_length=100)
        return model

    def check_padding(self, model: KerasSessionModel) -> float:
        """Extra padding changes no score, pad/OOV are never recommended, an empty session gets popularity."""
        session = self.train["item_ids"][0][self.train["mask"][0]][:4]
        a, b = (model(np.r_[session, np.zeros(pad, np.int64)][None]).numpy() for pad in (2, 30))
        gap = float(np.abs(a - b).max())
        print(f"session {session.tolist()}: largest score change from 28 more padding positions {gap:.1e}")
        assert np.allclose(a, b, atol=1e-5), "padding changed the scores"
        assert (a[0, :2] == MASKED_SCORE).all(), "padding or OOV could be recommended"
        empty = model(np.zeros((1, 5), np.int64)).numpy()[0, 2:]
        assert np.allclose(empty, model.output_layer.bias.numpy()[2:]), "an empty session must get popularity"
        return gap

    def train_model(self, **overrides) -> tuple[KerasSessionModel, History]:
        """``train_keras_model`` for this preset, saying whether the weights were trained now or loaded from cache."""
        folder = keras_trainer.keras_checkpoint(self.name, self.data, self.profile, **overrides)
        cached = (folder / "config.json").exists()
        t0 = time.perf_counter()
        model, history = keras_trainer.train_keras_model(self.name, self.data, self.profile, **overrides)
        print(lesson.cache_note(folder, cached, time.perf_counter() - t0,
                                f'train_keras_model("{self.name}", cache=False)'))
        print(f"best {history.monitor} {history.best_score:.4f} at epoch {history.best_epoch}")
        epochs = pd.DataFrame(history.epochs).set_index("epoch")
        display(epochs.round(4))
        assert history.best_score == epochs[history.monitor].max()
        display(plots.learning_curves({self.label: history}))
        return model, history

    def test_against_baselines(self, model: KerasSessionModel, history: History | None = None) -> dict:
        """The shared evaluation next to POP and Markov; records the figures; asserts "beats Markov" when generated."""
        prefixes, targets, results = lesson.baselines(self.data, self.profile, names=("POP", "Markov"))
        recommender = keras_trainer.KerasRecommender(model)
        results[self.label] = evaluate(recommender, prefixes, targets, ks=(20,), desc=self.label)
        if history is not None and history.epochs:
            record("seconds/epoch", float(np.mean([e["seconds"] for e in history.epochs])), model=self.label)
        lesson.compare_with_markov(results, self.label, self.data)
        return results

    def export_check(self, model: KerasSessionModel, n: int = 256) -> float:
        """Save and reload the model, export it to ONNX and return the largest score gap against Keras."""
        sample = self.train["item_ids"][:n]
        with TemporaryDirectory() as tmp:
            folder = save_keras_model(model, Path(tmp) / self.name)
            same = np.array_equal(load_keras_model(folder)(sample).numpy(), model(sample).numpy())
            assert same, "the reloaded model differs"
            print("saved and reloaded:", sorted(p.name for p in folder.iterdir()))
            path = export_onnx(model, Path(tmp) / f"{self.name}.onnx")
            gap = onnx_parity(model, path, sample)
            print(f"ONNX export: {path.stat().st_size / 1e6:.1f} MB, largest score gap vs Keras {gap:.2e}")
        assert gap < 1e-3, f"the ONNX graph scores differently from Keras (gap {gap:.2e})"
        return gap


def start_lesson(name: str, label: str, profile: Profile | None = None) -> KerasLesson:
    """Seed, print the set-up, prepare the profile's dataset and its ``tf.data`` pipeline for preset ``name``."""
    profile = profile or get_profile()
    keras_trainer.set_seed(profile.seed)
    gpus = tf.config.list_physical_devices("GPU")
    data = prepare_default_dataset(profile)
    train = read_split(data.path("train"), data.schema["max_length"])
    dataset = make_dataset(train, batch_size=profile.batch_size, seed=profile.seed)
    print(f"profile: {profile.name} · data: {data.source} ({dataset.n_sessions:,} training sessions) · "
          f"TensorFlow {tf.__version__} · Keras {keras.__version__} · "
          f"{'GPU: ' + gpus[0].name if gpus else 'CPU only'}")
    return KerasLesson(name, label, profile, data, train, dataset)
