"""The one training loop for every PyTorch session model.

AdamW, linear warm-up then cosine decay, early stopping on a validation metric (MRR@20 by default),
the best weights kept (and optionally saved) as a state dict, a tqdm bar with the live loss and
metric, and a :class:`History` the notebooks plot. CUDA (with bf16 autocast) is used when present;
on CPU the threads are set to the cores this process may use and a fixed seed gives identical results.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from sessrec_course.training.common import History, TrainConfig, cpu_flags, use_bf16

logger = logging.getLogger(__name__)

Validator = Callable[[torch.nn.Module], dict[str, float]]


def select_device(device: str | None = None) -> torch.device:
    """Return ``device`` or, when None, CUDA if available, else CPU."""
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


_THREADS: list[int] = []  # decided once per process, so that reruns use the same kernels


def configure_threads() -> int:
    """Set torch's CPU threads once per process and return the number.

    ``$SESSREC_TORCH_THREADS`` wins; otherwise all cores this process may use, except on a busy
    machine (1-minute load ≥ cores): there 1 thread, as OpenMP threads spin-waiting for descheduled
    siblings slow small kernels down (docs/history/training.md).
    """
    if not _THREADS:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            cores = os.cpu_count() or 1
        wanted = os.environ.get("SESSREC_TORCH_THREADS")
        if wanted:
            threads = max(1, int(wanted))
        elif cores > 1 and os.getloadavg()[0] >= cores:
            threads = 1
            logger.info("machine busy (load %.1f on %d cores): training on 1 CPU thread", os.getloadavg()[0], cores)
        else:
            threads = cores
        _THREADS.append(threads)
    if torch.get_num_threads() != _THREADS[0]:
        torch.set_num_threads(_THREADS[0])
    return _THREADS[0]


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds legacy global RNG users too
    torch.manual_seed(seed)


def lr_factor(step: int, total: int, warmup: int, min_fraction: float) -> float:
    """Learning-rate multiplier: linear warm-up to 1 over ``warmup`` steps, then cosine to ``min_fraction``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_fraction + (1 - min_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


def autocast_for(device: torch.device, bf16: bool | str | None):
    """bf16 autocast when ``bf16`` (None/"auto": where native, :func:`use_bf16`), else a no-op context."""
    enabled = use_bf16(bf16, device.type, torch.backends.cpu.get_cpu_capability(), cpu_flags())
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


@dataclass
class _Run:
    """The state of one :func:`fit` call."""

    device: torch.device
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    steps_per_epoch: int
    bar: tqdm
    step: int = 0
    stale: int = 0  # epochs since the best one
    best_state: dict | None = field(default=None, repr=False)


def _set_up(model: torch.nn.Module, loader, config: TrainConfig) -> _Run:
    """Threads, seed, device; AdamW (no decay on embeddings, biases, norms) with warm-up + cosine; the bar."""
    configure_threads()
    seed_everything(config.seed)
    device = select_device(config.device)
    model.to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )
    steps_per_epoch = len(loader) if config.max_steps_per_epoch is None else min(len(loader), config.max_steps_per_epoch)
    total = steps_per_epoch * config.epochs
    warmup = max(1, int(config.warmup_fraction * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, warmup, config.min_lr_fraction)
    )
    bar = tqdm(total=total, desc=f"training {type(model).__name__}", unit="batch", disable=not config.progress)
    return _Run(device, optimizer, scheduler, steps_per_epoch, bar)


def _train_step(model: torch.nn.Module, batch: torch.Tensor, run: _Run, config: TrainConfig) -> float:
    """One optimisation step on ``batch``; return its loss."""
    with autocast_for(run.device, config.bf16):
        loss = model.loss(batch)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    run.step += 1
    return float(loss.detach())


def _train_epoch(model: torch.nn.Module, loader, run: _Run, config: TrainConfig, history: History,
                 epoch: int) -> dict:
    """Train one epoch (at most ``run.steps_per_epoch`` batches); return its record (loss, time, throughput)."""
    model.train()
    start, seen, loss_sum, batch_index = time.perf_counter(), 0, 0.0, -1
    for batch_index, batch in enumerate(loader):
        if batch_index >= run.steps_per_epoch:
            break
        value = _train_step(model, batch.to(run.device, non_blocking=True), run, config)
        loss_sum, seen = loss_sum + value, seen + len(batch)
        history.steps.append(run.step)
        history.losses.append(value)
        run.bar.update(1)
        if run.step % 10 == 0 or batch_index == run.steps_per_epoch - 1:
            run.bar.set_postfix(epoch=epoch, loss=f"{value:.3f}", **history.best_postfix())
    seconds = time.perf_counter() - start
    return {"epoch": epoch, "train_loss": loss_sum / max(1, batch_index + 1), "seconds": seconds,
            "sessions_per_s": seen / seconds if seconds else float("nan")}


def _validate(model: torch.nn.Module, validate: Validator, run: _Run, config: TrainConfig) -> dict[str, float]:
    """The validation metrics of ``model`` in eval mode, without gradients."""
    model.eval()
    with torch.no_grad(), autocast_for(run.device, config.bf16):
        metrics = validate(model)
    return {k: float(v) for k, v in metrics.items()}


def _end_epoch(model: torch.nn.Module, record: dict, run: _Run, config: TrainConfig, history: History,
               checkpoint: Callable[[torch.nn.Module, History], None] | None) -> bool:
    """Record the epoch, keep (and checkpoint) the best weights; return True when early stopping ends training."""
    history.epochs.append(record)
    epoch, score = record["epoch"], record.get(config.monitor)
    logger.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in record.items()})
    if score is None or history.best_score is None or score > history.best_score:
        history.best_epoch, history.best_score, run.stale = epoch, score, 0
        run.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if checkpoint is not None:
            checkpoint(model, history)
    else:
        run.stale += 1
    run.bar.set_postfix(epoch=epoch, loss=f"{record['train_loss']:.3f}", **history.best_postfix())
    if run.stale >= config.patience:
        logger.info("early stop after epoch %d (best %s at epoch %d)", epoch, config.monitor, history.best_epoch)
        return True
    return False


def fit(
    model: torch.nn.Module,
    loader,
    validate: Validator | None,
    config: TrainConfig,
    checkpoint: Callable[[torch.nn.Module, History], None] | None = None,
) -> History:
    """Train ``model`` (with a ``loss(batch)`` method) on ``loader``; keep the best weights; return the history.

    ``validate(model)`` returns metrics (e.g. ``{"MRR@20": 0.2}``) computed in eval mode; the model with
    the best ``config.monitor`` is restored at the end and passed to ``checkpoint`` when it improves.
    """
    run = _set_up(model, loader, config)
    history = History(monitor=config.monitor)
    for epoch in range(1, config.epochs + 1):
        record = _train_epoch(model, loader, run, config, history, epoch)
        if validate is not None:
            record.update(_validate(model, validate, run, config))
        if _end_epoch(model, record, run, config, history, checkpoint):
            break
    run.bar.close()
    if run.best_state is not None:
        model.load_state_dict(run.best_state)
    model.eval()
    return history
