"""What both training tracks share, framework free: presets, the train config, data paths, the history.

The PyTorch (``torch_pipeline``) and Keras (``keras_trainer``) tracks read the same presets and the same
:class:`TrainConfig`, so the only thing that differs between a model and its twin is the framework code.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sessrec_course.models import ModelConfig
from sessrec_course.profiles import Profile, get_profile

log = logging.getLogger(__name__)

# Architecture per model name; sizes (hidden, max_length, catalogue) come from the profile and schema.
MODEL_PRESETS: dict[str, dict] = {
    "mlp": {"name": "mlp", "window": 5, "dropout": 0.1},
    "gru": {"name": "gru", "num_layers": 1, "dropout": 0.1},
    # no dropout for the causal transformer: it validated better without (docs/history/training.md)
    "transformer": {"name": "transformer", "backbone": "gpt2", "num_layers": 2, "num_heads": 2, "dropout": 0.0},
    "bert": {"name": "transformer", "backbone": "bert", "num_layers": 2, "num_heads": 2, "dropout": 0.1},
    "xlnet": {"name": "transformer", "backbone": "xlnet", "num_layers": 2, "num_heads": 2, "dropout": 0.1},
}

# The causal presets: the Keras track has no masked BERT/XLNet.
KERAS_PRESETS: dict[str, dict] = {k: v for k, v in MODEL_PRESETS.items() if k in ("mlp", "gru", "transformer")}

# Peak learning rate per model, the best of a sweep on the ci data (docs/history/training.md).
TRAIN_PRESETS: dict[str, dict] = {
    "mlp": {"learning_rate": 1e-2}, "gru": {"learning_rate": 2e-2}, "transformer": {"learning_rate": 2e-3},
    "bert": {"learning_rate": 2e-3}, "xlnet": {"learning_rate": 2e-3},
}


def model_config(name: str, schema: dict, profile: Profile | None = None, presets: dict[str, dict] = MODEL_PRESETS,
                 **overrides) -> ModelConfig:
    """The :class:`ModelConfig` for preset ``name`` on data described by ``schema`` (hidden size from ``profile``).

    ``schema`` needs ``item_cardinality`` and ``max_length`` (``category_cardinality`` is optional); without a
    profile the hidden size is the :class:`ModelConfig` default unless ``overrides`` set it.
    """
    if name not in presets:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(presets)}")
    sizes = {"item_cardinality": int(schema["item_cardinality"]),
             "category_cardinality": int(schema.get("category_cardinality") or 0),
             "max_length": int(schema["max_length"])}
    if profile is not None:
        sizes["hidden_size"] = profile.hidden_size
    return ModelConfig(**{**presets[name], **sizes, **overrides})


@dataclass(frozen=True)
class SplitStats:
    """What the default recipe reads from the training sessions (never from the test set)."""

    sessions: int
    cases: int  # (prefix, next item) pairs
    items: int  # distinct items
    length_p95: float  # 95th percentile of the session length
    repeat_ratio: float  # share of next items already in their session's prefix
    spop_mrr: float = 0.0  # MRR@20 of S-POP (re-clicks by count) on the latest tenth of the sessions ...
    markov_mrr: float = 0.0  # ... and of the Markov chain (transitions), both fitted on the rest


def split_stats(sessions: list[np.ndarray]) -> SplitStats:
    """Count what :func:`recipe_settings` needs from training ``sessions`` (1-D id arrays, time order)."""
    lengths = np.array([len(s) for s in sessions], dtype=np.int64)
    cases = int(np.clip(lengths - 1, 0, None).sum())
    repeats = sum(len(s) - len(np.unique(s)) for s in sessions)  # a re-click's item was in the prefix already
    items = len(np.unique(np.concatenate(sessions))) if sessions else 0
    return SplitStats(len(sessions), cases, items, float(np.percentile(lengths, 95)) if len(lengths) else 0.0,
                      repeats / max(1, cases), *repeat_or_transition_mrr(sessions))


def latest_held_out(sessions: list, max_held_out: int = 2000) -> tuple[list, list]:
    """``(earlier, latest)``: the latest tenth of ``sessions`` (at most ``max_held_out``) held out for a check.

    ``latest`` is empty when nothing can be checked: too few sessions, no click before it or no next item in it.
    """
    n_held = min(max_held_out, len(sessions) // 10)
    fit, held = sessions[: len(sessions) - n_held], sessions[len(sessions) - n_held:]
    if n_held == 0 or not any(len(s) for s in fit) or not any(len(s) > 1 for s in held):
        return list(sessions), []
    return fit, held


def repeat_or_transition_mrr(sessions: list[np.ndarray], max_held_out: int = 2000) -> tuple[float, float]:
    """MRR@20 of S-POP and of the Markov chain on the latest tenth of ``sessions`` (at most ``max_held_out``).

    Both are fitted on the earlier sessions: which of the two wins says whether re-clicks or transitions
    predict this data better. ``(0, 0)`` when there are too few sessions to hold any out.
    """
    from sessrec_course.baselines import MarkovChain, SessionPopular
    from sessrec_course.evaluation import all_prefixes, evaluate

    fit, held = latest_held_out(sessions, max_held_out)
    if not held:
        return 0.0, 0.0
    n_items = int(max(int(s.max()) for s in sessions if len(s))) + 1
    prefixes, targets = all_prefixes(held, max_length=20)
    models = (SessionPopular(), MarkovChain())
    return tuple(float(evaluate(m.fit(fit, max(n_items, 3)), prefixes, targets, ks=20, progress=False)["MRR@20"])
                 for m in models)


def hour_or_overall_popularity_mrr(sessions: list[np.ndarray], start_hours: np.ndarray, max_held_out: int = 2000,
                                   buckets: int = 6) -> tuple[float, float]:
    """MRR@20 of popularity within the session's start-hour slice and of overall popularity, on the latest tenth.

    Both count the clicks of the earlier sessions (``buckets`` slices of the day; ties and items unseen in a
    slice fall back to the overall order); every click after a session's first is a case. ``(0, 0)`` when
    there are too few sessions to hold any out.
    """
    from sessrec_course.arrays import order_desc

    fit, held = latest_held_out(sessions, max_held_out)
    if not held:
        return 0.0, 0.0
    n_fit = len(fit)
    n_items = int(max(int(s.max()) for s in sessions if len(s))) + 1
    slices = np.asarray(start_hours, np.int64) * buckets // 24
    fit_items = np.concatenate(sessions[:n_fit])
    fit_slice = np.repeat(slices[:n_fit], [len(s) for s in sessions[:n_fit]])
    overall = np.bincount(fit_items, minlength=n_items).astype(np.float64)
    by_slice = np.stack([np.bincount(fit_items[fit_slice == b], minlength=n_items) for b in range(buckets)])
    by_slice = by_slice + overall / (overall.sum() + 1.0)  # unseen in a slice: overall order

    def rank_table(counts: np.ndarray) -> np.ndarray:  # rank of every item, ties to the lower id
        order = order_desc(counts)
        ranks = np.empty(n_items, np.int64)
        ranks[order] = np.arange(1, n_items + 1)
        return ranks

    targets = np.concatenate([s[1:] for s in sessions[n_fit:]])
    target_slice = np.repeat(slices[n_fit:], [max(0, len(s) - 1) for s in sessions[n_fit:]])
    hour_ranks = np.stack([rank_table(row) for row in by_slice])[target_slice, targets]
    overall_ranks = rank_table(overall)[targets]
    return tuple(float(np.where(r <= 20, 1.0 / r, 0.0).mean()) for r in (hour_ranks, overall_ranks))


def time_features_pay(hour_mrr: float, overall_mrr: float) -> bool:
    """The rule for ``time_features = "auto"``: on where popularity by start hour beats overall popularity by 10 %."""
    return overall_mrr > 0 and hour_mrr >= 1.1 * overall_mrr


def time_features_auto(train_path: str | Path) -> bool:
    """``time_features = "auto"`` for an ETL training file: :func:`time_features_pay` on its sessions, in time order."""
    import pyarrow.parquet as pq

    from sessrec_course.arrays import to_ragged
    from sessrec_course.etl.features import SESSION_COLUMNS
    from sessrec_course.etl.workflow import ITEM_COLUMN, list_column

    table = pq.read_table(train_path, columns=[ITEM_COLUMN, SESSION_COLUMNS[0], "start_time"])
    order = np.argsort(table.column("start_time").to_numpy(), kind="stable")
    values, offsets = to_ragged(list_column(table, train_path, ITEM_COLUMN))
    sessions = [values[offsets[i]:offsets[i + 1]] for i in order]
    hour_mrr, overall_mrr = hour_or_overall_popularity_mrr(sessions, table.column(SESSION_COLUMNS[0]).to_numpy()[order])
    use = time_features_pay(hour_mrr, overall_mrr)
    log.info("time_features auto: popularity MRR@20 by start hour %.4f, overall %.4f -> %s", hour_mrr, overall_mrr,
             "on" if use else "off")
    return use


def recipe_settings(stats: SplitStats) -> dict:
    """The data-dependent settings of the default recipe, by a stated rule (issue #24, docs/benchmarks.md).

    - ``max_length``: the 95th percentile of the session length rounded up to a multiple of 10, in [20, 50];
    - ``valid_sessions``: 5 % of the training sessions, in [100, 3000] (and never more than a tenth);
    - ``batch_size``: 128 (the tuned splits) unless an epoch would have fewer than 500 steps: then the power of
      two that gives about 500, at least 32 (small splits need more, smaller steps, not fewer epochs);
    - ``repeat_bias``: on where at least 1 % of next items are re-clicks (it costs nothing and is learnt);
    - ``repeat_mixture``: with the repeat bias, where S-POP out-predicts the Markov chain on the latest tenth of
      the training sessions (:func:`repeat_or_transition_mrr`): RepeatNet's repeat/explore mixture (its gate
      started at the split's re-click share, :func:`repeat_gate_start`); where transitions lead, the additive
      bias ranks better (YOOCHOOSE 1/64, 3 epochs side by side: MRR@20 31.61 additive, 29.47 mixture);
    - ``time_budget_s``: 1 s of training per 250 training cases, in [120, 900] (a split within 20 minutes);
    - ``repeat_bias_start``: ``"data"`` (the re-click shares, :func:`repeat_bias_start`) where items average fewer
      than 5 training cases each, else ``"zero"``: that start is calibrated against near-uniform item scores,
      which is what they stay at when items are seen once or twice; where items are learnt, it is far too high.
    """
    max_length = int(min(50, max(20, 10 * np.ceil(stats.length_p95 / 10))))
    valid = int(min(3000, max(100, stats.sessions // 20), max(1, stats.sessions // 10)))
    batch = 128
    while batch > 32 and (stats.sessions - valid) / batch < 500:
        batch //= 2
    return {"max_length": max_length, "valid_sessions": valid, "batch_size": batch,
            "repeat_bias": stats.repeat_ratio >= 0.01,
            "repeat_mixture": stats.repeat_ratio >= 0.01 and stats.spop_mrr > stats.markov_mrr,
            "time_budget_s": float(min(900, max(120, stats.cases / 250))),
            "repeat_bias_start": "data" if stats.cases < 5 * max(1, stats.items) else "zero"}


def repeat_bias_start(sessions: list[np.ndarray], max_length: int, n_items: int) -> np.ndarray:
    """Starting values of the repeat bias ``r[d]``, d = 0..max_length-1, from how often the next item re-clicks d back.

    ``r[d] = ln(q_d · n_items / (1 - q))`` where ``q_d`` is the share of next items whose latest earlier click is
    d steps before the last one and ``q`` their sum: against near-uniform item scores at the start, each distance
    then gets its observed share of the softmax mass, so re-clicks are predicted from the first step rather than
    after the thousands of steps a bias from zero needs (issue #24: tiny splits train a few hundred).
    """
    counts, cases = np.zeros(max_length), 0
    for session in sessions:
        last_seen: dict[int, int] = {}
        for t, item in enumerate(session.tolist()):
            if t:
                cases += 1
                d = t - 1 - last_seen.get(item, -max_length - 1)
                if d < max_length:
                    counts[d] += 1
            last_seen[item] = t
    share = counts / max(1, cases)
    rest = max(1e-3, 1.0 - share.sum())
    return np.where(share > 0, np.log(np.maximum(share, 1e-12) * n_items / rest), 0.0).astype(np.float32)


def repeat_gate_start(repeat_ratio: float) -> float:
    """The repeat gate's starting bias ``logit(q)``: every session starts at the split's re-click share ``q``."""
    q = min(0.99, max(0.01, float(repeat_ratio)))
    return float(np.log(q / (1.0 - q)))


# CPU feature flags (/proc/cpuinfo) and torch CPU capabilities with native bf16 matrix products
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
BF16_CPU_CAPABILITIES = frozenset({"AVX512_BF16", "AMX", "AMX_BF16"})


@functools.cache
def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where ``path`` is absent, e.g. not Linux)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def use_bf16(setting: bool | str | None, device_type: str, cpu_capability: str = "",
             flags: Iterable[str] = ()) -> bool:
    """Whether to train in bf16 autocast: ``setting`` True/False wins; None or ``"auto"``: only where bf16 is native.

    Native means CUDA, or a CPU with AVX-512-BF16 or AMX (``flags`` from :func:`cpu_flags`, ``cpu_capability``
    from ``torch.backends.cpu.get_cpu_capability()``); elsewhere bf16 is emulated and a step is several
    times slower than in fp32 (7.7x on an AVX2 box, issue #24), so fp32 is chosen.
    """
    if isinstance(setting, bool):
        return setting
    if setting not in (None, "auto"):
        raise ValueError(f"bf16 must be true, false or 'auto', got {setting!r}")
    if device_type == "cuda":
        return True
    if device_type != "cpu":
        return False
    return cpu_capability.upper() in BF16_CPU_CAPABILITIES or bool(BF16_CPU_FLAGS & set(flags))


@dataclass
class TrainConfig:
    """Optimisation settings of both frameworks (sizes come from the profile, see :meth:`from_profile`)."""

    epochs: int = 1
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 0.01  # not on embeddings, biases and layer norms
    warmup_fraction: float = 0.05  # share of all steps spent warming up linearly
    min_lr_fraction: float = 0.05  # cosine decays to this share of the peak learning rate
    grad_clip: float | None = 1.0  # global gradient norm
    patience: int = 2  # epochs without improvement before stopping
    monitor: str = "MRR@20"
    seed: int = 42
    device: str | None = None  # PyTorch; None: CUDA when present, else CPU (TensorFlow places ops itself)
    bf16: bool | str | None = None  # PyTorch; None or "auto": bf16 autocast where native (use_bf16)
    deterministic: bool | None = None  # Keras: deterministic TF kernels; None: on CPU only (some GPU kernels lack them)
    max_steps_per_epoch: int | None = None
    progress: bool = True

    @classmethod
    def from_profile(cls, profile: Profile, **overrides) -> TrainConfig:
        """Settings from a :class:`~sessrec_course.profiles.Profile` (+ keyword overrides)."""
        base = {"epochs": profile.epochs, "batch_size": profile.batch_size,
                "learning_rate": profile.learning_rate, "seed": profile.seed}
        return cls(**{**base, **overrides})


def train_config(name: str, profile: Profile, **overrides) -> TrainConfig:
    """The :class:`TrainConfig` for preset ``name``: the profile's settings, the preset's learning rate, ``overrides``."""
    return TrainConfig.from_profile(profile, **{**TRAIN_PRESETS[name], **overrides})


@dataclass
class History:
    """What happened during training: loss per step, metrics per epoch, the best epoch."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)  # epoch, train_loss, seconds, sessions_per_s, metrics
    best_epoch: int | None = None
    best_score: float | None = None
    monitor: str = "MRR@20"

    def to_dict(self) -> dict:
        """Return a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> History:
        """Rebuild from :meth:`to_dict` output."""
        return cls(**data)

    def save(self, path: str | Path) -> None:
        """Write the history as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")

    def best_postfix(self) -> dict[str, str]:
        """``{"best_<monitor>": "0.1234"}`` for a progress bar, empty before the first validation."""
        return {} if self.best_score is None else {f"best_{self.monitor}": f"{self.best_score:.4f}"}


@dataclass(frozen=True)
class DatasetPaths:
    """The ETL output files a model trains on."""

    train: Path
    valid: Path
    test: Path
    schema: Path


def resolve_artifacts(artifacts) -> DatasetPaths:
    """Accept the ETL output as a folder, a mapping or an object with train/valid/test/schema paths."""
    if isinstance(artifacts, DatasetPaths):
        return artifacts
    if hasattr(artifacts, "schema_path") and callable(getattr(artifacts, "path", None)):  # etl DatasetArtifacts
        splits = {k: Path(artifacts.path(k)) for k in ("train", "valid", "test")}
        return DatasetPaths(**splits, schema=Path(artifacts.schema_path))
    if isinstance(artifacts, str | Path):
        folder = Path(artifacts)
        found = {k: folder / f"{k}.parquet" for k in ("train", "valid", "test")}
        return DatasetPaths(**found, schema=folder / "schema.json")
    get = artifacts.get if isinstance(artifacts, dict) else lambda key: getattr(artifacts, key, None)
    values = {k: get(k) for k in ("train", "valid", "test", "schema")}
    if values["schema"] is None and values["train"] is not None:
        values["schema"] = Path(values["train"]).parent / "schema.json"
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise ValueError(f"dataset artefacts lack {missing}; expected train/valid/test parquet and schema.json")
    return DatasetPaths(**{k: Path(v) for k, v in values.items()})


def default_artifacts(profile: Profile) -> DatasetPaths:
    """Prepare (or reuse) the default dataset of ``profile`` with the ETL stage."""
    from sessrec_course.etl.dataset import prepare_default_dataset

    return resolve_artifacts(prepare_default_dataset(profile))


def training_paths(artifacts, profile: Profile) -> DatasetPaths:
    """The ETL output to train on (None: the profile's default data), its train/valid/schema files checked."""
    paths = default_artifacts(profile) if artifacts is None else resolve_artifacts(artifacts)
    for path in (paths.train, paths.valid, paths.schema):
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run the ETL first (sessrec_course.etl)")
    return paths


def read_schema(path: str | Path) -> dict:
    """Read the ETL ``schema.json`` and check the keys the models need."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the ETL first (sessrec_course.etl)")
    schema = json.loads(path.read_text(encoding="utf-8"))
    for key in ("item_cardinality", "max_length"):
        if key not in schema:
            raise ValueError(f"{path}: schema has no {key!r} (keys: {sorted(schema)})")
    return schema


class TrainingSetup(NamedTuple):
    """Everything a pipeline needs before training: the profile, the data files, both configs."""

    profile: Profile
    paths: DatasetPaths
    model: ModelConfig
    train: TrainConfig


def training_setup(name: str, artifacts=None, profile: Profile | None = None, presets: dict[str, dict] = MODEL_PRESETS,
                   model_overrides: dict | None = None, **train_overrides) -> TrainingSetup:
    """Resolve the profile (default: :func:`get_profile`) and the data, and build preset ``name``'s two configs."""
    profile = profile or get_profile()
    paths = training_paths(artifacts, profile)
    model_overrides = dict(model_overrides or {})
    if model_overrides.get("time_features") == "auto":
        model_overrides["time_features"] = time_features_auto(paths.train)
    config = model_config(name, read_schema(paths.schema), profile, presets, **model_overrides)
    return TrainingSetup(profile, paths, config, train_config(name, profile, **train_overrides))
