"""The time-features research switch (issue #24 item 4): the :class:`TimeFeatures` extension of the course's models,
their training, validation and scoring, the ``"auto"`` rule, and the probe that trains one preset with or without::

    SESSREC_TORCH_THREADS=1 SESSREC_PROFILE=ci python -m sessrec_bench time-features transformer --time-features on

A log whose start hours carry signal: ``python -m sessrec_bench time-features --write-timed-log F.parquet`` (the
generated log with ``hour_affinity=2``), then ``SESSREC_DATASET=F.parquet SESSREC_DATASET_TIMESTAMP_UNIT=ns``. The
probe prints one JSON line: the setting, test MRR@20 / Recall@20, training seconds and epochs (nothing cached).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch import nn

from sessrec_bench.recipe import latest_held_out
from sessrec_course.arrays import Ragged, pad_ragged, to_ragged
from sessrec_course.etl.workflow import ITEM_COLUMN, TIME_COLUMN, list_column
from sessrec_course.evaluation import all_prefixes, evaluate
from sessrec_course.ids import PAD_ID
from sessrec_course.models.config import ModelConfig
from sessrec_course.models.torch_base import SessionModel
from sessrec_course.training.common import History, training_setup
from sessrec_course.training.torch_callbacks import standard_callbacks
from sessrec_course.training.torch_data import SessionBatches, batch_loader, read_sessions
from sessrec_course.training.torch_pipeline import new_model
from sessrec_course.training.torch_trainer import fit

logger = logging.getLogger(__name__)

# per-click features known when the click happens: log1p(seconds since the previous click, 0 first), and the
# session's start hour and weekday on circles (sin, cos), the same for every click of a session
TIME_FEATURES = ("log_gap", "hour_sin", "hour_cos", "weekday_sin", "weekday_cos")
N_TIME_FEATURES = len(TIME_FEATURES)
SESSION_COLUMNS = ("start_hour", "start_weekday")


def time_feature_values(table: pa.Table, source: str | Path = "table") -> Ragged:
    """Per-click :data:`TIME_FEATURES` of an ETL table: ``(values (clicks, 5) float32, offsets)`` like its item lists."""
    if missing := [c for c in (ITEM_COLUMN, TIME_COLUMN, *SESSION_COLUMNS) if c not in table.column_names]:
        raise ValueError(f"{source}: time features need the columns {missing} (columns: {table.column_names}); "
                         f"re-run the ETL (SessionWorkflow.transform writes them)")
    _, offsets = to_ragged(list_column(table, source, ITEM_COLUMN))
    gaps, gap_offsets = to_ragged(list_column(table, source, TIME_COLUMN), dtype=np.float64)
    if not np.array_equal(offsets, gap_offsets):
        raise ValueError(f"{source}: {TIME_COLUMN} and {ITEM_COLUMN} differ in length; expected one gap per click")
    if (bad := gaps[~(gaps >= 0)]).size:  # negative or NaN
        raise ValueError(f"{source}: {TIME_COLUMN} holds {bad[0]}; expected seconds >= 0 since the previous click")
    per_session = {}
    for column, period in zip(SESSION_COLUMNS, (24, 7), strict=True):
        values = table.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
        if np.isnan(values).any() or (values < 0).any() or (values >= period).any():
            raise ValueError(f"{source}: {column} must lie in 0..{period - 1}, found {values.min()}..{values.max()}")
        per_session[column] = np.repeat(2 * np.pi * values / period, np.diff(offsets))
    hour, weekday = per_session["start_hour"], per_session["start_weekday"]
    values = np.stack([np.log1p(gaps), np.sin(hour), np.cos(hour), np.sin(weekday), np.cos(weekday)], axis=1)
    return values.astype(np.float32), offsets


def read_time_features(path: str | Path, max_length: int) -> np.ndarray:
    """The time features of an ETL parquet file, right-padded like ``read_sessions``: ``(N, max_length, 5)`` float32."""
    path = Path(path)
    names = set(pq.read_schema(path).names)
    table = pq.read_table(path, columns=[c for c in (ITEM_COLUMN, TIME_COLUMN, *SESSION_COLUMNS) if c in names])
    values, offsets = time_feature_values(table, path)
    return pad_ragged(values, offsets[:-1], offsets[1:], max_length, dtype=np.float32, pad=0)


class TimeFeatures(SessionModel):
    """An extension mixin (``build_model(config, extensions=(TimeFeatures,))``, ``config.time_features`` on): each
    click's time features ``(B, L, 5)`` projected and summed into its embedding, as in Transformers4Rec;
    ``forward(item_ids, features)``, ``loss(batch)`` of ``batch.item_ids`` and ``batch.features``.

    The projection starts at zero (training starts from the id-only model) and is scaled by a tenth of the item
    embeddings' scale: it learns at every click, an item's embedding only where the item occurs.
    """

    reads_time_features = True  # what the course's ``extend`` asks of a time_features config

    def __init__(self, config: ModelConfig, item_category: torch.Tensor | None = None) -> None:
        super().__init__(config, item_category)
        with torch.random.fork_rng(devices=[]):  # no draw: the other weights start as in the id-only model
            self.time_projection = nn.Linear(N_TIME_FEATURES, config.hidden_size)
        nn.init.zeros_(self.time_projection.weight)
        nn.init.zeros_(self.time_projection.bias)
        self.time_scale = 0.1 * config.hidden_size**-0.5
        self.features: torch.Tensor | None = None  # the features of the sessions being embedded

    @contextlib.contextmanager
    def reading(self, item_ids: torch.Tensor, features: torch.Tensor | None):
        """Embed the clicks of ``item_ids`` with their ``features`` in this block (a clear error if they differ)."""
        if features is None or features.shape != (*item_ids.shape, N_TIME_FEATURES):
            raise ValueError(f"this model was trained with time_features: pass features of shape "
                             f"{(*item_ids.shape, N_TIME_FEATURES)} (one vector per item id, time_feature_values), got "
                             f"{None if features is None else tuple(features.shape)}")
        self.features = features.float()
        try:
            yield
        finally:
            self.features = None

    def last_items(self, item_ids: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids, lengths = super().last_items(item_ids, width)
        if self.features is not None:  # the same rows of the features being read (0 at padding)
            full = (item_ids != PAD_ID).sum(dim=1)
            index = (full - width).clamp(min=0)[:, None] + torch.arange(width, device=item_ids.device)[None, :]
            kept = self.features.gather(1, index.clamp(max=item_ids.shape[1] - 1)[..., None].expand(
                -1, -1, N_TIME_FEATURES))
            self.features = torch.where((index < full[:, None])[..., None], kept, torch.zeros_like(kept))
        return ids, lengths

    def embed(self, item_ids: torch.Tensor) -> torch.Tensor:
        if self.features is None:
            raise ValueError("this model was trained with time_features: pass each click's features (B, L, "
                             f"{N_TIME_FEATURES}) beside the item ids (time_feature_values)")
        features = F.pad(self.features, (0, 0, 0, item_ids.shape[1] - self.features.shape[1]))  # a [MASK] slot
        features = torch.where((item_ids == self.mask_id)[..., None], torch.zeros_like(features), features)
        x = self.item_embedding(item_ids)
        if self.category_embedding is not None:
            x = x + self.category_embedding(self.item_category[item_ids])
        projected = self.time_scale * self.time_projection(features.to(x.dtype))
        return self.input_dropout(x + projected * (item_ids != PAD_ID)[..., None].to(x.dtype))

    def forward(self, item_ids: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        with self.reading(item_ids, features):
            return super().forward(item_ids)

    def loss(self, batch) -> torch.Tensor:
        with self.reading(batch.item_ids, batch.features):
            return super().loss(batch.item_ids)



@dataclass
class FeatureBatch:
    """A training batch of a time-feature model: ids ``(B, L)`` and their features ``(B, L, F)``, moved together."""

    item_ids: torch.Tensor
    features: torch.Tensor

    def to(self, device, non_blocking: bool = False) -> FeatureBatch:
        """Both tensors on ``device``."""
        return FeatureBatch(self.item_ids.to(device, non_blocking=non_blocking),
                            self.features.to(device, non_blocking=non_blocking))

    def __len__(self) -> int:
        return len(self.item_ids)


class FeatureBatches(SessionBatches):
    """:class:`SessionBatches` whose batches are :class:`FeatureBatch` es of the ids and their features, trimmed alike."""

    def __init__(self, item_ids: np.ndarray, features: np.ndarray, min_length: int = 2) -> None:
        super().__init__(item_ids, min_length)
        if features.shape[:2] != item_ids.shape:
            raise ValueError(f"features of shape {features.shape} do not match the item ids {item_ids.shape}")
        self.features = torch.from_numpy(np.ascontiguousarray(features[self.keep], dtype=np.float32))

    def __getitem__(self, indices) -> FeatureBatch:
        ids = super().__getitem__(indices)
        return FeatureBatch(ids, self.features[torch.as_tensor(indices, dtype=torch.long), : ids.shape[1]])


def make_feature_loader(item_ids: np.ndarray, features: np.ndarray, batch_size: int, shuffle: bool = True,
                        seed: int = 0):
    """``make_loader`` of ids with their features: batches of :class:`FeatureBatch`."""
    from torch.utils.data import RandomSampler, SequentialSampler

    dataset = FeatureBatches(item_ids, features)
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return batch_loader(dataset, sampler, batch_size)


def feature_cases(path: str | Path, max_length: int, max_sessions: int | None = None):
    """All-prefix cases of a split's first ``max_sessions`` sessions with their features: (prefixes, targets, features)."""
    table = pq.read_table(path)
    if max_sessions is not None:
        table = table.slice(0, max_sessions)
    return all_prefixes(table.column(ITEM_COLUMN), max_length=max_length, features=time_feature_values(table, path))


def feature_scorer(model: torch.nn.Module):
    """``score(ids, features) -> scores`` (numpy) of a time-feature model, in eval mode without gradients."""
    def score(ids: np.ndarray, features: np.ndarray) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            return model(torch.as_tensor(ids, dtype=torch.long), torch.as_tensor(features)).float().numpy()
    return score


def feature_validator(prefixes: np.ndarray, targets: np.ndarray, features: np.ndarray, ks=(20,)):
    """Validator for ``fit``: Recall/MRR@K of a time-feature model on fixed cases."""
    def validate(model) -> dict[str, float]:
        metrics = evaluate(feature_scorer(model), prefixes, targets, ks=ks, progress=False, features=features)
        return {k: v for k, v in metrics.items() if k.startswith(("Recall", "MRR"))}
    return validate


def train_time_model(name: str, artifacts, profile=None, *, time_features: bool = True, progress: bool = False,
                     **train_overrides) -> tuple[torch.nn.Module, History]:
    """``train_model`` of preset ``name`` with (or, for a side-by-side run, without) time features; nothing cached."""
    setup = training_setup(name, artifacts, profile, model_overrides={"time_features": time_features},
                           progress=progress, **train_overrides)
    config, paths, train = setup.model, setup.paths, setup.train
    ids = read_sessions(paths.train, config.max_length)
    prefixes, targets, features = feature_cases(paths.valid, config.max_length, setup.profile.eval_max_sessions)
    model = new_model(config, train.seed, extensions=(TimeFeatures,) if time_features else ())
    if time_features:
        loader = make_feature_loader(ids, read_time_features(paths.train, config.max_length), train.batch_size,
                                     seed=train.seed)
        validate = feature_validator(prefixes, targets, features)
    else:
        from sessrec_course.training.torch_data import make_loader
        from sessrec_course.training.torch_pipeline import torch_validator

        loader, validate = make_loader(ids, train.batch_size, seed=train.seed), torch_validator(prefixes, targets)
    return model, fit(model, loader, train, standard_callbacks(train, validate))


def hour_or_overall_popularity_mrr(sessions: list[np.ndarray], start_hours: np.ndarray, max_held_out: int = 2000,
                                   buckets: int = 6) -> tuple[float, float]:
    """MRR@20 of popularity within the session's start-hour slice and of overall popularity, on the latest tenth.

    Both count the clicks of the earlier sessions (``buckets`` slices of the day; ties and items unseen in a
    slice fall back to the overall order); every click after a session's first is a case. ``(0, 0)`` when
    there are too few sessions to hold any out.
    """
    from sessrec_course.arrays import order_desc

    fit_sessions, held = latest_held_out(sessions, max_held_out)
    if not held:
        return 0.0, 0.0
    n_fit = len(fit_sessions)
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
    table = pq.read_table(train_path, columns=[ITEM_COLUMN, SESSION_COLUMNS[0], "start_time"])
    order = np.argsort(table.column("start_time").to_numpy(), kind="stable")
    values, offsets = to_ragged(list_column(table, train_path, ITEM_COLUMN))
    sessions = [values[offsets[i]:offsets[i + 1]] for i in order]
    hour_mrr, overall_mrr = hour_or_overall_popularity_mrr(sessions, table.column(SESSION_COLUMNS[0]).to_numpy()[order])
    use = time_features_pay(hour_mrr, overall_mrr)
    logger.info("time_features auto: popularity MRR@20 by start hour %.4f, overall %.4f -> %s", hour_mrr, overall_mrr,
                "on" if use else "off")
    return use


def main(argv: list[str] | None = None) -> int:
    """Train one preset with or without time features, evaluate it on the test split, print the JSON line."""
    from sessrec_course.data.synthetic import generate_log
    from sessrec_course.etl.dataset import prepare_default_dataset
    from sessrec_course.profiles import get_profile

    parser = argparse.ArgumentParser(prog="python -m sessrec_bench time-features", description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="preset: mlp, gru, transformer, bert, xlnet")
    parser.add_argument("--write-timed-log", metavar="PARQUET", help="write the profile's log with hour_affinity=2")
    parser.add_argument("--time-features", choices=("on", "off", "auto"),
                        help="auto: the rule of time_features_auto on the training split")
    parser.add_argument("--epochs", type=int, default=None, help="default: the profile's")
    parser.add_argument("--seed", type=int, default=None, help="default: the profile's")
    args = parser.parse_args(argv)
    profile = get_profile()
    if args.write_timed_log:
        generate_log(profile.n_events, profile.n_items, profile.n_categories, profile.n_days, profile.seed,
                     hour_affinity=2.0).events.to_parquet(args.write_timed_log, index=False)
        return 0
    if args.model is None or args.time_features is None:
        parser.error("give a preset and --time-features (or --write-timed-log)")
    artifacts = prepare_default_dataset(profile)
    use = time_features_auto(artifacts.path("train")) if args.time_features == "auto" else args.time_features == "on"
    overrides = {k: v for k, v in (("epochs", args.epochs), ("seed", args.seed)) if v is not None}
    start = time.perf_counter()
    model, history = train_time_model(args.model, artifacts.root, profile, time_features=use, **overrides)
    seconds = time.perf_counter() - start
    test = artifacts.path("test")
    prefixes, targets, features = feature_cases(test, model.max_length, profile.eval_max_sessions)
    if use:
        metrics = evaluate(feature_scorer(model), prefixes, targets, ks=(20,), progress=False, features=features)
    else:
        from sessrec_course.training.torch_recommender import TorchRecommender

        metrics = evaluate(TorchRecommender(model), prefixes, targets, ks=(20,), progress=False)
    print(json.dumps({
        "model": args.model, "setting": args.time_features, "time_features": use, "profile": profile.name,
        "dataset": os.environ.get("SESSREC_DATASET", "generated"), "test_cases": len(targets),
        "MRR@20": round(metrics["MRR@20"], 4), "Recall@20": round(metrics["Recall@20"], 4),
        "seed": overrides.get("seed", profile.seed),
        "train_s": round(seconds, 1), "epochs": len(history.epochs), "best_epoch": history.best_epoch,
        # size of the learnt feature term: scale x Frobenius norm of the projection (0 without features)
        "projection_norm": round(float(model.time_scale * model.time_projection.weight.norm()), 4) if use else 0.0,
        "valid": {k: round(v, 4) for k, v in history.epochs[-1].items() if k.startswith(("MRR", "Recall"))},
    }))
    return 0
