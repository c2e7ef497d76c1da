"""RecTools 0.19 SASRec, BERT4Rec or HSTU on a course split folder (runs in ``.venv-rectools``).

Usage: ``.venv-rectools/bin/python benchmarks/peers/rectools_peer.py --split DIR --out DIR --model sasrec
[--budget S --max-length 20 --valid-sessions N --max-epochs 30]``; writes ``predictions.npz`` and ``result.json``
(:mod:`peer_common`). Each training session is a RecTools user and each test line a new user whose interactions
are the prefix; recommendations keep viewed items (re-clicks are next items too).

Settings: the model's documented defaults (2 blocks, 4 heads, 256 factors, dropout 0.2, full softmax loss,
Adam lr 1e-3, batch 128; HSTU with its relative time and position biases and cosine similarity) with
``session_max_len`` = the course's ``max_length``; training as the library's advanced training guide shows: the
last click of the latest ``--valid-sessions`` sessions is the validation fold (``get_val_mask_func``), Lightning
stops early on its ``val_loss`` (``EarlyStopping``, Lightning's default patience 3) and the best checkpoint is
restored; ``max_time`` = the budget stops training and validation at the course's time budget. The splits have
no timestamps, so clicks are 1 s apart (HSTU's time bias then sees only positions).
"""

from __future__ import annotations

import logging
import time
import warnings
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from peer_common import parser, read_split, set_threads, top_k_rows, write_outputs

MODELS = ("sasrec", "bert4rec", "hstu")
SESSION_GAP_S = 3600  # between two sessions' synthetic timestamps


def interactions(sessions: list[list[int]], prefix: str, start: int) -> tuple[pd.DataFrame, int]:
    """RecTools interactions of ``sessions`` (user ``prefix + index``), 1 s per click from ``start``; the next start."""
    users, items, times = [], [], []
    now = start
    for index, session in enumerate(sessions):
        users += [f"{prefix}{index}"] * len(session)
        items += session
        times += range(now, now + len(session))
        now += len(session) + SESSION_GAP_S
    frame = pd.DataFrame({"user_id": users, "item_id": items, "weight": 1.0,
                          "datetime": pd.to_datetime(np.asarray(times, dtype=np.int64), unit="s")})
    return frame, now


def leave_last_out(interactions: pd.DataFrame, val_users: list[str]) -> np.ndarray:
    """The validation mask of the advanced training guide: the latest click of each validation user."""
    latest = (interactions.sort_values("datetime", ascending=False, kind="stable")
              .groupby("user_id", sort=False).cumcount() == 0)
    return (interactions["user_id"].isin(val_users) & latest).to_numpy()


def build_model(name: str, args, val_users: list[str], ckpt_dir: Path):
    """The RecTools model with its defaults, the validation fold and a budgeted Lightning trainer."""
    from pytorch_lightning import Trainer
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
    from rectools.models import BERT4RecModel, HSTUModel, SASRecModel
    from rectools.models.nn.item_net import IdEmbeddingsItemNet

    def get_trainer() -> Trainer:
        return Trainer(
            accelerator="cpu", devices=1, max_epochs=args.max_epochs,  # no min_epochs: the budget may end epoch 1
            max_time=timedelta(seconds=args.budget) if args.budget > 0 else None,
            enable_progress_bar=False, enable_model_summary=False, logger=False, deterministic=False,
            callbacks=[EarlyStopping(monitor="val_loss", mode="min"),
                       ModelCheckpoint(dirpath=ckpt_dir, monitor="val_loss", mode="min", save_top_k=1,
                                       filename="{epoch}-{val_loss:.4f}")])

    cls = {"sasrec": SASRecModel, "bert4rec": BERT4RecModel, "hstu": HSTUModel}[name]
    return cls(session_max_len=args.max_length, item_net_block_types=(IdEmbeddingsItemNet,),
               recommend_torch_device="cpu", get_val_mask_func=leave_last_out,
               get_val_mask_func_kwargs={"val_users": val_users}, get_trainer_func=get_trainer)


def main() -> None:
    """Fit one RecTools model on the split's training sessions and rank every test line's next item."""
    args = parser(__doc__.splitlines()[0], MODELS).parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    import pytorch_lightning
    import rectools
    import torch
    from pytorch_lightning.callbacks import ModelCheckpoint, Timer
    from rectools.dataset import Dataset

    set_threads(args.threads)
    pytorch_lightning.seed_everything(args.seed, verbose=False)
    train, prefixes, _ = read_split(args.split)
    out = Path(args.out)
    n_valid = min(args.valid_sessions, max(1, len(train) // 10))
    train_frame, clock = interactions(train, "s", 0)
    val_users = [f"s{i}" for i in range(len(train) - n_valid, len(train))]

    start = time.perf_counter()
    model = build_model(args.model, args, val_users, out / "checkpoints")
    model.fit(Dataset.construct(train_frame))
    trainer = model.fit_trainer
    checkpoint = next(c for c in trainer.callbacks if isinstance(c, ModelCheckpoint))
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    budget_cut = bool(timer is not None and timer.time_remaining("train") is not None
                      and timer.time_remaining("train") <= 0)
    epochs_done, steps_done = int(trainer.current_epoch), int(trainer.global_step)
    best = checkpoint.best_model_path
    if best:
        model.load_weights_from_checkpoint(best)
    train_s = time.perf_counter() - start

    start = time.perf_counter()
    test_frame, _ = interactions(prefixes, "t", clock)
    users = [f"t{i}" for i in range(len(prefixes))]
    context = None
    if model.require_recommend_context:  # HSTU's time bias: the moment of the prediction, 1 s after the last click
        context = test_frame.groupby("user_id", sort=False)["datetime"].max().reset_index()
        context["datetime"] += pd.Timedelta(seconds=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reco = model.recommend(users=users, dataset=Dataset.construct(test_frame), k=args.top_k,
                               filter_viewed=False, on_unsupported_targets="warn", context=context)
    items, scores = top_k_rows(len(prefixes), args.top_k)
    row = reco["user_id"].str.slice(1).astype(np.int64).to_numpy()
    col = reco["rank"].to_numpy(dtype=np.int64) - 1
    items[row, col] = reco["item_id"].to_numpy(dtype=np.int64)
    scores[row, col] = reco["score"].to_numpy(dtype=np.float32)
    predict_s = time.perf_counter() - start

    write_outputs(out, items, scores, {
        "library": "rectools", "model": args.model, "train_s": train_s, "predict_s": predict_s,
        "epochs_done": epochs_done, "epochs_planned": args.max_epochs, "budget_s": args.budget,
        "budget_cut": budget_cut, "best_checkpoint": Path(best).name if best else None, "steps_done": steps_done,
        "steps_per_epoch": int(trainer.num_training_batches),
        "lines_without_predictions": int((items[:, 0] < 0).sum()),
        "warnings": sorted({str(w.message).strip()[:200] for w in caught}),
        "settings": {**{k: getattr(model, k) for k in ("n_blocks", "n_heads", "n_factors", "dropout_rate",
                                                     "session_max_len", "loss", "n_negatives", "lr",
                                                     "batch_size", "train_min_user_interactions")},
                     **({"relative_time_attention": model.relative_time_attention,
                         "relative_pos_attention": model.relative_pos_attention} if args.model == "hstu" else {}),
                     "validation": f"last click of the latest {n_valid} sessions, val_loss",
                     "early_stopping_patience": 3, "max_epochs": args.max_epochs, "max_time_s": args.budget,
                     "threads": torch.get_num_threads(), "seed": args.seed},
        "versions": {"rectools": rectools.__version__, "torch": torch.__version__,
                     "pytorch_lightning": pytorch_lightning.__version__},
    })


if __name__ == "__main__":
    main()
