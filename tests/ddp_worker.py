"""Run by tests/test_ddp.py under torchrun: a few DDP steps of the course trainer, rank 0 saves the weights."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from sessrec_course.models import ModelConfig
from sessrec_course.training.common import TrainConfig
from sessrec_course.training.torch_callbacks import standard_callbacks
from sessrec_course.training.torch_ddp import DataParallel, distributed_loader, distributed_world
from sessrec_course.training.torch_pipeline import new_model
from sessrec_course.training.torch_trainer import fit


def main(out: str, batch_size: int) -> None:
    out_dir = Path(out)
    rank, world = distributed_world()
    rng = np.random.default_rng(0)  # every session 6 items long: each rank's loss averages equal counts
    sessions = rng.integers(2, 60, size=(64, 6)).astype(np.int64)
    config = ModelConfig("gru", item_cardinality=60, hidden_size=16, max_length=6, dropout=0.0)
    train = TrainConfig(epochs=2, batch_size=batch_size, learning_rate=1e-2, max_steps_per_epoch=3,
                        progress=False, seed=3, device="cpu")

    def checkpoint(model: torch.nn.Module, history) -> None:
        (out_dir / f"checkpoint-rank{rank}-epoch{history.best_epoch}.pt").write_bytes(b"")
        torch.save(model.state_dict(), out_dir / "best.pt")

    calls: list[int] = []

    def validate(model: torch.nn.Module) -> dict[str, float]:  # improves every epoch: a checkpoint per epoch
        calls.append(rank)
        return {"MRR@20": float(len(calls))}

    model = new_model(config, train.seed)
    loader = distributed_loader(sessions, train.batch_size, rank, world, seed=train.seed)
    history = fit(model, loader, train, [*standard_callbacks(train, validate, checkpoint), DataParallel()])
    if rank == 0:
        torch.save({"state": model.state_dict(), "world": world, "losses": [e["train_loss"] for e in history.epochs],
                    "step_losses": history.losses},
                   out_dir / "final.pt")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
