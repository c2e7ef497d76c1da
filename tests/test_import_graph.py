"""The import graphs of both trees: no cycles (module-, function-level or ``TYPE_CHECKING``), lower stages never
import higher ones, and the course package never reaches the benchmark tree (``sessrec_bench``), in code or strings."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "sessrec_course"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
BENCH = "sessrec_bench"
BENCH_ROOT = Path(__file__).resolve().parents[1] / "benchmarks" / BENCH

# Stage of each top-level part of the package, lowest first; a module may import only its own stage or lower.
LAYERS: dict[str, int] = {
    "ids": 0, "arrays": 0, "paths": 0, "device": 0, "profiles": 0, "environment": 0, "onnx_session": 0,
    "data": 1,
    "etl": 2,
    "evaluation": 3, "baselines": 3,
    "models": 4,
    "training": 5,
    "serving": 6,
    "plots": 7, "report": 7, "exercises": 7, "lesson": 7, "keras_lessons": 7, "merlin_lessons": 7, "__init__": 7,
}
# Within stage 0 the order still matters: profiles may use device, environment may use both, not the reverse.
STAGE0_ORDER = ("ids", "arrays", "paths", "device", "profiles", "environment")


def module_names(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Map every dotted module name of the package to its file."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        if is_init:
            parts = parts[:-1]
        names[".".join([package, *parts])] = path
    return names


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def import_edges(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Package modules that ``name`` imports anywhere in its file (module level, in functions, under TYPE_CHECKING)."""
    package = name if _is_package(name, modules) else name.rpartition(".")[0]
    edges: set[str] = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in modules else base)  # `from pkg import submodule` is an edge to it
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c` of a non-module attribute: nearest module
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
    return edges


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    """Module -> set of package modules it imports."""
    modules = module_names(root, package)
    return {name: import_edges(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def layer_of(module: str) -> tuple[int, int]:
    """(stage, order within stage 0) of a package module, from :data:`LAYERS`."""
    top = module.split(".")[1] if "." in module else "__init__"
    if top not in LAYERS:
        raise KeyError(f"{module}: add its top-level part {top!r} to LAYERS in tests/test_import_graph.py")
    return LAYERS[top], STAGE0_ORDER.index(top) if top in STAGE0_ORDER else 0


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Edges from a module to one of a higher stage (or higher in the stage-0 order)."""
    bad = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if target == PACKAGE:  # the package's own __init__ holds no code
                continue
            if layer_of(target) > layer_of(module):
                bad.append(f"{module} -> {target}")
    return bad


def test_finder_reports_a_synthetic_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_edges_cover_function_level_relative_and_submodule_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from pkg.high import g\n    return g\n")
    (pkg / "high.py").write_text("from . import low\nfrom .sub import thing\n")
    (pkg / "sub" / "__init__.py").write_text("from .. import low as _low\n")
    (pkg / "sub" / "thing.py").write_text("")
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.low"] == {"pkg.high"}
    assert graph["pkg.high"] == {"pkg.low", "pkg.sub.thing"}
    assert graph["pkg.sub"] == {"pkg.low"}
    assert find_cycles(graph) == [["pkg.high", "pkg.low"]]


def test_type_checking_imports_are_edges(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import X\n")
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.b"] == {"pkg.a"}  # an annotation-only import still ties the two modules together
    assert find_cycles(graph) == [["pkg.a", "pkg.b"]]


def test_layer_rule_catches_a_synthetic_upward_import():
    assert layer_violations({f"{PACKAGE}.data.x": {f"{PACKAGE}.serving.y"}}) == [
        f"{PACKAGE}.data.x -> {PACKAGE}.serving.y"]
    assert layer_violations({f"{PACKAGE}.profiles": {f"{PACKAGE}.environment"}}) == [
        f"{PACKAGE}.profiles -> {PACKAGE}.environment"]
    assert layer_violations({f"{PACKAGE}.serving.y": {f"{PACKAGE}.data.x"}}) == []


@pytest.mark.parametrize("tree", [PACKAGE, BENCH])
def test_package_has_no_import_cycles(tree):
    cycles = find_cycles(import_graph(ROOT, PACKAGE) if tree == PACKAGE else import_graph(BENCH_ROOT, BENCH))
    assert not cycles, f"import cycles in {tree}:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def bench_references(root: Path = ROOT, bench: str = BENCH) -> list[str]:
    """Every line of the course package that names the benchmark tree: an import, or a string that may run one."""
    return [f"{path.relative_to(root.parent)}:{number}: {line.strip()}"
            for path in sorted(root.rglob("*.py"))
            for number, line in enumerate(path.read_text().splitlines(), 1) if bench in line]


def test_course_package_never_names_the_benchmark_tree():
    found = bench_references()
    assert not found, f"the course package must not import {BENCH} (it imports the course):\n" + "\n".join(found)


def test_bench_reference_finder_sees_strings_and_imports(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("import os\ncode = 'from sessrec_bench.speed import x'\n")
    (pkg / "b.py").write_text("def f():\n    import sessrec_bench\n")
    (pkg / "c.py").write_text("import sessrec_course\n")
    assert [line.split(":")[0:2] for line in bench_references(pkg)] == [["pkg/a.py", "2"], ["pkg/b.py", "2"]]


def test_lower_stages_never_import_higher_ones():
    bad = layer_violations(import_graph())
    assert not bad, "imports against the stage order in LAYERS:\n" + "\n".join(bad)


@pytest.mark.parametrize("module", sorted(module_names()))
def test_every_module_has_a_layer(module):
    layer_of(module)
