"""Every lesson ends with 2-4 checked exercises: the stubs run and say "not yet", the solved copy passes strictly."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
import sessrec_bench.solved_lessons as exnb
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted([*ROOT.glob("notebooks/0[1-7]_*.ipynb"), ROOT / "notebooks" / "05b_hstu.ipynb",
                  *ROOT.glob("notebooks/tensorflow/*.ipynb"),
                  *ROOT.glob("notebooks/merlin/0[1-3]_*.ipynb")])  # the Merlin exercises are numpy only: python3 runs them


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _execute(nb: nbformat.NotebookNode, cwd: Path, **env: str) -> nbformat.NotebookNode:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return nb


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_ends_with_checked_exercises(path):
    nb = _read(path)
    ids = exnb.exercise_ids(nb)
    assert 2 <= len(ids) <= 4, f"{path.name}: {len(ids)} exercises, expected 2-4"
    setup = [i for i, c in enumerate(nb.cells) if exnb.SETUP_TAG in c.metadata.get("tags", [])]
    assert len(setup) == 1, f"{path.name}: one cell tagged {exnb.SETUP_TAG!r} starts the exercise section"
    checks = [c.metadata.get("exercise") for c in nb.cells if exnb.CHECK_TAG in c.metadata.get("tags", [])]
    assert checks == ids, f"{path.name}: each stub cell needs one check cell, in order"
    for exercise_id in ids:
        exercise = exnb.lookup(exercise_id)
        assert len(exercise.hints) >= 1 and exercise.cases(), f"{exercise_id}: hints and hidden cases"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_untouched_stubs_say_not_yet_without_raising(path):
    nb = _read(path)
    for cell in nb.cells:
        if exnb.STUB_TAG in cell.metadata.get("tags", []):
            exercise = exnb.lookup(cell.metadata["exercise"])
            namespace: dict = {}
            exec(compile(cell.source, f"{path.name}:{exercise.function_name}", "exec"), namespace)
            outcome = exercise.evaluate(namespace[exercise.function_name])
            assert not outcome and outcome.message.startswith("not yet"), f"{cell.metadata['exercise']}: {outcome}"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_exercise_section_with_reference_solutions_passes_every_check(path):
    solved = exnb.section(exnb.with_solutions(_read(path)))
    executed = _execute(solved, path.parent, SESSREC_EXERCISES_STRICT="1")
    outputs = [o for c in executed.cells if exnb.CHECK_TAG in c.metadata.get("tags", []) for o in c.outputs]
    text = " ".join(str(o.get("data", {}).get("text/plain", o.get("text", ""))) for o in outputs)
    assert text.count("correct:") == len(exnb.exercise_ids(solved)), text
