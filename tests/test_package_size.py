"""The course package stays a library a learner reads: its size and the files beside lessons 03-05 (issue #34)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sessrec_course"
BUDGET = 10_000  # lines of the whole course package, exercises and the TensorFlow, Merlin and serving helpers included
BESIDE_LESSONS = 800  # the torch model files, the module that defines fit, and training/common.py


def lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def beside_lessons() -> list[Path]:
    """What a learner opens beside lessons 03-05: models/torch_*.py but the export, the trainer, common.py."""
    models = [p for p in sorted((PACKAGE / "models").glob("torch_*.py")) if p.name != "torch_export.py"]
    return [*models, PACKAGE / "training" / "torch_trainer.py", PACKAGE / "training" / "common.py"]


def test_the_course_package_stays_within_its_budget():
    sizes = {str(p.relative_to(PACKAGE)): lines(p) for p in PACKAGE.rglob("*.py")}
    total = sum(sizes.values())
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    assert total <= BUDGET, f"sessrec_course has {total} lines (budget {BUDGET}); largest files: {largest}"


def test_the_files_beside_lessons_03_to_05_read_in_one_sitting():
    sizes = {p.name: lines(p) for p in beside_lessons()}
    assert {"torch_base.py", "torch_mlp.py", "torch_gru.py", "torch_transformer.py", "torch_trainer.py"} <= set(sizes)
    assert sum(sizes.values()) <= BESIDE_LESSONS, f"{sum(sizes.values())} lines beside lessons 03-05: {sizes}"
