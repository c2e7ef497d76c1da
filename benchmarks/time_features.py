"""Probe for issue #24 item 4: one preset trained with or without time features, scored on the test split.

Run one process per setting, side by side, on the active profile and dataset (``SESSREC_PROFILE``,
``SESSREC_DATASET``), e.g.::

    SESSREC_TORCH_THREADS=1 SESSREC_PROFILE=ci python benchmarks/time_features.py transformer --time-features on

A log whose start hours carry signal: ``python benchmarks/time_features.py --write-timed-log F.parquet`` (the
generated log with ``hour_affinity=2``), then ``SESSREC_DATASET=F.parquet SESSREC_DATASET_TIMESTAMP_UNIT=ns``.

Prints one JSON line: the setting, test MRR@20 / Recall@20 (all prefixes of the profile's test sessions),
training seconds and epochs. Nothing is cached (``cache=False``), so both settings train from the same seed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

from sessrec_course.data.synthetic import generate_log
from sessrec_course.etl.dataset import prepare_default_dataset
from sessrec_course.evaluation import evaluate
from sessrec_course.profiles import get_profile
from sessrec_course.training import TorchRecommender, test_cases, train_model
from sessrec_course.training.common import time_features_auto


def main() -> None:
    """Train, evaluate, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="preset: mlp, gru, transformer, bert, xlnet")
    parser.add_argument("--write-timed-log", metavar="PARQUET", help="write the profile's log with hour_affinity=2")
    parser.add_argument("--time-features", choices=("on", "off", "auto"),
                        help="auto: the rule of training.common.time_features_auto on the training split")
    parser.add_argument("--epochs", type=int, default=None, help="default: the profile's")
    parser.add_argument("--seed", type=int, default=None, help="default: the profile's")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    profile = get_profile()
    if args.write_timed_log:
        generate_log(profile.n_events, profile.n_items, profile.n_categories, profile.n_days, profile.seed,
                     hour_affinity=2.0).events.to_parquet(args.write_timed_log, index=False)
        return
    if args.model is None or args.time_features is None:
        parser.error("give a preset and --time-features (or --write-timed-log)")
    artifacts = prepare_default_dataset(profile)
    use = time_features_auto(artifacts.path("train")) if args.time_features == "auto" else args.time_features == "on"
    overrides = {k: v for k, v in (("epochs", args.epochs), ("seed", args.seed)) if v is not None}
    start = time.perf_counter()
    model, history = train_model(args.model, artifacts.root, profile, cache=False, progress=False,
                                 model_overrides={"time_features": use}, **overrides)
    seconds = time.perf_counter() - start
    cases = test_cases(artifacts.root, profile, features=use)
    metrics = evaluate(TorchRecommender(model), cases[0], cases[1], ks=(20,), progress=False,
                       features=cases[2] if use else None)
    print(json.dumps({
        "model": args.model, "setting": args.time_features, "time_features": use, "profile": profile.name,
        "dataset": os.environ.get("SESSREC_DATASET", "generated"), "test_cases": len(cases[1]),
        "MRR@20": round(metrics["MRR@20"], 4), "Recall@20": round(metrics["Recall@20"], 4),
        "seed": overrides.get("seed", profile.seed),
        "train_s": round(seconds, 1), "epochs": len(history.epochs), "best_epoch": history.best_epoch,
        # size of the learnt feature term: scale x Frobenius norm of the projection (0 without features)
        "projection_norm": round(float(model.time_scale * model.time_projection.weight.norm()), 4) if use else 0.0,
        "valid": {k: round(v, 4) for k, v in history.epochs[-1].items() if k.startswith(("MRR", "Recall"))},
    }))


if __name__ == "__main__":
    main()
