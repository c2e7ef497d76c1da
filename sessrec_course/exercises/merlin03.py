"""Merlin lesson 03 exercises: Merlin Models' mean-pooled input and sequence targets, redone in numpy."""

import numpy as np

from sessrec_course.exercises.core import Case, Exercise, like


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


def _pooled(table, sessions, lowest=1, by_width=False, mean=True):
    table, sessions = np.asarray(table, dtype=float), np.asarray(sessions)
    clicked = (sessions >= lowest)[:, :, None]
    total = (table[sessions] * clicked).sum(1)
    return total / (sessions.shape[1] if by_width else clicked.sum(1)) if mean else total


def _last(sessions, lowest=1, blank=True):
    sessions = np.asarray(sessions)
    rows, end = np.arange(len(sessions)), (sessions >= lowest).sum(1) - 1
    inputs = sessions.copy()
    inputs[rows, end] = 0 if blank else inputs[rows, end]
    return inputs[:, :-1], sessions[rows, end]


_TABLE = np.arange(12).reshape(6, 2) / 4  # row 0 padding, row 1 OOV
q1 = Exercise(
    "the MLP's input: the mean of the session's item embeddings", mean_pool,
    [Case("full sessions", (_TABLE, [[3, 2], [3, 5]])),
     Case("padded sessions", (_TABLE, [[2, 0, 0], [2, 4, 0]]), "padding (id 0) is no click"),
     Case("an OOV click", (_TABLE, [[1, 4, 0], [5, 1, 1]]), "an OOV click is a click: it has its own row"),
     Case("a repeated item", (_TABLE, [[5, 5, 2]]), "each click counts, also a repeated one")],
    hints=["Look up each click's row of the table, and average over the clicks of each session.",
           "Leave padding (id 0) out of the sum and out of the count."],
    mistakes={"the padding rows (id 0) were averaged in: average over the clicks only": like(_pooled, lowest=0),
              "that is the sum: divide by the number of clicks (sequence_combiner='mean')": like(_pooled, mean=False),
              "divide by the number of clicks, not by the width of the padded matrix": like(_pooled, by_width=True),
              "an OOV click (id 1) is a click: only padding (0) is left out": like(_pooled, lowest=2)})
q2 = Exercise(
    "SequencePredictLast: the last click is the target", predict_last,
    [Case("equal lengths", ([[4, 5, 6], [7, 8, 9]],)),
     Case("padded sessions", ([[4, 5, 0, 0], [7, 8, 9, 3]],), "the last click is the last non-zero id"),
     Case("an OOV click last", ([[6, 2, 1, 0], [1, 4, 0, 0]],), "an OOV click is a click"),
     Case("two clicks", ([[2, 3]],), "a session of two clicks keeps one input click")],
    hints=["Each session's length gives the position of its last click: that click is the target.",
           "Blank the target in a copy of the sessions, then drop the last column (it is padding now)."],
    mistakes={"the last non-zero id, not the last column": like(lambda s: np.asarray(s)[:, -1], element=1),
              "the inputs still hold the target: blank it first": like(_last, blank=False),
              "an OOV click (id 1) is a click: it can be the last one": like(_last, lowest=2)})
q3 = Exercise(
    "SequencePredictNext: every next click is a target", predict_next,
    [Case("one session", ([[4, 5, 6, 7]],)),
     Case("padded sessions", ([[4, 5, 0, 0], [7, 8, 9, 0]],), "where the target is padding, so is the input"),
     Case("OOV clicks", ([[1, 5, 1, 0], [3, 1, 0, 0]],), "an OOV click is a click, as input and as target")],
    hints=["The targets are the sessions shifted by one click; the inputs are the clicks before them.",
           "A last click has no next one: where the target is padding, the input is padding too."],
    mistakes={"the input must be padding too": like(lambda s: np.asarray(s)[:, :-1], element=0),
              "a position's target is the *next* click, not its own": like(lambda s: np.asarray(s)[:, :-1], element=1),
              "an OOV click (id 1) is a click: only padding (0) has no next click":
                  like(lambda s: (np.where(np.asarray(s)[:, 1:] > 1, np.asarray(s)[:, :-1], 0), np.asarray(s)[:, 1:]))})
