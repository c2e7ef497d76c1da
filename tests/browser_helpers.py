"""Shared by the browser tests: headless Debian Chromium through Playwright, and the site built from executed lessons."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SESSREC_CHROMIUM", "/usr/bin/chromium")
# root in CI and containers needs --no-sandbox; the rest keeps a headless run off the network and quiet
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
log = logging.getLogger(__name__)


def chromium_or_skip() -> str:
    """The Chromium binary, or skip the test saying what is missing and how `make test-browser` installs it."""
    pytest.importorskip("playwright.sync_api", reason="the playwright wheel is not installed (requirements/cpu.txt)")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no browser at {CHROMIUM}: `make browser` installs Debian's chromium (needs root and apt-get)")
    return CHROMIUM


@contextmanager
def chromium_page(profile_dir: Path, viewport: tuple[int, int] = (1280, 900)) -> Iterator:
    """A fresh headless Chromium page (own user-data dir) that records console errors and failed requests."""
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir), executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": viewport[0], "height": viewport[1]})
        page = context.pages[0] if context.pages else context.new_page()
        page.console_errors = []
        page.failed_requests = []
        page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
        page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
        page.on("requestfailed", lambda req: page.failed_requests.append(f"{req.url} ({req.failure})"))
        try:
            yield page
        finally:
            context.close()


def executed_notebooks() -> Path:
    """``build/notebooks`` with every lesson executed; runs the course on the ci profile when any is missing."""
    from sessrec_bench.course_runner import course_notebooks

    out = ROOT / "build" / "notebooks"
    stale = [p for p in course_notebooks() if not (out / p.name).is_file()
             or (out / p.name).stat().st_mtime < p.stat().st_mtime]
    if stale:
        log.warning("executing %d lessons for the site (ci profile): %s", len(stale), [p.name for p in stale])
        code = ("import sys; from pathlib import Path; from sessrec_bench.course_runner import run_course; "
                "r = run_course([Path(p) for p in sys.argv[1:]]); sys.exit(any(x.status != 'ok' for x in r))")
        start = time.perf_counter()
        env = {**os.environ, "SESSREC_PROFILE": "ci", "PYTHONPATH": str(ROOT)}
        done = subprocess.run([sys.executable, "-c", code, *map(str, stale)], cwd=ROOT, env=env, check=False)
        log.warning("executed in %.0f s", time.perf_counter() - start)
        assert done.returncode == 0, f"a lesson failed while executing for the site: see {out}"
    return out


def built_site() -> Path:
    """``build/site`` built by ``make site`` from the executed lessons (rebuilt when a lesson is newer)."""
    notebooks = executed_notebooks()
    index = ROOT / "build" / "site" / "index.html"
    inputs = [*notebooks.glob("*.ipynb"), *(ROOT / "docs" / "site").iterdir(), *(ROOT / "docs").glob("*.md")]
    if not index.is_file() or index.stat().st_mtime < max(p.stat().st_mtime for p in inputs):
        make = shutil.which("make")
        assert make, "make is needed to build the site"
        subprocess.run([make, "--no-print-directory", "site"], cwd=ROOT, check=True)
    return index.parent
