"""Merlin lesson 03: learners' wrong answers, and the mutants of the references that are equivalent to them."""

from __future__ import annotations

import numpy as np

from exercise_mistakes import mistake

EQUIVALENT = {
    "merlin03.q1": {"table, sessions = (np.asarray(table), np.asarray(sessions))": "the table is floats already"},
}


# ---- q1: mean pooling ----------------------------------------------------------------------------------------------
@mistake("merlin03.q1", "padding rows (id 0) were averaged in")
def with_padding(table, sessions):
    return np.asarray(table, dtype=float)[np.asarray(sessions)].mean(1)


@mistake("merlin03.q1", "that is the sum")
def summed(table, sessions):
    sessions = np.asarray(sessions)
    return (np.asarray(table, dtype=float)[sessions] * (sessions != 0)[:, :, None]).sum(1)


@mistake("merlin03.q1", "not by the width")
def divided_by_the_width(table, sessions):
    sessions = np.asarray(sessions)
    rows = np.asarray(table)[sessions] * (sessions > 0)[..., None]
    return rows.sum(axis=1) / sessions.shape[1]


@mistake("merlin03.q1", "OOV click (id 1) is a click")
def oov_left_out(table, sessions):
    return np.array([np.asarray(table)[[i for i in s if i > 1]].mean(0) for s in sessions])


@mistake("merlin03.q1")
def one_row_per_click(table, sessions):
    sessions = np.asarray(sessions)
    return np.asarray(table, dtype=float)[sessions[sessions != 0]]


# ---- q2: predict last ----------------------------------------------------------------------------------------------
@mistake("merlin03.q2", "last non-zero id")
def last_column(sessions):
    sessions = np.asarray(sessions)
    return sessions[:, :-1], sessions[:, -1]


@mistake("merlin03.q2", "still hold the target")
def target_left_in(sessions):
    sessions = np.asarray(sessions)
    n = (sessions != 0).sum(1)
    return sessions[:, :-1], sessions[np.arange(len(sessions)), n - 1]


@mistake("merlin03.q2", "can be the last one")
def oov_not_a_click(sessions):
    sessions = np.array(sessions)
    n = (sessions > 1).sum(axis=1)
    targets = sessions[np.arange(len(sessions)), n - 1].copy()
    sessions[np.arange(len(sessions)), n - 1] = 0
    return sessions[:, :-1], targets


@mistake("merlin03.q2")
def same_width(sessions):
    sessions = np.array(sessions)
    n = (sessions != 0).sum(1) - 1
    targets = sessions[np.arange(len(sessions)), n].copy()
    sessions[np.arange(len(sessions)), n] = 0
    return sessions, targets


# ---- q3: predict next ----------------------------------------------------------------------------------------------
@mistake("merlin03.q3", "the input must be padding too")
def inputs_not_blanked(sessions):
    sessions = np.asarray(sessions)
    return sessions[:, :-1], sessions[:, 1:]


@mistake("merlin03.q3", "*next* click")
def unshifted(sessions):
    sessions = np.asarray(sessions)
    return np.where(sessions[:, :-1] != 0, sessions[:, :-1], 0), sessions[:, :-1]


@mistake("merlin03.q3", "only padding (0) has no next click")
def oov_target_blanks_the_input(sessions):
    sessions = np.asarray(sessions)
    inputs = sessions[:, :-1].copy()
    inputs[sessions[:, 1:] <= 1] = 0
    return inputs, sessions[:, 1:]


@mistake("merlin03.q3")
def targets_one_too_far(sessions):
    sessions = np.asarray(sessions)
    targets = np.pad(sessions[:, 2:], ((0, 0), (0, 1)))
    return np.where(targets != 0, sessions[:, :-1], 0), targets
