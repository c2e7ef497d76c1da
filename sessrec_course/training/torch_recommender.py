"""Adapter from a torch session model to the numpy Recommender protocol of ``sessrec_course.evaluation``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from sessrec_course.training.validation import BatchScorer


class TorchRecommender(BatchScorer):
    """A torch model as a numpy Recommender: scores in batches on its device, in eval mode, without gradients."""

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
        device = next(self.model.parameters()).device
        return self.model(torch.as_tensor(item_ids, dtype=torch.long).to(device)).float().cpu().numpy()
