"""The lesson leaves no process behind: every Dask worker and nanny ends with the context, every torchrun rank
with its launch (also when it times out)."""

from __future__ import annotations

import subprocess

import psutil
import pytest

from sessrec_course.etl.distributed import dask_client
from sessrec_course.training.torch_ddp import launch_torchrun, read_history

pytestmark = pytest.mark.slow  # starts worker processes and torchrun (integration tier)


def test_no_worker_survives_the_client():
    me = psutil.Process()
    with dask_client(n_workers=2, dashboard_address=None) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        # multiprocessing's resource tracker is one helper per parent, living as long as it: not a worker
        started = [p for p in me.children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())]
        assert len(started) >= 2  # the worker processes exist while the cluster runs
    _, alive = psutil.wait_procs(started, timeout=10)
    assert alive == [], f"still running: {[p.cmdline() for p in alive]}"



# Each rank records its pid, then sleeps: long enough to outlive the test if the launcher forgot it.
RANK_SCRIPT = """
import os, sys, time
from pathlib import Path
Path(sys.argv[1], f"rank{os.environ['RANK']}.pid").write_text(str(os.getpid()))
time.sleep(float(sys.argv[2]))
"""


def _survivors(folder) -> list[str]:
    """The command lines of the ranks (and torchrun) of ``folder``'s run that are still running."""
    pids = [int(p.read_text()) for p in sorted(folder.glob("rank*.pid"))]
    assert len(pids) == 2  # both ranks really ran
    procs = [p for p in psutil.process_iter(["cmdline", "status"]) if str(folder) in " ".join(p.info["cmdline"] or [])]
    _, alive = psutil.wait_procs(procs, timeout=5)
    return [" ".join(p.cmdline()) for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def _sleepers(folder, sleep: float, timeout: float) -> None:
    script = folder / "rank.py"
    script.write_text(RANK_SCRIPT)
    launch_torchrun([str(script), str(folder), str(sleep)], 2, timeout=timeout)


def test_no_torchrun_rank_survives_a_finished_run(tmp_path):
    _sleepers(tmp_path, sleep=0, timeout=120)
    assert _survivors(tmp_path) == []


def test_no_torchrun_rank_survives_a_timeout(tmp_path):
    with pytest.raises(subprocess.TimeoutExpired):
        _sleepers(tmp_path, sleep=600, timeout=20)
    assert _survivors(tmp_path) == []


def test_a_failing_rank_is_reported_with_its_error(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT + "raise SystemExit('rank gave up: ' + os.environ['RANK'])\n")
    with pytest.raises(RuntimeError, match="exited with 1:(.|\n)*rank gave up"):
        launch_torchrun([str(script), str(tmp_path), "0"], 2, timeout=120)
    assert _survivors(tmp_path) == []


def test_bad_launch_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="nproc must be at least 1, got 0"):
        launch_torchrun(["x.py"], 0)
    with pytest.raises(FileNotFoundError, match="history.json is missing"):
        read_history(tmp_path)


def test_torchrun_and_every_rank_die_with_the_process_that_launched_them(tmp_path):
    """SIGKILL of the launching process (a kernel that dies) leaves no torchrun and no rank behind."""
    import os
    import signal
    import sys
    import time

    from listeners import process_tree

    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    code = ("from sessrec_course.training.torch_ddp import launch_torchrun; "
            f"launch_torchrun([{str(script)!r}, {str(tmp_path)!r}, '600'], 2, timeout=600)")
    launcher = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 90
        while len(list(tmp_path.glob("rank*.pid"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        started = [psutil.Process(pid) for pid in process_tree(launcher.pid)[1:]]
        ranks = {int(p.read_text()) for p in tmp_path.glob("rank*.pid")}
        assert len(ranks) == 2 and ranks < {p.pid for p in started}  # torchrun and both ranks run
    finally:
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait()
    _, alive = psutil.wait_procs(started, timeout=5)
    alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for process in alive:  # never leave them behind, even when the test fails
        process.kill()
    assert alive == [], "still running after the launcher died"
    assert _survivors(tmp_path) == []
