"""Notebook hygiene and the execution harness: outputs never committed, a failing cell fails the test."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from sessrec_bench.course_runner import course_notebooks, notebook_kernel, run_course, summary_table

ROOT = Path(__file__).resolve().parents[1]


def _tracked_notebooks() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / line for line in out.stdout.split()]


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_lessons_are_tracked_and_numbered():
    lessons = course_notebooks()
    assert lessons, "no notebooks found under notebooks/"
    tracked = set(_tracked_notebooks())
    for path in lessons:
        assert path in tracked or not (ROOT / ".git").exists(), f"{path.name} is not tracked by git"
        named = re.fullmatch(r"\d\d[a-z]?_\w+\.ipynb", path.name)  # NN_title, or NNb_title right after lesson NN
        assert named, f"{path.name}: lessons are named NN_title.ipynb (or NNb_title.ipynb after lesson NN)"


@pytest.mark.parametrize("path", _tracked_notebooks(), ids=lambda p: p.name)
def test_tracked_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs; clear them before committing"
    kernel = notebook_kernel(path)  # notebooks/merlin/ run in the Merlin kernel, every other lesson in python3
    assert nb.metadata.get("kernelspec", {}).get("name") == kernel, f"{path.name}: kernelspec must be {kernel}"


def _run_nbval(notebook: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", str(notebook)],
        cwd=notebook.parent, capture_output=True, text=True, timeout=300,
    )


def test_nbval_harness_fails_on_a_raising_cell_and_passes_a_good_notebook(tmp_path):
    broken = _notebook(tmp_path / "broken.ipynb", "x = 1", "raise RuntimeError('lesson is broken')")
    good = _notebook(tmp_path / "good.ipynb", "x = 1", "assert x == 1")
    result = _run_nbval(broken)
    assert result.returncode != 0, result.stdout
    assert "lesson is broken" in result.stdout
    assert _run_nbval(good).returncode == 0


def test_course_runner_reports_failures_and_recorded_figures(tmp_path):
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    ok = _notebook(notebooks / "00_ok.ipynb", "from sessrec_course.report import record\nrecord('MRR@20', 0.25, model='GRU')",
                   "from sessrec_course import plots\nplots.pipeline_figure()")
    bad = _notebook(notebooks / "01_bad.ipynb", "1 / 0")
    results = run_course([ok, bad], out_dir=tmp_path / "build")
    assert [r.status for r in results] == ["ok", "FAILED"]
    assert results[0].figures == [{"metric": "MRR@20", "value": 0.25, "model": "GRU"}]
    assert "ZeroDivisionError" in results[1].error
    table = summary_table(results)
    assert "MRR@20 GRU=0.2500" in table and "FAILED" in table and "1 ok" in table
    executed = nbformat.read(tmp_path / "build" / "01_bad.ipynb", as_version=4)
    assert any(o.get("ename") == "ZeroDivisionError" for o in executed.cells[0].outputs)
    assert (tmp_path / "build" / "00_ok.html").read_text().count("MRR@20") >= 1
    figure_cell = nbformat.read(tmp_path / "build" / "00_ok.ipynb", as_version=4).cells[1]
    assert any("image/png" in o.get("data", {}) for o in figure_cell.outputs), "figures must render as PNG"
    assert "data:image/png;base64" in (tmp_path / "build" / "00_ok.html").read_text()


def test_course_runner_skips_a_lesson_whose_optional_kernel_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "no-kernels"))
    import sessrec_bench.course_runner as course

    monkeypatch.setattr(course, "missing_kernel", lambda kernel: f"kernel {kernel!r} is not installed (`make merlin`)")
    lesson = ROOT / "notebooks" / "merlin" / "01_nvtabular_etl.ipynb"
    results = run_course([lesson], out_dir=tmp_path / "build")
    assert [(r.status, r.error) for r in results] == [("skipped", "kernel 'sessrec-merlin' is not installed (`make merlin`)")]
    assert "1 skipped" in summary_table(results)
    assert not (tmp_path / "build" / lesson.name).exists()


def test_summary_table_wraps_long_figure_lists_between_figures():
    from sessrec_bench.course_runner import NotebookResult

    figures = [{"metric": "Recall@20", "value": i / 100, "model": f"model{i}"} for i in range(15)]
    table = summary_table([NotebookResult("01_data", "ok", 1.0, figures)], width=60)
    body = table.splitlines()[2:-1]
    assert len(body) > 1, "a long figure list wraps onto continuation lines"
    for i in range(15):
        assert sum(f"Recall@20 model{i}={i / 100:.4f}" in line for line in body) == 1, f"figure {i} split or lost"
