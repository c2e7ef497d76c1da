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
from sessrec_course.training.torch_callbacks import (  # noqa: E402
    Checkpoint,
    EarlyStopping,
    LRSchedule,
    Validation,
    lr_factor,
    standard_callbacks,
)
from sessrec_course.training.torch_data import (  # noqa: E402
    make_loader,
    read_sessions,
)
from sessrec_course.training.torch_trainer import Callback, fit  # noqa: E402

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

    train = TrainConfig(epochs=5, patience=2, progress=False)
    history = fit(model, make_loader(ids, 4), train, standard_callbacks(train, validate))
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3, 4]  # stopped after two epochs without progress
    assert history.best_epoch == 2 and history.best_score == 0.9
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, snapshots[1][key])
    assert not torch.equal(snapshots[1]["gru.weight_hh_l0"], snapshots[3]["gru.weight_hh_l0"])  # it trained on
    assert History.from_dict(json.loads(json.dumps(history.to_dict()))) == history


def test_fit_is_lessons_loop_in_at_most_40_lines():
    import inspect

    from sessrec_course.training import torch_trainer

    assert len(inspect.getsource(torch_trainer.fit).splitlines()) <= 40


class Recorder(Callback):
    """Records the learning rate of every step and the plan at every epoch's start; may re-plan (a time budget)."""

    order = 30

    def __init__(self, replan=None):
        self.lrs, self.plans, self.replan = [], [], replan

    def before_epoch(self, run):
        self.plans.append((run.epochs, run.steps_per_epoch))

    def after_step(self, run):  # before the schedule's step (order 40): the rate this step was taken with
        self.lrs.append(run.optimizer.param_groups[0]["lr"])

    def after_epoch(self, run):
        if self.replan is not None:
            self.replan(run)


def _tiny(epochs: int, n_sessions: int = 8):
    ids = pad_right([np.array([2, 3, 4, 5])] * n_sessions, 4)
    model = build_model(ModelConfig(name="gru", item_cardinality=8, hidden_size=8, max_length=4))
    config = TrainConfig(epochs=epochs, patience=10, progress=False, warmup_fraction=0.0, min_lr_fraction=0.0)
    return model, make_loader(ids, 4), config


def test_epochs_re_planned_while_training_are_followed_by_the_loop_and_the_schedule():
    model, loader, config = _tiny(epochs=2)

    def more_epochs(run):  # what a time budget does: more epochs fit than first planned
        run.epochs = 4

    recorder = Recorder(more_epochs)
    history = fit(model, loader, config, [LRSchedule(0.0, 0.0), recorder])
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3, 4]
    # the cosine runs over the 8 steps of 4 epochs, not the 4 of the first plan (where step 4 is at its end)
    assert recorder.lrs[4] == pytest.approx(config.learning_rate * lr_factor(4, 8, 1, 0.0), rel=1e-6)
    assert lr_factor(4, 4, 1, 0.0) == pytest.approx(0.0) and recorder.lrs[4] > 0.5 * config.learning_rate
    assert config.epochs == 2  # the plan lives in the run, the config is never changed


def test_fit_decays_over_re_planned_epoch_lengths():
    model, loader, config = _tiny(epochs=3, n_sessions=32)  # 8 batches an epoch

    def shorter_epochs(run):  # what a time budget does after epoch 1: the epochs left are shortened to 4 batches
        run.steps_per_epoch = 4

    recorder = Recorder(shorter_epochs)
    history = fit(model, loader, config, [LRSchedule(0.0, 0.0), recorder])
    assert history.steps[-1] == 16 and len(recorder.lrs) == 16  # 8 + 4 + 4
    assert recorder.plans == [(3, 8), (3, 4), (3, 4)]
    # from step 8 on the cosine runs to the end of step 16, not of the first plan's 24
    assert recorder.lrs[12] == pytest.approx(config.learning_rate * lr_factor(12, 16, 1, 0.0), rel=1e-6)
    assert recorder.lrs[12] < config.learning_rate * lr_factor(12, 24, 1, 0.0)
    assert config.max_steps_per_epoch is None


def test_schedule_warms_up_then_decays_by_the_formula():
    model, loader, config = _tiny(epochs=5, n_sessions=40)  # 10 batches an epoch, 50 steps
    recorder = Recorder()
    fit(model, loader, config, [LRSchedule(warmup_fraction=0.1, min_fraction=0.2), recorder])
    expected = [config.learning_rate * lr_factor(step, 50, 5, 0.2) for step in range(50)]
    assert recorder.lrs == pytest.approx(expected, rel=1e-6)
    assert recorder.lrs[0] == pytest.approx(config.learning_rate / 5)  # warm-up: a fifth of the peak at step 0
    assert max(recorder.lrs) == pytest.approx(config.learning_rate) and recorder.lrs[-1] < 0.25 * config.learning_rate


def test_checkpoint_is_called_once_per_improvement_with_the_best_weights():
    model, loader, config = _tiny(epochs=6)
    scores = iter([0.2, 0.5, 0.5, 0.4, 0.7, 0.1])
    saved = []

    def save(m, history):
        saved.append((history.best_epoch, len(history.epochs), m.gru.weight_hh_l0.detach().clone()))

    history = fit(model, loader, config, [Validation(lambda m: {"MRR@20": next(scores)}),
                                          EarlyStopping("MRR@20", patience=10), Checkpoint(save)])
    assert [(best, seen) for best, seen, _ in saved] == [(1, 1), (2, 2), (5, 5)]  # a tie is no improvement
    assert history.best_epoch == 5 and len(history.epochs) == 6
    torch.testing.assert_close(model.gru.weight_hh_l0, saved[-1][2])  # the best weights are restored at the end


def test_a_time_budget_plans_from_a_probe_and_re_plans_without_touching_the_config(monkeypatch):
    from sessrec_bench import budget as budgets

    model, loader, config = _tiny(epochs=6, n_sessions=40)  # 10 batches an epoch
    monkeypatch.setattr(budgets, "seconds_per_step", lambda run: 0.25)  # a probe at a loaded moment: 2 s an epoch
    budget = budgets.TimeBudget(4.0 / budgets.TimeBudget.TRAIN_SHARE, "tiny")  # 4 s of training: 16 steps
    recorder = Recorder()
    history = fit(model, loader, config, [*standard_callbacks(config, lambda m: {"MRR@20": 0.1}), budget, recorder])
    assert recorder.plans[0] == (2, 8)  # 16 affordable steps: 2 epochs of 8 batches
    # the epochs really take milliseconds: the re-plan after epoch 1 affords every epoch configured, whole
    assert len(history.epochs) == 6 and recorder.plans[1:] == [(6, 10)] * 5 and history.steps[-1] == 8 + 5 * 10
    assert budget.plan == (6, None) and not budget.loader.cut
    assert (config.epochs, config.max_steps_per_epoch) == (6, None)
    with pytest.raises(AttributeError):  # and cannot be: a TrainConfig is frozen
        config.epochs = 3


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
