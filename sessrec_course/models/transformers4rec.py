"""Transformers4Rec 23.12's XLNet as the blog builds it (PyTorch, Merlin kernel), trained and evaluated."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from sessrec_course.arrays import pad_right
from sessrec_course.etl import nvtabular_workflow as nw
from sessrec_course.etl.nvtabular_workflow import ITEMS, NVT_FIRST, course_layout, from_course_ids
from sessrec_course.evaluation import MISS_RANK, ranks_from_scores

# deprecations of APIs that Transformers4Rec 23.12 itself calls
_NOISE = ("The `device` argument is deprecated", "`resume_download` is deprecated", "torch.utils._pytree",
          "This implementation of AdamW is deprecated", "TypedStorage is deprecated")


def import_t4rec() -> Any:
    """Import ``transformers4rec.torch`` without TensorFlow (``skip_tensorflow``) and its CPU-run notices."""
    nw.skip_tensorflow()
    nw.quiet(*_NOISE)
    import transformers4rec.torch as tr

    return tr


def read_schema(data_dir: str | Path, columns: tuple[str, ...] = (ITEMS,)) -> Any:
    """The Merlin schema NVTabular wrote beside ``data_dir/train`` (``schema.pbtxt``), narrowed to ``columns``."""
    import_t4rec()
    from merlin.io import Dataset

    return Dataset(str(Path(data_dir) / "train"), engine="parquet", cpu=True).schema.select_by_name(list(columns))


def xlnet_model(schema: Any, masking: str = "clm", d_model: int = 64, n_head: int = 2, n_layer: int = 2,
                max_length: int = 20, metrics_ks: tuple[int, ...] = (10, 20), seed: int = 42) -> Any:
    """The blog's model: schema features → XLNet → tied next-item task; ``"clm"`` causal, ``"mlm"`` masked."""
    tr = import_t4rec()
    torch.manual_seed(seed)
    from transformers4rec.torch.ranking_metric import MeanReciprocalRankAt, RecallAt

    inputs = tr.TabularSequenceFeatures.from_schema(schema, max_sequence_length=max_length, masking=masking,
                                                    d_output=d_model, aggregation="concat")
    metrics = [RecallAt(top_ks=list(metrics_ks), labels_onehot=True),
               MeanReciprocalRankAt(top_ks=list(metrics_ks), labels_onehot=True)]
    task = tr.NextItemPredictionTask(weight_tying=True, metrics=metrics)
    config = tr.XLNetConfig.build(d_model=d_model, n_head=n_head, n_layer=n_layer, total_seq_length=max_length)
    return config.to_torch_model(inputs, task)


def train_and_evaluate(model: Any, schema: Any, data_dir: str | Path, out_dir: str | Path, epochs: int = 1,
                       batch_size: int = 128, learning_rate: float = 2e-3, max_length: int = 20,
                       seed: int = 42) -> dict[str, Any]:
    """T4Rec's ``Trainer`` on ``data_dir/train``, its evaluation on ``data_dir/test``: seconds and metrics."""
    tr = import_t4rec()
    args = tr.T4RecTrainingArguments(
        output_dir=str(out_dir), max_sequence_length=max_length, data_loader_engine="merlin",
        num_train_epochs=epochs, per_device_train_batch_size=batch_size, per_device_eval_batch_size=batch_size,
        learning_rate=learning_rate, dataloader_drop_last=False, report_to=[], no_cuda=True, seed=seed,
        save_strategy="no", logging_strategy="no", disable_tqdm=True, compute_metrics_each_n_steps=1)
    trainer = tr.Trainer(model=model, args=args, schema=schema, compute_metrics=True)
    trainer.train_dataset_or_path = str(Path(data_dir) / "train")
    trainer.eval_dataset_or_path = str(Path(data_dir) / "test")
    start = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - start
    raw = trainer.evaluate(metric_key_prefix="eval")
    names = {key.rsplit("/", 1)[-1]: float(value) for key, value in raw.items()}  # eval_/next-item/...
    metrics = {label + name[len(prefix):]: value for name, value in names.items()  # recall_at_20 → Recall@20
               for prefix, label in (("recall_at_", "Recall@"), ("mean_reciprocal_rank_at_", "MRR@"))
               if name.startswith(prefix)}
    model.eval()
    return {"train_s": train_s, "t4rec": metrics, "raw": {k: float(v) for k, v in raw.items()}}


class T4RecRecommender:
    """A trained T4Rec model behind the course's ``score(prefixes) -> (B, n_items)`` protocol (course ids)."""

    def __init__(self, model: Any, max_length: int = 20) -> None:
        self.model, self.max_length = model.eval(), max_length

    def nvt_scores(self, prefixes: np.ndarray) -> np.ndarray:
        """Scores of every NVTabular id (0 padding, 1 null, 2 OOV, items from 3) after each course-id prefix."""
        ids = pad_right(from_course_ids(prefixes), self.max_length)  # the model takes max_length columns
        with torch.no_grad():
            scores = self.model({ITEMS: torch.as_tensor(ids)}, training=False, testing=False)
        return scores.float().numpy()

    course_layout = staticmethod(course_layout)

    def score(self, prefixes: np.ndarray) -> np.ndarray:
        """Scores in the course's layout after each prefix (the protocol of the course's ``evaluate``)."""
        return self.course_layout(self.nvt_scores(prefixes))


def t4rec_ranks(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Ranks as T4Rec's top-K metrics see them: every column competes, only strictly higher scores count."""
    target = scores[np.arange(len(labels)), labels][:, None]
    return 1 + (scores > target).sum(1)


def evaluate_path_scores(model: Any, sessions: list[np.ndarray], max_length: int = 20,
                         batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """What ``trainer.evaluate`` scores, whole sessions (NVTabular ids) with ``testing=True``, and labels."""
    scores, labels = [], []
    for start in range(0, len(sessions), batch_size):
        ids = pad_right(sessions[start:start + batch_size], max_length)
        with torch.no_grad():
            out = model({ITEMS: torch.as_tensor(ids)}, training=False, testing=True)
        scores.append(out["predictions"].float().numpy())
        labels.append(out["labels"].numpy().astype(np.int64))
    return np.concatenate(scores), np.concatenate(labels)


def label_leak(model: Any, sessions: list[np.ndarray], max_length: int = 20, seed: int = 0) -> float:
    """Largest change of ``trainer.evaluate``'s scores when each label (last click) changes: 0 if honest."""
    rng = np.random.default_rng(seed)
    span = max(int(np.max(s)) for s in sessions) + 1 - NVT_FIRST  # real items: a label moves 1..span-1 places
    moved = [NVT_FIRST + (int(s[-1]) - NVT_FIRST + 1 + rng.integers(span - 1)) % span for s in sessions]
    swapped = [np.append(np.asarray(s[:-1], np.int64), m) for s, m in zip(sessions, moved, strict=True)]
    before, _ = evaluate_path_scores(model, sessions, max_length)
    after, _ = evaluate_path_scores(model, swapped, max_length)
    return float(np.abs(before - after).max())


def rank_both_ways(recommender: T4RecRecommender, prefixes: np.ndarray, targets: np.ndarray,
                   batch_size: int = 512) -> Any:
    """Per case: the target's rank by the course's rules and by T4Rec's, and what makes them differ."""
    rows = []
    for start in range(0, len(targets), batch_size):
        p, t = prefixes[start:start + batch_size], targets[start:start + batch_size]
        scores = recommender.nvt_scores(p)
        course, nvt_t = ranks_from_scores(recommender.course_layout(scores), t), from_course_ids(t)
        target_score = scores[np.arange(len(t)), nvt_t][:, None]
        t4rec = t4rec_ranks(scores, nvt_t)
        above = (scores[:, :NVT_FIRST] > target_score).sum(1)
        ties = (scores == target_score).sum(1) - 1
        rows.append(pd.DataFrame({"target": t, "course_rank": course, "t4rec_rank": t4rec,
                                  "target_is_oov": t == 1, "non_items_above": above, "ties": ties}))
    frame = pd.concat(rows, ignore_index=True)
    frame["course_rank"] = frame["course_rank"].where(frame["course_rank"] != MISS_RANK, -1)  # -1: a miss
    return frame
