"""PyTorch training: parquet → tensors, the trainer (overfit, determinism, early stopping), checkpoints."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

torch = pytest.importorskip("torch")

from torch_helpers import ITEM_CARDINALITY, write_split, write_tiny_dataset  # noqa: E402

from sessrec_course.arrays import pad_right  # noqa: E402
from sessrec_course.etl import item_category_lookup  # noqa: E402
from sessrec_course.models import ModelConfig, build_model  # noqa: E402
from sessrec_course.models.torch_export import load_model, save_model  # noqa: E402
from sessrec_course.profiles import get_profile  # noqa: E402
from sessrec_course.training import TorchRecommender, train_model  # noqa: E402
from sessrec_course.training.common import History, TrainConfig, read_schema  # noqa: E402
from sessrec_course.training.torch_data import (  # noqa: E402
    make_loader,
    read_sessions,
)
from sessrec_course.training.torch_trainer import fit, lr_factor  # noqa: E402

PROFILE = get_profile("ci", hidden_size=32, batch_size=32, epochs=10, eval_max_sessions=None)


def test_pad_lists_keeps_the_last_items():
    lists = pa.array([[2, 3, 4, 5], [6], [], [7, 8]], type=pa.list_(pa.int32()))
    expected = np.array([[3, 4, 5], [6, 0, 0], [0, 0, 0], [7, 8, 0]])
    np.testing.assert_array_equal(pad_right(lists, 3), expected)
    np.testing.assert_array_equal(pad_right(lists.slice(1), 3), expected[1:])  # sliced arrays keep offsets right


def test_read_sessions_and_category_lookup(tmp_path):
    write_split(tmp_path / "s.parquet", [[2, 3, 4], [3, 5]])  # categories are 1 + id % 3
    np.testing.assert_array_equal(read_sessions(tmp_path / "s.parquet", 4), [[2, 3, 4, 0], [3, 5, 0, 0]])
    lookup = item_category_lookup(tmp_path / "s.parquet", 6)
    np.testing.assert_array_equal(lookup, [0, 0, 3, 1, 2, 3])
    with pytest.raises(ValueError, match="no column 'nope'"):
        read_sessions(tmp_path / "s.parquet", 4, column="nope")
    (tmp_path / "schema.json").write_text(json.dumps({"max_length": 3}))
    with pytest.raises(ValueError, match="item_cardinality"):
        read_schema(tmp_path / "schema.json")


def test_loader_trims_batches_and_drops_single_clicks():
    ids = np.array([[2, 3, 0, 0], [4, 0, 0, 0], [5, 6, 7, 0]])
    batches = list(make_loader(ids, batch_size=2, shuffle=False))
    assert [b.tolist() for b in batches] == [[[2, 3, 0], [5, 6, 7]]]


def test_learning_rate_warms_up_then_decays():
    assert lr_factor(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, 0.1) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(100, 100, 10, 0.1) == pytest.approx(0.1)


@pytest.mark.parametrize("name", ["mlp", "gru", "transformer"])
def test_tiny_model_overfits_tiny_data(tmp_path, name):
    folder = write_tiny_dataset(tmp_path / "data")
    model, history = train_model(name, folder, PROFILE, cache=False, progress=False, learning_rate=1e-2)
    assert history.best_score > 0.95  # next item is always id + 1: learnable exactly
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]
    scores = TorchRecommender(model).score(np.array([[5, 6, 0, 0]]))
    assert int(scores.argmax()) == 7


def test_fixed_seed_gives_identical_metrics_on_rerun(tmp_path):
    folder = write_tiny_dataset(tmp_path / "data", n_train=120)
    profile = get_profile("ci", hidden_size=16, batch_size=32, epochs=2, eval_max_sessions=None)
    runs = [train_model("transformer", folder, profile, cache=False, progress=False)[1] for _ in range(2)]
    assert runs[0].losses == runs[1].losses
    assert runs[0].epochs[-1]["MRR@20"] == runs[1].epochs[-1]["MRR@20"]
    other = train_model("transformer", folder, profile, cache=False, progress=False, seed=7)[1]
    assert other.losses != runs[0].losses


def test_early_stopping_restores_the_best_epoch():
    ids = np.array([[2, 3, 4, 5]] * 8)
    config = ModelConfig(name="gru", item_cardinality=8, hidden_size=8, max_length=4)
    model = build_model(config)
    scores = iter([0.5, 0.9, 0.4, 0.3, 0.95])
    snapshots = []

    def validate(m):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return {"MRR@20": next(scores)}

    history = fit(model, make_loader(ids, 4), validate, TrainConfig(epochs=5, patience=2, progress=False))
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3, 4]  # stopped after two epochs without progress
    assert history.best_epoch == 2 and history.best_score == 0.9
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, snapshots[1][key])
    assert History.from_dict(json.loads(json.dumps(history.to_dict()))) == history


def test_epochs_re_planned_while_training_are_followed_by_the_loop_and_the_schedule():
    ids = np.array([[2, 3, 4, 5]] * 8)
    model = build_model(ModelConfig(name="gru", item_cardinality=8, hidden_size=8, max_length=4))
    config = TrainConfig(epochs=2, patience=10, progress=False, warmup_fraction=0.0, min_lr_fraction=0.0)
    loader, lrs = make_loader(ids, 4), []

    class Replanning:  # what a time budget does: more epochs fit than first planned
        def __len__(self):
            return len(loader)

        def __iter__(self):
            config.epochs = 4
            yield from loader

    def validate(m):
        return {"MRR@20": 0.1}

    import sessrec_course.training.torch_trainer as trainer

    original = trainer._train_step

    def spy(model, batch, run, config):
        lrs.append(run.optimizer.param_groups[0]["lr"])
        return original(model, batch, run, config)

    trainer._train_step = spy
    try:
        history = fit(model, Replanning(), validate, config)
    finally:
        trainer._train_step = original
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3, 4]
    # the cosine runs over the 8 steps of 4 epochs, not the 4 of the first plan (where step 4 is at its end)
    assert lrs[4] == pytest.approx(config.learning_rate * lr_factor(4, 8, 1, 0.0), rel=1e-6)
    assert lr_factor(4, 4, 1, 0.0) == pytest.approx(0.0) and lrs[4] > 0.5 * config.learning_rate


def test_a_time_budget_re_plans_from_the_measured_epoch(monkeypatch):
    from types import SimpleNamespace

    from sessrec_bench import quality

    clock = iter([10.0, 30.0, 80.0])
    monkeypatch.setattr(quality.time, "perf_counter", lambda: next(clock))
    budget = quality.TimeBudget(100.0, "t")  # 80 s for training and validation
    budget.started, budget.marks, budget.cap, budget.steps_per_epoch = 0.0, [0.0], 30, 100
    budget.train = SimpleNamespace(epochs=1, max_steps_per_epoch=None)  # a probe in a busy moment planned 1
    budget.replan()  # epoch 1 ended at 10 s: 70 s left at 10 s an epoch
    assert (budget.train.epochs, budget.train.max_steps_per_epoch) == (8, None)
    budget.replan()  # epoch 2 took 20 s, 50 s left: 2.5 epochs' steps, so 3 more of 83 batches
    assert (budget.train.epochs, budget.train.max_steps_per_epoch) == (5, 83)
    budget.replan()  # epoch 3 took 50 s and used the budget up: stop after it
    assert budget.train.epochs == 3
    budget.marks, clock = [0.0], iter([45.0])
    budget.train.max_steps_per_epoch = None
    budget.replan(validation_s=5.0)  # 35 s left, an epoch of 40 s training + 5 s validation: 30 s of steps
    assert (budget.train.epochs, budget.train.max_steps_per_epoch) == (2, 75)
    budget.marks, clock = [0.0], iter([60.0])
    budget.replan()  # 20 s left is less than half an epoch of 60 s: no more
    assert budget.train.epochs == 1
    budget.cap, budget.marks, clock = 3, [0.0], iter([1.0])
    budget.train.epochs, budget.train.max_steps_per_epoch = 1, None
    budget.replan()
    assert budget.train.epochs == 3  # never past the configured epochs


def test_fit_decays_over_re_planned_epoch_lengths(monkeypatch):
    import sessrec_course.training.torch_trainer as trainer

    ids = pad_right([np.array([2, 3, 4, 5])] * 32, 4)
    model = build_model(ModelConfig(name="gru", item_cardinality=8, hidden_size=8, max_length=4))
    config = TrainConfig(epochs=3, patience=10, progress=False, warmup_fraction=0.0, min_lr_fraction=0.0)
    loader, lrs = make_loader(ids, 4), []  # 8 batches an epoch

    def validate(m):  # what a time budget does after epoch 1: the epochs left are shortened to 4 batches
        config.max_steps_per_epoch = 4
        return {"MRR@20": 0.1}

    original = trainer._train_step

    def spy(model, batch, run, config):
        lrs.append(run.optimizer.param_groups[0]["lr"])
        return original(model, batch, run, config)

    monkeypatch.setattr(trainer, "_train_step", spy)
    history = fit(model, loader, validate, config)
    assert history.steps[-1] == 16 and len(lrs) == 16  # 8 + 4 + 4
    # from step 8 on the cosine runs to the end of step 16, not of the first plan's 24
    assert lrs[12] == pytest.approx(config.learning_rate * lr_factor(12, 16, 1, 0.0), rel=1e-6)
    assert lrs[12] < config.learning_rate * lr_factor(12, 24, 1, 0.0)


def test_checkpoint_round_trip_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSREC_BUILD_DIR", str(tmp_path / "build"))
    folder = write_tiny_dataset(tmp_path / "data", n_train=60)
    profile = get_profile("ci", hidden_size=16, batch_size=32, epochs=1)
    model, history = train_model("bert", folder, profile, progress=False)
    saved = list((tmp_path / "build" / "models" / "ci").glob("bert-*"))
    assert len(saved) == 1 and (saved[0] / "model.pt").exists()
    again, history_again = train_model("bert", folder, profile, progress=False)  # loaded, not retrained
    assert history_again == history
    ids = torch.tensor([[2, 3, 4, 0], [9, 0, 0, 0]])
    with torch.no_grad():
        torch.testing.assert_close(again(ids), model(ids), rtol=0, atol=0)
        save_model(model, tmp_path / "copy")
        torch.testing.assert_close(load_model(tmp_path / "copy")(ids), model(ids), rtol=0, atol=0)
    assert not list(tmp_path.glob(".copy-*"))  # nothing half-written left behind
    with pytest.raises(FileNotFoundError, match="model.pt"):
        load_model(tmp_path / "data")
    assert ITEM_CARDINALITY == model.n_items
