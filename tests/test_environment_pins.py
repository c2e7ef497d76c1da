"""The pinned CPU environment: one source of truth, conda in step with pip, pins inside pyproject's ranges."""

from __future__ import annotations

import importlib.metadata as md
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, Requirement]:
    lines = (ROOT / "requirements" / "cpu.txt").read_text().splitlines()
    reqs = [Requirement(line.split("#")[0].strip()) for line in lines if line.split("#")[0].strip()]
    return {r.name.lower(): r for r in reqs}


def _conda_pip() -> list[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return [str(item) for item in pip_section]


def _pinned_version(req: Requirement) -> str:
    specs = list(req.specifier)
    assert len(specs) == 1 and specs[0].operator == "==", f"{req} must be pinned exactly (==)"
    return specs[0].version


def test_every_lock_entry_is_an_exact_pin():
    for req in _lock().values():
        _pinned_version(req)


def test_torch_is_pinned_to_the_local_cpu_wheel():
    assert _pinned_version(_lock()["torch"]) == "2.13.0", "torch must stay ==2.13.0 (local CPU wheel, no CUDA download)"


def test_conda_environment_installs_exactly_the_lock():
    conda = {Requirement(item).name.lower(): Requirement(item) for item in _conda_pip()}
    lock = _lock()
    assert sorted(conda) == sorted(lock), "environment.yml and requirements/cpu.txt list different packages"
    for name, req in lock.items():
        assert str(conda[name].specifier) == str(req.specifier), f"{name}: environment.yml and the lock disagree"
        assert conda[name].extras == req.extras, f"{name}: extras differ"


def test_conda_python_satisfies_requires_python():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert Requirement(f"python{requires}").specifier.contains(python.split("=", 1)[1] + ".0")


def test_lock_satisfies_pyproject_ranges():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ranges = [Requirement(r) for r in project["dependencies"]]
    ranges += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    lock = _lock()
    for rng in ranges:
        name = rng.name.lower()
        assert name in lock, f"pyproject needs {name} but requirements/cpu.txt does not pin it"
        assert rng.specifier.contains(_pinned_version(lock[name])), f"lock {lock[name]} is outside pyproject {rng}"


@pytest.mark.parametrize("name", sorted(_lock()))
def test_installed_versions_match_the_lock(name):
    try:
        installed = md.version(name)
    except md.PackageNotFoundError:
        pytest.fail(f"{name} is pinned in requirements/cpu.txt but not installed: run `make setup`")
    assert installed.split("+")[0] == _pinned_version(_lock()[name]), f"{name} {installed} differs from the lock"
