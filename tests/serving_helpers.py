"""A tiny real model and workflow for the serving tests: a torch module exported to ONNX, a fitted SessionWorkflow."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def tiny_onnx(path: Path, n_items: int, n_out: int | None = None, seed: int = 0) -> Path:
    """Export a small embedding-mean → linear scorer (input ``item_ids``, output ``scores``) to ONNX."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(n_items, 8, padding_idx=0)
            self.out = torch.nn.Linear(8, n_out or n_items)

        def forward(self, item_ids):
            mask = (item_ids > 0).unsqueeze(-1).float()
            return self.out((self.embedding(item_ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0))

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Tiny().eval(), (torch.ones(1, 3, dtype=torch.long),), str(path),
                          input_names=["item_ids"], output_names=["scores"],
                          dynamic_axes={"item_ids": {0: "b", 1: "l"}, "scores": {0: "b"}}, dynamo=False)
    return path


def tiny_events(n_sessions: int = 300, n_items: int = 40, seed: int = 0) -> pd.DataFrame:
    """A canonical event table with raw ids 1000, 1007, ... (skewed popularity, sessions of 1–30 events)."""
    rng = np.random.default_rng(seed)
    rows = []
    catalogue = 1000 + 7 * np.arange(n_items)
    weights = 1.0 / np.arange(1, n_items + 1)
    for session in range(n_sessions):
        length = int(rng.integers(2, 30))
        items = rng.choice(catalogue, size=length, p=weights / weights.sum())
        for step, item in enumerate(items):
            rows.append((session, int(item), pd.Timestamp("2024-01-01") + pd.Timedelta(minutes=10 * session + step)))
    return pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])
