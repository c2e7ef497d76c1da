"""The environment report tells the truth about this machine."""

from __future__ import annotations

import importlib.metadata as md
import os

import torch

from sessrec_course.environment import cudf_usable, environment_report, find_tritonserver


def test_versions_come_from_the_installed_packages():
    report = environment_report()
    assert report.versions["numpy"] == md.version("numpy")
    assert report.versions["torch"] == md.version("torch")
    assert "cudf-cu12" not in report.versions or report.cudf in (True, False)


def test_device_matches_torch():
    report = environment_report()
    assert (report.cuda is not None) == torch.cuda.is_available()
    assert report.device.startswith("cuda" if torch.cuda.is_available() else "cpu")


def test_tritonserver_is_found_and_executable():
    server = find_tritonserver()
    assert server is not None, "nvidia-pytriton is in the course env, so its bundled tritonserver must be found"
    assert os.access(server, os.X_OK) and server.name == "tritonserver"
    assert environment_report().tritonserver == str(server)


def test_env_override_for_tritonserver(tmp_path, monkeypatch):
    fake = tmp_path / "tritonserver"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("TRITONSERVER", str(fake))
    assert find_tritonserver() == fake


def test_cudf_verdict_has_a_reason():
    usable, reason = cudf_usable()
    assert isinstance(usable, bool) and reason
    if not usable:
        assert "pandas" in reason or "unusable" in reason


def test_text_report_names_profile_and_device(monkeypatch):
    monkeypatch.setenv("SESSREC_PROFILE", "ci")
    text = environment_report().to_text()
    assert "profile" in text and "ci" in text and "device" in text
