"""The shared lesson cells: beats-Markov asserted on generated data only, category agreement, cache notice, figures."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from torch_helpers import write_tiny_dataset

from sessrec_course import lesson
from sessrec_course.plots import learning_curves
from sessrec_course.profiles import get_profile
from sessrec_course.report import RESULTS_ENV

GENERATED, OWN = SimpleNamespace(is_generated=True), SimpleNamespace(is_generated=False)


def _results(model_mrr: float) -> dict:
    return {"Markov": {"Recall@20": 0.5, "MRR@20": 0.2}, "GRU": {"Recall@20": 0.55, "MRR@20": model_mrr}}


def test_beating_markov_is_recorded_and_asserted_on_generated_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "figures.jsonl"))
    assert lesson.compare_with_markov(_results(0.25), "GRU", GENERATED) == pytest.approx(0.05)
    lines = [json.loads(line) for line in (tmp_path / "figures.jsonl").read_text().splitlines()]
    assert lines == [{"metric": "Recall@20", "value": 0.55, "model": "GRU"},
                     {"metric": "MRR@20", "value": 0.25, "model": "GRU"}]
    assert "GRU - Markov MRR@20: +0.0500" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="GRU should beat the Markov"):
        lesson.compare_with_markov(_results(0.15), "GRU", GENERATED)


def test_on_a_learners_own_log_a_loss_to_markov_is_explained_not_failed(capsys):
    assert lesson.compare_with_markov(_results(0.15), "GRU", OWN) == pytest.approx(-0.05)
    out = capsys.readouterr().out
    assert "-0.0500" in out and "nothing is asserted" in out
    lesson.compare_with_markov(_results(0.25), "GRU", OWN)
    assert "nothing is asserted" not in capsys.readouterr().out, "a win needs no excuse"
    with pytest.raises(KeyError, match="'MRR@20' for 'MLP'"):
        lesson.compare_with_markov(_results(0.25), "MLP", OWN)


def _clustered(n_items: int = 42, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings whose items cluster by category (4 categories), rows 0 and 1 for padding and OOV."""
    rng = np.random.default_rng(seed)
    category = np.r_[0, 0, np.arange(n_items - 2) % 4]
    centres = rng.normal(size=(4, 8)) * 5
    return centres[category] + rng.normal(size=(n_items, 8)), category


def test_category_agreement_beats_chance_for_clustered_items_only():
    embeddings, category = _clustered()
    same, chance = lesson.category_agreement(embeddings, category, [2, 3, 4, 5], k=5)
    assert same == 1.0 and chance == pytest.approx(9 / 39)
    shuffled = np.random.default_rng(1).normal(size=embeddings.shape)
    assert lesson.category_agreement(shuffled, category, [2, 3, 4, 5], k=5)[0] < 0.6


def test_popular_items_never_include_padding_or_oov():
    targets = np.array([0, 0, 0, 1, 1, 5, 5, 5, 3, 3, 7])
    assert lesson.popular_items(targets, 10, n=3).tolist() == [5, 3, 7]


def test_nearest_items_asserts_on_generated_data_and_reports_on_own(capsys):
    embeddings, category = _clustered()
    targets = np.arange(2, 42)
    same, chance = lesson.nearest_items(embeddings, category, targets, GENERATED)
    assert same > chance
    noise = np.random.default_rng(2).normal(size=embeddings.shape)
    with pytest.raises(AssertionError, match="one category"):
        lesson.nearest_items(noise, np.r_[0, 0, np.arange(40) % 2], targets, GENERATED, n_queries=1)
    capsys.readouterr()
    assert np.isnan(lesson.nearest_items(noise, np.zeros(42, dtype=int), targets, OWN)[0])
    assert "no item categories" in capsys.readouterr().out


def test_train_says_when_the_model_comes_from_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SESSREC_BUILD_DIR", str(tmp_path / "build"))
    folder = write_tiny_dataset(tmp_path / "data", n_train=60)
    profile = get_profile("ci", hidden_size=16, batch_size=32, epochs=1)
    lesson.train("mlp", folder, profile, progress=False)
    first = capsys.readouterr().out
    assert "trained now in" in first and str(tmp_path / "build" / "models" / "ci") in first
    lesson.train("mlp", folder, profile, progress=False)
    loaded = capsys.readouterr().out
    assert "from the cache" in loaded and "cache=False" in loaded
    lesson.train("mlp", folder, profile, progress=False, cache=False)
    assert "trained now in" in capsys.readouterr().out


def _history(epochs: int) -> dict:
    return {"steps": [1, 2, 3, 4], "losses": [5.0, 4.0, 3.5, 3.0], "best_epoch": epochs, "best_score": 0.3,
            "monitor": "MRR@20", "epochs": [{"epoch": e, "train_loss": 3.0, "MRR@20": 0.1 * e} for e in
                                            range(1, epochs + 1)]}


def test_one_epoch_shows_a_bar_from_zero_and_several_epochs_a_line():
    one = learning_curves({"a": _history(1), "b": _history(1)}, reference={"Markov": 0.5})
    metric_axis = one.axes[1]
    assert len(metric_axis.patches) == 2 and metric_axis.get_ylim()[0] == 0
    assert metric_axis.get_ylim()[1] > 0.5, "the reference line fits on the axis"
    several = learning_curves(_history(3)).axes[1]
    assert not several.patches and len(several.lines[0].get_xdata()) == 3


def test_a_loss_that_did_not_fall_fails_on_generated_data_and_is_explained_on_own(monkeypatch, capsys):
    monkeypatch.setattr(lesson, "_display", lambda *_: None)
    flat = SimpleNamespace(epochs=[{"train_loss": 9.0, "sessions_per_s": 100.0}], losses=[8.8, 9.0],
                           best_epoch=1, best_score=0.01, validation=[])
    results = _results(0.25)
    monkeypatch.setattr("sessrec_course.plots.learning_curves", lambda *a, **k: None)
    with pytest.raises(AssertionError, match="training loss should go down"):
        lesson.show_training(flat, results, data=GENERATED)
    lesson.show_training(flat, results, data=SimpleNamespace(is_generated=False, source="my.csv"))
    assert "on 'my.csv' the training loss did not go down in 2 steps" in capsys.readouterr().out


def test_served_agreement_counts_identical_ids_and_the_largest_score_gap():
    import pandas as pd

    expected = pd.DataFrame({"item_id": [5, 7, 9, 11], "score": [0.4, 0.3, 0.2, 0.1]})
    served = pd.DataFrame({"item_id": [5, 7, 11, 9], "score": [0.4, 0.31, 0.2, 0.1]})
    same, gap = lesson.served_agreement(served, expected)
    assert same == 0.5 and gap == pytest.approx(0.01)
    assert lesson.served_agreement(expected, expected) == (1.0, 0.0)
    with pytest.raises(ValueError, match="returned 3 rows"):
        lesson.served_agreement(served.head(3), expected)
