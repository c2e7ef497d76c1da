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
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from sessrec_course.training.common import History

logger = logging.getLogger(__name__)

Validator = Callable[[torch.nn.Module], dict[str, float]]


@dataclass
class TrainConfig:
    """Optimisation settings (sizes come from the profile, see :func:`from_profile`)."""

    epochs: int = 1
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05  # share of all steps spent warming up linearly
    min_lr_fraction: float = 0.05  # cosine decays to this share of the peak learning rate
    grad_clip: float | None = 1.0
    patience: int = 2  # epochs without improvement before stopping
    monitor: str = "MRR@20"
    seed: int = 42
    device: str | None = None  # None: CUDA when present, else CPU
    bf16: bool | None = None  # None: bf16 autocast on CUDA only
    max_steps_per_epoch: int | None = None
    progress: bool = True

    @classmethod
    def from_profile(cls, profile, **overrides) -> TrainConfig:
        """Settings from a :class:`~sessrec_course.profiles.Profile` (+ keyword overrides)."""
        base = {"epochs": profile.epochs, "batch_size": profile.batch_size,
                "learning_rate": profile.learning_rate, "seed": profile.seed}
        return cls(**{**base, **overrides})


def select_device(device: str | None = None) -> torch.device:
    """Return ``device`` or, when None, CUDA if available, else CPU."""
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


_THREADS: list[int] = []  # decided once per process, so that reruns use the same kernels


def configure_threads() -> int:
    """Set torch's CPU threads once per process and return the number.

    ``$SESSREC_TORCH_THREADS`` wins; otherwise all cores this process may use, except on a busy
    machine (1-minute load ≥ cores), where OpenMP threads spin-waiting for descheduled siblings make
    small kernels up to 10x slower (measured on the shared 2-core box): there, 1 thread.
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


def autocast_for(device: torch.device, bf16: bool | None):
    """bf16 autocast when ``bf16`` (None: on CUDA only), else a no-op context."""
    enabled = (device.type == "cuda") if bf16 is None else bf16
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


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
    history = History(monitor=config.monitor)
    best_state, stale, step = None, 0, 0
    bar = tqdm(total=total, desc=f"training {type(model).__name__}", unit="batch", disable=not config.progress)
    for epoch in range(1, config.epochs + 1):
        model.train()
        start, seen, loss_sum = time.perf_counter(), 0, 0.0
        for batch_index, batch in enumerate(loader):
            if batch_index >= steps_per_epoch:
                break
            batch = batch.to(device, non_blocking=True)
            with autocast_for(device, config.bf16):
                loss = model.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            value = float(loss.detach())
            loss_sum, seen = loss_sum + value, seen + len(batch)
            history.steps.append(step)
            history.losses.append(value)
            bar.update(1)
            if step % 10 == 0 or batch_index == steps_per_epoch - 1:
                bar.set_postfix(epoch=epoch, loss=f"{value:.3f}", **_best_postfix(history))
        seconds = time.perf_counter() - start
        record = {"epoch": epoch, "train_loss": loss_sum / max(1, batch_index + 1), "seconds": seconds,
                  "sessions_per_s": seen / seconds if seconds else float("nan")}
        if validate is not None:
            model.eval()
            with torch.no_grad(), autocast_for(device, config.bf16):
                metrics = validate(model)
            record.update({k: float(v) for k, v in metrics.items()})
        history.epochs.append(record)
        score = record.get(config.monitor)
        logger.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in record.items()})
        if score is None or history.best_score is None or score > history.best_score:
            history.best_epoch, history.best_score, stale = epoch, score, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if checkpoint is not None:
                checkpoint(model, history)
        else:
            stale += 1
        bar.set_postfix(epoch=epoch, loss=f"{record['train_loss']:.3f}", **_best_postfix(history))
        if stale >= config.patience:
            logger.info("early stop after epoch %d (best %s at epoch %d)", epoch, config.monitor, history.best_epoch)
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def _best_postfix(history: History) -> dict[str, str]:
    return {} if history.best_score is None else {f"best_{history.monitor}": f"{history.best_score:.4f}"}
