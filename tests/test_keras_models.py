"""The Keras track: tf.data pipeline, masking and defined answers, tiny models overfit tiny data, save/load.

Data are tiny hand-made parquet files following the ETL contract (docs/design.md). TensorFlow is imported
once for the module; the tiny models train in a few seconds each.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("tensorflow")

from sessrec_course.etl import item_category_lookup  # noqa: E402
from sessrec_course.evaluation import all_prefixes, evaluate  # noqa: E402
from sessrec_course.models import ModelConfig  # noqa: E402
from sessrec_course.models.keras_base import MASKED_SCORE  # noqa: E402
from sessrec_course.models.keras_build import build_keras_model  # noqa: E402
from sessrec_course.profiles import get_profile  # noqa: E402
from sessrec_course.training.keras_data import (  # noqa: E402
    make_dataset,
    read_split,
)
from sessrec_course.training.keras_export import load_keras_model, save_keras_model  # noqa: E402
from sessrec_course.training.keras_trainer import KerasRecommender, train_keras_model  # noqa: E402

N_ITEMS = 22  # 0 pad, 1 OOV, items 2..21
MAX_LENGTH = 8
NAMES = ("mlp", "gru", "transformer")


def chain_sessions(n: int, seed: int) -> list[list[int]]:
    """Sessions that follow one fixed cycle over the items: the next item is a function of the last one."""
    rng = np.random.default_rng(seed)
    cycle = np.random.default_rng(123).permutation(np.arange(2, N_ITEMS))
    out = []
    for _ in range(n):
        start, length = int(rng.integers(0, len(cycle))), int(rng.integers(2, 7))
        out.append([int(cycle[(start + i) % len(cycle)]) for i in range(length)])
    return out


def write_split(path, sessions):
    table = pa.table({
        "session_id": pa.array(np.arange(len(sessions)), pa.int64()),
        "item_id_list": pa.array(sessions, pa.list_(pa.int32())),
        "category_list": pa.array([[1 + item % 3 for item in s] for s in sessions], pa.list_(pa.int32())),
        "time_delta_list": pa.array([[0.0] + [5.0] * (len(s) - 1) for s in sessions], pa.list_(pa.float32())),
        "length": pa.array([len(s) for s in sessions], pa.int32()),
    })
    pq.write_table(table, path)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras_tiny")
    train = chain_sessions(64, seed=0) + [[5], [9, 14, 3, 7, 2, 8, 11, 4, 6, 10]]  # one too short, one over-long
    write_split(folder / "train.parquet", train)
    write_split(folder / "valid.parquet", chain_sessions(24, seed=1))
    write_split(folder / "test.parquet", chain_sessions(24, seed=2))
    (folder / "schema.json").write_text(json.dumps(
        {"item_cardinality": N_ITEMS, "category_cardinality": 4, "max_length": MAX_LENGTH, "pad_id": 0, "oov_id": 1}))
    return folder


def test_pipeline_pads_masks_trims_and_shuffles_deterministically(tiny_data, tmp_path):
    split = read_split(tiny_data / "train.parquet", MAX_LENGTH)
    assert split["item_ids"].shape == (66, MAX_LENGTH) and split["item_ids"].dtype == np.int64
    # the over-long session keeps its last 8 items, right-aligned padding elsewhere
    assert split["item_ids"][65].tolist() == [3, 7, 2, 8, 11, 4, 6, 10]
    assert split["item_ids"][64].tolist() == [5, 0, 0, 0, 0, 0, 0, 0]
    assert split["mask"][64].tolist() == [True] + [False] * 7
    assert split["category_ids"][65].tolist() == [1, 2, 3, 3, 3, 2, 1, 2]  # 1 + item % 3
    assert split["time_deltas"][64].tolist() == [0.0] * 8

    batches = list(make_dataset(split, batch_size=16, shuffle=True, seed=3).as_numpy_iterator())
    assert sum(len(b["item_ids"]) for b in batches) == 65, "the one-item session is dropped"
    for batch in batches:  # trimmed to the longest session of the batch, masks aligned with ids
        assert (batch["item_ids"][:, -1] != 0).any()
        np.testing.assert_array_equal(batch["mask"], batch["item_ids"] != 0)
    widths = sorted(b["item_ids"].shape[1] for b in batches)
    assert widths[-1] == MAX_LENGTH and widths[-2] <= 6, "only the batch with the over-long session is full width"
    again = list(make_dataset(split, batch_size=16, shuffle=True, seed=3).as_numpy_iterator())
    assert all(np.array_equal(a["item_ids"], b["item_ids"]) for a, b in zip(batches, again, strict=True))

    lookup = item_category_lookup(tiny_data / "train.parquet", N_ITEMS)
    assert lookup[:2].tolist() == [0, 0] and lookup[2:].tolist() == [1 + i % 3 for i in range(2, N_ITEMS)]

    pq.write_table(pa.table({"item_id_list": pa.array([1, 2])}), tmp_path / "flat.parquet")
    with pytest.raises(ValueError, match=r"flat.parquet: column 'item_id_list' is int64, expected a list"):
        read_split(tmp_path / "flat.parquet", MAX_LENGTH)


@pytest.mark.parametrize("name", NAMES)
def test_masking_padding_and_defined_answers(name):
    config = ModelConfig(name=name, item_cardinality=N_ITEMS, category_cardinality=4, hidden_size=16,
                         max_length=6, window=3, num_layers=2, num_heads=2)
    model = build_keras_model(config, item_category=1 + np.arange(N_ITEMS) % 3)
    model.output_layer.bias.assign(np.linspace(-1, 1, N_ITEMS).astype(np.float32))
    session = [4, 9, 2, 17]
    scores = model(np.array([session + [0, 0]])).numpy()[0]
    # more trailing padding, and a longer session whose last 6 items are the same, change nothing
    padded = model(np.array([session + [0] * 10])).numpy()[0]
    longer = model(np.array([[3, 5, 8, 11] + [6, 7] + session])).numpy()[0]
    cut = model(np.array([[6, 7] + session])).numpy()[0]
    np.testing.assert_allclose(padded, scores, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(longer, cut, rtol=1e-5, atol=1e-5)
    # padding and OOV are never recommended; an empty session gets the learnt popularity (the bias)
    assert scores[0] == scores[1] == MASKED_SCORE
    empty = model(np.zeros((1, 6), np.int64)).numpy()[0]
    np.testing.assert_allclose(empty[2:], np.linspace(-1, 1, N_ITEMS)[2:], rtol=1e-6)
    # unseen ids (beyond the catalogue) are OOV, negative ids are padding
    np.testing.assert_allclose(model(np.array([[4, 999, 0]])).numpy(), model(np.array([[4, 1, 0]])).numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(model(np.array([[4, 9, -5]])).numpy(), model(np.array([[4, 9, 0]])).numpy(),
                               rtol=1e-6)
    # causal: position t never sees later items, and padding never changes real positions
    a = model.sequence_hidden(np.array([[4, 9, 2, 17, 0, 0]]), training=False).numpy()
    b = model.sequence_hidden(np.array([[4, 9, 2, 5, 12, 3]]), training=False).numpy()
    np.testing.assert_allclose(a[:, :3], b[:, :3], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a[:, 3], b[:, 3])


def test_time_features_are_refused_by_the_keras_twins():
    config = ModelConfig(name="gru", item_cardinality=N_ITEMS, hidden_size=8, max_length=MAX_LENGTH, time_features=True)
    with pytest.raises(ValueError, match="time_features exist in the PyTorch models only"):
        build_keras_model(config)


def test_the_repeat_mixture_is_refused_by_the_keras_twins():
    config = ModelConfig(name="gru", item_cardinality=N_ITEMS, hidden_size=8, max_length=MAX_LENGTH,
                         repeat_bias=True, repeat_mixture=True)
    with pytest.raises(ValueError, match="repeat_mixture exists in the PyTorch models only"):
        build_keras_model(config)
    assert build_keras_model(replace(config, repeat_mixture=False)).repeat_bias is not None


def test_item_skip_adds_each_positions_own_item_embedding():
    from dataclasses import replace

    config = ModelConfig(name="transformer", item_cardinality=N_ITEMS, hidden_size=16, max_length=6, num_layers=1,
                         item_skip=True)
    model = build_keras_model(config)
    ids = np.array([[4, 9, 2, 0, 0, 0], [7, 0, 0, 0, 0, 0]])
    skipped = model.sequence_hidden(ids, training=False).numpy()
    model.config = replace(config, item_skip=False)
    plain = model.sequence_hidden(ids, training=False).numpy()
    table = model.item_embedding.embeddings.numpy()
    np.testing.assert_allclose(skipped, plain + table[ids], rtol=1e-5, atol=1e-6)
    assert not np.allclose(skipped[0, 2], plain[0, 2])


def test_niser_scores_are_scaled_cosines_like_torch():
    """score_scale > 0: the Keras score is scale · cos(session vector, item embedding), as in PyTorch."""
    config = ModelConfig(name="gru", item_cardinality=N_ITEMS, hidden_size=16, max_length=6, score_scale=10.0)
    model = build_keras_model(config)
    ids = np.array([[4, 9, 2, 0, 0, 0]])
    session = model.sequence_hidden(ids, training=False).numpy()[0, 2]
    table = model.item_embedding.embeddings.numpy()[:N_ITEMS]
    cosine = table @ session / np.linalg.norm(table, axis=1) / np.linalg.norm(session)
    scores = model(ids, training=False).numpy()[0]
    np.testing.assert_allclose(scores[2:], 10.0 * cosine[2:], rtol=1e-4, atol=1e-5)
    assert np.abs(scores[2:]).max() <= 10.0 + 1e-4


def test_repeat_bias_adds_r_of_the_click_distance_like_torch():
    """Keras repeat_bias: + r[d] per item clicked d steps before the last; loss = dense cross-entropy."""
    config = ModelConfig(name="gru", item_cardinality=N_ITEMS, hidden_size=16, max_length=6, repeat_bias=True,
                         dropout=0.0)
    model = build_keras_model(config)
    r = np.array([1.5, -0.5, 0.25, 2.0, 4.0, 8.0], dtype=np.float32)
    ids = np.array([[2, 3, 2, 4, 0, 0], [9, 0, 0, 0, 0, 0], [0] * 6])
    plain = model(ids, training=False).numpy()
    model.repeat_bias.assign(r)
    diff = model(ids, training=False).numpy() - plain
    expected = np.zeros_like(diff)
    expected[0, 2], expected[0, 3], expected[0, 4], expected[1, 9] = r[3] + r[1], r[2], r[0], r[0]
    np.testing.assert_allclose(diff, expected, atol=1e-5)
    logits = model.output_layer(model.sequence_hidden(ids[:1], training=False)[:, :-1]).numpy()[0]
    for t in range(3):  # positions 0..2 of [2, 3, 2, 4] predict 3, 2, 4
        for k in range(t + 1):
            logits[t, ids[0, k]] += r[t - k]
    dense = np.mean([np.log(np.exp(logits[t]).sum()) - logits[t, ids[0, t + 1]] for t in range(3)])
    np.testing.assert_allclose(float(model.sequence_loss(ids[:1], training=False)), dense, rtol=1e-5)


@pytest.fixture(scope="module")
def trained(tiny_data):
    profile = get_profile("ci", epochs=20, batch_size=16, hidden_size=16, eval_max_sessions=None)
    return {name: train_keras_model(name, tiny_data, profile, cache=False, progress=False, patience=20,
                                    learning_rate=2e-2, model_overrides={"dropout": 0.0, "window": 2})
            for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_tiny_model_overfits_tiny_data(trained, tiny_data, name):
    model, history = trained[name]
    sessions = pq.read_table(tiny_data / "train.parquet").column("item_id_list")
    prefixes, targets = all_prefixes(sessions, max_length=MAX_LENGTH)
    metrics = evaluate(KerasRecommender(model), prefixes, targets, ks=(1, 20), progress=False)
    assert metrics["Recall@1"] >= 0.9, metrics  # random guessing gives 0.05
    first, last = history.epochs[0], history.epochs[-1]
    assert last["train_loss"] < 0.5 * first["train_loss"]
    assert history.best_score == max(e["MRR@20"] for e in history.epochs) >= 0.9
    assert len(history.losses) == len(history.steps) == 20 * 5  # 65 sessions / 16 = 5 batches per epoch
    assert {"seconds", "sessions_per_s", "Recall@20"} <= set(first)


def test_save_load_round_trip(trained, tmp_path):
    model, history = trained["transformer"]
    folder = save_keras_model(model, tmp_path / "saved", extra={"history": history.to_dict()})
    loaded = load_keras_model(folder)
    ids = np.array([[4, 9, 2, 17, 0, 0, 0, 0], [0] * 8, [3, 999, 5, 6, 7, 8, 9, 10]])
    np.testing.assert_array_equal(loaded(ids).numpy(), model(ids).numpy())
    assert loaded.config == model.config
    assert not list(tmp_path.glob(".saved-*")), "no temporary folder left behind"
    with pytest.raises(FileNotFoundError, match="model.weights.h5 not found"):
        load_keras_model(tmp_path)


def test_same_seed_same_weights(tiny_data):
    profile = get_profile("ci", epochs=2, batch_size=16, hidden_size=8, eval_max_sessions=None)
    runs = [train_keras_model("mlp", tiny_data, profile, cache=False, progress=False)[0].get_weights() for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(*runs, strict=True))
    other = train_keras_model("mlp", tiny_data, profile, cache=False, progress=False, seed=7)[0].get_weights()
    assert not np.array_equal(runs[0][0], other[0])


def test_repeat_bias_trains_in_model_fit(tiny_data, tmp_path):
    """model.fit (graph mode) learns r, and the saved model gives the same scores after loading."""
    from sessrec_course.training.keras_export import load_keras_model, save_keras_model

    profile = get_profile("ci", epochs=2, batch_size=16, hidden_size=8, eval_max_sessions=None)
    model, _ = train_keras_model("gru", tiny_data, profile, cache=False, progress=False,
                                 model_overrides={"repeat_bias": True, "score_scale": 8.0})
    learnt = model.repeat_bias.numpy()
    assert np.abs(learnt).max() > 0  # started at 0
    ids = np.array([[4, 9, 4, 0, 0, 0]])
    loaded = load_keras_model(save_keras_model(model, tmp_path / "saved"))
    np.testing.assert_allclose(loaded(ids, training=False).numpy(), model(ids, training=False).numpy(), rtol=1e-6)
