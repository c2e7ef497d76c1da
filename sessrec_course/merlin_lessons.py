"""Helpers of the Merlin lessons that reach the course venv: a course preset trained in a child process."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sessrec_course.etl.nvtabular_workflow import read_split
from sessrec_course.paths import project_root


def course_sessions_like(course_root: str | Path, nvt_dir: str | Path, out: str | Path) -> Path:
    """``out/course/{train,test}.parquet``: the course's sessions with the ids of NVTabular's ``nvt_dir`` splits."""
    target = Path(out) / "course"
    target.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        ids = read_split(nvt_dir, split)["session_id"].to_numpy()
        table = pq.read_table(Path(course_root) / f"{split}.parquet")
        pq.write_table(table.filter(pc.is_in(table["session_id"], value_set=pa.array(ids))),
                       target / f"{split}.parquet")
    return Path(out)


def course_training(folder: str | Path, n_items: int, preset: str = "xlnet", hidden_size: int = 64,
                    max_length: int = 20, epochs: int = 1, batch_size: int = 256, seed: int = 42,
                    num_layers: int = 2, num_heads: int = 2) -> dict:
    """Train course preset ``preset`` on ``folder/course/``: training sessions/s, last-item test metrics."""
    import torch

    from sessrec_course import training
    from sessrec_course.evaluation import evaluate, last_item
    from sessrec_course.training.torch_trainer import Callback

    folder = Path(folder) / "course"
    train_ids = training.read_sessions(folder / "train.parquet", max_length)
    test_ids = training.read_sessions(folder / "test.parquet", max_length)
    n_items = max(int(n_items), int(train_ids.max()) + 1, int(test_ids.max()) + 1)
    transformer = training.MODEL_PRESETS[preset]["name"] == "transformer"
    shape = {"num_layers": num_layers, "num_heads": num_heads} if transformer else {}
    config = training.model_config(preset, {"item_cardinality": n_items, "max_length": max_length},
                                   hidden_size=hidden_size, **shape)  # the preset's dropout, as trained
    rate = training.TRAIN_PRESETS[preset]["learning_rate"]  # the preset's own, as its lesson trains it
    tconfig = training.TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=rate, seed=seed,
                                   progress=False, patience=epochs + 1)
    timing: dict[str, float] = {}

    class Clock(Callback):  # training time from the start of the fit, as the Merlin side counts it
        def before_fit(self, run):
            timing["start"], timing["sessions"] = time.perf_counter(), len(run.loader.dataset)

    callbacks = [*training.standard_callbacks(tconfig), Clock()]
    model, history = training.fit_model(config, train_ids, tconfig, callbacks)
    train_s = time.perf_counter() - timing["start"]
    prefixes, targets = last_item([row[row != 0] for row in test_ids], max_length=max_length)
    metrics = evaluate(training.TorchRecommender(model), prefixes, targets, ks=(20,), progress=False)
    sessions, name = timing["sessions"] * len(history.epochs), config.backbone if transformer else config.name
    return {"model": f"course {preset} ({name}, {'causal' if config.causal else 'masked'})", "preset": preset,
            "train_s": train_s, "sessions": sessions, "sessions_per_s": sessions / train_s,
            "Recall@20": 100 * metrics["Recall@20"], "MRR@20": 100 * metrics["MRR@20"],
            "test_cases": len(targets), "threads": torch.get_num_threads(), "epochs": len(history.epochs),
            "parameters": sum(p.numel() for p in model.parameters()), "hidden_size": hidden_size,
            "num_layers": num_layers, "num_heads": num_heads, "max_length": max_length, "n_items": n_items,
            "batch_size": batch_size}


def course_transformer(folder: str | Path, n_items: int, timeout: float = 1800, **settings: Any) -> dict[str, Any]:
    """:func:`course_training` (the Transformer, or ``preset=``) in the course venv, as a child process."""
    python = Path(os.environ.get("SESSREC_COURSE_PYTHON") or project_root() / ".venv" / "bin" / "python")
    if not python.exists():
        raise FileNotFoundError(f"no course venv at {python}: run `make setup` or set SESSREC_COURSE_PYTHON")
    code = ("import json, sys; from sessrec_course.merlin_lessons import course_training; "
            "print(json.dumps(course_training(**json.loads(sys.argv[1]))))")
    arguments = json.dumps({"folder": str(folder), "n_items": int(n_items), "preset": "transformer", **settings})
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JUPYTER_PATH")}
    env["PYTHONPATH"] = str(project_root())
    done = subprocess.run([str(python), "-c", code, arguments], capture_output=True, text=True,
                          timeout=timeout, cwd=project_root(), env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the course Transformer failed in {python} (exit {done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown_table(frame: Any, digits: int = 2) -> str:
    """A DataFrame as a markdown table (index first; empty cells for NaN), without the tabulate package."""
    head = ["", *map(str, frame.columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in frame.iterrows():
        cells = ["" if pd.isna(v) else f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(name), *cells]) + " |")
    return "\n".join(lines)
