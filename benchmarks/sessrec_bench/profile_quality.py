"""Quality of the baselines and the PyTorch models on the default data of one profile (the notebooks' ordering).

    SESSREC_PROFILE=workshop python -m sessrec_bench profile --models mlp gru transformer

Builds (or reuses) the profile's generated dataset, fits POP / Markov / SR and trains each model exactly as
notebooks 03-05 do (``train_model``: the profile's epochs, batch size and hidden size, the per-model learning
rate, early stopping on validation MRR@20), then scores all of them on the same test cases (all prefixes of
the first ``eval_max_sessions`` test sessions). Prints a Markdown table for docs/benchmarks.md and writes the
raw figures as JSON next to it when ``--json`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from sessrec_course.etl import prepare_default_dataset
from sessrec_course.evaluation import evaluate
from sessrec_course.profiles import get_profile
from sessrec_course.training import TorchRecommender, train_model
from sessrec_course.training.validation import baseline_results, test_cases


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the table; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sessrec_bench profile", description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "gru", "transformer"])
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args(argv)

    profile = get_profile()
    data = prepare_default_dataset(profile)
    prefixes, targets = test_cases(data, profile)
    rows = {name: {**r, "train s": 0.0, "epochs": "-"} for name, r in baseline_results(data, profile).items()}
    for name in args.models:
        start = time.perf_counter()
        model, history = train_model(name, data, profile, cache=False)
        seconds = time.perf_counter() - start
        rows[name] = {**evaluate(TorchRecommender(model), prefixes, targets, ks=(20,), desc=name),
                      "train s": round(seconds, 1), "epochs": len(history.epochs),
                      "best epoch": history.best_epoch,
                      "validation MRR@20": [round(e.get("MRR@20", float("nan")), 4) for e in history.epochs]}
    print(f"profile {profile.name}: {profile.n_events:,} events, {len(targets):,} test cases, "
          f"hidden {profile.hidden_size}, {profile.epochs} epochs, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}")
    print("| model | Recall@20 | MRR@20 | train s | epochs | validation MRR@20 per epoch |\n|---|---|---|---|---|---|")
    for name, r in sorted(rows.items(), key=lambda kv: -kv[1]["MRR@20"]):
        print(f"| {name} | {r['Recall@20']:.4f} | {r['MRR@20']:.4f} | {r['train s']} | {r['epochs']} | "
              f"{', '.join(map(str, r.get('validation MRR@20', []))) or '-'} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"profile": profile.to_dict(), "results": rows}, handle, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
