"""The PyTorch training loop: lesson 03's loop in :func:`fit`, everything around it in callbacks (fastai's miniai).

A :class:`Callback` reads and may change the :class:`Run`, whose plan the loop follows; the course's callbacks are in
:mod:`.torch_callbacks`, data parallelism in :mod:`.torch_ddp`.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from sessrec_course.device import configure_threads, select_device
from sessrec_course.training.common import History, TrainConfig

Validator = Callable[[torch.nn.Module], dict[str, float]]


class Callback:
    """Hooks into :func:`fit`: any of ``before_fit``, ``before_epoch``, ``after_step``, ``after_epoch``, ``after_fit``
    it defines is called with the :class:`Run`, at every event in ``order`` (lower first)."""

    order = 0


@dataclass
class Run:
    """The state of one :func:`fit`: what callbacks read and may change."""

    model: torch.nn.Module
    loader: Iterable
    config: TrainConfig
    optimizer: torch.optim.Optimizer
    device: torch.device
    epochs: int  # the plan: this many epochs ...
    steps_per_epoch: int  # ... of at most this many batches
    callbacks: list[Callback] = field(default_factory=list)
    history: History = field(default_factory=History)
    loss_fn: Callable | None = None  # model.loss, or a wrapper of it (DDP)
    autocast: Callable = contextlib.nullcontext  # the precision of forward passes
    rank: int = 0  # among data-parallel processes
    epoch: int = 0
    step: int = 0
    loss: float = math.nan  # of the last step
    record: dict = field(default_factory=dict)  # this epoch's figures
    stop: bool = False

    def emit(self, event: str) -> None:
        for callback in self.callbacks:
            if hasattr(callback, event):
                getattr(callback, event)(self)

    def planned_steps(self) -> int:
        """Steps done plus those the plan has left (during an epoch): what the schedule and the bar run over."""
        return self.step + self.steps_per_epoch * (self.epochs - self.epoch + 1)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds legacy global RNG users too
    torch.manual_seed(seed)


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on the weight matrices only (not on embeddings, biases, norms)."""
    decays = {n: p.ndim >= 2 and "embedding" not in n for n, p in model.named_parameters()}
    groups = [{"params": [p for n, p in model.named_parameters() if decays[n] == on],
               "weight_decay": config.weight_decay if on else 0.0} for on in (True, False)]
    return torch.optim.AdamW(groups, lr=config.learning_rate)


def start_run(model: torch.nn.Module, loader: Iterable, config: TrainConfig, callbacks: Iterable[Callback] = ()) -> Run:
    """Threads, seed, device, optimizer and the plan of ``config``: the run before its first callback."""
    configure_threads()
    seed_everything(config.seed)
    device = select_device(config.device)
    model.to(device)
    steps = len(loader) if config.max_steps_per_epoch is None else min(len(loader), config.max_steps_per_epoch)
    return Run(model, loader, config, make_optimizer(model, config), device, config.epochs, steps,
               sorted(callbacks, key=lambda c: c.order), History(monitor=config.monitor), model.loss)


def train_step(run: Run, batch) -> float:
    """One optimisation step on ``batch`` (in the run's precision, gradients clipped); its loss."""
    with run.autocast():
        loss = run.loss_fn(batch)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if run.config.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.config.grad_clip)
    run.optimizer.step()
    return float(loss.detach())


def fit(model: torch.nn.Module, loader: Iterable, config: TrainConfig, callbacks: Iterable[Callback] = ()) -> History:
    """Train ``model`` (with a ``loss(batch)`` method) on ``loader``; return the history of losses and epochs."""
    run = start_run(model, loader, config, callbacks)
    run.emit("before_fit")
    while run.epoch < run.epochs and not run.stop:
        run.epoch += 1
        model.train()
        run.emit("before_epoch")
        start, sessions, first = time.perf_counter(), 0, len(run.history.losses)
        for batch in itertools.islice(run.loader, run.steps_per_epoch):
            batch = batch.to(run.device, non_blocking=True)
            run.loss = train_step(run, batch)
            run.step += 1
            run.history.steps.append(run.step)
            run.history.losses.append(run.loss)
            sessions += len(batch)
            run.emit("after_step")
        seconds, losses = time.perf_counter() - start, run.history.losses[first:]
        run.record = {"epoch": run.epoch, "train_loss": float(np.mean(losses)) if losses else math.nan,
                      "seconds": seconds, "sessions_per_s": sessions / seconds if seconds else math.nan}
        run.history.epochs.append(run.record)
        run.emit("after_epoch")
    run.emit("after_fit")
    model.eval()
    return run.history
