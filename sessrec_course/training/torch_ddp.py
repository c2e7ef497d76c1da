"""Data-parallel training from Python: ``torchrun`` as a child process group, and the script its ranks run.

:func:`launch_torchrun` starts ``python -m torch.distributed.run --standalone --nproc-per-node N ...`` in a
session of its own and, on a timeout, an error or an interrupt, ends torchrun and every rank it started (each
rank runs in a session of its own), so no rank outlives the caller's cell. :func:`train_distributed` runs this
module under it::

    python -m torch.distributed.run --standalone --nproc-per-node 2 -m sessrec_course.training.torch_ddp OUT \\
        --model gru --epochs 3 --max-steps 60

Every rank calls the unchanged :func:`~sessrec_course.training.torch_pipeline.train_model` (the trainer joins the
process group itself); rank 0 alone writes ``OUT/history.json`` and the best weights (``model.pt`` +
``config.json``). With the same ``--batch-size`` (the *global* batch) one process and N processes see the same
sessions in each step.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from sessrec_course.training.common import History

logger = logging.getLogger(__name__)

MODULE = "sessrec_course.training.torch_ddp"


def launch_torchrun(args: list[str], nproc: int, timeout: float = 600, env: dict[str, str] | None = None,
                    cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run ``torchrun --standalone --nproc-per-node nproc *args`` to its end; stop it and every rank if it fails.

    ``args`` is a script and its arguments, or ``["-m", module, ...]``. Each rank gets one CPU thread
    (``OMP_NUM_THREADS`` / ``SESSREC_TORCH_THREADS``, unless ``env`` sets them). Raises ``RuntimeError`` with
    the tail of stderr on a non-zero exit and ``subprocess.TimeoutExpired`` after ``timeout`` seconds.
    """
    if nproc < 1:
        raise ValueError(f"nproc must be at least 1, got {nproc}")
    child_env = {**os.environ, "OMP_NUM_THREADS": "1", "SESSREC_TORCH_THREADS": "1", **(env or {})}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc), *args]
    logger.info("launching %s", " ".join(cmd))
    proc = subprocess.Popen(cmd, env=child_env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException:  # a timeout, or an interrupted cell: no rank may survive
        stop_torchrun(proc)
        raise
    stop_torchrun(proc)  # torchrun has exited: this only ends what may linger in its process group
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun ({nproc} processes) exited with {proc.returncode}:\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _children(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes (Linux ``/proc``; empty once it has ended)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # the process ended meanwhile
            pass
    return found


def stop_torchrun(proc: subprocess.Popen, grace: float = 15) -> None:
    """End a torchrun started in a session of its own, and every rank it started.

    torchrun starts each rank in a session of its own, so killing torchrun's group alone would orphan them:
    first SIGTERM, on which torchrun stops its ranks itself; after ``grace`` seconds SIGKILL to torchrun's group
    and to each rank's group.
    """
    ranks = _children(proc.pid)  # each leads its own process group
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    for group in (proc.pid, *ranks):
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):  # that group has ended already
            pass
    proc.wait()


def train_distributed(out: str | Path, nproc: int, model: str = "gru", *, artifacts: str | Path | None = None,
                      epochs: int = 3, batch_size: int = 64, max_steps: int | None = None, dropout: float = 0.0,
                      gpus: bool = False, timeout: float = 600) -> History:
    """Train preset ``model`` on ``nproc`` processes under torchrun; return rank 0's :class:`History` from ``out``.

    ``batch_size`` is the global batch (each rank takes ``batch_size / nproc`` sessions of it); ``dropout`` 0
    by default, so that one process and N draw no different random masks and their curves can be compared.
    ``gpus``: one GPU per rank (NCCL); otherwise the ranks see no GPU and train on the CPU (gloo).
    """
    env = {}
    if gpus:
        import torch

        if torch.cuda.device_count() < nproc:
            raise ValueError(f"{nproc} ranks need {nproc} GPUs, this machine has {torch.cuda.device_count()}")
    else:
        env["CUDA_VISIBLE_DEVICES"] = ""  # the trainer picks the CPU and gloo
    args = ["-m", MODULE, str(out), "--model", model, "--epochs", str(epochs), "--batch-size", str(batch_size),
            "--dropout", str(dropout)]
    if artifacts is not None:
        args += ["--artifacts", str(artifacts)]
    if max_steps is not None:
        args += ["--max-steps", str(max_steps)]
    launch_torchrun(args, nproc, timeout=timeout, env=env)
    return read_history(out)


def read_history(out: str | Path) -> History:
    """The :class:`History` rank 0 wrote to ``out/history.json``."""
    path = Path(out) / "history.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the distributed run did not finish")
    data = json.loads(path.read_text(encoding="utf-8"))
    return History.from_dict({k: v for k, v in data.items() if k != "world"})


def main(argv: list[str] | None = None) -> int:
    """What every torchrun rank runs: train, then rank 0 writes the history and the best weights once."""
    parser = argparse.ArgumentParser(prog=f"torchrun ... -m {MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", default="gru")
    parser.add_argument("--artifacts", help="ETL output folder (default: the profile's default data)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch, shared by the ranks")
    parser.add_argument("--max-steps", type=int, help="at most this many steps per epoch")
    parser.add_argument("--dropout", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import torch.distributed as dist

    from sessrec_course.models.torch_export import save_model
    from sessrec_course.training.torch_pipeline import train_model
    from sessrec_course.training.torch_trainer import distributed_world

    rank, world = distributed_world()
    model, history = train_model(args.model, args.artifacts, cache=False, progress=False,
                                 model_overrides={"dropout": args.dropout}, epochs=args.epochs,
                                 batch_size=args.batch_size, max_steps_per_epoch=args.max_steps)
    if rank == 0:  # the one writer
        save_model(model, args.out)
        (args.out / "history.json").write_text(json.dumps({**history.to_dict(), "world": world}), encoding="utf-8")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
