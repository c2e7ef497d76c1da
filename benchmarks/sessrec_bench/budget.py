"""The time budget of the quality benchmark, as a callback of the course's ``fit``: plan the epochs that fit, re-plan
after each one from its measured length, stop an epoch at the deadline.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time

import numpy as np
import torch

from sessrec_course.training.torch_trainer import Callback, Run, make_optimizer, train_step

logger = logging.getLogger(__name__)


class DeadlineLoader:
    """Wrap a loader so that iteration stops once ``deadline`` (``time.perf_counter()``) has passed."""

    def __init__(self, loader, deadline: float) -> None:
        self.loader, self.deadline = loader, deadline
        self.cut = False

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            if time.perf_counter() > self.deadline:
                self.cut = True
                return
            yield batch


def seconds_per_step(run: Run, steps: int = 24, warmup: int = 4) -> float:
    """Median time of ``steps`` of the trainer's steps (the run's precision) on a throw-away copy of its model and
    optimizer, after ``warmup`` uncounted ones: a fresh model's first steps run several times slower (allocator,
    thread pool, lazy kernels). The run's random streams are left as they were."""
    probe = copy.deepcopy(run.model).train()
    probe_run = dataclasses.replace(run, model=probe, optimizer=make_optimizer(probe, run.config), loss_fn=probe.loss)
    times = []
    with torch.random.fork_rng(devices=[]):
        for index, batch in enumerate(run.loader):
            if index >= warmup + steps:
                break
            start = time.perf_counter()
            train_step(probe_run, batch.to(run.device))
            times.append(time.perf_counter() - start)
    counted = times[warmup:] if len(times) > warmup else times[-1:]
    return float(np.median(counted))


def plan_epochs(epochs: int, steps_per_epoch: int, sec_per_step: float, budget_s: float | None) -> tuple[int, int | None]:
    """Return ``(epochs, max_steps_per_epoch)`` that fit ``budget_s`` seconds of training (None: no cap).

    All the affordable steps are used: 1.9 epochs' worth become 2 epochs of 95 % of the batches each (a new
    random share every epoch), not 1 epoch and half the budget idle.
    """
    if budget_s is None or epochs * steps_per_epoch * sec_per_step <= budget_s:
        return epochs, None
    affordable = max(1, int(budget_s / max(sec_per_step, 1e-9)))
    planned = min(epochs, math.ceil(affordable / steps_per_epoch))
    per_epoch = affordable // planned
    return planned, (None if per_epoch >= steps_per_epoch else max(1, per_epoch))


class TimeBudget(Callback):
    """Plan the run's epochs (and their length) to fit ``seconds`` from a step probe; after each epoch re-plan from its
    measured length, training and validation, so that a probe taken in a moment of load does not decide the run; stop
    an epoch at the deadline. ``seconds`` None: no plan, no deadline. Changes the run's plan, never its config."""

    order = 30  # after validation (the re-plan counts it), before the schedule and the bar read the plan
    TRAIN_SHARE = 0.8  # of the budget planned for training: the rest for validation and the final evaluation

    def __init__(self, seconds: float | None, label: str = "") -> None:
        self.seconds, self.label = seconds, label
        self.started, self.steps_per_epoch, self.cap, self.marks, self.loader = 0.0, 0, 0, [], None
        self.plan: tuple[int, int | None] = (0, None)

    def before_fit(self, run: Run) -> None:
        self.started, self.steps_per_epoch, self.cap = time.perf_counter(), len(run.loader), run.epochs
        if self.seconds is not None:
            step_s = seconds_per_step(run)
            run.epochs, max_steps = plan_epochs(run.epochs, len(run.loader), step_s, self.TRAIN_SHARE * self.seconds)
            run.steps_per_epoch = max_steps or self.steps_per_epoch
            logger.info("%s: %.3f s/step, %d steps/epoch -> %d epoch(s), cap %s", self.label, step_s,
                        self.steps_per_epoch, run.epochs, max_steps)
        self.marks = [time.perf_counter()]
        run.loader = self.loader = DeadlineLoader(run.loader, self.started + (self.seconds or math.inf))

    def after_epoch(self, run: Run) -> None:
        self.replan(run, max(0.0, time.perf_counter() - self.marks[-1] - run.record["seconds"]))

    def after_fit(self, run: Run) -> None:
        full = run.steps_per_epoch >= self.steps_per_epoch
        self.plan = (run.epochs, None if full else run.steps_per_epoch)  # the last plan: epochs, cap of their steps

    def replan(self, run, validation_s: float = 0.0) -> None:
        """After epoch k: re-plan the epochs left and their length from epoch k's measured steps and validation.

        Another epoch starts while the time left holds at least half of epoch k (rounded, not floored: the first
        plan counted no validation; the deadline still stops an epoch that would overrun); then all the steps the
        time left affords are planned, as :func:`plan_epochs` does, at most the configured epochs.
        """
        if self.seconds is None:
            return
        now = time.perf_counter()
        last, k = now - self.marks[-1], len(self.marks)
        self.marks.append(now)
        left = self.TRAIN_SHARE * self.seconds - (now - self.started)
        epochs, steps = k, run.steps_per_epoch
        if k < self.cap and left >= 0.5 * last:
            step_s = max(last - validation_s, 1e-9) / steps
            more, max_steps = plan_epochs(self.cap - k, self.steps_per_epoch, step_s, max(0.0, left - validation_s))
            if more > 1:  # each further epoch is validated too
                more, max_steps = plan_epochs(self.cap - k, self.steps_per_epoch, step_s,
                                              max(0.0, left - more * validation_s))
            epochs, steps = k + more, max_steps or self.steps_per_epoch
        if (epochs, steps) != (run.epochs, run.steps_per_epoch):
            logger.info("%s: epoch %d took %.1f s -> %d epoch(s) in all, %d steps each", self.label, k, last, epochs,
                        steps)
            run.epochs, run.steps_per_epoch = epochs, steps
