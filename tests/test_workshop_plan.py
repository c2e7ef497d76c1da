"""The 2-hour workshop plan: its arithmetic, its exercises, the guide's table, and the measured total within budget."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "site"))
import workshop  # noqa: E402

EXECUTED = ROOT / "build" / "notebooks"


def _timed_notebook(path: Path, seconds: list[float]) -> None:
    cells = []
    for s in seconds:
        cell = nbformat.v4.new_code_cell("pass")
        cell.metadata["execution"] = {"iopub.execute_input": "2026-12-07T10:00:00.000Z",
                                      "shell.execute_reply": f"2026-12-07T10:{int(s // 60):02d}:{s % 60:06.3f}Z"}
        cells.append(cell)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)


def test_schedule_adds_measured_minutes_rounded_up_and_the_break(tmp_path):
    plan = {"budget_min": 30, "break_min": 5, "slot": [
        {"lesson": f"l{i}", "explain_min": 2, "solve_min": i, "run_live": "x", "show": "y",
         **({"live": f"m.q{i}"} if i else {})} for i in range(5)]}
    for i in range(5):
        _timed_notebook(tmp_path / f"l{i}.ipynb", [30.0, 31.0 * i])  # 0:30 + i*0:31
    rows = workshop.schedule(plan, tmp_path)
    assert [r["lesson"] for r in rows] == ["l0", "l1", "l2", "l3", "break", "l4"]
    assert [r.get("kernel_min") for r in rows] == [1, 2, 2, 3, None, 3]
    assert rows[0]["end"] == 3 and rows[1] == {**rows[1], "start": 3, "end": 8}
    assert rows[4]["end"] - rows[4]["start"] == 5 and rows[-1]["end"] == 3 + 5 + 6 + 8 + 5 + 9
    text = workshop.table(rows, plan["budget_min"])
    assert "| 0:08–0:14 | l2 | 2 min | x (2 min) | y | `m.q2` (2 min) | — |" in text
    assert "Total: **36 min** of a 30-minute slot" in text


def test_plan_rejects_two_live_exercises(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text('budget_min = 10\n[[slot]]\nlesson = "a"\nexplain_min = 1\nlive = ["x.q1", "x.q2"]\n')
    with pytest.raises(ValueError, match="one exercise"):
        workshop.read_plan(path)


def test_rewrite_needs_the_markers():
    assert workshop.rewrite_guide(f"a\n{workshop.START}\nold\n{workshop.END}\nb", "new") == \
        f"a\n{workshop.START}\nnew\n{workshop.END}\nb"
    with pytest.raises(ValueError, match="markers"):
        workshop.rewrite_guide("no table here", "new")


def _exercises(module: str) -> set[str]:
    mod = importlib.import_module(f"sessrec_course.exercises.{module}")
    return {f"{module}.{name}" for name in dir(mod) if name[:1] == "q" and name[1:].isdigit()}


def test_every_exercise_of_the_path_is_live_or_homework_once():
    plan = workshop.read_plan()
    named = [s["live"] for s in plan["slot"] if s.get("live")] + [h for s in plan["slot"] for h in s.get("homework", [])]
    assert len(named) == len(set(named)), "an exercise is named twice in docs/workshop_plan.toml"
    modules = {name.split(".")[0] for name in named}
    assert set(named) == set().union(*(_exercises(m) for m in modules))


def test_the_guide_shows_the_plan():
    plan = workshop.read_plan()
    guide = workshop.GUIDE.read_text(encoding="utf-8")
    assert workshop.START in guide and workshop.END in guide, "no workshop table: run python docs/site/workshop.py"
    block = guide.split(workshop.START)[1].split(workshop.END)[0]
    for slot in plan["slot"]:
        row = next((line for line in block.splitlines() if f"| {slot['lesson']} |" in line), None)
        assert row is not None, f"{slot['lesson']} is missing from the guide's table: run python docs/site/workshop.py"
        assert f"| {slot['explain_min']} min |" in row and slot["run_live"] in row
        if slot.get("live"):
            assert f"`{slot['live']}` ({slot['solve_min']} min)" in row


def test_measured_path_fits_the_budget():
    if not (EXECUTED / "06_serving_with_triton.ipynb").is_file():
        pytest.skip(f"no executed lessons in {EXECUTED}: make test runs the notebooks before this test")
    plan = workshop.read_plan()
    rows = workshop.schedule(plan, EXECUTED)
    assert rows[-1]["end"] <= plan["budget_min"], workshop.table(rows, plan["budget_min"])
