"""Merlin lesson 02: learners' wrong answers, and the mutants of the references that are equivalent to them."""

from __future__ import annotations

import numpy as np

from exercise_mistakes import mistake

EQUIVALENT = {
    "merlin02.q1": {"return float(np.abs(score(sessions) - score(changed)).max())": "|a - b| = |b - a|"},
}


# ---- q1: the label-leak probe --------------------------------------------------------------------------------------
@mistake("merlin02.q1", "replaced the last column")
def last_column(score, sessions, replacement):
    changed = np.array(sessions)
    changed[:, -1] = replacement
    return float(np.abs(score(changed) - score(np.asarray(sessions))).max())


@mistake("merlin02.q1", "replaced the first click")
def first_click(score, sessions, replacement):
    changed = np.array(sessions)
    changed[:, 0] = replacement
    return float(np.max(np.abs(score(changed) - score(np.asarray(sessions)))))


@mistake("merlin02.q1", "can also go down")
def signed_change(score, sessions, replacement):
    sessions = np.asarray(sessions)
    changed = sessions.copy()
    changed[np.arange(len(sessions)), (sessions > 0).sum(1) - 1] = replacement
    return float((score(changed) - score(sessions)).max())


@mistake("merlin02.q1", "not the mean")
def mean_change(score, sessions, replacement):
    sessions = np.asarray(sessions)
    changed = sessions.copy()
    changed[np.arange(len(sessions)), (sessions > 0).sum(1) - 1] = replacement
    return float(np.abs(score(changed) - score(sessions)).mean())


@mistake("merlin02.q1", "it can be the label")
def oov_is_no_click(score, sessions, replacement):
    changed = [list(s) for s in sessions]
    for row in changed:
        clicks = [i for i, item in enumerate(row) if item > 1]
        row[clicks[-1]] = replacement
    return float(np.abs(score(np.array(changed)) - score(np.asarray(sessions))).max())


@mistake("merlin02.q1")
def fixed_replacement(score, sessions, replacement):
    sessions = np.asarray(sessions)
    changed = sessions.copy()
    changed[np.arange(len(sessions)), (sessions != 0).sum(1) - 1] = 7
    return float(np.abs(score(changed) - score(sessions)).max())


# ---- q2: clm and mlm masks -----------------------------------------------------------------------------------------
def _keys(item_ids):
    return (np.asarray(item_ids) != 0)[:, None, :]


@mistake("merlin02.q2", "clm is causal")
def never_causal(item_ids, masking):
    n = np.shape(item_ids)[1]
    return np.broadcast_to(_keys(item_ids), (len(item_ids), n, n))


@mistake("merlin02.q2", "mlm is bidirectional")
def always_causal(item_ids, masking):
    n = np.shape(item_ids)[1]
    return np.tril(np.ones((n, n), bool)) & _keys(item_ids)


@mistake("merlin02.q2", "wrong axis")
def padding_rows(item_ids, masking):
    n = np.shape(item_ids)[1]
    square = np.tril(np.ones((n, n))) if masking == "clm" else np.ones((n, n))
    return (square[None] * (np.asarray(item_ids) != 0)[:, :, None]).astype(int)


@mistake("merlin02.q2", "only padding (0) is masked")
def oov_as_padding(item_ids, masking):
    n = np.shape(item_ids)[1]
    square = np.tril(np.ones((n, n), bool)) if masking == "clm" else np.ones((n, n), bool)
    return square[None] & (np.asarray(item_ids) > 1)[:, None, :]


@mistake("merlin02.q2")
def upper_triangle(item_ids, masking):
    n = np.shape(item_ids)[1]
    square = np.triu(np.ones((n, n), bool)) if masking == "clm" else np.ones((n, n), bool)
    return square[None] & _keys(item_ids)
