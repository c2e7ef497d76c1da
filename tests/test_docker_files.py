"""What the GPU image and its compose file promise, checked without Docker (hadolint runs in `make lint-docker`)."""

from __future__ import annotations

import fnmatch
import importlib.util
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
_spec = importlib.util.spec_from_file_location("gpu_lock", ROOT / "docker" / "gpu_lock.py")
gpu_lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_lock)


def _instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(ln for ln in DOCKERFILE.splitlines() if not ln.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_base_image_is_the_pinned_triton_release_the_lock_was_resolved_for():
    froms = [args for op, args in _instructions() if op == "FROM"]
    assert froms == [gpu_lock.BASE_IMAGE]
    assert gpu_lock.load_lock()["base_image"] == gpu_lock.BASE_IMAGE
    assert not froms[0].endswith(":latest")


def test_python_packages_come_only_from_the_hashed_lock():
    runs = " ".join(args for op, args in _instructions() if op == "RUN")
    installs = re.findall(r"pip install[^&]*", runs)
    assert installs, "the image installs nothing with pip?"
    lock_install = [cmd for cmd in installs if "-r /tmp/gpu-closure.txt" in cmd]
    assert len(lock_install) == 1 and "--require-hashes" in lock_install[0] and "--no-deps" in lock_install[0]
    assert "gpu_lock.py\" requirements > /tmp/gpu-closure.txt" in runs
    # the only other install is the course itself, without dependencies or build isolation (nothing fetched)
    others = [cmd for cmd in installs if cmd not in lock_install]
    assert all("--no-deps" in cmd and "--no-build-isolation" in cmd for cmd in others), others


def test_image_runs_as_a_non_root_user_with_a_healthcheck_and_offline_hub():
    ops = _instructions()
    users = [args for op, args in ops if op == "USER"]
    assert users and users[-1] not in {"root", "0", "0:0"}
    assert any(op == "HEALTHCHECK" and "8888" in args for op, args in ops)
    env = " ".join(args for op, args in ops if op == "ENV")
    assert "HF_HUB_OFFLINE=1" in env and "SESSREC_DATA_DIR=/workspace" in env


def test_every_copied_path_exists_and_survives_the_dockerignore():
    patterns = _dockerignore()
    for op, args in _instructions():
        if op != "COPY":
            continue
        sources = [a for a in args.split() if not a.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            if source != ".":
                assert not any(fnmatch.fnmatch(source, p) for p in patterns), f"COPY {source} is .dockerignored"


def test_dockerignore_keeps_venvs_build_outputs_and_git_out_of_the_context():
    patterns = _dockerignore()
    for path in [".venv", ".venv-gpulock", "build", "data/generated", ".git"]:
        assert any(fnmatch.fnmatch(path, p) for p in patterns), f"{path} would be sent to the Docker daemon"


def test_lab_service_reserves_the_gpu_and_enough_shared_memory():
    lab = COMPOSE["services"]["lab"]
    devices = lab["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    size = lab["shm_size"].lower()
    number, unit = float(size[:-2] if size.endswith(("mb", "gb")) else size[:-1]), size.lstrip("0123456789.")
    assert number * {"gb": 1024, "g": 1024, "mb": 1, "m": 1}[unit] >= 1024, "Triton's python backend needs >= 1 GB /dev/shm"
    assert lab["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}


def test_lab_ports_are_bound_to_loopback_only():
    ports = COMPOSE["services"]["lab"]["ports"]
    container_ports = set()
    for mapping in ports:
        host_ip, _host_port, container_port = re.sub(r"\$\{[^}]*\}", "X", mapping).split(":")
        assert host_ip == "127.0.0.1", f"{mapping} would be reachable from the network"
        container_ports.add(int(container_port))
    assert container_ports == {8888, 8000, 8001, 8002}


def test_data_and_build_outputs_live_on_a_named_volume():
    lab = COMPOSE["services"]["lab"]
    mounts = dict(volume.split(":", 1) for volume in lab["volumes"])
    assert mounts.get("work") == "/workspace" and "work" in COMPOSE["volumes"]
