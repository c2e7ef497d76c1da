"""Merlin lesson 02 exercises: the clm mask is the course's causal mask, and the Merlin exercise modules run in the
Merlin kernel's venv (the wrong answers: exercise_mistakes/merlin02.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from sessrec_course.exercises import merlin02 as ex
from sessrec_course.exercises import torch_lesson05

ROOT = Path(__file__).resolve().parents[1]
MERLIN_PYTHON = ROOT / ".venv-merlin" / "bin" / "python"


def test_clm_mask_is_the_course_causal_mask_and_mlm_sees_every_click():
    ids = np.array([[4, 7, 1, 0], [5, 3, 8, 6]])
    course = torch_lesson05.causal_padding_mask(torch.tensor(ids)).numpy()
    np.testing.assert_array_equal(ex.attention_mask(ids, "clm"), course)
    np.testing.assert_array_equal(ex.attention_mask(ids, "mlm"), np.broadcast_to((ids != 0)[:, None, :], course.shape))


def test_the_probe_finds_the_leak_of_a_model_that_sees_the_label_only():
    sessions = [[2, 3, 3, 0], [4, 5, 6, 7]]
    assert ex.label_leak(ex.leaky, sessions, 5) > 0.1
    assert ex.label_leak(ex.honest, sessions, 5) == 0.0


@pytest.mark.integration
def test_merlin_exercises_run_in_the_merlin_kernel_without_torch_or_tensorflow():
    if not MERLIN_PYTHON.exists():
        pytest.skip(f"no Merlin kernel venv at {MERLIN_PYTHON}: build it with `make merlin`")
    code = ("import sys\nfrom sessrec_course.exercises import merlin01, merlin02, merlin03\n"
            "for m in (merlin01, merlin02, merlin03):\n"
            "    for q in ('q1', 'q2', 'q3'):\n"
            "        if hasattr(m, q):\n"
            "            assert getattr(m, q).check(getattr(m, q).reference), (m.__name__, q)\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'tensorflow')))")
    done = subprocess.run([str(MERLIN_PYTHON), "-W", "ignore", "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2], ids=lambda e: e.function_name)
def test_the_solution_runs_in_a_cell_after_the_setup_cell_imports(exercise):
    cell = {"np": np}  # the setup cell to add to Merlin 02 imports numpy
    exec(exercise.solution_source(), cell)
    assert exercise.check(cell[exercise.function_name])
