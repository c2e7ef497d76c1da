"""Merlin lesson 03's plumbing: NVTabular <-> course ids, and TensorFlow kept out of the torch-only Merlin code.

The id maps are numpy (course venv); the import checks run in ``.venv-merlin`` (``make merlin``) in child
processes, because whether TensorFlow is loaded is a property of a whole process.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from sessrec_course.etl.nvtabular_workflow import course_layout, from_course_ids, to_course_ids

ROOT = Path(__file__).resolve().parents[1]
MERLIN_PYTHON = ROOT / ".venv-merlin" / "bin" / "python"


@pytest.mark.unit
def test_id_maps_shift_items_and_fold_null_into_oov():
    nvt = np.array([[3, 4, 9, 0], [2, 1, 3, 0]])  # NVTabular: 0 padding, 1 null, 2 OOV, items from 3
    course = to_course_ids(nvt)
    assert course.tolist() == [[2, 3, 8, 0], [1, 1, 2, 0]]
    assert from_course_ids(course).tolist() == [[3, 4, 9, 0], [2, 2, 3, 0]]  # null comes back as OOV


@pytest.mark.unit
def test_course_layout_drops_the_null_column_only():
    scores = np.arange(12.0).reshape(2, 6)  # columns: padding, null, OOV, item 3, item 4, item 5
    assert course_layout(scores).tolist() == [[0.0, 2.0, 3.0, 4.0, 5.0], [6.0, 8.0, 9.0, 10.0, 11.0]]


def _merlin(code: str) -> subprocess.CompletedProcess:
    if not MERLIN_PYTHON.exists():
        pytest.skip(f"no Merlin kernel venv at {MERLIN_PYTHON}: build it with `make merlin`")
    return subprocess.run([str(MERLIN_PYTHON), "-W", "ignore", "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, check=False)


@pytest.mark.integration
def test_torch_only_merlin_imports_keep_tensorflow_out():
    done = _merlin("import sys\nfrom sessrec_course.models import transformers4rec as t4\nt4.import_t4rec()\n"
                   "import merlin.io\nprint('tensorflow loaded:', sys.modules.get('tensorflow') is not None)")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("tensorflow loaded: False")


@pytest.mark.integration
def test_merlin_models_after_nvtabular_fails_with_the_order_to_follow():
    done = _merlin("from sessrec_course.etl import nvtabular_workflow as nw\nnw.import_nvtabular()\n"
                   "from sessrec_course.models import merlin_models_tf as mmt\nmmt.import_merlin_models()")
    assert done.returncode != 0 and "import merlin.models.tf before NVTabular" in done.stderr


@pytest.mark.integration
def test_merlin_models_first_then_nvtabular_both_load():
    done = _merlin("import sys\nfrom sessrec_course.models import merlin_models_tf as mmt\n"
                   "mm = mmt.import_merlin_models()\nfrom sessrec_course.etl import nvtabular_workflow as nw\n"
                   "nvt = nw.import_nvtabular()\nprint(nw.skip_tensorflow(), sys.modules['tensorflow'] is not None)")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False True"
