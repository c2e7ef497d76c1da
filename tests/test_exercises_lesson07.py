"""Lesson 07 exercises: the references compute what the package and the trainer compute (the wrong answers:
exercise_mistakes/lesson07.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sessrec_course.data.synthetic import generate_events
from sessrec_course.etl import SessionWorkflow
from sessrec_course.etl.workflow import COUNT_ITEM
from sessrec_course.exercises import lesson07 as ex
from sessrec_course.models import ModelConfig, build_model


@pytest.mark.parametrize("min_count", [1, 3])
def test_q1_vocabulary_from_partitions_is_the_single_process_vocabulary(min_count):
    events = generate_events(4_000, 300, 5, 3, seed=11)
    counts = []
    for r in range(3):  # three partitions of whole sessions, as the shuffle by session_id makes them
        frame = SessionWorkflow(min_item_frequency=min_count).fit_counts(events[events.session_id % 3 == r])
        items = frame[frame["kind"] == COUNT_ITEM]
        counts.append(pd.Series(items["count"].to_numpy(), index=items["key"].to_numpy()))
    single = SessionWorkflow(min_item_frequency=min_count).fit(events)
    np.testing.assert_array_equal(ex.merged_vocabulary(counts, min_count), single.item_raw)


def test_q2_ranks_losses_give_the_whole_batch_loss():
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="gru", item_cardinality=20, hidden_size=8, max_length=6, dropout=0.0))
    batch = torch.tensor([[2, 5, 7, 3, 0, 0], [4, 1, 9, 0, 0, 0], [11, 6, 2, 8, 13, 19], [3, 3, 0, 0, 0, 0]])
    halves = [batch[0::2], batch[1::2]]  # what 2 ranks hold
    with torch.no_grad():
        losses = [float(model.loss(h)) for h in halves]
        clicks = [int((h[:, 1:] > 1).sum()) for h in halves]
        assert clicks[0] != clicks[1], "unequal click counts, or the plain mean would do"
        assert ex.global_mean_loss(losses, clicks) == pytest.approx(float(model.loss(batch)), rel=1e-5)


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2], ids=lambda e: e.function_name)
def test_the_solution_runs_in_a_cell_after_the_setup_cell_imports(exercise):
    cell = {"np": np, "pd": pd}  # the setup cell to add to lesson 07 imports numpy and pandas
    exec(exercise.solution_source(), cell)
    assert exercise.check(cell[exercise.function_name])
