"""Transformers4Rec 23.12 XLNet next-item model on the NVTabular output (runs in .venv-merlin).

Usage: ``.venv-merlin/bin/python benchmarks/peers/t4r_xlnet.py --data DIR [--hidden-size 64 --layers 2 --heads 2
--max-length 20 --epochs 1 --batch-size 256]``; ``DIR`` holds ``train/`` and ``test/`` from ``nvtabular_etl.py``.
Prints one JSON line. The model: item-id embedding only (the course model uses item ids only too), XLNet
with causal language modelling (``masking="clm"``: next item at every position, as the course's causal
models), weight-tied full-catalogue softmax (``NextItemPredictionTask``), AdamW lr 2e-3, a manual loop over
T4R's ``MerlinDataLoader`` (padded to ``max_length``). Timed: the training epochs only. Evaluated on the last
item of each test session (``testing=True``): Recall@20 and MRR@20 computed from the full score matrix,
as the course's evaluator does (padding and OOV ids masked, ties to the lower id).
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
    import transformers4rec.torch as tr
    from merlin.io import Dataset
    from transformers4rec.torch.utils.data_utils import MerlinDataLoader

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)  # noqa: NPY002
    if args.threads:
        torch.set_num_threads(args.threads)
    schema = Dataset(f"{args.data}/train", engine="parquet", cpu=True).schema.select_by_name(["item_id-list"])
    inputs = tr.TabularSequenceFeatures.from_schema(schema, max_sequence_length=args.max_length, masking="clm",
                                                     d_output=args.hidden_size, aggregation="concat")
    task = tr.NextItemPredictionTask(weight_tying=True)
    config = tr.XLNetConfig.build(d_model=args.hidden_size, n_head=args.heads, n_layer=args.layers,
                                  total_seq_length=args.max_length)
    model = config.to_torch_model(inputs, task)

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
    ranks = []
    with torch.no_grad():
        for batch, _targets in loader("test", False):
            out = model(batch, training=False, testing=True)
            scores, labels = out["predictions"].float(), out["labels"].long()
            scores[:, :2] = -1e9  # Categorify: 0 padding, 1 out-of-vocabulary (as the course masks them)
            target = scores.gather(1, labels[:, None])
            ids = torch.arange(scores.shape[1])[None, :]
            better = (scores > target) | ((scores == target) & (ids < labels[:, None]))
            ranks.append(better.sum(1) + 1)
    ranks = torch.cat(ranks).numpy()
    hit = ranks <= 20
    print(json.dumps({"model": "Transformers4Rec XLNet (clm)", "train_s": train_s, "sessions": sessions,
                      "sessions_per_s": sessions / train_s, "Recall@20": 100 * float(hit.mean()),
                      "MRR@20": 100 * float(np.where(hit, 1.0 / ranks, 0).mean()), "test_cases": int(len(ranks)),
                      "threads": torch.get_num_threads(), "epochs": args.epochs,
                      "parameters": int(sum(p.numel() for p in model.parameters())),
                      "transformers4rec": tr.__version__ if hasattr(tr, "__version__") else "23.12"}))


if __name__ == "__main__":
    main()
