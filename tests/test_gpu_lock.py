"""The GPU lock (requirements/gpu.txt + gpu.lock.json) and its checker docker/gpu_lock.py.

The checker runs on the real lock (it must be clean) and on small hand-made locks whose one defect it must name.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_lock", ROOT / "docker" / "gpu_lock.py")
gpu_lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_lock)


def _pkg(version: str, requires: list[str] | None = None, wheel: str | None = None, python: str = ">=3.10") -> dict:
    return {"version": version, "requires_dist": requires or [], "requires_python": python, "sha256": "0" * 64,
            "wheel": wheel or f"x-{version}-py3-none-any.whl"}


def _lock(**packages: dict) -> dict[str, dict]:
    for name, info in packages.items():
        info["wheel"] = info["wheel"].replace("x-", f"{name.replace('-', '_')}-", 1)
    return packages


# ------------------------------------------------------------------------------------------- the real lock
def test_the_committed_gpu_lock_is_consistent():
    assert gpu_lock.check() == []


def test_gpu_lock_has_the_numpy_and_pandas_majors_cudf_needs():
    packages = gpu_lock.load_lock()["packages"]
    assert packages["numpy"]["version"].startswith("2.")
    assert packages["pandas"]["version"].startswith("3.")
    assert packages["torch"]["version"] == "2.13.0"
    assert "cudf-cu13" in packages and "onnxruntime-gpu" in packages and "tensorflow" in packages
    # the Dask ETL on GPUs: dask-cudf and dask-cuda from the same RAPIDS release as cuDF
    rapids = packages["cudf-cu13"]["version"].rsplit(".", 1)[0]
    assert packages["dask-cudf-cu13"]["version"].startswith(rapids + ".")
    assert packages["dask-cuda"]["version"].startswith(rapids + ".")


@pytest.mark.skipif(os.environ.get("SESSREC_LOCK") != "requirements/gpu.txt",
                    reason="runs inside the GPU image only (SESSREC_LOCK=requirements/gpu.txt, set by docker/Dockerfile)")
def test_the_image_has_exactly_the_locked_versions_installed():
    wrong = {}
    for name, info in gpu_lock.load_lock()["packages"].items():
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            installed = None
        if installed != info["version"]:
            wrong[name] = (installed, info["version"])
    assert not wrong, f"installed vs locked: {wrong}"


def test_requirements_output_pins_every_wheel_with_its_hash():
    lock = gpu_lock.load_lock()
    lines = gpu_lock.requirements_text(lock).splitlines()
    assert len(lines) == len(lock["packages"])
    numpy_line = next(line for line in lines if line.startswith("numpy=="))
    assert numpy_line == f"numpy=={lock['packages']['numpy']['version']} --hash=sha256:{lock['packages']['numpy']['sha256']}"


def test_requirements_command_runs_with_the_standard_library_only():
    # The Dockerfile runs it with the base image's bare python3: -S -I leaves out every site-packages (no packaging).
    cmd = [sys.executable, "-S", "-I", str(ROOT / "docker" / "gpu_lock.py"), "requirements"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert out.count("--hash=sha256:") == len(gpu_lock.load_lock()["packages"])


def test_cpu_constraints_swap_gpu_builds_and_drop_cuda_only_packages():
    pins = ["cudf-cu13==26.10.2", "dask-cudf-cu13==26.10.2", "dask-cuda[cu13]==26.10.0", "onnxruntime-gpu==1.31.1",
            "tensorflow[and-cuda]==2.21.0", "tritonclient[http,grpc]==2.73.0", "numpy==2.4.6", "torch==2.13.0"]
    assert gpu_lock.cpu_constraints(pins).splitlines() == [
        "onnxruntime==1.31.1", "tritonclient==2.73.0", "numpy==2.4.6", "torch==2.13.0",
    ]


# ------------------------------------------------------------------------------------------- defects it finds
def test_closure_accepts_a_consistent_graph_with_extras_and_markers():
    packages = _lock(
        a=_pkg("1.0", ["b>=2", "c; extra == 'fast'", "d; python_version < '3.12'"]),
        b=_pkg("2.1"),
        c=_pkg("0.5"),
    )
    assert gpu_lock.closure_problems(["a[fast]==1.0"], packages) == []


def test_closure_names_a_missing_dependency():
    packages = _lock(a=_pkg("1.0", ["b>=2"]))
    assert gpu_lock.closure_problems(["a==1.0"], packages) == ["a==1.0 requires b>=2 but b is not in the lock"]


def test_closure_names_a_version_outside_the_required_range():
    packages = _lock(a=_pkg("1.0", ["b<2"]), b=_pkg("2.1"))
    assert gpu_lock.closure_problems(["a==1.0"], packages) == ["a==1.0 requires b<2 but the lock has b==2.1"]


def test_closure_evaluates_markers_for_python_312_not_the_running_python():
    # A backport needed only before 3.12 is dead weight in the image, whatever Python resolved the lock.
    packages = _lock(a=_pkg("1.0", ["overrides; python_version < '3.12'"]), overrides=_pkg("7.7.0"))
    assert gpu_lock.closure_problems(["a==1.0"], packages) == [f"overrides==7.7.0{gpu_lock.NOT_NEEDED}"]
    lock = {"packages": dict(packages)}
    assert gpu_lock.prune_unneeded(lock, ["a==1.0"]) == ["overrides"]
    assert list(lock["packages"]) == ["a"]


def test_closure_follows_extras_requested_by_a_dependency():
    packages = _lock(a=_pkg("1.0", ["b[grpc]"]), b=_pkg("2.0", ["grpcio>=1; extra == 'grpc'"]))
    assert gpu_lock.closure_problems(["a==1.0"], packages) == [
        "b==2.0 requires grpcio>=1; extra == \"grpc\" but grpcio is not in the lock"
    ]


def test_package_checks_reject_wheels_the_image_cannot_install():
    packages = _lock(
        good=_pkg("1.0", wheel="x-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"),
        newglibc=_pkg("1.0", wheel="x-1.0-cp312-cp312-manylinux_2_40_x86_64.whl"),
        py311=_pkg("1.0", wheel="x-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"),
        arm=_pkg("1.0", wheel="x-1.0-py3-none-manylinux_2_28_aarch64.whl"),
        oldpython=_pkg("1.0", python="<3.12"),
    )
    problems = gpu_lock.package_problems(packages)
    assert [p.split(":")[0].split("==")[0] for p in problems] == ["newglibc", "py311", "arm", "oldpython"]


def test_cross_lock_check_names_an_unexplained_difference_from_the_cpu_lock():
    packages = _lock(numpy=_pkg("2.4.6"), scipy=_pkg("1.18.1"), pandas=_pkg("3.0.6"))
    pyproject = {"project": {"dependencies": ["numpy>=1.26"], "optional-dependencies": {}}}
    problems = gpu_lock.cross_lock_problems(["numpy==2.4.6"], packages, ["numpy==1.26.4", "scipy==1.16.3"], pyproject)
    assert len(problems) == 1 and problems[0].startswith("scipy: CPU lock ==1.16.3, GPU lock 1.18.1")


def test_cross_lock_check_names_a_pyproject_range_the_gpu_lock_breaks():
    packages = _lock(numpy=_pkg("2.4.6"))
    pyproject = {"project": {"dependencies": ["numpy<2", "pandas>=2"], "optional-dependencies": {}}}
    assert gpu_lock.cross_lock_problems([], packages, [], pyproject) == [
        "pyproject needs numpy<2 but the GPU lock has numpy==2.4.6",
        "pyproject needs pandas>=2 but the GPU lock does not contain pandas",
    ]


def test_check_notices_a_pins_file_edited_after_the_lock_was_resolved(tmp_path):
    pins = tmp_path / "gpu.txt"
    pins.write_text(gpu_lock.PINS.read_text().replace("numpy==2.4.6", "numpy==2.4.5"))
    problems = gpu_lock.check(pins_path=pins)
    assert problems[0] == "gpu.lock.json was not resolved from the current gpu.txt: run `make gpu-lock`"
    assert "gpu.txt requires numpy==2.4.5 but the lock has numpy==2.4.6" in problems


def test_lock_from_report_keeps_the_wheel_hash_and_metadata():
    report = {"install": [{
        "metadata": {"name": "Foo_Bar", "version": "1.2", "requires_dist": ["numpy>=2"], "requires_python": ">=3.10"},
        "download_info": {"url": "https://files.example/p/foo_bar-1.2-py3-none-any.whl",
                          "archive_info": {"hashes": {"sha256": "a" * 64}}},
    }]}
    lock = gpu_lock.lock_from_report(report, "b" * 64, "26.3")
    assert lock["packages"] == {"foo-bar": {"version": "1.2", "wheel": "foo_bar-1.2-py3-none-any.whl", "sha256": "a" * 64,
                                            "requires_python": ">=3.10", "requires_dist": ["numpy>=2"]}}
    assert lock["base_image"] == gpu_lock.BASE_IMAGE and lock["pins_sha256"] == "b" * 64
    json.dumps(lock)  # what compile writes must be plain JSON


@pytest.mark.parametrize("flag", ["--python-version", "--only-binary=:all:", "manylinux_2_39_x86_64", "manylinux2014_x86_64"])
def test_pip_resolves_for_the_image_not_this_machine(flag):
    assert flag in gpu_lock.pip_platform_args()
