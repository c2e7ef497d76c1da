"""TensorFlow/Keras vs PyTorch twins on the default data: test MRR@20 / Recall@20 and seconds per epoch.

Each (model, framework) pair trains in a fresh process (no TF and torch in one process, each framework gets
the machine's threads) on the active profile's default dataset with the same settings, then scores the test
sessions (all prefixes, first ``eval_max_sessions`` sessions) with ``sessrec_course.evaluation.evaluate``.
Prints one markdown row per run.

    SESSREC_PROFILE=ci python -m sessrec_bench frameworks --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

MODELS = ("mlp", "gru", "transformer")
FRAMEWORKS = ("torch", "keras")
MODULE = "sessrec_bench.frameworks"  # each run in a fresh process


def child(framework: str, name: str, epochs: int) -> dict:
    """Train one model, evaluate it on test, return the figures."""
    import resource

    from sessrec_course.etl import prepare_default_dataset
    from sessrec_course.evaluation import all_prefixes, evaluate
    from sessrec_course.profiles import get_profile

    profile = get_profile()
    data = prepare_default_dataset(profile)
    test = data.load("test", columns=["item_id_list"])["item_id_list"]
    if profile.eval_max_sessions is not None:
        test = test.iloc[: profile.eval_max_sessions]
    prefixes, targets = all_prefixes(test, max_length=data.schema["max_length"])
    start = time.perf_counter()
    if framework == "torch":
        from sessrec_course.training import TorchRecommender, train_model

        model, history = train_model(name, data.root, profile, cache=False, progress=False, epochs=epochs)
        recommender = TorchRecommender(model)
        epochs_done = history.epochs
    else:
        from sessrec_course.training.keras_trainer import KerasRecommender, train_keras_model

        model, history = train_keras_model(name, data.root, profile, cache=False, progress=False, epochs=epochs)
        recommender = KerasRecommender(model)
        epochs_done = history.epochs
    train_s = time.perf_counter() - start
    metrics = evaluate(recommender, prefixes, targets, ks=(20,), progress=False)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"framework": framework, "model": name, "profile": profile.name, "epochs": len(epochs_done),
            "s_per_epoch": sum(e["seconds"] for e in epochs_done) / len(epochs_done),
            "best_epoch": history.best_epoch, "valid_MRR@20": history.best_score, "train_s": train_s,
            "test_Recall@20": metrics["Recall@20"], "test_MRR@20": metrics["MRR@20"],
            "cpu_s": usage.ru_utime + usage.ru_stime, "cases": len(targets)}


def main(argv: list[str] | None = None) -> int:
    """Train every (model, framework) pair in its own process and print one row each."""
    parser = argparse.ArgumentParser(prog="python -m sessrec_bench frameworks",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=FRAMEWORKS)
    parser.add_argument("--epochs", type=int, default=None, help="default: the profile's")
    parser.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        from sessrec_course.profiles import get_profile

        epochs = args.epochs or get_profile().epochs
        print("RESULT " + json.dumps(child(args.child[0], args.child[1], epochs)), flush=True)
        return 0
    print("| model | framework | epochs | s/epoch | valid MRR@20 (best epoch) | test Recall@20 | test MRR@20 | "
          "CPU s (whole run) | load avg |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        for framework in args.frameworks:
            command = [sys.executable, "-m", MODULE, "--child", framework, name]
            if args.epochs:
                command += ["--epochs", str(args.epochs)]
            out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
            if out.returncode or not lines:
                print(f"| {name} | {framework} | failed: {out.stderr.strip().splitlines()[-1:]} |||||||")
                continue
            r = json.loads(lines[-1][7:])
            print(f"| {name} | {framework} | {r['epochs']} | {r['s_per_epoch']:.1f} | {r['valid_MRR@20']:.4f} "
                  f"({r['best_epoch']}) | {r['test_Recall@20']:.4f} | {r['test_MRR@20']:.4f} | {r['cpu_s']:.0f} | "
                  f"{os.getloadavg()[0]:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
