"""RecBole 1.2.1 GRU4Rec, SR-GNN or SASRec on a course split folder (runs in ``.venv-recbole``).

Usage: ``.venv-recbole/bin/python benchmarks/peers/recbole_peer.py --split DIR --out DIR --model gru4rec
[--budget S --max-length 20 --valid-sessions N]``; writes ``predictions.npz`` and ``result.json``
(:mod:`peer_common`). The split goes to RecBole as its pre-split session benchmark (``benchmark_filename``
train / valid / test atomic files of ``session_id``, ``item_id_list`` prefix and ``item_id`` target): every
prefix of a training session is a training case, the latest ``--valid-sessions`` sessions' prefixes the
validation cases, every test line a test case.

Settings: RecBole's defaults (``overall.yaml`` and the model's yaml: Adam lr 1e-3, batch 2048, CE loss over the
full catalogue, 300 epochs, validation every epoch on MRR@10, early stop after 10 epochs without a better one,
the best epoch restored) with ``MAX_ITEM_LIST_LENGTH`` = the course's ``max_length``; a deadline at the course's
budget ends the epoch it falls in, and training after that epoch's validation. RecBole 1.2.1 saves its best epoch
with pickled objects, which torch >= 2.6 no longer loads by default: the checkpoint is read with
``weights_only=False`` (our own file).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
from peer_common import Deadline, hold_out_latest, parser, read_split, set_threads, top_k_rows, write_outputs

MODELS = {"gru4rec": "GRU4Rec", "srgnn": "SRGNN", "sasrec": "SASRec"}
DATASET = "split"


class BudgetSpent(Exception):
    """Raised after the validation that follows the deadline: training is over."""


def write_atomic(path: Path, cases: list[tuple[str, list[int], int]], max_length: int) -> None:
    """One RecBole atomic ``.inter`` file of ``(session id, prefix, target)`` cases, prefixes cut to their last items."""
    lines = ["session_id:token\titem_id_list:token_seq\titem_id:token"]
    lines += [f"{sid}\t{' '.join(map(str, prefix[-max_length:]))}\t{target}" for sid, prefix, target in cases]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def session_cases(sessions: list[list[int]], tag: str) -> list[tuple[str, list[int], int]]:
    """Every (prefix -> next item) case of ``sessions``, as the course's ``all_prefixes``."""
    return [(f"{tag}{i}", session[:t], session[t]) for i, session in enumerate(sessions) for t in range(1, len(session))]


def budget_trainer(base, at: float):
    """``base`` (a RecBole trainer class) whose epochs stop at ``at`` (``time.perf_counter()``)."""

    class BudgetTrainer(base):
        cut = False
        epochs_done = steps_done = 0
        epoch_s: list[float] = []

        def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
            guarded, start = Deadline(train_data, at), time.perf_counter()
            loss = super()._train_epoch(guarded, epoch_idx, loss_func=loss_func, show_progress=show_progress)
            self.epoch_s.append(time.perf_counter() - start)
            self.cut, self.steps_done = self.cut or guarded.cut, self.steps_done + guarded.steps
            self.epochs_done = epoch_idx + 1
            return 0.0 if loss is None else loss

    return BudgetTrainer


def main() -> None:
    """Fit one RecBole model on the split's training sessions and rank every test line's next item."""
    args = parser(__doc__.splitlines()[0], tuple(MODELS)).parse_args()
    warnings.filterwarnings("ignore")
    import recbole
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    set_threads(args.threads)
    verbose = os.environ.get("PEER_VERBOSE") == "1"  # RecBole's per-epoch log lines
    train, prefixes, targets = read_split(args.split)
    out = Path(args.out).resolve()
    data_dir = out / "data" / DATASET
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(out)  # RecBole writes log_tensorboard/ and saved/ under the working directory
    fit_sessions, valid_sessions = hold_out_latest(train, args.valid_sessions)
    write_atomic(data_dir / f"{DATASET}.train.inter", session_cases(fit_sessions, "s"), args.max_length)
    write_atomic(data_dir / f"{DATASET}.valid.inter", session_cases(valid_sessions, "v"), args.max_length)
    write_atomic(data_dir / f"{DATASET}.test.inter",
                 [(f"t{i}", p, t) for i, (p, t) in enumerate(zip(prefixes, targets, strict=True))], args.max_length)

    model_name = MODELS[args.model]
    config = Config(model=model_name, dataset=DATASET, config_dict={
        "data_path": str(out / "data"), "checkpoint_dir": str(out / "checkpoints"),
        "USER_ID_FIELD": "session_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": None,
        "load_col": {"inter": ["session_id", "item_id_list", "item_id"]}, "alias_of_item_id": ["item_id_list"],
        "benchmark_filename": ["train", "valid", "test"], "MAX_ITEM_LIST_LENGTH": args.max_length,
        "train_neg_sample_args": None, "use_gpu": False, "seed": args.seed, "show_progress": False,
        "state": "INFO" if verbose else "WARNING"})
    init_seed(config["seed"], config["reproducibility"])
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(message)s")

    start = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])
    model = get_model(model_name)(config, train_data.dataset).to(config["device"])
    at = time.perf_counter() + args.budget if args.budget > 0 else float("inf")
    trainer = budget_trainer(get_trainer(config["MODEL_TYPE"], model_name), at)(config, model)

    def stop_at_deadline(epoch_idx: int, valid_score: float) -> None:
        if time.perf_counter() > at:
            raise BudgetSpent

    spent = False
    try:
        trainer.fit(train_data, valid_data, verbose=verbose, saved=True, callback_fn=stop_at_deadline)
    except BudgetSpent:
        spent = True
    best_epoch = None
    if Path(trainer.saved_model_file).is_file():
        checkpoint = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)
        model.load_state_dict(checkpoint["state_dict"])
        model.load_other_parameter(checkpoint.get("other_parameter"))
        best_epoch = int(checkpoint.get("epoch", -1)) + 1
    train_s = time.perf_counter() - start

    start = time.perf_counter()
    model.eval()
    test = test_data._dataset  # file order: one row per test line
    items, scores = top_k_rows(len(prefixes), args.top_k)
    item_ids = test.field2id_token["item_id"]
    session_tokens = test.field2id_token["session_id"]
    with torch.no_grad():
        for begin in range(0, len(test), 1024):
            batch = test.inter_feat[begin:begin + 1024].to(config["device"])
            batch_scores = model.full_sort_predict(batch).view(len(batch), -1)
            batch_scores[:, 0] = -torch.inf  # the padding item
            top = torch.topk(batch_scores, min(args.top_k, batch_scores.shape[1] - 1), dim=1)
            rows = [int(token[1:]) for token in session_tokens[batch["session_id"].cpu().numpy()]]
            items[rows, :top.indices.shape[1]] = item_ids[top.indices.cpu().numpy()].astype(np.int64)
            scores[rows, :top.values.shape[1]] = top.values.cpu().numpy()
    predict_s = time.perf_counter() - start

    keys = ("embedding_size", "hidden_size", "num_layers", "dropout_prob", "step", "n_layers", "n_heads",
            "inner_size", "hidden_dropout_prob", "attn_dropout_prob", "loss_type", "learning_rate",
            "train_batch_size", "epochs", "stopping_step", "valid_metric", "MAX_ITEM_LIST_LENGTH", "weight_decay")
    write_outputs(out, items, scores, {
        "library": "recbole", "model": args.model, "train_s": train_s, "predict_s": predict_s,
        "epochs_done": trainer.epochs_done, "epochs_planned": int(config["epochs"]), "budget_s": args.budget,
        "budget_cut": bool(trainer.cut or spent), "best_epoch": best_epoch, "steps_done": trainer.steps_done,
        "steps_per_epoch": len(train_data), "train_epoch_s": [round(s, 2) for s in trainer.epoch_s],
        "lines_without_predictions": int((items[:, 0] < 0).sum()),
        "settings": {**{k: config[k] for k in keys if config[k] is not None},
                     "validation": f"prefixes of the latest {len(valid_sessions)} sessions",
                     "threads": torch.get_num_threads(), "seed": args.seed},
        "versions": {"recbole": recbole.__version__, "torch": torch.__version__, "numpy": np.__version__},
    })


if __name__ == "__main__":
    main()
