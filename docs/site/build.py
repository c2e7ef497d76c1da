"""Build the course website (``make site``) from the notebooks ``make course`` executed: no second execution.

``python docs/site/build.py [--notebooks build/notebooks] [--out build/site]`` stages the executed lessons (each
with a link to its source notebook), a generated landing page (lesson map, measured time per lesson), the
instructor guide and the benchmark pages, then runs Sphinx + MyST-NB. The site replaces ``--out`` only when the
build succeeded, so a failed build never leaves half a site behind.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the checkout's package, also when run as a plain script

from sessrec_bench.course_runner import OPTIONAL_KERNELS, course_notebooks, missing_kernel, notebook_kernel  # noqa: E402

log = logging.getLogger("site")
HERE = Path(__file__).resolve().parent
TRACKS = {"tensorflow": "TensorFlow track", "merlin": "Merlin track"}  # notebooks/<folder>/ → its track's name
MISSING_HINT = "run `SESSREC_PROFILE=ci make course` (a few minutes) or `make course` first"


def lesson_seconds(nb: nbformat.NotebookNode) -> float:
    """Kernel time of an executed notebook: the sum of its cells' execute-input to reply times."""
    total = 0.0
    for cell in nb.cells:
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
            total += (end - start).total_seconds()
    return total


def lesson_title(nb: nbformat.NotebookNode, fallback: str) -> tuple[str, str]:
    """The first heading of a notebook and the first sentence after it."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("# "):
            head, _, rest = cell.source.lstrip()[2:].partition("\n")
            paragraph = " ".join(rest.strip().split("\n\n")[0].split())
            sentence = re.split(r"(?<=[.!?])\s", paragraph, maxsplit=1)[0]
            return head.strip(), sentence if len(sentence) <= 160 else sentence[:157].rsplit(" ", 1)[0] + " …"
    return fallback, ""


def executed_profile(nb: nbformat.NotebookNode) -> str:
    """The profile an executed lesson ran with, read from its environment report output."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("text", "") or out.get("data", {}).get("text/plain", "")
            found = re.search(r"profile[=:]? ?'(\w+)'", str(text))
            if found:
                return found.group(1)
    return "unknown"


def _has_outputs(nb: nbformat.NotebookNode) -> bool:
    return any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


def _format_minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def stage(executed_dir: Path, stage_dir: Path, notebooks_dir: Path | None = None) -> list[dict]:
    """Write the Sphinx source tree into ``stage_dir``; return one entry per lesson (name, page, title, seconds)."""
    notebooks_dir = notebooks_dir or ROOT / "notebooks"
    sources = course_notebooks(notebooks_dir)
    if not sources:
        raise SystemExit(f"no lesson notebooks under {notebooks_dir}")
    # a track whose optional kernel is not installed (`make course` skipped it) is left out of the site
    skipped = [p for p in sources if not (executed_dir / p.name).is_file()
               and notebook_kernel(p, notebooks_dir) in OPTIONAL_KERNELS
               and missing_kernel(notebook_kernel(p, notebooks_dir))]
    for path in skipped:
        log.warning("leaving %s out of the site: %s", path.name, missing_kernel(notebook_kernel(path, notebooks_dir)))
    sources = [p for p in sources if p not in skipped]
    missing = [p.name for p in sources if not (executed_dir / p.name).is_file()]
    if missing:
        raise SystemExit(f"executed notebooks missing in {executed_dir}: {', '.join(missing)}; {MISSING_HINT}")
    shutil.rmtree(stage_dir, ignore_errors=True)
    (stage_dir / "sources").mkdir(parents=True)
    lessons = []
    # lesson 00 prints the environment report; its profile is the profile of the whole run
    profiles = [executed_profile(nbformat.read(executed_dir / p.name, as_version=4)) for p in sources[:1]]
    profile = profiles[0] if profiles else "unknown"
    for source in sources:
        nb = nbformat.read(executed_dir / source.name, as_version=4)
        if not _has_outputs(nb):
            raise SystemExit(f"{executed_dir / source.name} has no outputs (not executed); {MISSING_HINT}")
        relative = source.relative_to(notebooks_dir)
        page = Path("lessons") / relative
        source_copy = Path("sources") / relative
        (stage_dir / source_copy).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, stage_dir / source_copy)
        title, summary = lesson_title(nb, source.stem)
        seconds = lesson_seconds(nb)
        depth = "../" * (len(page.parts) - 1)
        link = nbformat.v4.new_markdown_cell(
            f"```{{note}}\nThis page shows the lesson as executed by `make course` (profile "
            f"`{profile}`, {_format_minutes(seconds)} of kernel time). "
            f"{{download}}`Download the notebook source <{depth}{source_copy.as_posix()}>` "
            f"(`notebooks/{relative.as_posix()}`) to run it yourself with `make lab`.\n```")
        heading = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), -1)
        nb.cells.insert(heading + 1, link)
        (stage_dir / page).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, stage_dir / page)
        lessons.append({"name": source.stem, "page": page.with_suffix("").as_posix(), "title": title,
                        "summary": summary, "seconds": seconds, "profile": profile,
                        "track": TRACKS.get(relative.parts[0], "main track") if len(relative.parts) > 1
                        else "main track"})
    # a link to a folder ("history/") points at that folder's generated index page on the site
    benchmarks = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    (stage_dir / "benchmarks.md").write_text(re.sub(r"\]\(([\w.-]+)/\)", r"](\1/index.md)", benchmarks),
                                              encoding="utf-8")
    shutil.copy2(ROOT / "docs" / "instructor_guide.md", stage_dir / "instructor_guide.md")
    for page in RESULT_PAGES:  # pages the results page links to
        shutil.copy2(ROOT / "docs" / page, stage_dir / page)
    shutil.copytree(ROOT / "docs" / "history", stage_dir / "history")
    (stage_dir / "history" / "index.md").write_text(
        "# Benchmark history\n\nEvery benchmark run before the current figures, kept with its command.\n\n"
        "```{toctree}\n:maxdepth: 1\n\n" + "\n".join(p.stem for p in sorted((ROOT / "docs" / "history").glob("*.md")))
        + "\n```\n", encoding="utf-8")
    (stage_dir / "index.md").write_text(landing_page(lessons), encoding="utf-8")
    (stage_dir / "lessons.json").write_text(json.dumps(lessons, indent=1), encoding="utf-8")
    return lessons


# docs/ pages published beside the results page (it and the landing page link them)
RESULT_PAGES = ("serving_faults.md", "peers_2026.md")


def landing_page(lessons: list[dict]) -> str:
    """The landing page: what the course is, the lesson map with measured time per lesson, and the toctree."""
    profiles = sorted({entry["profile"] for entry in lessons})
    rows = [f"| [{e['title']}]({e['page']}.ipynb) | {e['track']} | {e['summary']} | {_format_minutes(e['seconds'])} |"
            for e in lessons]
    total = sum(e["seconds"] for e in lessons)
    return "\n".join([
        "# Session-based recommendation, end to end", "",
        "A hands-on Jupyter course: raw click logs become sessions (cuDF on a GPU, pandas on a CPU), then MLP, GRU",
        "and Transformer session models in PyTorch (and Keras), honest evaluation against strong baselines, and",
        "finally the fitted ETL plus the model served as one ensemble on a real Triton Inference Server.", "",
        "Every page below is a lesson notebook **as executed** by `make course`, with its outputs and figures;",
        "each links its source notebook. To run the lessons yourself: clone the repository, `make lab`.", "",
        "## Lesson map", "",
        f"Time per lesson is the measured kernel time of this build (profile `{', '.join(profiles)}`, "
        f"{_format_minutes(total)} in all); add reading time. The `workshop` and `full` profiles train longer: "
        "see the [instructor guide](instructor_guide.md).", "",
        "| lesson | track | what it is about | time |", "|---|---|---|---|", *rows, "",
        "Also here: the [instructor guide](instructor_guide.md) and the [benchmark results](benchmarks.md).", "",
        "```{toctree}", ":hidden:", ":caption: Lessons", "", *[e["page"] for e in lessons], "```", "",
        "```{toctree}", ":hidden:", ":caption: For instructors", "", "instructor_guide", "benchmarks",
        *[Path(page).stem for page in RESULT_PAGES], "history/index", "```", ""])


def build(executed_dir: Path, out_dir: Path) -> Path:
    """Stage and build the site into ``out_dir`` (replaced only on success); return its index.html."""
    stage_dir = out_dir.parent / f"{out_dir.name}-src"
    lessons = stage(executed_dir, stage_dir)
    tmp_out = out_dir.parent / f"{out_dir.name}.tmp"
    shutil.rmtree(tmp_out, ignore_errors=True)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going", "-c", str(HERE),
               "-d", str(out_dir.parent / f"{out_dir.name}-doctrees"), str(stage_dir), str(tmp_out)]
    log.info("building %d lesson pages: %s", len(lessons), " ".join(command))
    result = subprocess.run(command, cwd=ROOT, check=False)
    if result.returncode != 0:
        shutil.rmtree(tmp_out, ignore_errors=True)
        raise SystemExit(f"sphinx-build failed (exit {result.returncode}); {out_dir} left as it was")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp_out.rename(out_dir)
    return out_dir / "index.html"


def main(argv: list[str] | None = None) -> None:
    """Command line of ``make site``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=Path, default=ROOT / "build" / "notebooks",
                        help="the executed notebooks written by make course")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    index = build(args.notebooks.resolve(), args.out.resolve())
    print(f"site: {index} (open it in a browser, or python -m http.server -d {index.parent})")


if __name__ == "__main__":
    main()
