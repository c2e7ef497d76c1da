"""Every data lesson runs unchanged on real research logs through SESSREC_DATASET (ci profile, ../shared/data).

``make test`` runs lessons 01-03 on both logs (about 3 minutes on 2 cores); ``make test-datasets``
(``SESSREC_DATASET_LESSONS=all``) runs every lesson 01-06 and the TensorFlow track on both (about 15 minutes).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbval_record import unclean_stderr
from sessrec_bench.course_runner import execute_notebook

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # whole lessons in kernels (not rerun under the GPU lock)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DATASETS = {
    "diginetica-sample": ("diginetica", SHARED / "diginetica-sample" / "sample_train-item-views.csv"),
    "yoochoose-100k": ("yoochoose", SHARED / "yoochoose-rsc15-100k" / "prepared" / "yoochoose-clicks-100k_train_full.txt"),
}
ALL = sorted([*ROOT.glob("notebooks/0[1-6]_*.ipynb"), ROOT / "notebooks" / "05b_hstu.ipynb",
              *ROOT.glob("notebooks/tensorflow/*.ipynb")])
LESSONS = ALL if os.environ.get("SESSREC_DATASET_LESSONS") == "all" else [p for p in ALL if p.name[:2] in ("01", "02", "03")
                                                                           and p.parent.name == "notebooks"]


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_on_a_real_log(lesson, dataset, tmp_path, monkeypatch):
    name, path = DATASETS[dataset]
    if not path.is_file():
        pytest.skip(f"{path} is not present: real research data lives in ../shared/data and is never copied here")
    monkeypatch.setenv("SESSREC_PROFILE", "ci")
    monkeypatch.setenv("SESSREC_DATASET", name)
    monkeypatch.setenv("SESSREC_DATASET_PATH", str(path))
    result = execute_notebook(lesson, tmp_path)
    executed = nbformat.read(tmp_path / lesson.name, as_version=4)
    assert result.status == "ok", f"{lesson.name} on {dataset}: {result.error} (executed copy: {tmp_path})"
    dirty = [text for cell in executed.cells if cell.cell_type == "code" for text in unclean_stderr(cell.outputs)]
    assert not dirty, f"{lesson.name} on {dataset} printed warnings: {dirty[:2]}"
    text = " ".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                    for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs)
    assert name in text, f"{lesson.name} never says it ran on {name}"
