"""The lesson's cluster leaves no process behind: every Dask worker and nanny ends with the context."""

from __future__ import annotations

import psutil
import pytest

from sessrec_course.etl.distributed import dask_client

pytestmark = pytest.mark.slow  # starts worker processes (integration tier)


def test_no_worker_survives_the_client():
    me = psutil.Process()
    with dask_client(n_workers=2, dashboard_address=None) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        # multiprocessing's resource tracker is one helper per parent, living as long as it: not a worker
        started = [p for p in me.children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())]
        assert len(started) >= 2  # the worker processes exist while the cluster runs
    _, alive = psutil.wait_procs(started, timeout=10)
    assert alive == [], f"still running: {[p.cmdline() for p in alive]}"
