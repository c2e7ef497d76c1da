"""Suite-wide hooks: every test gets exactly one tier marker, and no Triton process may outlive the suite.

Tiers (declared in pyproject.toml): ``notebooks`` for the nbval cells of ``notebooks/``, ``integration`` for the
tests marked ``slow`` and every test of the files that start real servers or subprocesses or train the Keras
models, ``unit`` for the rest
(``make test-fast`` runs ``-m unit``).
"""

from __future__ import annotations

import pytest

pytest_plugins = ("pytester",)  # tests/test_test_tiers.py runs the hooks on a small suite

TIERS = ("unit", "integration", "notebooks")
# files whose tests start a real tritonserver or child processes (nbval, the course runner), or train the Keras
# twins (TensorFlow's import and tracing alone take most of a minute on 2 cores)
INTEGRATION_FILES = frozenset({"test_serving_server.py", "test_serving_course.py", "test_serving_no_orphans.py",
                               "test_notebooks.py", "test_keras_models.py", "test_keras_serving.py",
                               "test_exercise_notebooks.py"})


def tier_of(item: pytest.Item) -> str:
    """The tier of a collected test: notebooks, integration or unit."""
    if item.path.suffix == ".ipynb":
        return "notebooks"
    if item.get_closest_marker("slow") is not None or item.path.name in INTEGRATION_FILES:
        return "integration"
    return "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every collected test with its tier, unless it already carries one; skip lessons of absent kernels."""
    from sessrec_bench.course_runner import OPTIONAL_KERNELS, missing_kernel, notebook_kernel

    from sessrec_course.paths import project_root

    why: dict = {}
    for item in items:
        if not any(item.get_closest_marker(tier) for tier in TIERS):
            item.add_marker(getattr(pytest.mark, tier_of(item)))
        if item.path.suffix == ".ipynb" and item.path.is_relative_to(project_root() / "notebooks"):
            if item.path not in why:  # e.g. the Merlin track in the GPU container, which has no sessrec-merlin
                kernel = notebook_kernel(item.path)
                why[item.path] = missing_kernel(kernel) if kernel in OPTIONAL_KERNELS else None
            if why[item.path]:
                item.add_marker(pytest.mark.skip(reason=why[item.path]))


@pytest.fixture(scope="session", autouse=True)
def no_triton_process_survives():
    """After the whole session, every process group of a server started in this process must be empty."""
    yield
    from sessrec_course.serving.server import surviving_server_processes

    leftovers = surviving_server_processes()
    assert not leftovers, f"tritonserver / stub processes survived the test suite: {leftovers}"


@pytest.fixture(autouse=True)
def exercises_in_lesson_mode(request, monkeypatch):
    """Exercise tests see checks as a lesson does (no strict mode), whatever the calling shell sets."""
    if request.node.path.name.startswith("test_exercises_"):
        monkeypatch.delenv("SESSREC_EXERCISES_STRICT", raising=False)
        monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)



def _machine_facts() -> list[str]:
    """Facts that explain a crash on a CI box we cannot log into: shared memory, memory, its cgroup limit."""
    import os
    import shutil

    facts = []
    if os.path.isdir("/dev/shm"):
        usage = shutil.disk_usage("/dev/shm")
        facts.append(f"/dev/shm: {usage.total >> 20} MiB, {usage.free >> 20} MiB free, "
                     f"{len(os.listdir('/dev/shm'))} entries")
    for path in ("/proc/meminfo", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.events",
                 "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.failcnt"):
        if os.path.exists(path):
            with open(path) as handle:
                lines = [line.strip() for line in handle if line.startswith(("MemTotal", "MemAvailable", "oom", "max"))
                         or not path.startswith("/proc")]
            facts.append(f"{path}: {'; '.join(lines)}")
    return facts


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """After a failing run, print the machine facts a server crash is usually explained by."""
    if exitstatus != 0:
        terminalreporter.write_sep("-", "machine facts at the end of the run")
        for fact in _machine_facts():
            terminalreporter.write_line(fact)
