"""Quality benchmark: baselines and the PyTorch models on a split folder, scored on its ``test.tsv``.

A split folder holds ``train_sessions.txt`` (one session per line) and ``test.tsv`` (``prefix<TAB>target``),
the format of ``../shared/data/benchmarks/{diginetica,yoochoose1_64}``. Every baseline and every neural model
is fitted on the training sessions (``valid_sessions`` of them, the latest or a random sample, held out for
early stopping of the neural models and, every other one, the blend weights) and evaluated on every test line with :func:`sessrec_course.evaluation.evaluate`, full catalogue.
Hyper-parameters come from ``benchmarks/configs/<split>.toml``; a time budget bounds the neural models.
"""

from __future__ import annotations

import copy
import logging
import time
import tomllib
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from sessrec_bench.blend import Ensemble, alone, evaluate_blend
from sessrec_bench.recipe import hold_out, recipe_config, repeat_bias_start, repeat_gate_start, resolve_auto
from sessrec_course.arrays import pad_right
from sessrec_course.paths import project_root, shared_data_dir

logger = logging.getLogger(__name__)

KS = (10, 20)
DEFAULT_SPLITS = ("diginetica", "yoochoose1_64")
NEURAL_MODELS = ("gru", "transformer", "mlp")  # presets of sessrec_course.training.MODEL_PRESETS

# Published P@20 / MRR@20 (%) from the SR-GNN paper (AAAI'19, Table 2), as in docs/benchmarks.md.
PUBLISHED: dict[str, dict[str, tuple[float, float]]] = {
    "diginetica": {"Item-KNN": (35.75, 11.57), "GRU4Rec": (29.45, 8.33), "NARM": (49.70, 16.17),
                   "STAMP": (45.64, 14.32), "SR-GNN": (50.73, 17.59)},
    "yoochoose1_64": {"Item-KNN": (51.60, 21.81), "GRU4Rec": (60.64, 22.89), "NARM": (68.32, 28.63),
                      "STAMP": (68.74, 29.67), "SR-GNN": (70.57, 30.94)},
}
UNCHECKED = {("diginetica", name) for name in ("Item-KNN", "GRU4Rec", "NARM", "STAMP")}


def configs_dir() -> Path:
    """Return the folder of the versioned benchmark configs (``benchmarks/configs``)."""
    return project_root() / "benchmarks" / "configs"


def default_split_folders() -> list[Path]:
    """Return the shared benchmark split folders (diginetica, yoochoose1_64) under ``shared_data_dir()``."""
    return [shared_data_dir() / "benchmarks" / name for name in DEFAULT_SPLITS]


# Top-level settings a config may hold; [train] and [models.<preset>] are the tables (checked by the training code).
CONFIG_KEYS = ("seed", "max_length", "valid_sessions", "valid_holdout", "time_budget_s", "neural_models",
               "repeat_bias_start", "blend", "sampled_negatives", "ensemble", "train", "models")


def _read_toml(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"benchmark config not found: {path}")
    with path.open("rb") as handle:
        config = tomllib.load(handle)
    for key, value in config.items():
        if key not in CONFIG_KEYS:
            raise ValueError(f"{path}: unknown setting {key!r}; expected one of {list(CONFIG_KEYS)}")
        if key in ("train", "models") and not isinstance(value, dict):
            raise ValueError(f"{path}: {key!r} must be a table ([{key}]), got {value!r}")
    for name, table in config.get("models", {}).items():
        if not isinstance(table, dict):
            raise ValueError(f"{path}: models.{name} must be a table ([models.{name}]), got {table!r}")
    return config


def _merge(base: dict, override: dict) -> dict:
    """Return ``base`` with ``override`` merged over it, tables key by key (neither input is changed)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(split_name: str, path: str | Path | None = None) -> dict:
    """Read ``default.toml`` with the config of ``split_name`` (or ``path``) merged over it, tables key by key."""
    default = configs_dir() / "default.toml"
    if path is None:
        candidate = configs_dir() / f"{split_name}.toml"
        path = candidate if candidate.exists() else default
    path = Path(path)
    config = _read_toml(path)
    if path.resolve() != default.resolve():
        config = _merge(_read_toml(default), config)
    for key in ("train", "models"):
        if key not in config:
            raise ValueError(f"{path}: missing [{key}] table (see benchmarks/configs/default.toml)")
    config["_path"] = str(path)
    return config


def load_split(folder: str | Path):
    """Read a split folder (train_sessions.txt + test.tsv) as a ``BenchmarkSplit``."""
    from sessrec_bench.splits import load_benchmark

    folder = Path(folder)
    return load_benchmark(folder.name, root=folder.parent)


def _metrics_row(metrics: dict[str, float]) -> dict[str, float]:
    return {f"{name}@{k}": 100 * float(metrics[f"{name}@{k}"]) for k in KS for name in ("Recall", "MRR")}


def run_baselines(cases, split_name: str, names: list[str] | None = None, progress: bool = False) -> list[dict]:
    """The course baselines (``training.validation.run_baselines``) on re-encoded benchmark ``cases``: one row each."""
    from sessrec_course.baselines import default_baselines
    from sessrec_course.training.validation import run_baselines as fit_and_evaluate

    seconds: dict[str, tuple[float, float]] = {}
    chosen = [name for name in default_baselines() if names is None or name in names]
    results = fit_and_evaluate(cases.train_sessions, cases.n_items, cases.prefixes, cases.targets, chosen, ks=KS,
                               progress=progress, seconds=seconds)
    rows = [{"split": split_name, "model": name, "kind": "baseline", **_metrics_row(metrics),
             "train_s": seconds[name][0], "eval_s": seconds[name][1], "cases": int(len(cases.targets))}
            for name, metrics in results.items()]
    for row in rows:
        logger.info("%s %s: %s", split_name, row["model"], row)
    return rows


def run_neural(cases, split_name: str, config: dict, names: list[str], budget_s: float | None = None,
               progress: bool = False, recipe: tuple | None = None) -> list[dict]:
    """Train every neural preset in ``names`` with ``config`` and evaluate it on the test cases.

    ``budget_s`` (seconds, all models together, split evenly) caps training: epochs are planned from a
    measured step time and a deadline stops an epoch early. Rows say whether the budget cut training.
    ``recipe``: ``(stats, settings)`` of :func:`recipe_config` when the caller already has them (they cost a
    baseline fit each).
    """
    import torch

    from sessrec_bench.budget import TimeBudget
    from sessrec_bench.chunked_loss import ChunkedLoss
    from sessrec_bench.recipe import RepeatStarts
    from sessrec_bench.sampled_loss import sampled_loss
    from sessrec_course.evaluation import all_prefixes, evaluate
    from sessrec_course.training.common import TrainConfig, model_config
    from sessrec_course.training.torch_callbacks import standard_callbacks
    from sessrec_course.training.torch_pipeline import fit_model, torch_validator
    from sessrec_course.training.torch_recommender import TorchRecommender

    if recipe is None:
        config, stats, settings = recipe_config(config, cases.train_sessions, split_name)
    else:
        stats, settings = recipe
        config = resolve_auto(config, settings)
    max_length = int(config.get("max_length", 20))
    seed = int(config.get("seed", 42))
    n_valid = min(int(config.get("valid_sessions", 1000)), max(1, len(cases.train_sessions) // 10))
    train_sessions, valid_sessions = hold_out(cases.train_sessions, n_valid, config.get("valid_holdout", "latest"), seed)
    train_ids = pad_right(train_sessions, max_length)
    blend_names = list(config.get("blend", []))
    stop_sessions, blend_sessions = split_held_out(valid_sessions, bool(blend_names))
    validator = torch_validator(*all_prefixes(stop_sessions, max_length=max_length))
    valid_prefixes, valid_targets = all_prefixes(blend_sessions, max_length=max_length)
    per_model = None if budget_s is None else budget_s / max(1, len(names))
    schema = {"item_cardinality": cases.n_items, "max_length": max_length}
    n_members = int(config.get("ensemble", 1))  # models from seeds seed, seed + 1, ...: their mean softmax
    if n_members < 1:
        raise ValueError(f"{config.get('_path', 'config')}: ensemble must be at least 1, got {n_members}")
    negatives = int(config.get("sampled_negatives", 0))  # 0: the exact full-catalogue loss
    extensions = (sampled_loss(negatives), ChunkedLoss) if negatives else (ChunkedLoss,)
    if config.get("repeat_bias_start", "zero") not in ("zero", "data"):
        raise ValueError(f"{config.get('_path', 'config')}: repeat_bias_start must be 'zero' or 'data', "
                         f"got {config['repeat_bias_start']!r}")
    rows = []
    for name in names:
        model_cfg = dict(config["models"].get(name, {}))
        train_cfg = {**config["train"], **model_cfg.pop("train", {})}
        mconfig = model_config(name, schema, **model_cfg)
        unknown = sorted(set(train_cfg) - {f.name for f in fields(TrainConfig)})
        if unknown:
            raise ValueError(f"{config.get('_path', 'config')}: unknown [train] setting(s) {unknown} for {name}; "
                             f"expected some of {[f.name for f in fields(TrainConfig)]}")
        start_repeats = (mconfig.repeat_bias and not mconfig.repeat_mixture
                         and config.get("repeat_bias_start", "zero") == "data")
        starts = RepeatStarts(repeat_bias_start(train_sessions, max_length, cases.n_items) if start_repeats else None,
                              repeat_gate_start(stats.repeat_ratio) if mconfig.repeat_mixture else None)
        members, member_scores, train_s = [], [], 0.0
        for k in range(n_members):  # each member: its own seed and the whole per-model budget
            tconfig = TrainConfig(**{**train_cfg, "seed": seed + k, "progress": progress})
            budget = TimeBudget(per_model, f"{split_name} {name}" + (f" seed {seed + k}" if n_members > 1 else ""))
            callbacks = [*standard_callbacks(tconfig, validator), starts, budget]
            model, history = fit_model(mconfig, train_ids, tconfig, callbacks, extensions=extensions)
            train_s += time.perf_counter() - budget.started
            members.append(TorchRecommender(model))
            member_scores.append(None if history.best_score is None else 100 * history.best_score)
        recommender = members[0] if n_members == 1 else Ensemble(members)
        epochs, max_steps = budget.plan
        if blend_names:
            weights, table, parts, blend_s = _fit_blend(recommender, blend_names, train_sessions,
                                                        (valid_prefixes, valid_targets), cases)
            start = time.perf_counter()
            metrics, blended = evaluate_blend(parts, weights, cases.prefixes, cases.targets, KS, progress=progress)
        else:
            start = time.perf_counter()
            metrics = evaluate(recommender, cases.prefixes, cases.targets, ks=KS, progress=progress,
                               desc=f"{split_name} {name}")
        eval_s = time.perf_counter() - start
        epoch_s = [e["seconds"] for e in history.epochs]
        rows.append({
            "split": split_name, "model": f"{name} (torch)", "kind": "torch", **_metrics_row(metrics),
            "train_s": train_s, "eval_s": eval_s, "cases": int(len(cases.targets)),
            "epochs": len(history.epochs), "best_epoch": history.best_epoch,
            "epoch_s": float(np.mean(epoch_s)) if epoch_s else None,
            "sessions_per_s": float(np.mean([e["sessions_per_s"] for e in history.epochs])) if epoch_s else None,
            "budget_limited": bool(budget.loader.cut or epochs < tconfig.epochs or max_steps is not None),
            "steps_per_epoch": budget.steps_per_epoch, "max_steps_per_epoch": max_steps,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "model_config": mconfig.to_dict(), "train_config": {**asdict(tconfig), "epochs": epochs,
                                                                "max_steps_per_epoch": max_steps},
            "threads": torch.get_num_threads(), "split_stats": asdict(stats), "recipe": settings,
            "repeat_bias_start": "data" if start_repeats else "zero", "sampled_negatives": negatives,
            "ensemble": n_members, "members_valid_mrr": member_scores,  # each seed's best held-out MRR@20
        })
        logger.info("%s %s: R@20 %.2f MRR@20 %.2f in %.0f s", split_name, name, rows[-1]["Recall@20"],
                    rows[-1]["MRR@20"], train_s)
        if blend_names:
            rows.append({**rows[-1], "model": f"{name} + {' + '.join(blend_names)} (blend)", "kind": "recipe",
                         **_metrics_row(blended), "train_s": train_s + blend_s, "blend_s": blend_s,
                         "blend_weights": dict(zip(["model", *blend_names], weights, strict=True)),
                         "blend_valid": {"P@20, MRR@20": table[weights], "model alone": table[alone(len(weights))]}})
            logger.info("%s %s blend %s: R@20 %.2f MRR@20 %.2f", split_name, name, weights,
                        rows[-1]["Recall@20"], rows[-1]["MRR@20"])
    return rows


def split_held_out(sessions: list, blend: bool) -> tuple[list, list]:
    """The held-out sessions for early stopping and those for the blend weights: every other one each when there
    is a blend, so the weights are chosen on cases the stopping never saw (a model stopped on its own cases
    overrates itself there against the baselines); otherwise all of them for both."""
    if not blend or len(sessions) < 2:
        return list(sessions), list(sessions)
    return list(sessions[0::2]), list(sessions[1::2])


def _fit_blend(model, names: list[str], fit_sessions: list, valid: tuple, cases) -> tuple:
    """Blend weights chosen on the held-out ``valid`` cases with baselines fitted on ``fit_sessions`` (what the
    model trained on); then the baselines refitted on every training session for the test. Also the seconds."""
    from sessrec_bench.blend import choose_weights
    from sessrec_course.baselines import default_baselines

    start = time.perf_counter()
    known = default_baselines()
    usable = sorted(n for n, b in known.items() if hasattr(b, "evidence"))
    if unknown := [n for n in names if n not in usable]:
        raise ValueError(f"blend: baseline(s) {unknown} give no evidence to blend; expected some of {usable}")
    held_out = [model] + [known[n].fit(fit_sessions, cases.n_items) for n in names]
    weights, table = choose_weights(held_out, *valid)
    parts = [model] + [default_baselines()[n].fit(cases.train_sessions, cases.n_items) for n in names]
    return weights, table, parts, time.perf_counter() - start


def neural_model_names(config: dict, models: list[str] | None = None) -> list[str]:
    """The neural presets to train: ``models`` when given, else the config's ``neural_models``, else all defaults."""
    if models is not None:
        return list(models)
    names = config.get("neural_models", list(NEURAL_MODELS))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{config.get('_path', 'config')}: neural_models must be a list of preset names, got {names!r}")
    return names


def run_quality(folder: str | Path, models: list[str] | None = None, baselines: list[str] | None = None,
                time_budget_s: float | None = None, config_path: str | Path | None = None,
                progress: bool = False) -> dict:
    """Run the quality benchmark on one split folder; return ``{"split", "config", "rows", "published"}``.

    ``models``: neural presets (default: the config's ``neural_models``, else ``NEURAL_MODELS``; ``[]`` for none); ``baselines``: names from
    ``default_baselines()`` (default: all; ``[]`` for none). ``time_budget_s`` overrides the config's
    ``time_budget_s`` for the neural models together (0 or a negative value: no budget).
    """
    from sessrec_bench.splits import benchmark_cases

    folder = Path(folder)
    split = load_split(folder)
    config = load_config(folder.name, config_path)
    if time_budget_s is not None:  # before the recipe: the seeds it averages follow the budget
        config["time_budget_s"] = time_budget_s
    config, stats, settings = recipe_config(config, split.train_sessions, folder.name)
    budget = config.get("time_budget_s")
    budget = None if budget is None or budget <= 0 else float(budget)
    cases = benchmark_cases(split)
    logger.info("%r: %d test cases, budget %s s", split, len(cases.targets), budget)
    rows = [] if baselines == [] else run_baselines(cases, folder.name, baselines, progress)
    names = neural_model_names(config, models)
    if names:
        rows += run_neural(cases, folder.name, config, names, budget, progress, recipe=(stats, settings))
    return {"split": folder.name, "folder": str(folder), "config": config, "time_budget_s": budget,
            "train_sessions": len(split.train_sessions), "test_cases": int(len(cases.targets)),
            "item_cardinality": int(cases.n_items), "rows": rows, "published": PUBLISHED.get(folder.name, {})}
