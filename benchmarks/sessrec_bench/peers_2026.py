"""The 2026 peers beside the course: RecTools and RecBole models on a split folder, scored by the course's ``evaluate``.

``python -m sessrec_bench peers-2026 SPLIT_FOLDER... [--peers rectools:sasrec ...] [--markdown docs/peers_2026.md]``

Per split, one run: the course's default recipe and classic baselines (:func:`sessrec_bench.quality.run_quality`,
its ``time_budget_s``), then each peer in a subprocess of its own venv (``.venv-rectools``, ``.venv-recbole``:
``make peers-venvs``) running ``benchmarks/peers/<library>_peer.py``. A peer trains on the same
``train_sessions.txt`` with the recipe's ``max_length``, held-out sessions, time budget and CPU threads
(:func:`threads_now`) and writes the top-100 items of every ``test.tsv`` line; :class:`PeerRecommender` turns
them into scores (others -inf) and :func:`sessrec_course.evaluation.evaluate` ranks every line against the whole
catalogue, ties to the lower item id, unseen targets and lines the peer could not answer counting as misses.
A peer whose venv is missing is skipped with the reason; one that fails is reported with its error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sessrec_course.paths import build_dir, project_root

logger = logging.getLogger(__name__)

PEERS: dict[str, tuple[str, ...]] = {"rectools": ("sasrec", "bert4rec", "hstu"), "recbole": ("gru4rec", "srgnn", "sasrec")}
NAMES = {"sasrec": "SASRec", "bert4rec": "BERT4Rec", "hstu": "HSTU", "gru4rec": "GRU4Rec", "srgnn": "SR-GNN"}
TOP_K = 100


def threads_now() -> int:
    """CPU threads for the next peer, by the course's rule (``configure_threads``): all cores, 1 on a busy machine.

    ``$SESSREC_TORCH_THREADS`` wins. With more threads than free cores, OpenMP threads spin-wait for descheduled
    siblings: a RecBole GRU4Rec step took ~10 s on 2 threads at load 6 on 2 cores, 1.1 s on 1 thread.
    """
    wanted = os.environ.get("SESSREC_TORCH_THREADS")
    if wanted:
        return max(1, int(wanted))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 1 if cores > 1 and os.getloadavg()[0] >= cores else cores


def peer_python(library: str, root: Path | None = None) -> Path:
    """The python of ``library``'s venv (``.venv-<library>`` in the checkout), whether or not it exists."""
    return (root or project_root()) / f".venv-{library}" / "bin" / "python"


def parse_peers(names: list[str] | None) -> list[tuple[str, str]]:
    """``["rectools:sasrec", "recbole"]`` -> ``[(library, model), ...]`` (a bare library: all its models)."""
    if not names:
        return [(library, model) for library, models in PEERS.items() for model in models]
    chosen = []
    for name in names:
        library, _, model = name.partition(":")
        if library not in PEERS or (model and model not in PEERS[library]):
            expected = [f"{lib}:{m}" for lib, models in PEERS.items() for m in models]
            raise ValueError(f"unknown peer {name!r}; expected a library {list(PEERS)} or one of {expected}")
        chosen += [(library, m) for m in ([model] if model else PEERS[library])]
    return chosen


class PeerRecommender:
    """A recommender whose ``score()`` gives a peer's stored top-k scores for each known test prefix, -inf elsewhere.

    ``prefixes`` are the course's right-padded test prefixes and ``items`` (raw ids, -1 = none) / ``scores``
    the peer's answer for the same lines, in the same order. A prefix is looked up by its content, so the
    scores do not depend on how :func:`evaluate` batches the lines; identical prefixes share the first line's
    answer (a session model answers them alike).
    """

    def __init__(self, prefixes: np.ndarray, items: np.ndarray, scores: np.ndarray, n_items: int) -> None:
        if items.shape != scores.shape or len(items) != len(prefixes):
            raise ValueError(f"the peer answered {len(items)} lines ({items.shape} items, {scores.shape} scores) "
                             f"for {len(prefixes)} test prefixes")
        self.n_items = n_items
        self.items = np.where(items >= 0, items + 1, -1)  # raw ids -> the course's encoding (+1)
        if (self.items >= n_items).any():
            raise ValueError(f"the peer recommended item {int(items.max())}, beyond the split's catalogue")
        self.scores = scores.astype(np.float32)
        self.row_of: dict[bytes, int] = {}
        for row, prefix in enumerate(np.ascontiguousarray(prefixes, dtype=np.int64)):
            self.row_of.setdefault(prefix.tobytes(), row)

    def score(self, item_ids: np.ndarray) -> np.ndarray:
        """``(B, n_items)`` scores of a batch of test prefixes; a prefix not among the test lines is an error."""
        item_ids = np.ascontiguousarray(item_ids, dtype=np.int64)
        try:
            rows = [self.row_of[prefix.tobytes()] for prefix in item_ids]
        except KeyError:
            raise ValueError("PeerRecommender only scores the test prefixes its peer answered") from None
        out = np.full((len(rows), self.n_items), -np.inf, dtype=np.float32)
        items, scores = self.items[rows], self.scores[rows]
        batch_row, column = np.nonzero(items >= 0)
        out[batch_row, items[batch_row, column]] = scores[batch_row, column]
        return out


def run_peer(library: str, model: str, folder: Path, out: Path, settings: dict, timeout_s: float,
             threads: int = 1) -> dict:
    """Run one peer script in its venv on ``folder``; return its ``result.json`` or ``{"error": ...}`` / ``{"skipped": ...}``."""
    python = peer_python(library)
    if not python.exists():
        return {"skipped": f"{python.parent.parent.name} not built (`make peers-venvs`)"}
    shutil.rmtree(out, ignore_errors=True)  # no checkpoint or prediction of an earlier run is read back
    out.mkdir(parents=True)
    script = project_root() / "benchmarks" / "peers" / f"{library}_peer.py"
    command = [str(python), str(script), "--split", str(folder.resolve()), "--out", str(out.resolve()),
               "--model", model, "--budget", str(settings["budget_s"] or 0), "--max-length", str(settings["max_length"]),
               "--valid-sessions", str(settings["valid_sessions"]), "--top-k", str(TOP_K), "--threads", str(threads),
               "--seed", str(settings["seed"])]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)  # the peer venv must not import the course checkout's packages
    logger.info("running %s", " ".join(command))
    with (out / "log.txt").open("w", encoding="utf-8") as log:
        try:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s, check=False,
                                  cwd=out, env=env)
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = f"timeout after {timeout_s:.0f} s"
    if code != 0 or not (out / "result.json").is_file():
        tail = (out / "log.txt").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-12:]
        return {"error": f"exit {code}: " + " | ".join(tail)}
    return json.loads((out / "result.json").read_text(encoding="utf-8"))


def evaluate_peer(cases, out: Path, label: str, progress: bool = False) -> dict:
    """Recall/MRR@10/20 (in %) of the predictions in ``out`` on every test case, and the seconds it took."""
    from sessrec_bench.quality import KS, _metrics_row
    from sessrec_course.evaluation import evaluate

    start = time.perf_counter()
    stored = np.load(out / "predictions.npz")
    recommender = PeerRecommender(cases.prefixes, stored["items"], stored["scores"], cases.n_items)
    metrics = evaluate(recommender, cases.prefixes, cases.targets, ks=KS, progress=progress, desc=label)
    return {**_metrics_row(metrics), "evaluate_s": time.perf_counter() - start}


def recipe_settings_for(folder: Path, config_path: str | Path | None = None) -> dict:
    """The recipe's ``max_length``, ``valid_sessions``, seed and training time (``time_budget_s`` times its ensemble's
    seeds) for a split (training split only), from ``config_path`` or the split's own config."""
    from sessrec_bench.quality import load_config, load_split, recipe_config

    config, _, _ = recipe_config(load_config(folder.name, config_path), load_split(folder).train_sessions, folder.name)
    return {"max_length": int(config["max_length"]), "valid_sessions": int(config["valid_sessions"]),
            "budget_s": float(config["time_budget_s"]) * int(config.get("ensemble", 1)), "seed": int(config.get("seed", 42))}


def run_split(folder: Path, peers: list[tuple[str, str]], workdir: Path, course: bool = True,
              baselines: list[str] | None = None, progress: bool = False,
              config_path: str | Path | None = None) -> dict:
    """The course recipe + baselines (unless ``course`` is False) and every peer on one split folder, both sides
    with the settings and budget of ``config_path`` (default: the split's own config)."""
    from sessrec_bench.quality import load_split, run_quality
    from sessrec_bench.splits import benchmark_cases

    folder = Path(folder)
    settings = recipe_settings_for(folder, config_path)
    load = round(os.getloadavg()[0], 1)
    result = (run_quality(folder, baselines=baselines, progress=progress, config_path=config_path) if course
              else {"split": folder.name, "rows": []})
    for row in result["rows"]:
        row["load_1min"] = load
    cases = benchmark_cases(load_split(folder))
    result.update({"split": folder.name, "folder": str(folder), "peer_settings": settings,
                   "test_cases": int(len(cases.targets)), "item_cardinality": int(cases.n_items)})
    result.setdefault("time_budget_s", settings["budget_s"])
    timeout = 3 * settings["budget_s"] + 1200  # data preparation and prediction come on top of the budget
    for library, model in peers:
        label = f"{library} {model}"
        out = workdir / folder.name / f"{library}-{model}"
        start, load, threads = time.perf_counter(), os.getloadavg()[0], threads_now()
        peer = run_peer(library, model, folder, out, settings, timeout, threads)
        row = {**peer, "split": folder.name, "model": NAMES[model], "kind": "peer",
               "library": library, "peer": model, "process_s": time.perf_counter() - start,
               "load_1min": round(load, 1), "threads": threads}
        if "error" not in peer and "skipped" not in peer:
            row.update(evaluate_peer(cases, out, f"{folder.name} {label}", progress))
            row["eval_s"] = peer["predict_s"] + row["evaluate_s"]
            logger.info("%s %s: R@20 %.2f MRR@20 %.2f in %.0f s", folder.name, label, row["Recall@20"],
                        row["MRR@20"], peer["train_s"])
        else:
            logger.warning("%s %s: %s", folder.name, label, peer.get("error") or peer.get("skipped"))
        result["rows"].append(row)
    return result


def _epochs(row: dict) -> str:
    if row["kind"] == "peer":
        cut = ", budget cut" if row.get("budget_cut") else ""
        return f"{row['epochs_done']} / {row['epochs_planned']}{cut}"
    if row["kind"] in ("torch", "recipe"):
        cut = ", budget cut" if row.get("budget_limited") else ""
        return f"{row['epochs']} / {row['train_config']['epochs']}{cut}"
    return "–"


def _threads(row: dict) -> str:
    if row["kind"] == "baseline":
        return "–"
    return f"{row.get('threads', '?')} ({row.get('load_1min', '?')})"


def split_markdown(result: dict) -> str:
    """The markdown table of one split: baselines, the course recipe and the peers, one row each."""
    settings = result["peer_settings"]
    lines = [f"**{result['split']}** ({result['test_cases']:,} test cases, {result['item_cardinality'] - 2:,} item ids; "
             f"budget {settings['budget_s']:.0f} s per neural model, max_length {settings['max_length']}, "
             f"{settings['valid_sessions']} held-out sessions)", "",
             "| model | source | P@20 | MRR@20 | train s | eval s | epochs done / planned | threads (load) |",
             "|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        source = {"baseline": "course baseline", "torch": "course model, before the blend",
                  "recipe": "course recipe"}.get(row["kind"], row.get("library", ""))
        if row["kind"] == "peer" and "versions" in row:
            source = f"{source} {row['versions'][row['library']]}"
        if "error" in row or "skipped" in row:
            lines.append(f"| {row['model']} | {source} | – | – | – | – | {row.get('error') or row.get('skipped')} | – |")
            continue
        lines.append(f"| {row['model']} | {source} | {row['Recall@20']:.2f} | {row['MRR@20']:.2f} | "
                     f"{row['train_s']:.1f} | {row['eval_s']:.1f} | {_epochs(row)} | {_threads(row)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m sessrec_bench peers-2026``: run the splits, print and store the tables."""
    from sessrec_bench.report import describe_machine, machine_description, update_section, write_json

    p = argparse.ArgumentParser(prog="python -m sessrec_bench peers-2026", description=__doc__.splitlines()[0])
    p.add_argument("splits", nargs="+", help="split folders (train_sessions.txt + test.tsv)")
    p.add_argument("--peers", nargs="*", default=None,
                   help="library or library:model (default: all of " +
                        ", ".join(f"{lib}:{m}" for lib, ms in PEERS.items() for m in ms) + ")")
    p.add_argument("--no-course", action="store_true", help="the peers only (no recipe, no baselines)")
    p.add_argument("--baselines", nargs="*", default=None, help="course baselines (default: all)")
    p.add_argument("--config", default=None,
                   help="recipe config for the course and the peers' budget (default: benchmarks/configs/<split>.toml, "
                        "else default.toml; the public splits' own configs give 3,300 s)")
    p.add_argument("--workdir", default=str(build_dir() / "bench" / "peers-2026"))
    p.add_argument("--json", default=str(build_dir() / "bench" / "peers-2026.json"))
    p.add_argument("--markdown", default=None, help="markdown file whose results section is rewritten")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    folders = [Path(f) for f in args.splits]
    missing = [str(f) for f in folders if not (f / "train_sessions.txt").is_file() or not (f / "test.tsv").is_file()]
    if missing:
        raise SystemExit(f"not a split folder (train_sessions.txt + test.tsv): {', '.join(missing)}")
    peers = parse_peers(args.peers)
    machine = machine_description()
    results = []
    for folder in folders:
        results.append(run_split(folder, peers, Path(args.workdir), course=not args.no_course,
                                 baselines=args.baselines, progress=args.progress, config_path=args.config))
        print(split_markdown(results[-1]), "\n", flush=True)
        write_json(args.json, {"command": "python -m sessrec_bench peers-2026 " + " ".join(sys.argv[1:] if argv is None else argv),
                               "machine": machine, "results": results})
    print(f"raw results: {args.json}")
    if args.markdown:
        body = [f"Machine: {describe_machine(machine)}.", "", *(split_markdown(r) + "\n" for r in results)]
        update_section(args.markdown, "Results", "\n".join(body))
        print(f"updated section 'Results' of {args.markdown}")
    return 0
