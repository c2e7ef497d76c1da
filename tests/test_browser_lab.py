"""`make lab` as a learner meets it: the server starts (as root too), Chromium runs lesson 00, nothing survives."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from browser_helpers import ROOT, chromium_or_skip, chromium_page

from sessrec_course.serving.procs import PROC, process_group_members, stat_fields

pytestmark = pytest.mark.integration  # a real JupyterLab server and kernel in child processes

SCREENSHOT = ROOT / "build" / "screenshot-lab-lesson-00.png"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Live descendants of ``pid`` (kernels start in their own session, so the process group misses them)."""
    parents = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := stat_fields(entry.name)) and fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _alive(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"`make lab-server` exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            _get_json(url)
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def test_make_lab_runs_lesson_00_in_chromium_and_leaves_nothing_running(tmp_path):
    chromium_or_skip()
    port, token = _free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "lab.log"
    jupyter_home = tmp_path / "jupyter"  # config and runtime files of this server only, nothing under ~
    env = {**os.environ, "SESSREC_PROFILE": "ci", "PYTHONPATH": str(ROOT),
           "JUPYTER_CONFIG_DIR": str(jupyter_home / "config"), "JUPYTER_RUNTIME_DIR": str(jupyter_home / "runtime"),
           "MPLCONFIGDIR": str(ROOT / "build" / ".cache" / "matplotlib")}
    # the learner's notebook must stay clean: this server's user settings switch autosave off
    user_settings = tmp_path / "lab-settings"
    (user_settings / "@jupyterlab" / "docmanager-extension").mkdir(parents=True)
    (user_settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autosave": False}))
    lesson = ROOT / "notebooks" / "00_introduction.ipynb"
    lesson_before = lesson.read_bytes()
    lab_args = (f"--port {port} --ServerApp.port_retries=0 --IdentityProvider.token={token} "
                f"--LabApp.user_settings_dir={user_settings}")
    with log.open("w") as sink:
        proc = subprocess.Popen(["make", "--no-print-directory", "lab-server", f"LAB_ARGS={lab_args}"], cwd=ROOT,
                                env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    started: list[int] = []
    try:
        _wait_ready(f"{base}/api/status?token={token}", proc, log)
        settings = _get_json(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}")
        news = settings["schema"]["properties"]["fetchNews"]  # overrides.json becomes the schema's default
        assert news["default"] == "false", f"the news prompt is not switched off: {news}"
        with chromium_page(tmp_path / "chromium", viewport=(1400, 1000)) as page:
            page.goto(f"{base}/lab/tree/00_introduction.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
            page.locator(".jp-Notebook .jp-Cell").first.click()  # focus the notebook, as a learner would
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            report = page.locator(".jp-OutputArea-output table", has_text="tritonserver")  # the report's HTML
            try:  # off-screen cells are attached but not painted (JupyterLab's windowed notebook)
                report.first.wait_for(state="attached", timeout=240_000)
                page.locator(".jp-OutputArea-output", has_text="ready: ").first.wait_for(state="attached",
                                                                                         timeout=240_000)
            except Exception:
                page.screenshot(path=str(ROOT / "build" / "screenshot-lab-failure.png"))
                raise
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
            assert errors.count() == 0, f"lesson 00 raised in JupyterLab: {errors.first.inner_text()[:500]}"
            assert page.get_by_text("official Jupyter news").count() == 0, "the news prompt showed up"
            text = report.first.text_content()
            assert re.search(r"profile\s*ci", text) and "torch" in text, f"not the environment report: {text[:300]}"
            started = _descendants(proc.pid)
            assert any(b"ipykernel" in (PROC / str(p) / "cmdline").read_bytes() for p in started), "no kernel ran"
            report.first.scroll_into_view_if_needed()
            page.screenshot(path=str(SCREENSHOT))
    finally:
        started = started or _descendants(proc.pid)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # make and jupyter share this group; jupyter stops its kernels
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            pytest.fail(f"JupyterLab did not stop on SIGTERM within 60 s:\n{log.read_text()[-2000:]}")
        deadline = time.monotonic() + 30
        while any(map(_alive, started)) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = [p for p in started if _alive(p)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of `make lab` still running after it stopped: {left}"
    assert process_group_members(proc.pid) == []
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still accepts connections"
    assert SCREENSHOT.stat().st_size > 10_000
    assert lesson.read_bytes() == lesson_before, "running lesson 00 in the lab rewrote notebooks/00_introduction.ipynb"
