"""A pytest plugin over nbval: keep what each lesson printed, fail on warnings, and save the executed lesson.

nbval executes every cell of ``notebooks/`` but throws the outputs away. This plugin

- fails a cell whose stderr shows a warning or a traceback (executed lessons must read clean);
- gives the kernel's output stream a minute, not nbval's fixed 5 s, before a loaded 2-core box counts as a hang;
- fails a cell of a lesson that starts servers (06, 06b, 07) when a process below pytest listens beyond loopback;
- writes each fully passing lesson, with its outputs and per-cell timing, to ``build/notebooks/`` — exactly what
  ``make course`` writes there, so the website test builds from this run instead of executing the course again.
"""

from __future__ import annotations

import copy
import os
import re
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXECUTED_ENV = "SESSREC_EXECUTED_DIR"  # where executed lessons go (tests of this plugin point it elsewhere)
OUTPUT_TIMEOUT_S = 60
# what a lesson must never show on stderr: a Python warning line, or a traceback
UNCLEAN = re.compile(r"^\s*(?:\S+:\d+: )?\w*Warning\b|^WARNING\b|Traceback \(most recent call last\)", re.MULTILINE)

_executed: dict[Path, dict] = {}


def _is_nbval_cell(item: pytest.Item) -> bool:
    return type(item).__name__ == "IPyNbCell" and item.path.suffix == ".ipynb"


def unclean_stderr(outputs: list) -> list[str]:
    """The stderr texts among ``outputs`` that show a warning or a traceback."""
    return [o.get("text", "") for o in outputs
            if o.get("output_type") == "stream" and o.get("name") == "stderr" and UNCLEAN.search(o.get("text", ""))]


def _executed_path(path: Path) -> Path:
    return Path(os.environ.get(EXECUTED_ENV) or ROOT / "build" / "notebooks") / path.name


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Widen nbval's wait for a cell's outputs (its 5 s made lessons flaky under load)."""
    if _is_nbval_cell(item):
        item.output_timeout = OUTPUT_TIMEOUT_S


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Record the cell's outputs and timing; fail it when its stderr is not clean."""
    if not _is_nbval_cell(item):
        return (yield)
    state = _executed.setdefault(item.path, {"cells": {}, "failed": False})
    start = _now()
    try:
        with loopback_only(item):
            result = yield
    except BaseException:
        state["failed"] = True
        _executed_path(item.path).unlink(missing_ok=True)  # a stale copy must not pass for this run
        raise
    finally:
        cell = copy.deepcopy(item.cell)
        cell.outputs = [nbformat.from_dict(o) for o in (item.test_outputs or [])]
        cell.execution_count = item.cell_num + 1
        cell.metadata["execution"] = {"iopub.execute_input": start, "shell.execute_reply": _now()}
        state["cells"][item.cell_num] = cell
    dirty = unclean_stderr(item.test_outputs or [])
    if dirty:
        state["failed"] = True
        _executed_path(item.path).unlink(missing_ok=True)
        raise AssertionError(f"{item.path.name} {item.name}: the lesson printed a warning or traceback on stderr:\n"
                             + "\n".join(t.strip()[:800] for t in dirty))
    _save_when_complete(item.path, state)
    return result


def _save_when_complete(path: Path, state: dict) -> None:
    """Write the executed lesson once its last code cell has passed (and none failed)."""
    nb = nbformat.read(path, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    if state["failed"] or len(state["cells"]) != len(code):
        return
    for number, index in enumerate(code):
        nb.cells[index] = state["cells"][number]
    target = _executed_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    tmp.replace(target)



# lessons that start servers (Triton, torchrun, Dask): their cells are watched for listeners beyond loopback
WATCHED_LESSONS = ("06_", "06b_", "07_")


@contextmanager
def loopback_only(item: pytest.Item):
    """While a cell of a serving or scaling lesson runs, every process below this one must listen on loopback only."""
    if not item.path.name.startswith(WATCHED_LESSONS):
        yield
        return
    from listeners import listening_sockets, process_tree

    seen: set = set()
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            seen.update(x for x in listening_sockets(process_tree(os.getpid())) if not x.loopback)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield
    finally:
        done.set()
        sampler.join()
        seen.update(x for x in listening_sockets(process_tree(os.getpid())) if not x.loopback)
    assert not seen, f"{item.path.name}: processes of the lesson listen beyond loopback: {sorted(seen)}"
