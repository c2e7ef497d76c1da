"""What the 2026 peer scripts share: the split files, the held-out sessions, the output files (numpy + stdlib only).

Each peer script runs in its own venv (``.venv-rectools``, ``.venv-recbole``) without the course package, so the
split is read here with the same rules as ``sessrec_course.data.benchmarks.load_benchmark``: one training session
per line of ``train_sessions.txt`` (space-separated raw item ids), ``prefix<TAB>target`` per line of ``test.tsv``
after a header. Outputs, in ``--out``: ``predictions.npz`` (``items``: the top-k raw item ids of every test line,
-1 where fewer; ``scores``: theirs) and ``result.json`` (seconds, epochs, settings, versions).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def parser(description: str, models: tuple[str, ...]) -> argparse.ArgumentParser:
    """The command line every peer script takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--split", required=True, help="folder with train_sessions.txt and test.tsv")
    p.add_argument("--out", required=True, help="folder for predictions.npz and result.json")
    p.add_argument("--model", required=True, choices=models)
    p.add_argument("--budget", type=float, default=0.0, help="wall-clock seconds for training and validation (0: none)")
    p.add_argument("--max-length", type=int, default=20, help="the last items of a session the model reads")
    p.add_argument("--valid-sessions", type=int, default=100, help="latest training sessions held out for early stopping")
    p.add_argument("--max-epochs", type=int, default=30, help="cap on the epochs (early stopping and the budget end sooner)")
    p.add_argument("--top-k", type=int, default=100)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    return p


def _ids(text: str, where: str) -> list[int]:
    try:
        return [int(token) for token in text.split()]
    except ValueError as error:
        raise ValueError(f"{where}: expected space-separated integer item ids, got {text[:80]!r}") from error


def read_split(folder: str | Path) -> tuple[list[list[int]], list[list[int]], list[int]]:
    """``(train sessions, test prefixes, test targets)`` of a split folder, raw ids, file order."""
    folder = Path(folder)
    train_file, test_file = folder / "train_sessions.txt", folder / "test.tsv"
    for file in (train_file, test_file):
        if not file.is_file():
            raise FileNotFoundError(f"split file missing: {file}")
    train = [_ids(line, f"{train_file}:{i + 1}")
             for i, line in enumerate(train_file.read_text(encoding="utf-8").splitlines()) if line.strip()]
    prefixes, targets = [], []
    lines = test_file.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        prefix, _, target = line.partition("\t")
        prefixes.append(_ids(prefix, f"{test_file}:{i}"))
        targets.append(_ids(target, f"{test_file}:{i}")[0])
    return train, prefixes, targets


def hold_out_latest(sessions: list[list[int]], n_valid: int) -> tuple[list[list[int]], list[list[int]]]:
    """``(train, valid)``: the latest ``n_valid`` sessions held out, as the course's ``valid_holdout = "latest"``."""
    n_valid = min(n_valid, max(1, len(sessions) // 10))
    return sessions[:-n_valid], sessions[-n_valid:]


def set_threads(threads: int) -> None:
    """Pin torch (and its OpenMP pool) to ``threads`` CPU threads."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


class Deadline:
    """An iterable that yields ``loader``'s batches until ``time.perf_counter()`` passes ``at``; ``cut`` says if it did."""

    def __init__(self, loader, at: float) -> None:
        self.loader, self.at, self.cut, self.steps = loader, at, False, 0

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str):
        return getattr(self.loader, name)

    def __iter__(self):
        for batch in self.loader:
            if time.perf_counter() > self.at:
                self.cut = True
                return
            self.steps += 1
            yield batch


def top_k_rows(n_rows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Empty ``(items, scores)`` arrays for ``n_rows`` test lines: ids -1, scores -inf."""
    return np.full((n_rows, k), -1, dtype=np.int64), np.full((n_rows, k), -np.inf, dtype=np.float32)


def write_outputs(out: str | Path, items: np.ndarray, scores: np.ndarray, result: dict) -> None:
    """Write ``predictions.npz`` and ``result.json`` into ``out`` (the JSON last: its presence means done)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "predictions.npz", items=items, scores=scores)
    (out / "result.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
