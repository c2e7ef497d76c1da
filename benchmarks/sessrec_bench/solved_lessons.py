"""Instructor tooling for the lessons' exercise cells: their metadata (nbgrader-compatible) and solved copies.

``python -m sessrec_bench solved LESSON.ipynb SOLVED.ipynb`` writes a lesson with the reference solutions filled in.

A lesson's last section runs on its own from the cell tagged ``exercises-setup`` (it imports the exercise module);
stub cells are tagged ``exercise-stub`` and name their exercise (``"exercise": "lesson01.q1"``), check cells
``exercise-check``."""

from __future__ import annotations

import argparse
import copy
import importlib
from pathlib import Path

import nbformat

from sessrec_course.exercises.core import Exercise

SETUP_TAG, STUB_TAG, CHECK_TAG = "exercises-setup", "exercise-stub", "exercise-check"


def stub_metadata(exercise_id: str) -> dict:
    """Metadata of the cell the learner completes (nbgrader: an ungraded solution cell)."""
    grade_id = exercise_id.replace(".", "_")
    return {"tags": [STUB_TAG], "exercise": exercise_id,
            "nbgrader": {"grade": False, "grade_id": f"{grade_id}_answer", "locked": False, "schema_version": 3,
                         "solution": True, "task": False}}


def check_metadata(exercise_id: str, points: int = 1) -> dict:
    """Metadata of the cell that checks it (nbgrader: a locked, graded test cell)."""
    grade_id = exercise_id.replace(".", "_")
    return {"tags": [CHECK_TAG], "exercise": exercise_id,
            "nbgrader": {"grade": True, "grade_id": f"{grade_id}_check", "locked": True, "points": points,
                         "schema_version": 3, "solution": False, "task": False}}


def lookup(exercise_id: str) -> Exercise:
    """The exercise named ``module.attribute`` inside :mod:`sessrec_course.exercises`."""
    module, _, name = exercise_id.rpartition(".")
    parent = importlib.import_module("sessrec_course.exercises")
    holder = getattr(parent, module, None) or importlib.import_module(f"sessrec_course.exercises.{module}")
    exercise = getattr(holder, name, None)
    if not isinstance(exercise, Exercise):
        raise KeyError(f"no exercise {exercise_id!r}: expected sessrec_course.exercises.{module}.{name}")
    return exercise


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def exercise_ids(nb: nbformat.NotebookNode) -> list[str]:
    """The exercises a notebook's stub cells ask for, in order."""
    return [c.metadata["exercise"] for c in nb.cells if STUB_TAG in _tags(c)]


def section(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of the notebook holding only its exercise section (from the ``exercises-setup`` cell on)."""
    starts = [i for i, c in enumerate(nb.cells) if SETUP_TAG in _tags(c)]
    if len(starts) != 1:
        raise ValueError(f"expected exactly one cell tagged {SETUP_TAG!r}, found {len(starts)}")
    out = copy.deepcopy(nb)
    out.cells = out.cells[starts[0]:]
    return out


def with_solutions(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of the notebook whose stub cells hold the reference solutions (for tests and instructors)."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if STUB_TAG in _tags(cell):
            cell.source = lookup(cell.metadata["exercise"]).solution_source().rstrip("\n")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m sessrec_bench solved SOURCE TARGET``: write the solved copy of a lesson."""
    parser = argparse.ArgumentParser(prog="python -m sessrec_bench solved", description=main.__doc__)
    parser.add_argument("source", type=Path, help="a lesson notebook")
    parser.add_argument("target", type=Path, help="where its solved copy goes")
    args = parser.parse_args(argv)
    nbformat.write(with_solutions(nbformat.read(args.source, as_version=4)), args.target)
    print(f"{args.target}: {len(exercise_ids(nbformat.read(args.target, as_version=4)))} exercises solved")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
