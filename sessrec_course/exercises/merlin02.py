"""Merlin lesson 02 exercises: probe an evaluation for a label leak, XLNet's clm vs mlm mask (numpy only)."""

import functools

import numpy as np

from sessrec_course.exercises.core import Case, Exercise, like, same_mask


def label_leak(score, sessions, replacement):
    """The largest score change when only each session's last click (the label) is replaced: 0 when honest."""
    sessions = np.asarray(sessions)
    last = (sessions != 0).sum(axis=1) - 1  # the label: each session's last click
    changed = sessions.copy()
    changed[np.arange(len(sessions)), last] = replacement
    return float(np.abs(score(changed) - score(sessions)).max())


def attention_mask(item_ids, masking):
    """``(B, L, L)`` booleans, True where position i may attend position j: a click, and j <= i for "clm"."""
    item_ids = np.asarray(item_ids)
    length = item_ids.shape[1]
    allowed = np.ones((length, length), dtype=bool)
    if masking == "clm":  # causal: never a later click; "mlm" sees both sides (the masked clicks hide the labels)
        allowed = np.tril(allowed)
    return allowed[None, :, :] & (item_ids != 0)[:, None, :]


def _bag(sessions, n_items=8, drop_last=False):
    sessions = np.asarray(sessions)
    keep = sessions != 0
    if drop_last:
        keep[np.arange(len(sessions)), keep.sum(1) - 1] = False
    bag = np.zeros((len(sessions), n_items))
    rows, positions = np.nonzero(keep)
    np.add.at(bag, (rows, sessions[keep]), (1.0 + positions) / 4)  # later clicks weigh more
    return bag**2


leaky = functools.partial(_bag)  # scores from every click, the label included: its evaluation sees the label
honest = functools.partial(_bag, drop_last=True)  # scores from the clicks before the label only


def _leak(score, sessions, replacement, where="last", how="max", lowest=1):
    sessions = np.asarray(sessions)
    at = {"last": (sessions >= lowest).sum(1) - 1, "column": np.full(len(sessions), sessions.shape[1] - 1),
          "first": np.zeros(len(sessions), int)}[where]
    changed = sessions.copy()
    changed[np.arange(len(sessions)), at] = replacement
    change = score(changed) - score(sessions)
    return float(np.abs(change).max() if how == "max" else change.max() if how == "signed" else np.abs(change).mean())


_SESSIONS = np.array([[2, 3, 3, 0], [4, 4, 5, 6], [7, 1, 0, 0]])
q1 = Exercise(
    "probe an evaluation for a label leak", label_leak,
    [Case("a leaking model", (leaky, [[2, 3, 3, 0], [4, 5, 5, 0]], 7), "replace each session's last click"),
     Case("an honest model", (honest, _SESSIONS, 7), "an honest model cannot notice"),
     Case("a model that reads the last column", (lambda s: np.eye(8)[np.asarray(s)[:, -1]], _SESSIONS, 2),
          "the label is the last click, not the last column"),
     Case("an OOV label", (leaky, [[6, 1, 0], [2, 2, 1]], 5), "an OOV click can be the label"),
     Case("another replacement", (leaky, [[3, 2, 0]], 3), "use the replacement you are given")],
    hints=["Copy the sessions, put `replacement` where each session's last click is, score both and compare.",
           "The last click sits at index length - 1; only padding (0) is no click.",
           "The leak is the largest change in size, whichever direction it goes."],
    mistakes={"you replaced the last column (padding in a short session)": like(_leak, where="column"),
              "you replaced the first click: the label is the last one": like(_leak, where="first"),
              "a score can also go down: take the size of each change": like(_leak, how="signed"),
              "one changed score is enough to leak: the largest change, not the mean": like(_leak, how="mean"),
              "an OOV click (id 1) is a click: it can be the label": like(_leak, lowest=2)})


def _mask(item_ids, masking, causal=None, keys=True, lowest=1):
    item_ids = np.asarray(item_ids)
    allowed = np.ones((item_ids.shape[1],) * 2, dtype=bool)
    allowed = np.tril(allowed) if (masking == "clm" if causal is None else causal) else allowed
    real = item_ids >= lowest
    return allowed[None] & (real[:, None, :] if keys else real[:, :, None])


q2 = Exercise(
    "XLNet's attention mask: causal (clm) or masked (mlm)", attention_mask,
    [Case("clm, two sessions", ([[4, 7, 2, 0], [5, 3, 8, 6]], "clm")),
     Case("mlm, two sessions", ([[4, 7, 2, 0], [5, 3, 8, 6]], "mlm"), "mlm looks both ways"),
     Case("clm with OOV clicks", ([[1, 6, 1, 0]], "clm"), "an OOV click is a click"),
     Case("mlm with OOV clicks", ([[3, 1, 0, 0], [1, 0, 0, 0]], "mlm"))],
    hints=["Both modes: the column j must hold a click (not padding). clm also forbids j after i.",
           "A lower triangle for clm, all ones for mlm, combined with a 'column is a click' mask by broadcasting."],
    compare=same_mask,
    mistakes={"clm is causal: position i never attends a later click": like(_mask, same_mask, causal=False),
              "mlm is bidirectional: every click may be attended": like(_mask, same_mask, causal=True),
              "wrong axis: the column looked at must be a click": like(_mask, same_mask, keys=False),
              "an OOV click (id 1) is a click: only padding (0) is masked": like(_mask, same_mask, lowest=2)})
