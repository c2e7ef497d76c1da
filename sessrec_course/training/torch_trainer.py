"""The one training loop for every PyTorch session model.

AdamW, linear warm-up then cosine decay, early stopping on a validation metric (MRR@20 by default),
the best weights kept (and optionally saved) as a state dict, a tqdm bar with the live loss and
metric, and a :class:`History` the notebooks plot. CUDA (with bf16 autocast) is used when present;
on CPU the threads are set to the cores this process may use and a fixed seed gives identical results.
Under ``torchrun`` the same :func:`fit` trains data-parallel: the loss runs through
``DistributedDataParallel`` (gloo on CPU, NCCL on CUDA), epoch metrics and the recorded step losses are
averaged across ranks (every rank's history is the global batch's) and only rank 0 writes checkpoints and shows
the bar.
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
    """Return ``device`` or, when None, CUDA if available (this rank's GPU under torchrun), else CPU."""
    if device is None and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(device or "cpu")


def distributed_world() -> tuple[int, int]:
    """Return (rank, world size); under ``torchrun`` join its process group once (NCCL on CUDA, else gloo)."""
    import torch.distributed as dist

    if not dist.is_available():
        return 0, 1
    if not dist.is_initialized():
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:  # not launched by torchrun
            return 0, 1
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
        logger.info("rank %d of %d joined the %s process group", dist.get_rank(), dist.get_world_size(), backend)
    return dist.get_rank(), dist.get_world_size()


class _Loss(torch.nn.Module):
    """A model's ``loss(batch)`` as ``forward``: what ``DistributedDataParallel`` wraps to sync gradients."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model.loss(batch)


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
    loss: Callable[[torch.Tensor], torch.Tensor]  # model.loss, or its DistributedDataParallel wrapper
    rank: int = 0
    world: int = 1
    step: int = 0
    stale: int = 0  # epochs since the best one
    best_state: dict | None = field(default=None, repr=False)
    total: list[int] = field(default_factory=lambda: [0])  # planned steps in all, read by the schedule


def _set_up(model: torch.nn.Module, loader, config: TrainConfig) -> _Run:
    """Threads, seed, device, process group; AdamW (no decay on embeddings, biases, norms) with warm-up + cosine; the bar."""
    rank, world = distributed_world()
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
    steps_per_epoch = _epoch_steps(loader, config)
    total = [steps_per_epoch * config.epochs]  # re-planned at each epoch's start (see fit)
    warmup = max(1, int(config.warmup_fraction * total[0]))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total[0], warmup, config.min_lr_fraction)
    )
    bar = tqdm(total=total[0], desc=f"training {type(model).__name__}", unit="batch",
               disable=not config.progress or rank != 0)
    loss: Callable[[torch.Tensor], torch.Tensor] = model.loss
    if world > 1:  # gradients all-reduced (averaged) across ranks during backward
        from torch.nn.parallel import DistributedDataParallel

        loss = DistributedDataParallel(_Loss(model), device_ids=[device.index] if device.type == "cuda" else None)
    return _Run(device, optimizer, scheduler, steps_per_epoch, bar, loss, rank, world, total=total)


def _epoch_steps(loader, config: TrainConfig) -> int:
    """Batches in one epoch: the loader's, at most ``config.max_steps_per_epoch``."""
    return len(loader) if config.max_steps_per_epoch is None else min(len(loader), config.max_steps_per_epoch)


def _train_step(model: torch.nn.Module, batch: torch.Tensor, run: _Run, config: TrainConfig) -> float:
    """One optimisation step on ``batch``; return its loss."""
    with autocast_for(run.device, config.bf16):
        loss = run.loss(batch)
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
    sampler = getattr(getattr(loader, "sampler", None), "sampler", None)
    if hasattr(sampler, "set_epoch"):  # a DistributedSampler: a new shuffle each epoch, the same on every rank
        sampler.set_epoch(epoch)
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


def _reduce_record(record: dict, run: _Run) -> dict:
    """Average an epoch's figures over the ranks (throughput summed), so every rank decides the same."""
    if run.world == 1:
        return record
    import torch.distributed as dist

    keys = sorted(k for k, v in record.items() if k != "epoch" and isinstance(v, float | int))
    values = torch.tensor([float(record[k]) for k in keys], dtype=torch.float64,
                          device=run.device if run.device.type == "cuda" else "cpu")
    dist.all_reduce(values)
    reduced = dict(zip(keys, (values / run.world).tolist(), strict=True))
    reduced["sessions_per_s"] = reduced.get("sessions_per_s", 0.0) * run.world
    return {**record, **reduced}


def _reduce_steps(history: History, first: int, run: _Run) -> None:
    """Average the epoch's step losses (from index ``first``) over the ranks: each becomes the global batch's loss."""
    if run.world == 1 or len(history.losses) == first:
        return
    import torch.distributed as dist

    values = torch.tensor(history.losses[first:], dtype=torch.float64,
                          device=run.device if run.device.type == "cuda" else "cpu")
    dist.all_reduce(values)  # one collective per epoch, not one per step
    history.losses[first:] = (values / run.world).tolist()


def _end_epoch(model: torch.nn.Module, record: dict, run: _Run, config: TrainConfig, history: History,
               checkpoint: Callable[[torch.nn.Module, History], None] | None) -> bool:
    """Record the epoch, keep (and checkpoint) the best weights; return True when early stopping ends training."""
    history.epochs.append(record)
    epoch, score = record["epoch"], record.get(config.monitor)
    logger.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in record.items()})
    if score is None or history.best_score is None or score > history.best_score:
        history.best_epoch, history.best_score, run.stale = epoch, score, 0
        run.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if checkpoint is not None and run.rank == 0:  # one writer
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
    epoch = 0
    while epoch < config.epochs:  # re-read each epoch: a before_fit hook may re-plan the epochs as they run
        epoch += 1  # ... and their length: the schedule decays over the steps done plus the steps planned
        run.steps_per_epoch = _epoch_steps(loader, config)
        run.total[0] = run.bar.total = run.step + run.steps_per_epoch * (config.epochs - epoch + 1)
        first = len(history.losses)
        record = _train_epoch(model, loader, run, config, history, epoch)
        _reduce_steps(history, first, run)
        if validate is not None:
            record.update(_validate(model, validate, run, config))
        record = _reduce_record(record, run)
        if _end_epoch(model, record, run, config, history, checkpoint):
            break
    run.bar.close()
    if run.best_state is not None:
        model.load_state_dict(run.best_state)
    model.eval()
    return history
