"""Training throughput of the PyTorch session models (sessions/s, seconds per epoch) and of the loader.

    python -m sessrec_bench train-speed                       # default data of the active profile
    python -m sessrec_bench train-speed --diginetica --models transformer --hidden 100 --bf16

Prints one Markdown table row per measurement (paste into docs/benchmarks.md) with the machine load,
since the development box is shared. ``--max-steps`` times part of an epoch and extrapolates; without it
a full epoch runs. Diginetica ids are shifted by one (the course keeps id 1 for OOV).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

from sessrec_course.arrays import pad_right
from sessrec_course.device import configure_threads
from sessrec_course.models import build_model
from sessrec_course.profiles import get_profile
from sessrec_course.training.common import TrainConfig, model_config
from sessrec_course.training.torch_callbacks import standard_callbacks
from sessrec_course.training.torch_data import make_loader
from sessrec_course.training.torch_trainer import fit


def default_data(max_length: int) -> tuple[np.ndarray, int, int]:
    """The profile's default training split as a padded matrix, its item and category cardinalities."""
    from sessrec_course.etl import prepare_default_dataset
    from sessrec_course.training.torch_data import read_sessions

    data = prepare_default_dataset(get_profile())
    ids = read_sessions(data.path("train"), max_length)
    return ids, int(data.schema["item_cardinality"]), 0


def diginetica(max_length: int) -> tuple[np.ndarray, int, int]:
    """The Diginetica benchmark training sessions (SR-GNN split), ids shifted by one."""
    import pyarrow as pa

    from sessrec_bench.splits import load_benchmark

    split = load_benchmark("diginetica")
    lists = pa.array([s + 1 for s in split.train_sessions], type=pa.list_(pa.int64()))
    lengths = np.array([len(s) for s in split.train_sessions])
    kept = np.minimum(lengths, max_length) - 1
    print(f"diginetica: {len(lengths):,} sessions, {int((lengths - 1).sum()):,} prefix pairs, "
          f"{int(kept.sum()):,} kept at max_length={max_length}")
    return pad_right(lists, max_length), split.item_cardinality + 1, 0


def main(argv: list[str] | None = None) -> int:
    """Time the loader and one epoch of each model; print one row each."""
    parser = argparse.ArgumentParser(prog="python -m sessrec_bench train-speed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "gru", "transformer", "bert"])
    parser.add_argument("--diginetica", action="store_true", help="train on the Diginetica benchmark split")
    parser.add_argument("--hidden", type=int, default=None, help="hidden size (default: the profile's)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=20)
    parser.add_argument("--max-steps", type=int, default=None, help="time this many steps and extrapolate")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on CPU too")
    args = parser.parse_args(argv)

    profile = get_profile()
    threads = configure_threads()
    hidden = args.hidden or profile.hidden_size
    batch_size = args.batch_size or profile.batch_size
    ids, n_items, n_categories = diginetica(args.max_length) if args.diginetica else default_data(args.max_length)
    data_name = "diginetica" if args.diginetica else f"default ({profile.name})"

    loader = make_loader(ids, batch_size, seed=0)
    start = time.perf_counter()
    n_sessions = sum(len(b) for b in loader)
    load_s = time.perf_counter() - start
    print(f"loader: {n_sessions:,} sessions in {load_s:.2f} s = {n_sessions / load_s:,.0f} sessions/s "
          f"({len(loader)} batches of {batch_size})")

    print(f"\n{data_name}, hidden {hidden}, batch {batch_size}, {threads} threads, "
          f"{'bf16' if args.bf16 else 'fp32'}, load before: {os.getloadavg()[0]:.1f}")
    print("| model | data | hidden | precision | steps timed | sessions/s | s/epoch | load (1 min) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models:
        torch.manual_seed(0)
        schema = {"item_cardinality": n_items, "category_cardinality": n_categories, "max_length": args.max_length}
        config = model_config(name, schema, hidden_size=hidden)
        model = build_model(config)
        train = TrainConfig(epochs=1, batch_size=batch_size, bf16=args.bf16, max_steps_per_epoch=args.max_steps,
                            progress=True)
        history = fit(model, make_loader(ids, batch_size, seed=0), train, standard_callbacks(train))
        record = history.epochs[0]
        steps = len(history.losses)
        per_s = record["sessions_per_s"]
        epoch_s = n_sessions / per_s
        print(f"| {name} | {data_name} | {hidden} | {'bf16' if args.bf16 else 'fp32'} | {steps} | {per_s:,.0f} | "
              f"{epoch_s:,.0f} | {os.getloadavg()[0]:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
