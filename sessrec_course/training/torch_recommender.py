"""Adapter from a torch session model to the numpy Recommender protocol of ``sessrec_course.evaluation``."""

from __future__ import annotations

import numpy as np
import torch

from sessrec_course.training.torch_trainer import select_device


class TorchRecommender:
    """``score(item_ids (B, L) int64 numpy) -> (B, item_cardinality) float32 numpy`` for a torch model.

    Scores in batches of ``batch_size`` on the model's device, in eval mode, without gradients.
    Unseen ids map to OOV, longer sessions keep their last ``max_length`` items (done by the model).
    """

    def __init__(self, model: torch.nn.Module, device: str | None = None, batch_size: int = 1024) -> None:
        self.model = model
        self.device = select_device(device) if device else next(model.parameters()).device
        self.batch_size = batch_size
        self.name = type(model).__name__

    def score(self, item_ids: np.ndarray) -> np.ndarray:
        """Return float32 scores ``(B, item_cardinality)`` for right-padded ``item_ids``."""
        item_ids = np.asarray(item_ids)
        if item_ids.ndim != 2:
            raise ValueError(f"item_ids must be a 2-D (batch, length) matrix, got shape {item_ids.shape}")
        was_training = self.model.training
        self.model.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(item_ids), self.batch_size):
                chunk = torch.as_tensor(item_ids[start : start + self.batch_size], dtype=torch.long)
                out.append(self.model(chunk.to(self.device)).float().cpu().numpy())
        self.model.train(was_training)
        if not out:
            return np.zeros((0, self.model.n_items), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    __call__ = score
