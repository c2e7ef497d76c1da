"""docs/design.md is the map of both trees: every module of the course package and of the benchmark tree is named."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DESIGN = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
TREES = {"sessrec_course": ROOT / "sessrec_course", "sessrec_bench": ROOT / "benchmarks" / "sessrec_bench"}


def modules(root: Path) -> list[str]:
    """Every module of a tree as its path below the tree's folder (``serving/server.py``)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.py"))


@pytest.mark.parametrize("tree", sorted(TREES))
def test_every_module_is_on_the_map(tree):
    missing = [m for m in modules(TREES[tree]) if f"`{m}`" not in DESIGN]
    assert not missing, f"docs/design.md does not name these {tree} modules: {missing}"


def test_the_map_names_no_module_that_is_gone():
    import re

    named = {m for m in re.findall(r"`([\w/]+\.py)`", DESIGN) if not m.startswith("tests/")}
    existing = {m for root in TREES.values() for m in modules(root)}
    assert named <= existing | {"model.py"}, f"docs/design.md names modules that do not exist: {named - existing}"
