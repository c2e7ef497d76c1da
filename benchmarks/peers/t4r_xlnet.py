"""Transformers4Rec 23.12 XLNet next-item model on the NVTabular output (runs in .venv-merlin).

Usage: ``.venv-merlin/bin/python benchmarks/peers/t4r_xlnet.py --data DIR [--hidden-size 64 --layers 2 --heads 2
--max-length 20 --epochs 1 --batch-size 256]``; ``DIR`` holds ``train/`` and ``test/`` from
:mod:`sessrec_course.etl.nvtabular_workflow`.
Prints one JSON line. The model: item-id embedding only (the course model uses item ids only too), XLNet
with causal language modelling (``masking="clm"``: next item at every position, as the course's causal
models), weight-tied full-catalogue softmax (``NextItemPredictionTask``), AdamW lr 2e-3, a manual loop over
T4R's ``MerlinDataLoader`` (padded to ``max_length``). Timed: the training epochs only. Evaluated on the last
item of each test session as the course does: the session minus its last item goes in (inference mode), the
last item is the target; Recall@20 and MRR@20 from the full score matrix (padding and OOV masked, ties to
the lower id: :class:`sessrec_course.models.transformers4rec.T4RecRecommender`). T4R's own ``testing=True`` path
is reported apart (``t4r_eval_*``): for clm it is known to disagree with inference (Transformers4Rec issues
#719, #761, #765).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

warnings.filterwarnings("ignore")


def main() -> None:
    """Train one XLNet, print throughput and quality as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()

    import numpy as np
    import torch

    from sessrec_course.etl import nvtabular_workflow as nw
    from sessrec_course.evaluation import ranks_from_scores
    from sessrec_course.models import transformers4rec as t4

    t4.import_t4rec()  # before any Merlin import: keeps TensorFlow out of this process
    from merlin.io import Dataset
    from transformers4rec.torch.utils.data_utils import MerlinDataLoader

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)  # noqa: NPY002
    if args.threads:
        torch.set_num_threads(args.threads)
    schema = t4.read_schema(args.data)
    model = t4.xlnet_model(schema, masking="clm", d_model=args.hidden_size, n_head=args.heads, n_layer=args.layers,
                           max_length=args.max_length, seed=args.seed)

    def loader(split: str, shuffle: bool):
        return MerlinDataLoader.from_schema(schema, Dataset(f"{args.data}/{split}", engine="parquet", cpu=True),
                                            batch_size=args.batch_size, max_sequence_length=args.max_length,
                                            shuffle=shuffle, drop_last=False)

    train_loader = loader("train", True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    sessions, start = 0, time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        for batch, _targets in train_loader:
            out = model(batch, training=True)
            loss = out["loss"] if isinstance(out, dict) else out
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            sessions += int(batch["item_id-list"].shape[0])
    train_s = time.perf_counter() - start

    model.eval()

    recommender = t4.T4RecRecommender(model, args.max_length)
    ranks, t4r_ranks = [], []
    with torch.no_grad():
        for batch, _targets in loader("test", False):
            # T4R's own evaluation path (testing=True): known to disagree with inference for clm
            # (Transformers4Rec issues #719, #761, #765), so it is reported apart, ranked by the course's rules
            out = model(batch, training=False, testing=True)
            labels = nw.to_course_ids(out["labels"].numpy())
            t4r_ranks.append(ranks_from_scores(recommender.course_layout(out["predictions"].float().numpy()), labels))
            # the course's protocol: the session without its last item in, that item as the target
            ids = nw.to_course_ids(batch[t4.ITEMS].numpy())
            last = (ids != 0).sum(1) - 1
            rows = np.arange(len(ids))
            labels = ids[rows, last].copy()
            ids[rows, last] = 0
            ranks.append(ranks_from_scores(recommender.score(ids), labels))

    def summary(values):
        values = np.concatenate(values)
        hit = values <= 20
        return 100 * float(hit.mean()), 100 * float(np.where(hit, 1.0 / values, 0).mean())

    recall, mrr = summary(ranks)
    t4r_recall, t4r_mrr = summary(t4r_ranks)
    print(json.dumps({"model": "Transformers4Rec XLNet (clm)", "train_s": train_s, "sessions": sessions,
                      "sessions_per_s": sessions / train_s, "Recall@20": recall, "MRR@20": mrr,
                      "t4r_eval_Recall@20": t4r_recall, "t4r_eval_MRR@20": t4r_mrr,
                      "test_cases": int(sum(len(r) for r in ranks)),
                      "threads": torch.get_num_threads(), "epochs": args.epochs,
                      "parameters": int(sum(p.numel() for p in model.parameters())),
                      "transformers4rec": "23.12"}))


if __name__ == "__main__":
    main()
