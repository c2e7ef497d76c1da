"""The course website (``make site``): built from the executed lessons, every page loads offline in headless Chromium."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import re
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import nbformat
import pytest
from browser_helpers import ROOT, built_site, chromium_page
from sessrec_bench.course_runner import course_notebooks

pytestmark = pytest.mark.integration  # runs the course (when not yet executed) and sphinx-build in subprocesses

_spec = importlib.util.spec_from_file_location("site_build", ROOT / "docs" / "site" / "build.py")
site_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(site_build)


@pytest.fixture(scope="module")
def site() -> Path:
    return built_site()


def _lesson_pages(site: Path) -> dict[str, Path]:
    folder = ROOT / "notebooks"
    return {p.stem: site / "lessons" / p.relative_to(folder).with_suffix(".html") for p in course_notebooks()}


def _timed_cell(start: str, end: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["execution"] = {"iopub.execute_input": start, "shell.execute_reply": end}
    return cell


def test_lesson_seconds_sums_the_cells_kernel_time():
    nb = nbformat.v4.new_notebook(cells=[_timed_cell("2026-12-01T10:00:00.000Z", "2026-12-01T10:00:02.500Z"),
                                         _timed_cell("2026-12-01T10:01:00.000Z", "2026-12-01T10:01:01.000Z"),
                                         nbformat.v4.new_markdown_cell("# not timed")])
    assert site_build.lesson_seconds(nb) == pytest.approx(3.5)  # not 61 s (first start to last end)
    assert site_build.lesson_seconds(nbformat.v4.new_notebook()) == 0.0


def test_build_refuses_missing_or_unexecuted_notebooks_and_keeps_the_old_site(tmp_path):
    executed, out = tmp_path / "executed", tmp_path / "site"
    executed.mkdir()
    out.mkdir()
    (out / "index.html").write_text("old site")
    with pytest.raises(SystemExit, match=r"missing in .*00_introduction\.ipynb.*SESSREC_PROFILE=ci make course"):
        site_build.build(executed, out)
    for source in course_notebooks():  # present but never executed: no outputs
        nbformat.write(nbformat.read(source, as_version=4), executed / source.name)
    with pytest.raises(SystemExit, match=r"00_introduction\.ipynb has no outputs \(not executed\)"):
        site_build.build(executed, out)
    assert (out / "index.html").read_text() == "old site"


def test_every_lesson_has_a_page_with_its_outputs_and_source_link(site):
    for name, page in _lesson_pages(site).items():
        assert page.is_file(), f"no page for lesson {name}: {page}"
        html = page.read_text(encoding="utf-8")
        assert "cell_output" in html, f"{page.name}: no cell outputs rendered"
        link = re.search(rf'href="([^"]*_downloads/[^"]*/{name}\.ipynb)"', html)
        assert link, f"{page.name}: no download link to {name}.ipynb"
        source = nbformat.read((page.parent / link.group(1)).resolve(), as_version=4)
        assert not any(c.get("outputs") for c in source.cells), f"{name}: the linked source must be the clean notebook"
    figures = [p for p in _lesson_pages(site).values() if "<img" in p.read_text(encoding="utf-8")]
    assert len(figures) >= 5, f"only {len(figures)} lesson pages show a figure"


def test_landing_page_maps_every_lesson_with_its_time_and_links_the_guides(site):
    html = (site / "index.html").read_text(encoding="utf-8")
    for name, page in _lesson_pages(site).items():
        href = page.relative_to(site).as_posix()
        row = re.search(rf'<tr[^>]*>(?:(?!</tr>).)*href="{re.escape(href)}"(?:(?!</tr>).)*</tr>', html, re.S)
        assert row, f"landing page: no lesson-map row linking {href}"
        assert re.search(r"<td[^>]*><p>\d+(\.\d)? (s|min)</p></td>", row.group(0)), f"{name}: no time in its row"
    for page in ("instructor_guide.html", "benchmarks.html", "search.html"):
        assert (site / page).is_file() and f'href="{page}' in html, f"landing page does not link {page}"
    assert (site / "searchindex.js").is_file()


def test_no_page_references_anything_outside_the_site(site):
    external = re.compile(r'<(?:script|link|img|iframe)\b[^>]*?(?:src|href)="((?:https?:)?//[^"]+)"')
    for page in site.rglob("*.html"):
        found = external.findall(page.read_text(encoding="utf-8"))
        assert not found, f"{page.relative_to(site)} loads from outside the site: {found[:3]}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test reports failures itself
        pass


@pytest.fixture(scope="module")
def served_site(site):
    """The site over HTTP on 127.0.0.1 (search fetches page summaries, which file:// forbids)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_every_page_loads_without_errors_and_every_image_and_link_resolves(site, served_site, tmp_path):
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")  # not the theme's _static fragments
                   if not any(part.startswith("_") for part in p.relative_to(site).parts))
    outside: list[str] = []
    with chromium_page(tmp_path / "chromium") as page:
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(served_site)
                   else (outside.append(route.request.url), route.abort()))
        for rel in pages:
            response = page.goto(served_site + rel, wait_until="load")
            assert response is not None and response.ok, f"{rel}: HTTP {response and response.status}"
            broken = page.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                                   ".map(i => i.src)")
            assert not broken, f"{rel}: images that did not load: {broken[:3]}"
            for href in page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)"):
                if href.startswith(served_site):
                    target = site / urlparse(href).path.lstrip("/")
                    target = target / "index.html" if target.is_dir() else target
                    assert target.is_file(), f"{rel}: internal link to a missing file {href}"
            assert not page.console_errors, f"{rel}: console errors {page.console_errors[:3]}"
            assert not page.failed_requests, f"{rel}: failed requests {page.failed_requests[:3]}"
        assert not outside, f"pages requested resources outside the site: {sorted(set(outside))[:5]}"
        page.goto(served_site + "index.html")
        page.screenshot(path=str(ROOT / "build" / "screenshot-site-landing.png"), full_page=True)
        page.goto(served_site + "lessons/04_gru.html")
        page.screenshot(path=str(ROOT / "build" / "screenshot-site-lesson-04.png"))
    assert len(pages) >= len(course_notebooks()) + 3


def test_search_finds_a_lesson_offline(served_site, tmp_path):
    with chromium_page(tmp_path / "chromium") as page:
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(served_site)
                   else route.abort())
        page.goto(urljoin(served_site, "search.html?q=GRU4Rec"))
        page.wait_for_selector("#search-results ul.search li a", timeout=30_000)
        hits = page.evaluate("[...document.querySelectorAll('#search-results ul.search li a')].map(a => a.href)")
        assert any("lessons/04_gru.html" in h for h in hits), hits
        page.goto(urljoin(served_site, "search.html?q=zzqqxxnotaword"))
        page.wait_for_selector("#search-results p", timeout=30_000)
        assert not page.evaluate("document.querySelectorAll('#search-results ul.search li').length")
        assert not page.console_errors, page.console_errors[:3]
