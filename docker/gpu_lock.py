"""The GPU lock of the course image: resolve it, check it, and turn it into pip input.

``requirements/gpu.txt`` holds the direct, exact pins of the GPU container. ``requirements/gpu.lock.json`` is
their full closure as pip's resolver chose it for the image (Python 3.12, manylinux x86_64): one wheel per
package with its sha256, its Requires-Dist and Requires-Python. The Dockerfile installs exactly that closure
(``--no-deps --require-hashes``), so an image build never resolves anything and never drifts.

Why a stored closure instead of resolving in CI: a dry run of pip's resolver for the image platform downloads
every wheel to read its metadata (the index offers no separate metadata files), measured at 5.8 GB and 40-75 s
per run. ``check`` instead verifies, offline and in well under a second, that the stored closure is exactly what
the pins need for Python 3.12 on Linux x86_64 (markers and extras evaluated for the image, which pip's resolver
does not do when it runs on another Python), that every requirement edge is satisfied, that every wheel is
installable there, and that the lock satisfies pyproject's ranges and agrees with the CPU lock except where a
reason is recorded. That the pins are really published is shown by pip itself: ``make test-gpulock`` installs
the CPU-usable direct pins (numpy 2, pandas 3, transformers, onnx, ...) from the index into a second venv, and
``make docker-build`` installs the whole closure with ``--require-hashes``. ``compile`` (``make gpu-lock``) is
the only step that downloads the GPU wheels.

Commands (Python 3.11+; ``requirements`` and ``constraints`` need only the standard library, so the image's
bare Python can run them)::

    python docker/gpu_lock.py compile            # re-resolve gpu.txt -> gpu.lock.json (downloads ~6 GB)
    python docker/gpu_lock.py check              # consistency checks; exit 1 listing every problem
    python docker/gpu_lock.py requirements       # the closure as pip requirements with hashes
    python docker/gpu_lock.py constraints --cpu  # pip constraints (direct pins) for the CPU-only second venv
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PINS = ROOT / "requirements" / "gpu.txt"
LOCK = ROOT / "requirements" / "gpu.lock.json"
CPU_PINS = ROOT / "requirements" / "cpu.txt"
PYPROJECT = ROOT / "pyproject.toml"

BASE_IMAGE = "nvcr.io/nvidia/tritonserver:26.10-py3"
IMAGE_PYTHON = (3, 12, 3)  # Ubuntu 24.04's python3 in the Triton image
IMAGE_GLIBC_MINOR = 39  # Ubuntu 24.04: glibc 2.39
IMAGE_PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(IMAGE_GLIBC_MINOR, 16, -1)] + [
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64",
]

NOT_NEEDED = " is locked but nothing needs it on the image"
# Packages that exist only for the GPU: left out of the CPU-only second venv, with the CPU twin to use instead.
GPU_ONLY_PREFIXES = ("cudf-", "libcudf-", "pylibcudf-", "rmm-", "librmm-", "libkvikio-", "cupy-", "nvidia-", "cuda-",
                     "numba-cuda", "rapids-", "dask-cuda", "dask-cudf-", "tensorflow", "keras")
GPU_ONLY_NAMES = {"triton"}  # torch's GPU kernel compiler (not tritonclient)
CPU_TWINS = {"onnxruntime-gpu": "onnxruntime"}
# Packages whose version may differ between the CPU lock and this one, and why.
ALLOWED_TO_DIFFER = {
    "numpy": "cuDF 26.10 needs numpy>=2; the CPU lock keeps 1.26 for nvidia-pytriton",
    "pandas": "cuDF 26.10 needs pandas>=3",
    "dask": "RAPIDS 26.10 (rapids-dask-dependency 26.10.0) requires dask 2026.7.1; the CPU lock has 2026.8.0",
    "distributed": "RAPIDS 26.10 (rapids-dask-dependency 26.10.0) requires distributed 2026.7.1",
}


def canonical(name: str) -> str:
    """Return the PEP 503 normalised form of a project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def image_environment() -> dict[str, str]:
    """Return the PEP 508 marker environment of the image's Python."""
    major, minor, micro = IMAGE_PYTHON
    return {
        "implementation_name": "cpython", "implementation_version": f"{major}.{minor}.{micro}",
        "os_name": "posix", "platform_machine": "x86_64", "platform_release": "", "platform_system": "Linux",
        "platform_version": "", "python_full_version": f"{major}.{minor}.{micro}",
        "platform_python_implementation": "CPython", "python_version": f"{major}.{minor}", "sys_platform": "linux",
    }


def read_pins(path: Path = PINS) -> list[str]:
    """Return the requirement lines of a pins file (comments and blanks dropped)."""
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


def load_lock(path: Path = LOCK) -> dict:
    """Return the stored closure (``{"packages": {name: {...}}, ...}``)."""
    return json.loads(path.read_text())


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------- compile
def pip_platform_args() -> list[str]:
    """Return pip's flags that make it choose wheels for the image instead of this machine."""
    args = ["--python-version", "{}.{}".format(*IMAGE_PYTHON[:2]), "--only-binary=:all:"]
    for platform in IMAGE_PLATFORMS:
        args += ["--platform", platform]
    return args


def _sha256(archive_info: dict) -> str:
    """Return the sha256 from a report's archive_info (``hashes`` since pip 23, ``hash`` before)."""
    if "sha256" in archive_info.get("hashes", {}):
        return archive_info["hashes"]["sha256"]
    algorithm, _, digest = archive_info.get("hash", "").partition("=")
    if algorithm != "sha256":
        raise ValueError(f"pip's report gives no sha256 for a wheel: {archive_info}")
    return digest


def lock_from_report(report: dict, pins_sha256: str, pip_version: str) -> dict:
    """Turn a ``pip install --dry-run --report`` document into the stored closure."""
    packages = {}
    for item in report["install"]:
        meta = item["metadata"]
        url = item["download_info"]["url"]
        packages[canonical(meta["name"])] = {
            "version": meta["version"],
            "wheel": url.rsplit("/", 1)[-1],
            "sha256": _sha256(item["download_info"]["archive_info"]),
            "requires_python": meta.get("requires_python", ""),
            "requires_dist": meta.get("requires_dist", []),
        }
    return {
        "base_image": BASE_IMAGE, "python": "{}.{}.{}".format(*IMAGE_PYTHON), "platforms": IMAGE_PLATFORMS,
        "pins_sha256": pins_sha256, "resolved_by": f"pip {pip_version} --dry-run --report",
        "resolved_on": dt.date.today().isoformat(), "packages": dict(sorted(packages.items())),
    }


def compile_lock(pins: Path = PINS, out: Path = LOCK) -> dict:
    """Resolve ``pins`` with pip for the image platform and write the closure to ``out`` (atomically)."""
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        # --target: older pips accept platform options only with it; with --dry-run nothing is written there.
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--target", str(Path(tmp) / "target"), "--report", str(report_path), *pip_platform_args(),
               "-r", str(pins)]
        subprocess.run(cmd, check=True)
        report = json.loads(report_path.read_text())
    lock = lock_from_report(report, sha256_of(pins), report.get("pip_version", "?"))
    prune_unneeded(lock, read_pins(pins))
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(lock, indent=1, sort_keys=False) + "\n")
    tmp_out.replace(out)
    return lock


def prune_unneeded(lock: dict, pins: list[str]) -> list[str]:
    """Drop packages nothing needs on the image; return their names.

    pip evaluates markers with the Python it runs on, not ``--python-version``: resolving on 3.11 pulls in
    backports such as ``overrides; python_version < "3.12"`` that the image's 3.12 never imports.
    """
    unneeded = [p.split("==")[0] for p in closure_problems(pins, lock["packages"]) if p.endswith(NOT_NEEDED)]
    for name in unneeded:
        del lock["packages"][name]
    return unneeded


# ---------------------------------------------------------------------------------------------------- check
def image_tags() -> set:
    """Return every wheel tag the image's pip accepts."""
    from packaging import tags

    version = IMAGE_PYTHON[:2]
    found = set(tags.cpython_tags(version, abis=["cp{}{}".format(*version)], platforms=IMAGE_PLATFORMS))
    found |= set(tags.compatible_tags(version, "cp{}{}".format(*version), platforms=IMAGE_PLATFORMS))
    return found


def closure_problems(roots: list[str], packages: dict[str, dict], env: dict[str, str] | None = None) -> list[str]:
    """Walk the requirement graph from ``roots`` for the image; return every inconsistency, empty when none.

    Checks that every requirement whose marker holds (extras propagated) names a locked package whose version
    satisfies it, and that nothing is locked that the roots do not need.
    """
    from packaging.requirements import Requirement

    env = env or image_environment()
    problems: list[str] = []
    wanted: dict[str, set[str]] = {}
    queue: deque[tuple[str, Requirement]] = deque(("gpu.txt", Requirement(line)) for line in roots)
    while queue:
        parent, req = queue.popleft()
        name = canonical(req.name)
        if name not in packages:
            problems.append(f"{parent} requires {req} but {name} is not in the lock")
            continue
        version = packages[name]["version"]
        if not req.specifier.contains(version, prereleases=True):
            problems.append(f"{parent} requires {req} but the lock has {name}=={version}")
        previous = wanted.get(name)
        todo = ({""} if previous is None else set()) | (set(req.extras) - (previous or set()))
        if not todo:
            continue
        wanted.setdefault(name, set()).update(req.extras)
        for line in packages[name].get("requires_dist") or []:
            dep = Requirement(line)
            applies = "" in todo if dep.marker is None else any(
                dep.marker.evaluate({**env, "extra": extra}) for extra in todo
            )
            if applies:
                queue.append((f"{name}=={version}", dep))
    for name in sorted(set(packages) - set(wanted)):
        problems.append(f"{name}=={packages[name]['version']}{NOT_NEEDED}")
    return list(dict.fromkeys(problems))


def package_problems(packages: dict[str, dict]) -> list[str]:
    """Return packages whose wheel or Requires-Python does not fit the image's Python and platform."""
    from packaging.specifiers import SpecifierSet
    from packaging.utils import parse_wheel_filename

    accepted = image_tags()
    python = "{}.{}.{}".format(*IMAGE_PYTHON)
    problems = []
    for name, info in packages.items():
        wheel_name, wheel_version, _, wheel_tags = parse_wheel_filename(info["wheel"])
        if canonical(str(wheel_name)) != name or str(wheel_version) != info["version"]:
            problems.append(f"{name}: wheel {info['wheel']} is not {name}=={info['version']}")
        if not wheel_tags & accepted:
            problems.append(f"{name}: wheel {info['wheel']} does not install on CPython {python} {IMAGE_PLATFORMS[0]}")
        if info.get("requires_python") and not SpecifierSet(info["requires_python"]).contains(python):
            problems.append(f"{name}=={info['version']} requires Python {info['requires_python']}, image has {python}")
        if not re.fullmatch(r"[0-9a-f]{64}", info.get("sha256", "")):
            problems.append(f"{name}: missing or malformed sha256")
    return problems


def cross_lock_problems(pins: list[str], packages: dict[str, dict], cpu_pins: list[str], pyproject: dict) -> list[str]:
    """Return where the GPU lock breaks pyproject's ranges or differs from the CPU lock without a reason."""
    from packaging.requirements import Requirement

    problems = []
    project = pyproject["project"]
    ranges = [Requirement(r) for r in project["dependencies"]]
    ranges += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    for rng in ranges:
        name = canonical(rng.name)
        if name in packages and not rng.specifier.contains(packages[name]["version"], prereleases=True):
            problems.append(f"pyproject needs {rng} but the GPU lock has {name}=={packages[name]['version']}")
        elif name not in packages and rng in [Requirement(r) for r in project["dependencies"]]:
            problems.append(f"pyproject needs {rng} but the GPU lock does not contain {name}")
    for line in cpu_pins:
        req = Requirement(line)
        name = canonical(req.name)
        if name in packages and name not in ALLOWED_TO_DIFFER:
            if not req.specifier.contains(packages[name]["version"], prereleases=True):
                problems.append(f"{name}: CPU lock {req.specifier}, GPU lock {packages[name]['version']} "
                                "(add it to ALLOWED_TO_DIFFER with the reason if this is intended)")
    for line in pins:
        spec = list(Requirement(line).specifier)
        if len(spec) != 1 or spec[0].operator != "==":
            problems.append(f"requirements/gpu.txt: {line} is not an exact (==) pin")
    return problems


def check(pins_path: Path = PINS, lock_path: Path = LOCK, cpu_path: Path = CPU_PINS,
          pyproject_path: Path = PYPROJECT) -> list[str]:
    """Run every offline check of the GPU lock; return the problems (empty list: consistent)."""
    pins = read_pins(pins_path)
    lock = load_lock(lock_path)
    problems = []
    if lock.get("pins_sha256") != sha256_of(pins_path):
        problems.append(f"{lock_path.name} was not resolved from the current {pins_path.name}: run `make gpu-lock`")
    if lock.get("base_image") != BASE_IMAGE or lock.get("python") != "{}.{}.{}".format(*IMAGE_PYTHON):
        problems.append(f"{lock_path.name} was resolved for {lock.get('base_image')} / Python {lock.get('python')}")
    packages = lock["packages"]
    problems += closure_problems(pins, packages)
    problems += package_problems(packages)
    problems += cross_lock_problems(pins, packages, read_pins(cpu_path), tomllib.loads(pyproject_path.read_text()))
    return problems


# ---------------------------------------------------------------------------------------------------- output
def requirements_text(lock: dict) -> str:
    """Return the closure as pip requirements with hashes (for ``pip install --no-deps --require-hashes``)."""
    lines = [f"{name}=={info['version']} --hash=sha256:{info['sha256']}" for name, info in lock["packages"].items()]
    return "\n".join(lines) + "\n"


def is_gpu_only(name: str) -> bool:
    """Return True for packages that only make sense with CUDA (left out of the CPU-only venv)."""
    return name.startswith(GPU_ONLY_PREFIXES) or name in GPU_ONLY_NAMES


def cpu_constraints(pins: list[str]) -> str:
    """Return pip constraints for the CPU-only second venv: the CPU-usable direct pins of the GPU lock.

    Only the direct pins (numpy 2, pandas 3, pyarrow, scipy, transformers, onnx, ...): the transitive closure
    was resolved for Python 3.12 and some of its versions do not exist for the 3.11 of the CPU machines.
    GPU twins are swapped for their CPU builds (onnxruntime-gpu -> onnxruntime at the same version).
    """
    lines = []
    for line in pins:
        name, _, version = re.sub(r"\[.*?\]", "", line).partition("==")
        name = CPU_TWINS.get(canonical(name), canonical(name))
        if not is_gpu_only(name):
            lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("compile", help="re-resolve requirements/gpu.txt into requirements/gpu.lock.json")
    sub.add_parser("check", help="consistency checks of the GPU lock (offline)")
    sub.add_parser("requirements", help="print the closure as hashed pip requirements")
    constraints_parser = sub.add_parser("constraints", help="print pip constraints")
    constraints_parser.add_argument("--cpu", action="store_true", required=True, help="CPU-usable packages only")
    args = parser.parse_args(argv)
    if args.command == "compile":
        lock = compile_lock()
        print(f"{LOCK.relative_to(ROOT)}: {len(lock['packages'])} packages")
        return 0
    if args.command == "requirements":
        sys.stdout.write(requirements_text(load_lock()))
        return 0
    if args.command == "constraints":
        sys.stdout.write(cpu_constraints(read_pins()))
        return 0
    problems = check()
    for problem in problems:
        print(f"gpu lock: {problem}", file=sys.stderr)
    n = len(load_lock()["packages"])
    print(f"gpu lock: {'OK' if not problems else f'{len(problems)} problem(s)'} ({n} packages, "
          f"{BASE_IMAGE}, Python {'.'.join(map(str, IMAGE_PYTHON))})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
