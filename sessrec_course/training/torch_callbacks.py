"""The course's callbacks for :func:`~.torch_trainer.fit`: precision, learning-rate schedule, progress bar, validation,
early stopping with the best weights, checkpoints; :func:`standard_callbacks` gives those a :class:`TrainConfig` asks."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from sessrec_course.device import cpu_flags, use_bf16
from sessrec_course.training.common import History, TrainConfig
from sessrec_course.training.torch_trainer import Callback, Run, Validator


class Precision(Callback):
    """bf16 autocast if ``bf16`` is True, or None/"auto" on hardware where it is native (:func:`use_bf16`)."""

    def __init__(self, bf16: bool | str | None = None) -> None:
        self.bf16 = bf16

    def before_fit(self, run: Run) -> None:
        if use_bf16(self.bf16, run.device.type, torch.backends.cpu.get_cpu_capability(), cpu_flags()):
            run.autocast = functools.partial(torch.autocast, device_type=run.device.type, dtype=torch.bfloat16)


def lr_factor(step: int, total: int, warmup: int, min_fraction: float) -> float:
    """Learning-rate multiplier: linear warm-up to 1 over ``warmup`` steps, then cosine to ``min_fraction``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_fraction + (1 - min_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


class LRSchedule(Callback):
    """Warm-up over ``warmup_fraction`` of the steps, then cosine decay over the steps planned (re-read each epoch)."""

    order = 40

    def __init__(self, warmup_fraction: float = 0.05, min_fraction: float = 0.05) -> None:
        self.warmup_fraction, self.min_fraction = warmup_fraction, min_fraction

    def before_fit(self, run: Run) -> None:
        self.total = run.steps_per_epoch * run.epochs
        warmup = max(1, int(self.warmup_fraction * self.total))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            run.optimizer, lambda step: lr_factor(step, self.total, warmup, self.min_fraction))

    def before_epoch(self, run: Run) -> None:
        self.total = run.planned_steps()

    def after_step(self, run: Run) -> None:
        self.scheduler.step()


class Progress(Callback):
    """A tqdm bar over the planned steps with the loss and the best validation score (on rank 0)."""

    order = 70

    def __init__(self, show: bool = True) -> None:
        self.show = show

    def before_fit(self, run: Run) -> None:
        self.bar = tqdm(total=run.steps_per_epoch * run.epochs, desc=f"training {type(run.model).__name__}",
                        unit="batch", disable=not self.show or run.rank != 0)

    def before_epoch(self, run: Run) -> None:
        self.bar.total = run.planned_steps()

    def after_step(self, run: Run) -> None:
        self.bar.update(1)
        if run.step % 10 == 0:
            self.bar.set_postfix(epoch=run.epoch, loss=f"{run.loss:.3f}", **run.history.best_postfix())

    def after_epoch(self, run: Run) -> None:
        self.bar.set_postfix(epoch=run.epoch, loss=f"{run.record['train_loss']:.3f}", **run.history.best_postfix())

    def after_fit(self, run: Run) -> None:
        self.bar.close()


class Validation(Callback):
    """After each epoch, ``validate(model)`` in eval mode without gradients; its metrics join the epoch's record."""

    order = 10

    def __init__(self, validate: Validator) -> None:
        self.validate = validate

    def after_epoch(self, run: Run) -> None:
        run.model.eval()
        with torch.no_grad(), run.autocast():
            run.record.update({k: float(v) for k, v in self.validate(run.model).items()})


class EarlyStopping(Callback):
    """Keep the best epoch's weights by ``monitor`` (else the last), stop after ``patience`` epochs without progress."""

    order = 50

    def __init__(self, monitor: str = "MRR@20", patience: int = 2) -> None:
        self.monitor, self.patience = monitor, patience

    def before_fit(self, run: Run) -> None:
        self.best, self.stale = None, 0

    def after_epoch(self, run: Run) -> None:
        score, history = run.record.get(self.monitor), run.history
        if score is None or history.best_score is None or score > history.best_score:
            history.best_epoch, history.best_score, self.stale = run.epoch, score, 0
            self.best = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
        else:
            self.stale += 1
        run.stop = run.stop or self.stale >= self.patience

    def after_fit(self, run: Run) -> None:
        if self.best is not None:
            run.model.load_state_dict(self.best)


class Checkpoint(Callback):
    """``save(model, history)`` after every epoch that improved the monitored score (on rank 0)."""

    order = 60

    def __init__(self, save: Callable[[torch.nn.Module, History], None]) -> None:
        self.save = save

    def after_epoch(self, run: Run) -> None:
        if run.history.best_epoch == run.epoch and run.rank == 0:
            self.save(run.model, run.history)


def standard_callbacks(config: TrainConfig, validate: Validator | None = None,
                       save: Callable[[torch.nn.Module, History], None] | None = None) -> list[Callback]:
    """The callbacks ``config`` describes: precision, schedule, bar, early stopping (+ validation, checkpoints)."""
    callbacks = [Precision(config.bf16), LRSchedule(config.warmup_fraction, config.min_lr_fraction),
                 Progress(config.progress), EarlyStopping(config.monitor, config.patience)]
    return callbacks + ([] if validate is None else [Validation(validate)]) + ([] if save is None else [Checkpoint(save)])
