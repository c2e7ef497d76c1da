"""Peers benchmark: the course and the Merlin libraries side by side on the same generated events.

Both sides read the same ``train_events.parquet`` / ``test_events.parquet`` (:func:`.speed.write_events`):

- ETL: the course's ``SessionWorkflow`` (pandas backend) vs ``benchmarks/peers/nvt_time_features.py``
  (NVTabular 23.8, CPU mode, with the same time features) — same sessions out (both report their session counts).
- training: the course's transformers (GPT-2 causal; XLNet backbone masked) vs Transformers4Rec 23.12's XLNet
  (``benchmarks/peers/t4r_xlnet.py``) of the same width, depth, heads and sequence length, one epoch on the
  sessions each ETL produced, the same number of CPU threads; Recall@20 / MRR@20 on the last item of each
  test session.

The Merlin side runs in its own venv (``requirements/merlin.txt``; ``make merlin`` builds it) through
a subprocess, so nothing of it is imported here.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
import time
from pathlib import Path

from sessrec_bench import speed
from sessrec_course.merlin_lessons import course_training
from sessrec_course.paths import project_root

logger = logging.getLogger(__name__)


def _run_merlin(venv: Path, script: str, *args: str, timeout: float = 3600) -> dict:
    """Run ``script`` (a file in benchmarks/peers/, or ``-m module``) with the Merlin venv's python."""
    python = venv / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(f"{python} not found: build the Merlin venv with `make merlin` "
                                "(requirements/merlin.txt) or pass --skip-merlin")
    target = script.split() if script.startswith("-m ") else [str(project_root() / "benchmarks" / "peers" / script)]
    command = [str(python), *target, *args]
    logger.info("running %s", " ".join(command))
    start = time.perf_counter()
    # Run in a scratch folder: NVTabular's Categorify writes its vocabularies under ./categories.
    with tempfile.TemporaryDirectory(prefix="sessrec-merlin-") as scratch:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, cwd=scratch)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{script} printed no JSON result:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return {**json.loads(lines[-1]), "process_s": time.perf_counter() - start}


def run_peers(n_events: int = 300_000, venv: Path | None = None, workdir: Path | None = None, epochs: int = 1,
              hidden_size: int = 64, max_length: int = 20, batch_size: int = 256, num_layers: int = 2,
              num_heads: int = 2, seed: int = 42, skip_merlin: bool = False,
              presets: tuple[str, ...] = ("transformer", "xlnet")) -> dict:
    """Run both sides on ``n_events`` generated events; return raw figures and the course/Merlin ratios.

    ``presets``: the course models trained at the T4R model's size — ``transformer`` (GPT-2, causal: the
    same next-item-at-every-position objective as T4R's ``clm``) and ``xlnet`` (the same HF XLNet
    backbone, trained masked).
    """
    from sessrec_course.device import configure_threads

    venv = venv or project_root() / ".venv-merlin"
    workdir = Path(workdir or project_root() / "build" / "bench" / "peers") / f"events-{n_events}"
    data = speed.write_events(workdir, n_events, seed=seed)
    course_etl = speed.course_etl(workdir, max_length=max_length)
    threads = configure_threads()
    course_train = [course_training(workdir, course_etl["item_cardinality"], preset=preset,
                                          hidden_size=hidden_size, max_length=max_length, epochs=epochs,
                                          batch_size=batch_size, seed=seed, num_layers=num_layers,
                                          num_heads=num_heads) for preset in presets]
    result = {"events": data, "settings": {"hidden_size": hidden_size, "max_length": max_length, "epochs": epochs,
                                           "batch_size": batch_size, "num_layers": num_layers,
                                           "num_heads": num_heads, "threads": threads, "seed": seed},
              "course": {"etl": course_etl, "training": course_train}}
    if skip_merlin:
        return result
    merlin_dir = workdir / "merlin"
    merlin_etl = _run_merlin(venv, "nvt_time_features.py", "--train", data["paths"]["train"], "--test",
                             data["paths"]["test"], "--out", str(merlin_dir), "--max-length", str(max_length))
    merlin_train = _run_merlin(venv, "t4r_xlnet.py", "--data", str(merlin_dir), "--hidden-size", str(hidden_size),
                               "--layers", str(num_layers), "--heads", str(num_heads), "--max-length",
                               str(max_length), "--epochs", str(epochs), "--batch-size", str(batch_size),
                               "--seed", str(seed), "--threads", str(threads))
    result["merlin"] = {"etl": merlin_etl, "training": merlin_train}
    course_etl_s = course_etl["fit_s"] + course_etl["transform_s"]
    merlin_etl_s = merlin_etl["fit_s"] + merlin_etl["transform_s"]
    result["ratios"] = {
        "etl_events_per_s": merlin_etl_s / course_etl_s,
        "training_sessions_per_s": {t["model"]: t["sessions_per_s"] / merlin_train["sessions_per_s"]
                                    for t in course_train},
    }
    return result


def peers_markdown(result: dict) -> str:
    """Markdown tables of a :func:`run_peers` result (ETL, training, ratios)."""
    events, s = result["events"], result["settings"]
    ce, ct = result["course"]["etl"], result["course"]["training"]
    ct = ct if isinstance(ct, list) else [ct]
    lines = [f"Same generated events on both sides: {events['events']:,} clicks, {events['sessions']:,} sessions, "
             f"{events['items']:,} items (sessions starting in the last 10 % of the 28 days are the test set). "
             f"Models: hidden {s['hidden_size']}, {s['num_layers']} layers, {s['num_heads']} heads, sequence "
             f"length {s['max_length']}, batch {s['batch_size']}, {s['epochs']} epoch(s), {s['threads']} CPU "
             "thread(s) on both sides.", "",
             "| stage | side | what it does | sessions (train / test) | seconds | throughput |",
             "|---|---|---|---|---|---|"]
    etl_s = ce["fit_s"] + ce["transform_s"]
    lines.append(f"| ETL | course `SessionWorkflow` (pandas) | fit on train + transform train and test | "
                 f"{ce['train_sessions']:,} / {ce['test_sessions']:,} | {etl_s:.2f} | "
                 f"{ce['events'] / etl_s:,.0f} events/s |")
    merlin = result.get("merlin")
    if merlin:
        me = merlin["etl"]
        m_s = me["fit_s"] + me["transform_s"]
        lines.append(f"| ETL | NVTabular {me['nvtabular']} CPU mode | sort + fit on train + transform train and "
                     f"test (computed) | {me['train_sessions']:,} / {me['test_sessions']:,} | {m_s:.2f} | "
                     f"{me['events'] / m_s:,.0f} events/s |")
    for t in ct:
        lines.append(f"| training | {t['model']} | {t['epochs']} epoch(s), {t['parameters']:,} parameters | "
                     f"{t['sessions']:,} / {t['test_cases']:,} | {t['train_s']:.1f} | "
                     f"{t['sessions_per_s']:,.0f} sessions/s |")
    if merlin:
        mt = merlin["training"]
        lines.append(f"| training | {mt['model']} | {mt['epochs']} epoch(s), {mt['parameters']:,} parameters | "
                     f"{mt['sessions']:,} / {mt['test_cases']:,} | {mt['train_s']:.1f} | "
                     f"{mt['sessions_per_s']:,.0f} sessions/s |")
    lines += ["", "| quality (last item of each test session) | Recall@20 | MRR@20 |", "|---|---|---|"]
    lines += [f"| {t['model']} | {t['Recall@20']:.2f} | {t['MRR@20']:.2f} |" for t in ct]
    if merlin:
        mt, r = merlin["training"], result["ratios"]
        lines += [f"| {mt['model']} | {mt['Recall@20']:.2f} | {mt['MRR@20']:.2f} |"]
        if "t4r_eval_Recall@20" in mt:
            lines.append(f"| {mt['model']}, T4R's own `testing=True` path | {mt['t4r_eval_Recall@20']:.2f} | "
                         f"{mt['t4r_eval_MRR@20']:.2f} |")
        lines += ["",
                  f"Ratios (course / Merlin): ETL **{r['etl_events_per_s']:.1f}×** events/s (target ≥ 10×); "
                  "training sessions/s (target ≥ 1.5×): "
                  + ", ".join(f"{name} **{v:.1f}×**" for name, v in r["training_sessions_per_s"].items()) + "."]
    return "\n".join(lines)
