"""Adapter from a torch session model to the numpy Recommender protocol of ``sessrec_course.evaluation``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from sessrec_course.device import select_device
from sessrec_course.training.validation import BatchScorer


class TorchRecommender(BatchScorer):
    """A torch model as a numpy Recommender: scores in batches on its device, in eval mode, without gradients."""

    def __init__(self, model: torch.nn.Module, device: str | None = None, batch_size: int = 1024) -> None:
        super().__init__(model, batch_size)
        self.device = select_device(device) if device else next(model.parameters()).device

    @contextlib.contextmanager
    def scoring(self) -> Iterator[None]:
        """Eval mode without gradients; the model's training flag is restored afterwards."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.model.train(was_training)

    def score_batch(self, item_ids: np.ndarray) -> np.ndarray:
        """Scores of one batch on the model's device."""
        return self.model(torch.as_tensor(item_ids, dtype=torch.long).to(self.device)).float().cpu().numpy()
