"""Data-parallel training: 2 gloo processes under torchrun equal 1 process with the same global batch, and
torchrun's processes listen on the loopback interface only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from sessrec_course.training.torch_ddp import launch_torchrun

pytestmark = pytest.mark.slow  # launches torchrun (integration tier)

WORKER = Path(__file__).with_name("ddp_worker.py")


def _torchrun(nproc: int, batch_size: int, out: Path) -> dict:
    out.mkdir()
    launch_torchrun([str(WORKER), str(out), str(batch_size)], nproc, timeout=240,
                    env={"PYTHONPATH": os.pathsep.join([str(WORKER.parents[1]), os.environ.get("PYTHONPATH", "")])})
    return torch.load(out / "final.pt")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    return {name: (_torchrun(nproc, batch, root / name), root / name)
            for name, nproc, batch in [("one", 1, 16), ("two", 2, 16), ("two_small_batch", 2, 8)]}


def test_two_processes_equal_one_with_the_same_global_batch(runs):
    one, two = runs["one"][0], runs["two"][0]
    assert (one["world"], two["world"]) == (1, 2)
    # Compared by the mean gap per tensor, not element by element: rounding a batch of 8 and one of 16
    # differently flips the sign of a few near-zero gradients, and Adam makes each of those a whole lr-sized
    # step (on an AVX2 CPU up to 1e-2 on ~5 % of the entries); a real difference moves nearly every entry.
    gaps = {name: float((two["state"][name] - value).abs().mean()) for name, value in one["state"].items()
            if value.is_floating_point()}
    assert max(gaps.values()) < 1e-3, gaps
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-4)
    # rank 0's step losses are the global batch's (averaged over the ranks), not those of its half of each batch
    assert len(two["step_losses"]) == 6
    assert two["step_losses"] == pytest.approx(one["step_losses"], rel=1e-4)
    # a different global batch (8 = 2 x 4) trains to different weights (~1e-2 mean gap): the comparison can fail
    other = runs["two_small_batch"][0]["state"]
    assert all(float((other[k] - one["state"][k]).abs().mean()) > 1e-3 for k in gaps)


def test_only_rank_zero_writes_checkpoints(runs):
    folder = runs["two"][1]
    written = sorted(p.name for p in folder.glob("checkpoint-*"))
    assert written == ["checkpoint-rank0-epoch1.pt", "checkpoint-rank0-epoch2.pt"]


# Each rank joins the gloo group (the store and gloo listen), says so, and waits for the test's "go".
LISTENING_RANK = """
import os, sys, time
from pathlib import Path
import torch.distributed as dist
dist.init_process_group("gloo")
dist.barrier()
Path(sys.argv[1], f"ready{os.environ['RANK']}").write_text(str(os.getpid()))
for _ in range(600):
    if Path(sys.argv[1], "go").exists():
        break
    time.sleep(0.1)
dist.barrier()
dist.destroy_process_group()
"""


def test_torchrun_and_its_ranks_listen_on_loopback_only(tmp_path):
    """Every listening socket of torchrun (its TCPStore) and of each rank (gloo) is on 127.0.0.1 or ::1."""
    import threading
    import time

    from listeners import listening_sockets, process_tree

    script = tmp_path / "rank.py"
    script.write_text(LISTENING_RANK)
    failure = []

    def launch():
        try:
            launch_torchrun([str(script), str(tmp_path)], 2, timeout=120)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            failure.append(error)

    thread = threading.Thread(target=launch)
    thread.start()
    try:
        deadline = time.monotonic() + 90
        while len(list(tmp_path.glob("ready*"))) < 2 and time.monotonic() < deadline and not failure:
            time.sleep(0.2)
        assert not failure and len(list(tmp_path.glob("ready*"))) == 2, failure
        ranks = {int(p.read_text()) for p in tmp_path.glob("ready*")}
        tree = process_tree(os.getpid())[1:]  # torchrun and the ranks: this test's descendants
        found = listening_sockets(tree)
    finally:
        (tmp_path / "go").write_text("")
        thread.join(timeout=120)
    assert not failure, failure
    owners = {listener.pid for listener in found}
    assert ranks <= owners and owners - ranks, found  # each rank (gloo) and torchrun (the store) listen
    assert all(listener.loopback for listener in found), [l for l in found if not l.loopback]  # noqa: E741


def test_the_module_launches_its_own_ranks_from_a_shell(tmp_path):
    """``python -m sessrec_course.training.torch_ddp OUT --nproc 2``: the loopback-only launch, without torchrun."""
    from torch_helpers import write_tiny_dataset

    from sessrec_course.training.torch_ddp import main, read_history

    data = write_tiny_dataset(tmp_path / "data", n_train=64)
    assert main([str(tmp_path / "out"), "--model", "gru", "--nproc", "2", "--epochs", "1", "--max-steps", "3",
                 "--batch-size", "16", "--artifacts", str(data)]) == 0
    history = read_history(tmp_path / "out")
    assert len(history.losses) == 3 and "MRR@20" in history.epochs[0]
    assert (tmp_path / "out" / "model.pt").exists()
