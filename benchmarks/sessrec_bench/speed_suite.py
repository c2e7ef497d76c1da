"""``bench speed``: ETL, training and serving speed of the course in one run, as tables for docs/benchmarks.md.

Each part measures what its own script or module does, so a figure here and one from the dedicated command
agree: the ETL sizes run ``python -m sessrec_bench.etl_speed`` in a fresh process each (peak memory per size), the
training rows train every preset for one epoch on the same generated events (:func:`sessrec_course.merlin_lessons.course_training`),
and serving runs ``python -m sessrec_bench loadtest`` (the ci profile's GRU behind a real Triton).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from sessrec_bench import etl_speed, speed
from sessrec_course.merlin_lessons import course_training
from sessrec_course.paths import build_dir, project_root

logger = logging.getLogger(__name__)


def etl_levels(sizes: list[int], backend: str = "pandas") -> list[dict]:
    """Run the ETL benchmark at each size in a fresh process; one dict per size (events/s, peak RSS...)."""
    rows = []
    for n in sizes:
        logger.info("ETL speed at %d events", n)
        out = subprocess.run([sys.executable, "-m", etl_speed.MODULE, "--child", str(n), "--backend", backend],
                             capture_output=True, text=True, check=False, cwd=project_root())
        if out.returncode != 0:
            tail = out.stderr.strip().splitlines()[-1:] or [f"exit {out.returncode}"]
            raise RuntimeError(f"python -m {etl_speed.MODULE} --child {n} failed: {tail[0]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def training_levels(n_events: int, models: list[str], hidden_size: int, batch_size: int,
                    workdir: Path | None = None) -> dict:
    """Train each preset for one epoch on ``n_events`` generated events; sessions/s and quality per model."""
    folder = Path(workdir or build_dir() / "bench" / "speed") / f"events-{n_events}"
    data = speed.write_events(folder, n_events)
    etl = speed.course_etl(folder)
    rows = [course_training(folder, etl["item_cardinality"], preset=name, hidden_size=hidden_size,
                                  batch_size=batch_size) for name in models]
    return {"events": {k: v for k, v in data.items() if k != "paths"}, "train_sessions": etl["train_sessions"],
            "rows": rows}


def serving_table(requests: int, concurrencies: list[int]) -> dict:
    """Run the load-test command on the ci profile's GRU and return its header line and markdown table."""
    command = [sys.executable, "-m", "sessrec_bench", "loadtest", "--requests", str(requests),
               "--concurrency", *map(str, concurrencies)]
    logger.info("serving: %s", " ".join(command))
    out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "SESSREC_PROFILE": "ci"},
                         cwd=project_root(), check=False)
    if out.returncode != 0:
        raise RuntimeError(f"load test failed (exit {out.returncode}): {out.stderr.strip()[-400:]}")
    lines = out.stdout.splitlines()
    table = [line for line in lines if line.startswith("|")]
    header = next((line for line in lines if "requests per level" in line), "")
    return {"command": "SESSREC_PROFILE=ci python -m sessrec_bench " + " ".join(command[3:]),
            "header": header, "table": table}


def speed_markdown(result: dict) -> str:
    """Markdown tables of a :func:`run_speed` result."""
    parts = ["**ETL** (`python -m sessrec_bench etl`, SessionWorkflow fit + transform, a fresh process per size):", "",
             "| events | sessions | backend | fit s | transform s | events/s | peak RSS MiB |", "|---|---|---|---|---|---|---|"]
    for r in result["etl"]:
        parts.append(f"| {r['events']:,} | {r['sessions']:,} | {r['backend']} | {r['fit_s']:.2f} | "
                     f"{r['transform_s']:.2f} | {r['events_per_s']:,.0f} | {r['peak_rss_mib']:,.0f} |")
    train = result["training"]
    if train:
        parts += ["", f"**Training**, one epoch on {train['events']['events']:,} generated events "
                  f"({train['train_sessions']:,} training sessions, {train['events']['items']:,} items), "
                  f"full-catalogue softmax:", "",
                  "| model | hidden | batch | parameters | threads | sessions/s | s/epoch | Recall@20 | MRR@20 |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in train["rows"]:
            parts.append(f"| {r['model']} | {r['hidden_size']} | {r['batch_size']} | {r['parameters']:,} | "
                         f"{r['threads']} | {r['sessions_per_s']:,.0f} | {r['train_s']:.1f} | {r['Recall@20']:.2f} | "
                         f"{r['MRR@20']:.2f} |")
    serving = result.get("serving")
    if serving:  # the header names the repository: relative to the project, as every path in the docs
        header = serving["header"].replace(f"{project_root()}/", "")
        parts += ["", f"**Serving** (`{serving['command']}`): {header}", "", *serving["table"]]
    return "\n".join(parts)


def run_speed(etl_sizes: list[int], train_events: int, models: list[str], hidden_size: int, batch_size: int,
              serving_requests: int, concurrencies: list[int]) -> dict:
    """Run the three speed parts (a part with nothing to do is skipped) and return their raw results."""
    result = {"etl": etl_levels(etl_sizes) if etl_sizes else [],
              "training": training_levels(train_events, models, hidden_size, batch_size) if models else None,
              "serving": serving_table(serving_requests, concurrencies) if serving_requests > 0 else None}
    return result
