"""The instructor guide's 2-hour table from ``docs/workshop_plan.toml`` and the measured kernel time of each lesson.

``python docs/site/workshop.py [--notebooks build/notebooks]`` rewrites the table between the markers of
``docs/instructor_guide.md``; each slot's minutes are its stated explanation and live-exercise times plus the
lesson's kernel time measured in the executed notebooks (rounded up to a whole minute).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tomllib
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from build import lesson_seconds  # noqa: E402

ROOT = HERE.parents[1]
PLAN = ROOT / "docs" / "workshop_plan.toml"
GUIDE = ROOT / "docs" / "instructor_guide.md"
START, END = "<!-- workshop-table:start -->", "<!-- workshop-table:end -->"


def read_plan(path: Path = PLAN) -> dict:
    """The plan, checked: every slot names a lesson and whole minutes; at most one live exercise each."""
    with path.open("rb") as handle:
        plan = tomllib.load(handle)
    for slot in plan["slot"]:
        if not isinstance(slot.get("live", ""), str):
            raise ValueError(f"{path}: {slot['lesson']}: `live` is one exercise (the rest goes to `homework`)")
        for key in ("explain_min", "solve_min"):
            if int(slot.get(key, 0)) != slot.get(key, 0) or slot.get(key, 0) < 0:
                raise ValueError(f"{path}: {slot['lesson']}: {key} must be whole minutes >= 0")
    return plan


def kernel_minutes(notebooks: Path, lesson: str) -> int:
    """Measured kernel time of an executed lesson, rounded up to whole minutes."""
    path = notebooks / f"{lesson}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run the lessons first (make test or SESSREC_PROFILE=ci make course)")
    return math.ceil(lesson_seconds(nbformat.read(path, as_version=4)) / 60)


def schedule(plan: dict, notebooks: Path) -> list[dict]:
    """One row per slot (and the break after the fourth): start/end minute and the minutes it is made of."""
    rows, clock = [], 0
    for index, slot in enumerate(plan["slot"]):
        if index == 4 and plan.get("break_min"):
            rows.append({"lesson": "break", "start": clock, "end": clock + plan["break_min"]})
            clock += plan["break_min"]
        kernel = kernel_minutes(notebooks, slot["lesson"])
        minutes = slot["explain_min"] + kernel + slot.get("solve_min", 0)
        rows.append({**slot, "kernel_min": kernel, "start": clock, "end": clock + minutes})
        clock += minutes
    return rows


def _clock(minute: int) -> str:
    return f"{minute // 60}:{minute % 60:02d}"


def table(rows: list[dict], budget: int) -> str:
    """The markdown table of a schedule, with its total against the budget."""
    lines = ["| time | lesson | explain | run live (kernel time) | show from the pre-run | live exercise | homework |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        if row["lesson"] == "break":
            lines.append(f"| {_clock(row['start'])}–{_clock(row['end'])} | break | | | | | |")
            continue
        live = f"`{row['live']}` ({row['solve_min']} min)" if row.get("live") else "—"
        homework = ", ".join(f"`{name}`" for name in row.get("homework", [])) or "—"
        lines.append(f"| {_clock(row['start'])}–{_clock(row['end'])} | {row['lesson']} | {row['explain_min']} min | "
                     f"{row['run_live']} ({row['kernel_min']} min) | {row['show']} | {live} | {homework} |")
    total = rows[-1]["end"] if rows else 0
    lines += ["", f"Total: **{total} min** of a {budget}-minute slot (explanation + measured kernel time + one "
                  "live exercise per lesson)."]
    return "\n".join(lines)


def rewrite_guide(text: str, new_table: str) -> str:
    """``text`` with the table between the markers replaced."""
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"the instructor guide has no {START} ... {END} markers")
    return pattern.sub(lambda _: f"{START}\n{new_table}\n{END}", text)


def main(argv: list[str] | None = None) -> int:
    """Command line: rewrite the guide's table from the plan and the executed lessons."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=Path, default=ROOT / "build" / "notebooks")
    args = parser.parse_args(argv)
    plan = read_plan()
    rows = schedule(plan, args.notebooks)
    GUIDE.write_text(rewrite_guide(GUIDE.read_text(encoding="utf-8"), table(rows, plan["budget_min"])),
                     encoding="utf-8")
    print(f"{GUIDE}: {rows[-1]['end']} min of {plan['budget_min']}")
    return 0 if rows[-1]["end"] <= plan["budget_min"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
