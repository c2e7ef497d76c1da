"""The TensorFlow lessons' shared steps: "beats Markov" asserts on generated data only, served answers compared."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

pytest.importorskip("tensorflow")

from sessrec_course.keras_lessons import cache_note, check_beats_markov, served_agreement  # noqa: E402

GENERATED = SimpleNamespace(is_generated=True, source="generated")
OWN_LOG = SimpleNamespace(is_generated=False, source="diginetica-sample")


def _results(model: float, markov: float = 0.30, pop: float = 0.05) -> dict:
    return {"POP": {"MRR@20": pop}, "Markov": {"MRR@20": markov}, "Keras GRU": {"MRR@20": model}}


def test_beats_markov_holds_or_fails_on_the_generated_data():
    assert check_beats_markov(_results(0.35), "Keras GRU", GENERATED) is True
    with pytest.raises(AssertionError, match="does not beat the Markov chain"):
        check_beats_markov(_results(0.25), "Keras GRU", GENERATED)
    with pytest.raises(AssertionError, match="less than popularity"):
        check_beats_markov(_results(0.04, markov=0.03), "Keras GRU", GENERATED)


def test_on_a_learners_log_the_comparison_is_reported_and_explained(capsys):
    assert check_beats_markov(_results(0.25), "Keras GRU", OWN_LOG) is False
    text = capsys.readouterr().out
    assert "does not beat Markov" in text and "diginetica-sample" in text and "no failure" in text


def test_served_agreement_counts_identical_ids_and_the_largest_score_gap():
    expected = pd.DataFrame({"item_id": [5, 7, 9, 11], "score": [0.4, 0.3, 0.2, 0.1]})
    served = pd.DataFrame({"item_id": [5, 7, 11, 9], "score": [0.4, 0.31, 0.2, 0.1]})
    same, gap = served_agreement(served, expected)
    assert same == 0.5 and gap == pytest.approx(0.01)
    assert served_agreement(expected, expected) == (1.0, 0.0)
    with pytest.raises(ValueError, match="returned 3 rows"):
        served_agreement(served.head(3), expected)


def test_cache_note_says_how_to_retrain_only_for_loaded_weights(tmp_path):
    loaded = cache_note(tmp_path, True, 0.4, 'train_keras_model("gru", cache=False)')
    assert "from the cache" in loaded and str(tmp_path) in loaded and "cache=False" in loaded
    assert "trained now" in cache_note(tmp_path, False, 12.0, "x") and "cache=False" not in cache_note(tmp_path,
                                                                                                    False, 12.0, "x")
