"""Write small split folders (train_sessions.txt + test.tsv) to check the default recipe on data nobody tuned for.

    python -m sessrec_bench splits build/splits

Splits: ``yc100k`` (the YOOCHOOSE 100k prepared sample in ../shared/data), ``digi-sample`` (the Diginetica raw
sample, sessions split by time) and generated logs with different knobs: ``synth-repeat`` (60 % re-clicks),
``synth-long`` (mean length 25) and ``synth-large`` (a 30k-item catalogue). As in the SR-GNN preprocessing, the
latest sessions are the test set, test items unseen in training are dropped, and every prefix of a test session
is a test case.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from sessrec_course.data import loaders
from sessrec_course.data.synthetic import generate_log
from sessrec_course.paths import shared_data_dir


def write_split(folder: Path, train: pd.DataFrame, test: pd.DataFrame) -> None:
    """Write ``train``/``test`` events (session_id, item_id, timestamp) as a split folder, ids re-encoded 1..N."""
    folder.mkdir(parents=True, exist_ok=True)
    train = train.sort_values(["timestamp", "session_id"], kind="stable")
    codes = {item: i + 1 for i, item in enumerate(pd.unique(train["item_id"]))}
    order = train.groupby("session_id", sort=False)["timestamp"].min().sort_values(kind="stable").index
    sessions = train.groupby("session_id", sort=False)["item_id"].apply(list).loc[order]
    lines = [" ".join(str(codes[i]) for i in s) for s in sessions if len(s) >= 2]
    (folder / "train_sessions.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    test = test[test["item_id"].isin(codes)].sort_values(["session_id", "timestamp"], kind="stable")
    rows = ["prefix\ttarget"]
    for _, items in test.groupby("session_id", sort=False)["item_id"]:
        ids = [codes[i] for i in items]
        rows += [" ".join(map(str, ids[:t])) + "\t" + str(ids[t]) for t in range(1, len(ids))]
    (folder / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"{folder}: {len(lines)} train sessions, {len(rows) - 1} test cases, {len(codes)} items")


def split_by_time(events: pd.DataFrame, test_share: float = 0.1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sessions that start in the last ``test_share`` of the time span are the test set."""
    start = events.groupby("session_id")["timestamp"].transform("min")
    cut = start.quantile(1 - test_share)
    return events[start < cut], events[start >= cut]


def write_splits(out: Path) -> None:
    """Write every split under ``out``."""
    prepared = shared_data_dir() / "yoochoose-rsc15-100k" / "prepared"
    if prepared.is_dir():
        write_split(out / "yc100k", loaders.load_yoochoose_prepared(prepared / "yoochoose-clicks-100k_train_full.txt"),
                    loaders.load_yoochoose_prepared(prepared / "yoochoose-clicks-100k_test.txt"))
    digi = shared_data_dir() / "diginetica-sample" / "sample_train-item-views.csv"
    if digi.is_file():
        write_split(out / "digi-sample", *split_by_time(loaders.load_diginetica(digi)))
    knobs = {"synth-repeat": {"p_repeat": 0.6, "p_successor": 0.25},
             "synth-long": {"mean_length": 25.0},
             "synth-large": {"n_items": 30_000}}
    for name, extra in knobs.items():
        events = generate_log(n_events=150_000, seed=7, **extra).events
        write_split(out / name, *split_by_time(events[["session_id", "item_id", "timestamp"]]))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: the folder to write the splits into."""
    parser = argparse.ArgumentParser(prog="python -m sessrec_bench splits", description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", default="build/splits", type=Path)
    write_splits(parser.parse_args(argv).out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
