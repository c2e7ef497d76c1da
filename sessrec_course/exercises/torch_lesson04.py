"""Lesson 04 exercises: training cases, the state at the last click, a repeat-aware score, repeat-or-explore."""

from __future__ import annotations

import torch

from sessrec_course.exercises.core import Case, Exercise, like


def count_training_cases(item_ids):
    """How many (prefix → next item) cases a right-padded batch gives a model trained on every position."""
    lengths = (item_ids != 0).sum(dim=1)  # real items per session
    return int((lengths - 1).clamp(min=0).sum())  # a session of n items has n - 1 next items


def last_hidden(states, item_ids):
    """The state at each session's last real item: ``states (B, L, H)``, ``item_ids (B, L)`` → ``(B, H)``."""
    last = ((item_ids != 0).sum(dim=1) - 1).clamp(min=0)  # index of the last real item (0 for an empty row)
    return states[torch.arange(len(states)), last]


def repeat_aware_scores(scores, item_ids, bonus):
    """Add ``bonus`` once to the score of every item already in the session (not to padding)."""
    seen = torch.zeros_like(scores, dtype=torch.bool)
    seen.scatter_(1, item_ids, True)  # True at every id the row contains (duplicates just set it again)
    seen[:, 0] = False  # padding is not a clicked item
    return scores + bonus * seen


def repeat_or_explore(probs, item_ids, gate):
    """RepeatNet's mixture ``gate·q + (1 − gate)·probs``: ``q(i)`` = share of the session's clicks on item ``i``."""
    clicks = torch.zeros_like(probs).scatter_add(1, item_ids, torch.ones_like(item_ids, dtype=probs.dtype))
    clicks[:, 0] = 0.0  # padding is no click
    total = clicks.sum(dim=1, keepdim=True)
    share = clicks / total.clamp(min=1.0)
    gate = torch.where(total[:, 0] > 0, gate, torch.zeros_like(gate))[:, None]  # an empty session: explore only
    return gate * share + (1 - gate) * probs


def _count(item_ids, lowest=1, per=-1, clamp=True):
    cases = (item_ids >= lowest).sum(dim=1) + per
    return int((cases.clamp(min=0) if clamp else cases).sum())


q1 = Exercise(
    "count the training cases of a batch", count_training_cases,
    [Case("three sessions", (torch.tensor([[4, 6, 9, 0, 0], [2, 3, 0, 0, 0], [5, 7, 8, 11, 0]]),)),
     Case("a single click among them", (torch.tensor([[7, 0, 0], [3, 4, 5], [9, 2, 0]]),),
          "a session with one click has nothing to predict"),
     Case("OOV clicks", (torch.tensor([[1, 6, 1, 0], [5, 1, 0, 0]]),), "an OOV click is a click"),
     Case("an empty padding row", (torch.tensor([[0, 0, 0, 0], [8, 8, 3, 0]]),))],
    hints=["Count the real clicks of each session; a session of n clicks has n - 1 next clicks to predict.",
           "Only padding (0) is no click; an empty row gives no case, never a negative count."],
    mistakes={"that is one case per session (last-item training); every position with a next item is a case":
                  lambda case, expected, got: got == len(case.args[0]) != expected,
              "the last click of a session has no next click: n clicks give n - 1 cases": like(_count, per=0),
              "padding positions are no cases: count real clicks only":
                  lambda case, expected, got: got == case.args[0].shape[0] * (case.args[0].shape[1] - 1) != expected,
              "an OOV click (id 1) is a click too: only padding (0) is none": like(_count, lowest=2),
              "an empty row gives no case, not -1": like(_count, clamp=False)})


def _state(states, item_ids, lowest=1, offset=-1, clamp=True):
    last = (item_ids >= lowest).sum(dim=1) + offset
    last = last.clamp(0, item_ids.shape[1] - 1) if clamp else last
    return states[torch.arange(len(states)), last]


def _state_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    return [Case(label, (torch.randn(len(ids), len(ids[0]), 3, generator=g), torch.tensor(ids)), hint)
            for label, ids, hint in [("sessions of different lengths", [[5, 9, 0, 0], [3, 4, 7, 2], [6, 0, 0, 0]], ""),
                                     ("OOV clicks", [[4, 1, 0, 0], [1, 1, 1, 0], [6, 1, 7, 0]], "OOV is a click"),
                                     ("an empty row", [[0, 0, 0], [5, 6, 0]], "an empty session reads position 0")]]


q2 = Exercise(
    "read the state at the last click", last_hidden, _state_cases,
    hints=["Find each row's length (its clicks), then pick that row's state at its last click.",
           "Index with two tensors, one for the rows and one for the positions."],
    mistakes={"the last column is padding for shorter sessions: read the state at the last real click":
                  lambda case, expected, got: torch.equal(torch.as_tensor(got), case.args[0][:, -1]),
              "one position too far: with n clicks the last one is at index n - 1": like(_state, offset=0),
              "an OOV click (id 1) is a click too: only padding (0) is none": like(_state, lowest=2),
              "an empty session reads position 0, not -1 (the last column)": like(_state, clamp=False)})


def _repeat_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    return [Case(label, (torch.randn(len(ids), n, generator=g), torch.tensor(ids), bonus), hint)
            for label, n, ids, bonus, hint in [
                ("no repeats", 10, [[3, 5, 0], [7, 2, 9]], 1.5, "padding (id 0) was never clicked"),
                ("an item clicked twice", 8, [[4, 6, 4, 0]], 2.0, "a re-clicked item gets the bonus once"),
                ("a full row", 6, [[2, 3, 5]], 0.5, "")]]


def _boost(scores, item_ids, bonus, pad=False, per_click=False, times=False):
    seen = torch.zeros_like(scores).scatter_add(1, item_ids, torch.ones_like(item_ids, dtype=scores.dtype))
    seen[:, 0] *= pad
    seen = seen if per_click else (seen > 0).to(scores.dtype)
    return torch.where(seen > 0, scores * bonus, scores) if times else scores + bonus * seen


q3 = Exercise(
    "a repeat-aware score", repeat_aware_scores, _repeat_cases,
    hints=["Mark which catalogue ids each session contains, then add the bonus where the mark is set.",
           "A (B, N) boolean matrix marks each id once, however often it was clicked."],
    mistakes={"padding got the bonus: id 0 fills empty positions, it was never clicked": like(_boost, pad=True),
              "an item clicked twice got the bonus twice: add it once per item": like(_boost, per_click=True),
              "the bonus is added to the score, not multiplied with it": like(_boost, times=True)})


def _mixture(probs, item_ids, gate, lowest=1, counts=True, empty_gate=False, explore=True):
    clicks = torch.zeros_like(probs).scatter_add(1, item_ids, torch.ones_like(item_ids, dtype=probs.dtype))
    clicks[:, :lowest] = 0.0
    clicks = clicks if counts else (clicks > 0).to(probs.dtype)
    total = clicks.sum(dim=1, keepdim=True)
    gate = (gate if empty_gate else torch.where(total[:, 0] > 0, gate, torch.zeros_like(gate)))[:, None]
    return gate * clicks / total.clamp(min=1.0) + ((1 - gate) if explore else 1) * probs


def _mixture_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)
    return [Case(label, (torch.softmax(torch.randn(len(ids), n, generator=g), dim=1), torch.tensor(ids),
                         torch.tensor(gate)), hint) for label, n, ids, gate, hint in [
        ("one click each", 8, [[3, 5, 0]], [0.4], "q = 1/2 on items 3 and 5, 0 elsewhere"),
        ("an item clicked twice", 8, [[4, 6, 4]], [0.7], "item 4 holds 2 of the 3 clicks"),
        ("an OOV click", 7, [[6, 1, 0], [1, 3, 3]], [0.5, 0.8], "an OOV click is a click"),
        ("an empty session", 6, [[0, 0], [2, 0]], [0.9, 0.5], "nothing to repeat: the empty row keeps probs")]]


q4 = Exercise(
    "repeat or explore", repeat_or_explore, _mixture_cases,
    hints=["Count each item's clicks in the session (padding is no click) and divide by the number of clicks: "
           "that is q, S-POP's distribution.",
           "Then mix: the gate weighs q, one minus the gate weighs probs."],
    mistakes={"q counts clicks: an item clicked twice gets twice the share": like(_mixture, counts=False),
              "an OOV click (id 1) is a click of the session too: only padding (0) is none": like(_mixture, lowest=2),
              "an empty session has no clicks to repeat: its row is probs alone": like(_mixture, empty_gate=True),
              "each row must still sum to 1: mix gate·q + (1 − gate)·probs": like(_mixture, explore=False)})
