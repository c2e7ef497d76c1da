"""Benchmark reports: markdown tables in the style of ``docs/benchmarks.md`` and raw results as JSON.

:func:`update_section` rewrites one ``## heading`` section of a markdown file (appending it when absent)
and leaves every other section untouched, so several stages can own parts of the same document.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from sessrec_bench.quality import PUBLISHED, UNCHECKED
from sessrec_course.paths import write_file_atomically


def machine_description() -> dict:
    """Return the cores, memory, load and library versions of this machine (for the report header)."""
    info = {"when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "python": platform.python_version(),
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "load_1min": round(os.getloadavg()[0], 1), "platform": platform.platform(terse=True)}
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError):  # pragma: no cover - not POSIX
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    except ImportError:  # pragma: no cover - torch is a course dependency
        info["device"] = "CPU"
    return info


def describe_machine(info: dict) -> str:
    """One line describing the machine, e.g. ``2 cores, 23.4 GiB, CPU, load 6.1 (...)``."""
    return (f"{info.get('cores')} cores, {info.get('memory_gib', '?')} GiB, {info.get('device', 'CPU')}, "
            f"torch {info.get('torch', '?')}, Python {info.get('python')}, 1-min load {info.get('load_1min')} "
            f"at start, {info.get('when')}")


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def target_verdict(row: dict, reference: tuple[float, float]) -> str:
    """Whether ``row`` reaches the published (P@20, MRR@20) ``reference``, naming each metric that falls short."""
    short = [f"{name} {row[key]:.2f} < {goal:.2f}"
             for name, key, goal in (("P@20", "Recall@20", reference[0]), ("MRR@20", "MRR@20", reference[1]))
             if row[key] < goal]
    target = f"the SR-GNN target ({reference[0]:.2f} / {reference[1]:.2f})"
    return f"meets {target}" if not short else f"misses {target}: " + ", ".join(short)


def quality_markdown(result: dict) -> str:
    """Markdown table of one split's quality run, published numbers first, best course model marked."""
    split = result["split"]
    lines = [f"**{split}** ({result['train_sessions']:,} training sessions, {result['test_cases']:,} test cases, "
             f"{result['item_cardinality'] - 2:,} item ids; config `{Path(result['config']['_path']).name}`, "
             f"neural budget {_fmt(result['time_budget_s'], 0) if result['time_budget_s'] else 'none'} s)", "",
             "| model | source | P@20 | MRR@20 | P@10 | MRR@10 | epochs (best) | s/epoch | train s total "
             "| sessions/s | eval s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, (p20, mrr20) in result.get("published", PUBLISHED.get(split, {})).items():
        tag = "published (unchecked)" if (split, name) in UNCHECKED else "published (SR-GNN paper)"
        lines.append(f"| {name} | {tag} | {p20:.2f} | {mrr20:.2f} | – | – | – | – | – | – | – |")
    for row in result["rows"]:
        source = {"baseline": "course baseline", "recipe": "course recipe (blend)"}.get(row["kind"], "course")
        if row.get("budget_limited"):
            source += ", **budget-limited**"
        epochs = f"{row['epochs']} ({row['best_epoch']})" if row.get("epochs") else "–"
        lines.append(f"| {row['model']} | {source} | {row['Recall@20']:.2f} | {row['MRR@20']:.2f} | "
                     f"{row['Recall@10']:.2f} | {row['MRR@10']:.2f} | {epochs} | {_fmt(row.get('epoch_s'), 1)} | "
                     f"{_fmt(row['train_s'], 1)} | {_fmt(row.get('sessions_per_s'), 0)} | {_fmt(row['eval_s'], 1)} |")
    reference = result.get("published", {}).get("SR-GNN")
    if result["rows"] and reference:
        best = max(result["rows"], key=lambda r: r["Recall@20"])
        lines += ["", f"Best course model by P@20: {best['model']} ({best['Recall@20']:.2f} / {best['MRR@20']:.2f}), "
                      f"which {target_verdict(best, reference)}."]
    return "\n".join(lines)


def write_json(path: str | Path, data) -> Path:
    """Write ``data`` as indented JSON atomically (temp file, then rename)."""
    text = json.dumps(data, indent=1, default=str)
    return write_file_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def update_section(markdown_path: str | Path, heading: str, body: str) -> Path:
    """Replace the ``## heading`` section of a markdown file with ``body`` (append it when absent)."""
    path = Path(markdown_path)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    lines = text.splitlines()
    title = f"## {heading}"
    section = [title, "", body.strip(), ""]
    if title in lines:
        start = lines.index(title)
        stop = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines = lines[:start] + section + lines[stop:]
    else:
        lines = [*lines, "", *section] if lines and lines[-1].strip() else [*lines, *section]
    new_text = "\n".join(lines).rstrip("\n") + "\n"
    return write_file_atomically(path, lambda tmp: tmp.write_text(new_text, encoding="utf-8"))
