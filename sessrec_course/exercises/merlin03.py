"""Merlin lesson 03 exercises: what Merlin Models' blocks compute, redone in numpy.

``mean_pool`` is ``InputBlockV2`` with ``Embeddings(sequence_combiner="mean")`` (the MLP's input), ``predict_last``
is ``SequencePredictLast`` and ``predict_next`` is ``SequencePredictNext`` (the training targets of the models).
Sessions are right-padded id matrices (0 is padding), as the course's ``evaluate`` takes them. numpy only (runs
in the course and the Merlin kernel).
"""

from __future__ import annotations

import numpy as np

from sessrec_course.exercises.core import Case, Exercise


def mean_pool(table, sessions):
    """Each session's vector: the mean of the embedding rows of its clicks (padding, id 0, left out)."""
    table, sessions = np.asarray(table, dtype=float), np.asarray(sessions)
    clicked = (sessions != 0)[:, :, None]
    return (table[sessions] * clicked).sum(1) / clicked.sum(1)


def predict_last(sessions):
    """``(inputs, targets)``: each session without its last click (right-padded), and that last click."""
    sessions = np.asarray(sessions)
    lengths = (sessions != 0).sum(1)
    rows = np.arange(len(sessions))
    targets = sessions[rows, lengths - 1]
    inputs = sessions.copy()
    inputs[rows, lengths - 1] = 0
    return inputs[:, :-1], targets


def predict_next(sessions):
    """``(inputs, targets)`` per position: click t is the input, click t + 1 its target (0 where there is none)."""
    sessions = np.asarray(sessions)
    targets = sessions[:, 1:]
    inputs = np.where(targets != 0, sessions[:, :-1], 0)
    return inputs, targets


def _pool_cases() -> list[Case]:
    table = np.arange(12, dtype=float).reshape(6, 2)  # row i is [2i, 2i + 1]; row 0 is the padding row
    return [
        Case("full sessions", (table, [[1, 2], [3, 5]]), hint="average the rows table[id] over the clicks"),
        Case("padded sessions", (table, [[1, 0, 0], [2, 4, 0]]),
             hint="leave padding (id 0) out of the mean: divide by the number of clicks, not by the width"),
        Case("a repeated item", (table, [[5, 5, 1]]), hint="each click counts, also a repeated one"),
    ]


def _last_cases() -> list[Case]:
    return [
        Case("equal lengths", ([[4, 5, 6], [7, 8, 9]],), hint="the target is the last click; the inputs are the rest"),
        Case("padded sessions", ([[4, 5, 0, 0], [7, 8, 9, 3]],),
             hint="the last click of a padded session is the last non-zero id, not the last column"),
        Case("two clicks", ([[2, 3]],), hint="a session of two clicks keeps one input click"),
    ]


def _next_cases() -> list[Case]:
    return [
        Case("one session", ([[4, 5, 6, 7]],), hint="inputs are clicks 0..n-2, targets clicks 1..n-1"),
        Case("padded sessions", ([[4, 5, 0, 0], [7, 8, 9, 0]],),
             hint="where the target is padding, the input position is padding too (nothing to predict)"),
    ]


def _diagnose_pool(case: Case, expected, got) -> str | None:
    got = np.asarray(got, dtype=float)
    if got.shape != np.asarray(expected).shape:
        return "return one row per session, one column per embedding dimension"
    table, sessions = (np.asarray(a) for a in case.args)
    if np.allclose(got, table[sessions].mean(1)):
        return "the padding rows (id 0) were averaged in: average over the clicks only"
    if np.allclose(got, table[sessions].sum(1)):
        return "that is the sum: divide by the number of clicks (sequence_combiner='mean')"
    return None


def _diagnose_last(case: Case, expected, got) -> str | None:
    sessions = np.asarray(case.args[0])
    if isinstance(got, tuple) and len(got) == 2 and np.array_equal(np.asarray(got[1]), sessions[:, -1]):
        return "the last column of a padded session is padding: take the last non-zero id of each row"
    return None


q1 = Exercise("the MLP's input: the mean of the session's item embeddings", mean_pool, _pool_cases,
              diagnose=_diagnose_pool,
              hints=["table[sessions] has shape (sessions, clicks, dim); mask the padding and average over axis 1",
                     "clicked = (sessions != 0)[:, :, None]; (table[sessions] * clicked).sum(1) / clicked.sum(1)"])
q2 = Exercise("SequencePredictLast: the last click is the target", predict_last, _last_cases,
              diagnose=_diagnose_last,
              hints=["lengths = (sessions != 0).sum(1); the target of row r is sessions[r, lengths[r] - 1]",
                     "blank the target in a copy of the inputs, then drop the last column (it is padding now)"])
q3 = Exercise("SequencePredictNext: every next click is a target", predict_next, _next_cases,
              hints=["targets = sessions[:, 1:]; inputs = sessions[:, :-1]",
                     "set the inputs to 0 where the target is 0: a last click has no next one"])
