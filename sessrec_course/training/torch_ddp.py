"""Data-parallel training (lesson 07): ``torchrun`` launched from Python, the DDP callback, the script ranks run.

Its store listens on 127.0.0.1 only (a plain torchrun's binds every interface and unpickles what it receives), gloo
and NCCL on loopback; torchrun and its ranks die with the launcher. From a shell:
``python -m sessrec_course.training.torch_ddp OUT --model gru --nproc 2``."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from sessrec_course.environment import die_with_parent
from sessrec_course.models.torch_export import save_model
from sessrec_course.training.common import History, training_setup
from sessrec_course.training.torch_callbacks import standard_callbacks
from sessrec_course.training.torch_data import SessionBatches, batch_loader
from sessrec_course.training.torch_pipeline import new_model, torch_validator, training_data
from sessrec_course.training.torch_trainer import Callback, Run, fit

logger = logging.getLogger(__name__)

MODULE = "sessrec_course.training.torch_ddp"
AGENT = "import sys; from sessrec_course.training.torch_ddp import torchrun_agent; sys.exit(torchrun_agent(sys.argv[1:]))"


def torchrun_agent(argv: list[str]) -> int:
    """torchrun's ``main(argv)`` in this process, its TCPStore on 127.0.0.1, dying with its parent as each rank will."""
    from torch.distributed.elastic.multiprocessing.subprocess_handler import subprocess_handler
    from torch.distributed.elastic.rendezvous import static_tcp_rendezvous
    from torch.distributed.run import main

    class LoopbackTCPStore(dist.TCPStore):  # a store server listens through a socket bound to 127.0.0.1 here
        def __init__(self, host_name, port, world_size=None, is_master=False, *args, **kwargs):
            if is_master and kwargs.get("master_listen_fd") is None:
                server = socket.create_server(("127.0.0.1", port))
                port, kwargs["master_listen_fd"] = server.getsockname()[1], server.detach()
            super().__init__(host_name, port, world_size, is_master, *args, **kwargs)

    die_with_parent(int(os.environ.get("SESSREC_LAUNCHER_PID", os.getppid())))
    dist.TCPStore = static_tcp_rendezvous.TCPStore = LoopbackTCPStore
    subprocess_handler.Popen = functools.partial(subprocess.Popen, preexec_fn=functools.partial(
        die_with_parent, os.getpid()))
    main(argv)
    return 0


def launch_torchrun(args: list[str], nproc: int, timeout: float = 600,
                    env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run torchrun with ``nproc`` ranks of ``args`` (a script or ``-m module`` and arguments), one CPU thread each;
    a non-zero exit raises ``RuntimeError`` with the tail of stderr, ``timeout`` ``subprocess.TimeoutExpired``."""
    if nproc < 1:
        raise ValueError(f"nproc must be at least 1, got {nproc}")
    child_env = {**os.environ, "OMP_NUM_THREADS": "1", "SESSREC_TORCH_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo",
                 "NCCL_SOCKET_IFNAME": "lo", "SESSREC_LAUNCHER_PID": str(os.getpid()), **(env or {})}
    with socket.create_server(("127.0.0.1", 0)) as probe:  # a free port for the store
        port = probe.getsockname()[1]
    cmd = [sys.executable, "-c", AGENT, "--nnodes", "1", "--master-addr", "127.0.0.1", "--master-port", str(port),
           "--nproc-per-node", str(nproc), *args]
    logger.info("launching %s", " ".join(cmd))
    proc = subprocess.Popen(cmd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:  # after a timeout or an interrupted cell no rank may survive, after an exit nothing may linger
        if proc.poll() is None:  # SIGTERM: torchrun stops its ranks; then SIGKILL to its group
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group has ended already
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun ({nproc} processes) exited with {proc.returncode}:\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def distributed_world() -> tuple[int, int]:
    """Return (rank, world size); under torchrun join its process group once (NCCL on CUDA, else gloo)."""
    if not dist.is_available() or ("RANK" not in os.environ and not dist.is_initialized()):
        return 0, 1
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def distributed_loader(item_ids: np.ndarray, batch_size: int, rank: int, world: int, seed: int = 0) -> DataLoader:
    """This rank's share of every global batch: positions ``rank, rank + world, ...`` of one shuffle all ranks share."""
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} is not a multiple of the {world} processes")
    dataset = SessionBatches(item_ids)
    if len(dataset) < world:
        raise ValueError(f"{len(dataset)} sessions cannot be shared by {world} processes")
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
    return batch_loader(dataset, sampler, batch_size // world)


class _Loss(torch.nn.Module):
    """A model's ``loss(batch)`` as ``forward``: what ``DistributedDataParallel`` wraps to sync gradients."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model.loss(batch)


class DataParallel(Callback):
    """Under torchrun: gradients, losses and epoch figures averaged over the ranks (sessions/s summed), one shuffle."""

    order = 20  # after validation, before early stopping and checkpoints

    def before_fit(self, run: Run) -> None:
        run.rank, self.world = distributed_world()
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [run.device.index] if run.device.type == "cuda" else None
            run.loss_fn = DistributedDataParallel(_Loss(run.model), device_ids=device_ids)

    def before_epoch(self, run: Run) -> None:
        sampler = getattr(getattr(run.loader, "sampler", None), "sampler", None)
        if hasattr(sampler, "set_epoch"):  # a DistributedSampler: the same new shuffle on every rank
            sampler.set_epoch(run.epoch)
        self.first = len(run.history.losses)

    def mean(self, run: Run, values: list[float]) -> list[float]:
        """``values`` averaged element-wise over the ranks (one collective)."""
        if self.world == 1 or not values:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=run.device if run.device.type == "cuda" else "cpu")
        dist.all_reduce(tensor)
        return (tensor / self.world).tolist()

    def after_epoch(self, run: Run) -> None:
        run.history.losses[self.first:] = self.mean(run, run.history.losses[self.first:])
        keys = sorted(k for k, v in run.record.items() if k != "epoch" and isinstance(v, float | int))
        run.record.update(zip(keys, self.mean(run, [float(run.record[k]) for k in keys]), strict=True))
        run.record["sessions_per_s"] *= self.world


def train_distributed(out: str | Path, nproc: int, model: str = "gru", *, artifacts: str | Path | None = None,
                      epochs: int = 3, batch_size: int = 64, max_steps: int | None = None, dropout: float = 0.0,
                      gpus: bool = False, timeout: float = 600) -> History:
    """Train preset ``model`` on ``nproc`` ranks (``gpus``: one GPU each) with global ``batch_size``; rank 0's history
    (``dropout`` is 0 so that one process and N draw the same random masks)."""
    if gpus and torch.cuda.device_count() < nproc:
        raise ValueError(f"{nproc} ranks need {nproc} GPUs, this machine has {torch.cuda.device_count()}")
    env = {} if gpus else {"CUDA_VISIBLE_DEVICES": ""}  # no GPU: the trainer picks the CPU and gloo
    args = ["-m", MODULE, str(out), "--model", model, "--epochs", str(epochs), "--batch-size", str(batch_size),
            "--dropout", str(dropout)]
    for flag, value in (("--artifacts", artifacts), ("--max-steps", max_steps)):
        args += [] if value is None else [flag, str(value)]
    launch_torchrun(args, nproc, timeout=timeout, env=env)
    return read_history(out)


def read_history(out: str | Path) -> History:
    """The :class:`History` rank 0 wrote to ``out/history.json``."""
    path = Path(out) / "history.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the distributed run did not finish")
    return History.from_dict(json.loads(path.read_text(encoding="utf-8")))


def main(argv: list[str] | None = None) -> int:
    """What every torchrun rank runs: train its share, then rank 0 writes the history and the best weights once."""
    parser = argparse.ArgumentParser(prog=f"torchrun ... -m {MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", default="gru")
    parser.add_argument("--artifacts", help="ETL output folder (default: the profile's default data)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch, shared by the ranks")
    parser.add_argument("--max-steps", type=int, help="at most this many steps per epoch")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--nproc", type=int, help="launch this many ranks (torchrun, loopback only) from here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.nproc:  # the launcher: python -m sessrec_course.training.torch_ddp OUT --nproc 2
        train_distributed(args.out, args.nproc, args.model, artifacts=args.artifacts, epochs=args.epochs,
                          batch_size=args.batch_size, max_steps=args.max_steps, dropout=args.dropout)
        return 0
    rank, world = distributed_world()
    setup = training_setup(args.model, args.artifacts, model_overrides={"dropout": args.dropout}, epochs=args.epochs,
                           batch_size=args.batch_size, max_steps_per_epoch=args.max_steps, progress=False)
    train_ids, lookup, (prefixes, targets) = training_data(setup)
    share = len(targets) // world  # equal shares: the mean of the ranks' metrics is the metric
    validate = torch_validator(prefixes[rank::world][:share], targets[rank::world][:share])
    model = new_model(setup.model, setup.train.seed, lookup)
    loader = distributed_loader(train_ids, setup.train.batch_size, rank, world, seed=setup.train.seed)
    history = fit(model, loader, setup.train, [*standard_callbacks(setup.train, validate), DataParallel()])
    if rank == 0:  # the one writer
        save_model(model, args.out)
        (args.out / "history.json").write_text(json.dumps(history.to_dict()), encoding="utf-8")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
