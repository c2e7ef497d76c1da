"""Run the whole course headless (``make course``): every notebook in order, executed copies and HTML in ``build/``,
and a summary table of status, runtime and the figures each notebook recorded (:func:`sessrec_course.report.record`).

``python -m sessrec_bench course`` (``--data-only``: just prepare the active profile's dataset, ``make data``).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from sessrec_course.paths import build_dir, project_root
from sessrec_course.report import RESULTS_ENV, read_records

log = logging.getLogger(__name__)


@dataclass
class NotebookResult:
    """Outcome of one executed notebook."""

    name: str
    status: str  # "ok", "FAILED" or "skipped" (its kernel is not installed)
    seconds: float
    figures: list[dict] = field(default_factory=list)
    error: str = ""


def course_notebooks(folder: Path | None = None) -> list[Path]:
    """Return the lesson notebooks in course order (numbered names; sub-tracks after the main track)."""
    folder = folder or project_root() / "notebooks"
    found = [p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    return sorted(found, key=lambda p: (len(p.relative_to(folder).parts), str(p.relative_to(folder))))


TRACK_KERNELS = {"merlin": "sessrec-merlin"}  # a lesson folder's kernel, which each of its notebooks declares
DEFAULT_KERNEL = "python3"
OPTIONAL_KERNELS = {"sessrec-merlin": "make merlin"}  # how to install a kernel `make course` may do without


def notebook_kernel(path: Path, folder: Path | None = None) -> str:
    """The Jupyter kernel a lesson runs in: its track's (``notebooks/<track>/``) or the course kernel."""
    relative = path.relative_to(folder or project_root() / "notebooks")
    return TRACK_KERNELS.get(relative.parts[0], DEFAULT_KERNEL) if len(relative.parts) > 1 else DEFAULT_KERNEL


def missing_kernel(kernel: str) -> str | None:
    """Why ``kernel`` cannot run here (not installed, and how to install it), or None when it can."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        return f"kernel {kernel!r} is not installed (`{OPTIONAL_KERNELS.get(kernel, 'make setup')}`)"
    return None


def execute_notebook(path: Path, out_dir: Path, timeout: int = 3600, kernel: str = DEFAULT_KERNEL) -> NotebookResult:
    """Execute ``path`` in its own folder with ``kernel``; write the executed copy and its HTML into ``out_dir``."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    out_dir.mkdir(parents=True, exist_ok=True)
    results_file = out_dir / f"{path.stem}.results.jsonl"
    results_file.unlink(missing_ok=True)
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    status, error = "ok", ""
    try:  # the kernel records its figures into results_file
        NotebookClient(nb, timeout=timeout, kernel_name=kernel, resources={"metadata": {"path": str(path.parent)}}
                       ).execute(env={**os.environ, RESULTS_ENV: str(results_file)})
    except Exception as exc:  # the executed copy still shows the failing cell
        status, error = "FAILED", f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
    seconds = time.perf_counter() - start
    nbformat.write(nb, out_dir / path.name)
    body, _ = HTMLExporter().from_notebook_node(nb)
    (out_dir / f"{path.stem}.html").write_text(body, encoding="utf-8")
    return NotebookResult(path.stem, status, seconds, read_records(results_file), error)


def format_figures(figures: list[dict]) -> str:
    """Format recorded figures as ``metric [labels]=value`` items joined by ``; ``."""
    items = []
    for entry in figures:
        labels = " ".join(str(v) for k, v in entry.items() if k not in ("metric", "value"))
        value = entry["value"]
        shown = f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
        items.append(f"{entry['metric']}{' ' + labels if labels else ''}={shown}")
    return "; ".join(items)


def _pack(items: list[str], width: int) -> list[str]:
    """Greedily pack ``items`` into lines of at most ``width`` characters, joined by ``; ``."""
    lines = [""]
    for item in items:
        candidate = f"{lines[-1]}; {item}" if lines[-1] else item
        if len(candidate) <= width or not lines[-1]:
            lines[-1] = candidate
        else:
            lines.append(item)
    return lines


def summary_table(results: list[NotebookResult], width: int = 100) -> str:
    """Return the course summary as a plain-text table (long figure lists wrap onto indented lines)."""
    header = ("notebook", "status", "seconds", "headline figures")
    rows = [(r.name, r.status, f"{r.seconds:.1f}", format_figures(r.figures) or r.error) for r in results]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(3)]
    indent = " " * (sum(widths) + 6)
    lines = [f"{header[0]:<{widths[0]}}  {header[1]:<{widths[1]}}  {header[2]:>{widths[2]}}  {header[3]}"]
    lines.append("-" * (len(indent) + width))
    for row in rows:
        wrapped = _pack(row[3].split("; "), width)
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {wrapped[0]}")
        lines += [indent + more for more in wrapped[1:]]
    total = sum(r.seconds for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    lines.append(f"{len(results)} notebooks, {sum(r.status == 'ok' for r in results)} ok"
                 + (f", {skipped} skipped" if skipped else "") + f", total {total:.0f} s")
    return "\n".join(lines)


def run_course(notebooks: list[Path] | None = None, out_dir: Path | None = None) -> list[NotebookResult]:
    """Execute every notebook in order (a failure does not stop the run; an optional track without its kernel is skipped)."""
    out_dir = out_dir or build_dir() / "notebooks"
    results = []
    for path in notebooks or course_notebooks():
        kernel = notebook_kernel(path) if path.is_relative_to(project_root() / "notebooks") else DEFAULT_KERNEL
        why = missing_kernel(kernel) if kernel in OPTIONAL_KERNELS else None
        if why:
            log.warning("skipping %s: %s", path.name, why)
            results.append(NotebookResult(path.stem, "skipped", 0.0, error=why))
            continue
        log.info("executing %s ...", path.name)
        result = execute_notebook(path, out_dir, kernel=kernel)
        log.info("%s: %s in %.1f s %s", path.name, result.status, result.seconds, result.error)
        results.append(result)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.txt").write_text(summary_table(results) + "\n", encoding="utf-8")
    return results


def main(argv: list[str] | None = None) -> int:
    """``python -m sessrec_bench course [--data-only]``: the environment report, then every lesson and the summary."""
    parser = argparse.ArgumentParser(prog="python -m sessrec_bench course", description=main.__doc__)
    parser.add_argument("--data-only", action="store_true", help="only prepare the active profile's dataset")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S", force=True)
    if args.data_only:
        from sessrec_course.etl.dataset import prepare_default_dataset

        artifacts = prepare_default_dataset()
        print(f"default dataset ({artifacts.profile.name}): {artifacts.root}")
        return 0
    from sessrec_course.environment import environment_report

    print(environment_report().to_text(), end="\n\n", flush=True)
    results = run_course()
    print("\n" + summary_table(results))
    return 0 if all(r.status == "ok" for r in results) else 1
