"""Baselines on the standard benchmark splits (SR-GNN preprocessing): HR@20 (= P@20 = Recall@20) and MRR@20.

Usage: ``.venv/bin/python benchmarks/baselines.py [--benchmarks diginetica yoochoose1_64]
[--models POP S-POP Markov SR V-SKNN] [--batch-size 512]``. Reads ``../shared/data/benchmarks`` (skips when missing),
fits every baseline on ``train_sessions.txt``, ranks the full catalogue for every line of ``test.tsv`` with
``sessrec_course.evaluation.evaluate``, and prints a markdown table with fit and evaluation times.
Reference (FACTS.md): a first-order Markov chain with popularity fallback gives 33.67 / 12.77 (Diginetica)
and 64.85 / 29.74 (YOOCHOOSE 1/64).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from sessrec_course.baselines import default_baselines
from sessrec_course.evaluation import benchmark_cases, evaluate, item_counts
from sessrec_course.paths import shared_data_dir


def main(argv: list[str] | None = None) -> int:
    """Print the baseline table on the benchmark splits; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", nargs="+", default=["diginetica", "yoochoose1_64"])
    parser.add_argument("--models", nargs="+", default=list(default_baselines()))
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--max-length", type=int, default=None, help="truncate test prefixes (default: none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not (shared_data_dir() / "benchmarks").exists():
        print(f"skipped: no benchmark splits under {shared_data_dir() / 'benchmarks'}")
        return 0
    from sessrec_course.data.benchmarks import load_benchmark

    print("| benchmark | model | HR@20 (%) | MRR@20 (%) | NDCG@20 (%) | Coverage@20 | fit s | eval s | cases |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.benchmarks:
        cases = benchmark_cases(load_benchmark(name), args.max_length)
        popularity = item_counts(cases.train_sessions, cases.n_items)
        for model_name in args.models:
            model = default_baselines()[model_name]
            t0 = time.perf_counter()
            model.fit(cases.train_sessions, cases.n_items)
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            m = evaluate(model, cases.prefixes, cases.targets, ks=(20,), batch_size=args.batch_size,
                         item_popularity=popularity, desc=f"{name} {model_name}")
            eval_s = time.perf_counter() - t0
            print(f"| {name} | {model_name} | {100 * m['Recall@20']:.2f} | {100 * m['MRR@20']:.2f} | "
                  f"{100 * m['NDCG@20']:.2f} | {m['Coverage@20']:.3f} | {fit_s:.1f} | {eval_s:.1f} | "
                  f"{len(cases.targets)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
