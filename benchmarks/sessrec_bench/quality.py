"""Quality benchmark: baselines and the PyTorch models on a split folder, scored on its ``test.tsv``.

A split folder holds ``train_sessions.txt`` (one session per line) and ``test.tsv`` (``prefix<TAB>target``),
the format of ``../shared/data/benchmarks/{diginetica,yoochoose1_64}``. Every baseline and every neural model
is fitted on the training sessions (``valid_sessions`` of them, the latest or a random sample, held out for
early stopping of the neural models) and evaluated on every test line with :func:`sessrec_course.evaluation.evaluate`, full catalogue.
Hyper-parameters come from ``benchmarks/configs/<split>.toml``; a time budget bounds the neural models.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import tomllib
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

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
               "repeat_bias_start", "train", "models")
AUTO = "auto"  # a setting the recipe derives from the training split (training.common.recipe_settings)


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
    from sessrec_course.data.benchmarks import load_benchmark

    folder = Path(folder)
    return load_benchmark(folder.name, root=folder.parent)


def hold_out(sessions: list[np.ndarray], n_valid: int, how: str = "latest",
             seed: int = 42) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Split training ``sessions`` into ``(train, valid)`` with ``n_valid`` sessions held out for early stopping.

    ``how="latest"`` holds out the last ``n_valid`` sessions (the files are in time order); ``"random"`` a seeded
    random sample, so the most recent sessions, the closest to the test days, are still trained on.
    """
    if not 0 < n_valid < len(sessions):
        raise ValueError(f"valid_sessions must be between 1 and {len(sessions) - 1} (the training sessions), got {n_valid}")
    if how == "latest":
        return sessions[:-n_valid], sessions[-n_valid:]
    if how != "random":
        raise ValueError(f"valid_holdout must be 'latest' or 'random', got {how!r}")
    chosen = np.zeros(len(sessions), dtype=bool)
    chosen[np.random.default_rng(seed).choice(len(sessions), n_valid, replace=False)] = True
    return [sessions[i] for i in np.flatnonzero(~chosen)], [sessions[i] for i in np.flatnonzero(chosen)]


def _metrics_row(metrics: dict[str, float]) -> dict[str, float]:
    return {f"{name}@{k}": 100 * float(metrics[f"{name}@{k}"]) for k in KS for name in ("Recall", "MRR")}


def run_baselines(cases, split_name: str, names: list[str] | None = None, progress: bool = False) -> list[dict]:
    """Fit and evaluate the course baselines on re-encoded benchmark ``cases``; one result row each."""
    from sessrec_course.baselines import default_baselines
    from sessrec_course.evaluation import evaluate

    rows = []
    for name, model in default_baselines().items():
        if names is not None and name not in names:
            continue
        start = time.perf_counter()
        model.fit(cases.train_sessions, cases.n_items)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        metrics = evaluate(model, cases.prefixes, cases.targets, ks=KS, progress=progress, desc=f"{split_name} {name}")
        rows.append({"split": split_name, "model": name, "kind": "baseline", **_metrics_row(metrics),
                     "train_s": fit_s, "eval_s": time.perf_counter() - start, "cases": int(len(cases.targets))})
        logger.info("%s %s: %s", split_name, name, rows[-1])
    return rows


class DeadlineLoader:
    """Wrap a loader so that iteration stops once ``deadline`` (``time.perf_counter()``) has passed."""

    def __init__(self, loader, deadline: float) -> None:
        self.loader, self.deadline = loader, deadline
        self.cut = False

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            if time.perf_counter() > self.deadline:
                self.cut = True
                return
            yield batch


def seconds_per_step(model, loader, steps: int = 24, warmup: int = 4, bf16: bool | str | None = None) -> float:
    """Median time of ``steps`` optimisation steps on a throw-away copy of ``model``, after ``warmup`` uncounted ones.

    The first steps of a fresh model run several times slower (allocator, thread pool, lazy kernels): counting
    them planned 2 epochs where 5 fitted (yc100k, docs/history/benchmarks.md).

    ``bf16`` as in :class:`~sessrec_course.training.common.TrainConfig` (None: where native): the probe must
    run like the training it plans, as bf16 autocast changes the step time on CPU too (docs/history/training.md).
    """
    import torch

    from sessrec_course.training.torch_trainer import autocast_for, configure_threads, select_device

    configure_threads()
    probe = copy.deepcopy(model).train()
    optimizer = torch.optim.AdamW(probe.parameters(), lr=1e-4)
    device = select_device(None)
    probe.to(device)
    times = []
    for index, batch in enumerate(loader):
        if index >= warmup + steps:
            break
        start = time.perf_counter()
        with autocast_for(device, bf16):
            loss = probe.loss(batch.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    counted = times[warmup:] if len(times) > warmup else times[-1:]
    return float(np.median(counted))


def plan_epochs(epochs: int, steps_per_epoch: int, sec_per_step: float, budget_s: float | None) -> tuple[int, int | None]:
    """Return ``(epochs, max_steps_per_epoch)`` that fit ``budget_s`` seconds of training (None: no cap).

    All the affordable steps are used: 1.9 epochs' worth become 2 epochs of 95 % of the batches each (a new
    random share every epoch), not 1 epoch and half the budget idle.
    """
    if budget_s is None or epochs * steps_per_epoch * sec_per_step <= budget_s:
        return epochs, None
    affordable = max(1, int(budget_s / max(sec_per_step, 1e-9)))
    planned = min(epochs, math.ceil(affordable / steps_per_epoch))
    per_epoch = affordable // planned
    return planned, (None if per_epoch >= steps_per_epoch else max(1, per_epoch))


class TimeBudget:
    """``before_fit`` hook of ``fit_model``: plans the epochs that fit ``seconds`` and stops an epoch at the deadline.

    The first plan comes from a short step probe; after each epoch's validation (:meth:`validated` wraps the
    validator) the epochs are re-planned from the measured length of that epoch, training and validation, so a
    probe taken in a moment of load does not decide the run (yc100k: a probe at 2x the real step time had
    planned 2 epochs where 6 fitted).
    """

    TRAIN_SHARE = 0.8  # of the budget planned for training: the rest for validation and the final evaluation

    def __init__(self, seconds: float | None, label: str) -> None:
        self.seconds, self.label = seconds, label
        self.started, self.steps_per_epoch, self.loader = 0.0, 0, None
        self.train, self.cap, self.marks = None, 0, []

    def __call__(self, model, loader, train) -> DeadlineLoader:
        """Measure a step, set ``train.epochs``/``max_steps_per_epoch``; return the deadline-guarded loader."""
        self.started, self.steps_per_epoch = time.perf_counter(), len(loader)
        self.train, self.cap = train, train.epochs
        epochs, max_steps = train.epochs, None
        if self.seconds is not None:
            step_s = seconds_per_step(model, loader, bf16=train.bf16)
            epochs, max_steps = plan_epochs(train.epochs, len(loader), step_s, self.TRAIN_SHARE * self.seconds)
            logger.info("%s: %.3f s/step, %d steps/epoch -> %d epoch(s), cap %s", self.label, step_s,
                        len(loader), epochs, max_steps)
        train.epochs, train.max_steps_per_epoch = epochs, max_steps
        self.marks = [time.perf_counter()]
        self.loader = DeadlineLoader(loader, self.started + (self.seconds if self.seconds is not None else float("inf")))
        return self.loader

    def validated(self, validate):
        """``validate`` that re-plans the epochs after each call (the end of an epoch)."""
        def wrapper(model):
            start = time.perf_counter()
            metrics = validate(model)
            self.replan(time.perf_counter() - start)
            return metrics
        return wrapper

    def replan(self, validation_s: float = 0.0) -> None:
        """After epoch k: re-plan the epochs left and their length from epoch k's measured steps and validation.

        Another epoch starts while the time left holds at least half of epoch k (rounded, not floored: the
        first plan counted no validation; the deadline still stops an epoch that would overrun); then all the
        steps the time left affords are planned, as :func:`plan_epochs` does, at most the configured epochs.
        """
        if self.seconds is None or self.train is None:
            return
        now = time.perf_counter()
        last, k = now - self.marks[-1], len(self.marks)
        self.marks.append(now)
        left = self.TRAIN_SHARE * self.seconds - (now - self.started)
        epochs, max_steps = k, self.train.max_steps_per_epoch
        if k < self.cap and left >= 0.5 * last:
            step_s = max(last - validation_s, 1e-9) / (max_steps or self.steps_per_epoch)
            more, max_steps = plan_epochs(self.cap - k, self.steps_per_epoch, step_s, max(0.0, left - validation_s))
            if more > 1:  # each further epoch is validated too
                more, max_steps = plan_epochs(self.cap - k, self.steps_per_epoch, step_s,
                                              max(0.0, left - more * validation_s))
            epochs = k + more
        if (epochs, max_steps) != (self.train.epochs, self.train.max_steps_per_epoch):
            logger.info("%s: epoch %d took %.1f s -> %d epoch(s) in all, cap %s", self.label, k, last, epochs,
                        max_steps)
            self.train.epochs, self.train.max_steps_per_epoch = epochs, max_steps


def resolve_auto(config: dict, settings: dict) -> dict:
    """Return ``config`` with every ``"auto"`` value replaced by the recipe's ``settings`` (same key names).

    ``max_length`` and ``valid_sessions`` are top-level keys, ``batch_size`` sits in ``[train]`` (or a model's
    ``[train]``), ``repeat_bias`` in ``[models.<preset>]``.
    """
    def fill(table: dict, where: str) -> dict:
        out = {}
        for key, value in table.items():
            if isinstance(value, dict):
                out[key] = fill(value, f"{where}{key}.")
            elif value == AUTO:
                if key not in settings:
                    raise ValueError(f"{config.get('_path', 'config')}: {where}{key} = 'auto' has no rule; "
                                     f"'auto' is allowed for {sorted(settings)}")
                out[key] = settings[key]
            else:
                out[key] = value
        return out

    return fill(config, "")


def recipe_config(config: dict, train_sessions: list[np.ndarray], label: str = "") -> tuple[dict, object, dict]:
    """``config`` with its ``"auto"`` settings derived from ``train_sessions``; also the split stats and the settings."""
    from sessrec_course.training.common import recipe_settings, split_stats

    stats = split_stats(train_sessions)  # the training split only: the test file never picks a setting
    settings = recipe_settings(stats)
    logger.info("%s: %s -> recipe %s", label, stats, settings)
    return resolve_auto(config, settings), stats, settings


def run_neural(cases, split_name: str, config: dict, names: list[str], budget_s: float | None = None,
               progress: bool = False, recipe: tuple | None = None) -> list[dict]:
    """Train every neural preset in ``names`` with ``config`` and evaluate it on the test cases.

    ``budget_s`` (seconds, all models together, split evenly) caps training: epochs are planned from a
    measured step time and a deadline stops an epoch early. Rows say whether the budget cut training.
    ``recipe``: ``(stats, settings)`` of :func:`recipe_config` when the caller already has them (they cost a
    baseline fit each).
    """
    import torch

    from sessrec_course.evaluation import all_prefixes, evaluate
    from sessrec_course.training.common import TrainConfig, model_config, repeat_bias_start, repeat_gate_start
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
    valid_prefixes, valid_targets = all_prefixes(valid_sessions, max_length=max_length)
    validator = torch_validator(valid_prefixes, valid_targets)
    per_model = None if budget_s is None else budget_s / max(1, len(names))
    schema = {"item_cardinality": cases.n_items, "max_length": max_length}
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
        tconfig = TrainConfig(**{**train_cfg, "seed": seed, "progress": progress})
        budget = TimeBudget(per_model, f"{split_name} {name}")
        start_repeats = (mconfig.repeat_bias and not mconfig.repeat_mixture
                         and config.get("repeat_bias_start", "zero") == "data")

        def before_fit(model, loader, train, budget=budget, start_repeats=start_repeats):
            with torch.no_grad():
                if start_repeats:  # the learnt re-click scores start at the split's re-click shares
                    model.repeat_bias.copy_(torch.from_numpy(
                        repeat_bias_start(train_sessions, max_length, cases.n_items)))
                if model.repeat_gate is not None:  # the repeat gate starts at the split's re-click share
                    model.repeat_gate.bias.fill_(repeat_gate_start(stats.repeat_ratio))
            return budget(model, loader, train)

        model, history = fit_model(mconfig, train_ids, budget.validated(validator), tconfig, before_fit=before_fit)
        epochs, max_steps = tconfig.epochs, tconfig.max_steps_per_epoch
        train_s = time.perf_counter() - budget.started
        start = time.perf_counter()
        metrics = evaluate(TorchRecommender(model), cases.prefixes, cases.targets, ks=KS, progress=progress,
                           desc=f"{split_name} {name}")
        epoch_s = [e["seconds"] for e in history.epochs]
        rows.append({
            "split": split_name, "model": f"{name} (torch)", "kind": "torch", **_metrics_row(metrics),
            "train_s": train_s, "eval_s": time.perf_counter() - start, "cases": int(len(cases.targets)),
            "epochs": len(history.epochs), "best_epoch": history.best_epoch,
            "epoch_s": float(np.mean(epoch_s)) if epoch_s else None,
            "sessions_per_s": float(np.mean([e["sessions_per_s"] for e in history.epochs])) if epoch_s else None,
            "budget_limited": bool(budget.loader.cut or epochs < int(train_cfg.get("epochs", 1)) or max_steps is not None),
            "steps_per_epoch": budget.steps_per_epoch, "max_steps_per_epoch": max_steps,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "model_config": mconfig.to_dict(), "train_config": asdict(tconfig),
            "threads": torch.get_num_threads(), "split_stats": asdict(stats), "recipe": settings,
            "repeat_bias_start": "data" if start_repeats else "zero",
        })
        logger.info("%s %s: R@20 %.2f MRR@20 %.2f in %.0f s", split_name, name, rows[-1]["Recall@20"],
                    rows[-1]["MRR@20"], train_s)
    return rows


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
    from sessrec_course.evaluation import benchmark_cases

    folder = Path(folder)
    split = load_split(folder)
    config = load_config(folder.name, config_path)
    config, stats, settings = recipe_config(config, split.train_sessions, folder.name)
    budget = config.get("time_budget_s") if time_budget_s is None else time_budget_s
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
