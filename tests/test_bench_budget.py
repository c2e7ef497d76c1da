"""The benchmark's time budget (a callback of the course's ``fit``): the plan from a step probe, the re-plan after
each epoch, the probe itself (the trainer's own step)."""

from __future__ import annotations

from types import SimpleNamespace

from sessrec_bench import budget as budgets
from sessrec_bench.budget import plan_epochs, seconds_per_step


def test_a_time_budget_re_plans_from_the_measured_epoch(monkeypatch):
    clock = iter([10.0, 30.0, 80.0])
    monkeypatch.setattr(budgets.time, "perf_counter", lambda: next(clock))
    budget = budgets.TimeBudget(100.0, "t")  # 80 s for training and validation
    budget.started, budget.marks, budget.cap, budget.steps_per_epoch = 0.0, [0.0], 30, 100
    run = SimpleNamespace(epochs=1, steps_per_epoch=100)  # a probe in a busy moment planned 1
    budget.replan(run)  # epoch 1 ended at 10 s: 70 s left at 10 s an epoch
    assert (run.epochs, run.steps_per_epoch) == (8, 100)
    budget.replan(run)  # epoch 2 took 20 s, 50 s left: 2.5 epochs' steps, so 3 more of 83 batches
    assert (run.epochs, run.steps_per_epoch) == (5, 83)
    budget.replan(run)  # epoch 3 took 50 s and used the budget up: stop after it
    assert run.epochs == 3
    budget.marks, clock = [0.0], iter([45.0])
    run.steps_per_epoch = 100
    budget.replan(run, validation_s=5.0)  # 35 s left, an epoch of 40 s training + 5 s validation: 30 s of steps
    assert (run.epochs, run.steps_per_epoch) == (2, 75)
    budget.marks, clock = [0.0], iter([60.0])
    budget.replan(run)  # 20 s left is less than half an epoch of 60 s: no more
    assert run.epochs == 1
    budget.cap, budget.marks, clock = 3, [0.0], iter([1.0])
    run.epochs, run.steps_per_epoch = 1, 100
    budget.replan(run)
    assert run.epochs == 3  # never past the configured epochs


def test_the_step_probe_leaves_the_slow_first_steps_out_and_the_random_stream_alone():
    import time

    import torch

    from sessrec_course.training.common import TrainConfig
    from sessrec_course.training.torch_trainer import start_run

    class SlowStart(torch.nn.Module):  # a fresh model's first steps are slow; the probe must not plan with them
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(1))
            self.calls = 0

        def loss(self, batch):
            self.calls += 1
            if self.calls <= 4:
                time.sleep(0.25)
            return (self.weight * batch.float()).sum() + torch.rand(1).sum()  # a draw, as dropout makes

    batches = [torch.ones(2)] * 40
    run = start_run(SlowStart(), batches, TrainConfig(progress=False))
    state = torch.get_rng_state()
    assert seconds_per_step(run, steps=8, warmup=4) < 0.1
    assert torch.equal(torch.get_rng_state(), state)  # training draws as it would have without the probe
    assert run.model.calls == 0 and run.model.weight.item() == 1.0  # a copy was trained, not the model
    assert seconds_per_step(start_run(SlowStart(), batches, TrainConfig()), steps=3, warmup=0) >= 0.25  # counted


def test_plan_epochs_fits_the_budget():
    assert plan_epochs(4, 100, 0.1, None) == (4, None)
    assert plan_epochs(4, 100, 0.1, 50.0) == (4, None)  # 40 s needed
    assert plan_epochs(4, 100, 0.1, 25.0) == (3, 83)  # 2.5 epochs affordable: 3 of 83 batches, none left idle
    assert plan_epochs(4, 100, 0.1, 20.0) == (2, None)  # exactly 2
    assert plan_epochs(4, 100, 0.1, 19.0) == (2, 95)  # 1.9: two epochs of 95 %, not one
    assert plan_epochs(4, 100, 0.1, 5.0) == (1, 50)  # half an epoch


def test_the_deadline_stops_an_epoch_and_says_so():
    loader = budgets.DeadlineLoader(range(5), deadline=0.0)  # already past
    assert list(loader) == [] and loader.cut and len(loader) == 5
    assert list(budgets.DeadlineLoader(range(3), deadline=float("inf"))) == [0, 1, 2]
