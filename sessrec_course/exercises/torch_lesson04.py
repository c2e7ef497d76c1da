"""Lesson 04 exercises: training cases, the state at the last click, a repeat-aware score, repeat-or-explore.

``from sessrec_course.exercises import torch_lesson04 as ex``; ``ex.q1.check(count_training_cases)``, ...
"""

from __future__ import annotations

import torch

from sessrec_course.exercises.core import Case, Exercise


def count_training_cases(item_ids):
    """How many (prefix → next item) cases a right-padded batch gives a model trained on every position."""
    lengths = (item_ids != 0).sum(dim=1)  # real items per session
    return int((lengths - 1).clamp(min=0).sum())  # a session of n items has n - 1 next items


def _count_diagnose(case: Case, expected, got) -> str | None:
    ids = case.args[0]
    lengths = (ids != 0).sum(dim=1)
    if got == len(ids):
        return "that is one case per session (last-item training); every position with a next item is a case"
    if got == int(lengths.sum()):
        return "the last item of a session has no next item: a session of n items gives n - 1 cases"
    if got == ids.shape[0] * (ids.shape[1] - 1):
        return "padding positions are no cases: count real items only"
    return None


q1 = Exercise(
    "count the training cases of a batch",
    count_training_cases,
    [Case("three sessions", (torch.tensor([[4, 6, 9, 0, 0], [2, 3, 0, 0, 0], [5, 7, 8, 11, 0]]),)),
     Case("a single click among them", (torch.tensor([[7, 0, 0], [3, 4, 5], [9, 2, 0]]),),
          "a session with one click has nothing to predict"),
     Case("an empty padding row", (torch.tensor([[0, 0, 0, 0], [8, 8, 3, 0]]),),
          "an empty row gives no case, never a negative count")],
    hints=["Count the real (non-zero) items of each session; a session of n items has n - 1 next items.",
           "(item_ids != 0).sum(dim=1) gives the lengths; clamp at zero before summing."],
    diagnose=_count_diagnose,
)


def last_hidden(states, item_ids):
    """The state at each session's last real item: ``states (B, L, H)``, ``item_ids (B, L)`` → ``(B, H)``."""
    last = ((item_ids != 0).sum(dim=1) - 1).clamp(min=0)  # index of the last real item (0 for an empty row)
    return states[torch.arange(len(states)), last]


def _state_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)

    def case(label, ids, hint=""):
        ids = torch.tensor(ids)
        return Case(label, (torch.randn(*ids.shape, 3, generator=g), ids), hint)

    return [case("sessions of different lengths", [[5, 9, 0, 0], [3, 4, 7, 2], [6, 0, 0, 0]],
                 "read each row at its own last click, not at the last column"),
            case("one full row", [[2, 3, 4]]),
            case("an empty row", [[0, 0, 0], [5, 6, 0]], "an empty session reads position 0")]


def _state_diagnose(case: Case, expected, got) -> str | None:
    states, ids = case.args
    if tuple(getattr(got, "shape", ())) != tuple(expected.shape):
        return f"return one vector per session: shape {tuple(expected.shape)}"
    if torch.allclose(torch.as_tensor(got), states[:, -1]):
        return "the last column is padding for shorter sessions: read the state at the last real item"
    lengths = (ids != 0).sum(dim=1).clamp(max=ids.shape[1] - 1)
    if torch.allclose(torch.as_tensor(got), states[torch.arange(len(ids)), lengths]):
        return "one position too far: with n items the last one is at index n - 1"
    return None


q2 = Exercise(
    "read the state at the last click",
    last_hidden, _state_cases,
    hints=["Find each row's length (its real items), then pick that row's state at the last real position.",
           "Index with two tensors: states[torch.arange(B), positions]."],
    diagnose=_state_diagnose,
)


def repeat_aware_scores(scores, item_ids, bonus):
    """Add ``bonus`` once to the score of every item already in the session (not to padding)."""
    seen = torch.zeros_like(scores, dtype=torch.bool)
    seen.scatter_(1, item_ids, True)  # True at every id the row contains (duplicates just set it again)
    seen[:, 0] = False  # padding is not a clicked item
    return scores + bonus * seen


def _repeat_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    return [Case("no repeats", (torch.randn(2, 10, generator=g), torch.tensor([[3, 5, 0], [7, 2, 9]]), 1.5),
                 "padding (id 0) was never clicked: it gets no bonus"),
            Case("an item clicked twice", (torch.randn(1, 8, generator=g), torch.tensor([[4, 6, 4, 0]]), 2.0),
                 "a re-clicked item gets the bonus once, not once per click"),
            Case("a full row", (torch.randn(1, 6, generator=g), torch.tensor([[2, 3, 5]]), 0.5))]


def _repeat_diagnose(case: Case, expected, got) -> str | None:
    scores, ids, bonus = case.args
    got = torch.as_tensor(got)
    if got.shape != expected.shape:
        return f"return the whole score matrix, shape {tuple(expected.shape)}"
    if not torch.isclose(got[:, 0], expected[:, 0]).all():
        return "padding got the bonus: id 0 fills empty positions, it was never clicked"
    if (got - expected).max() > 1e-6:
        return "an item clicked twice got the bonus twice: add it once per item in the session"
    return None


q3 = Exercise(
    "a repeat-aware score",
    repeat_aware_scores, _repeat_cases,
    hints=["Mark which catalogue ids each session contains, then add the bonus where the mark is set.",
           "A boolean (B, N) matrix filled with scatter_ (or a loop over rows) marks each id once; "
           "clear the padding column."],
    diagnose=_repeat_diagnose,
)


def repeat_or_explore(probs, item_ids, gate):
    """RepeatNet's mixture ``gate·q + (1 − gate)·probs``: ``q(i)`` = share of the session's clicks on item ``i``."""
    clicks = torch.zeros_like(probs).scatter_add(1, item_ids, torch.ones_like(item_ids, dtype=probs.dtype))
    clicks[:, 0] = 0.0  # padding is no click
    total = clicks.sum(dim=1, keepdim=True)
    share = clicks / total.clamp(min=1.0)
    gate = torch.where(total[:, 0] > 0, gate, torch.zeros_like(gate))[:, None]  # an empty session: explore only
    return gate * share + (1 - gate) * probs


def _mixture_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)

    def probs(b, n):
        return torch.softmax(torch.randn(b, n, generator=g), dim=1)

    return [Case("one click each", (probs(1, 8), torch.tensor([[3, 5, 0]]), torch.tensor([0.4])),
                 "q = 1/2 on items 3 and 5, 0 elsewhere (padding is no click)"),
            Case("an item clicked twice", (probs(1, 8), torch.tensor([[4, 6, 4]]), torch.tensor([0.7])),
                 "item 4 holds 2 of the 3 clicks: q(4) = 2/3"),
            Case("an empty session", (probs(2, 6), torch.tensor([[0, 0], [2, 0]]), torch.tensor([0.9, 0.5])),
                 "nothing to repeat: the empty row keeps probs")]


def _mixture_diagnose(case: Case, expected, got) -> str | None:
    got = torch.as_tensor(got)
    if got.shape != expected.shape:
        return f"return one distribution per session, shape {tuple(expected.shape)}"
    sums = got.sum(dim=1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
        return (f"each row must still sum to 1 (got {sums.tolist()}): mix the two distributions, "
                "gate·q + (1 − gate)·probs")
    if case.label == "an item clicked twice":
        return "q counts clicks: an item clicked twice gets twice the share of an item clicked once"
    if case.label == "an empty session":
        return "an empty session has no clicks to repeat: its row is probs alone"
    return None


q4 = Exercise(
    "repeat or explore",
    repeat_or_explore, _mixture_cases,
    hints=["Count each item's clicks in the session (scatter_add of ones), without the padding column, "
           "and divide by the number of clicks: that is q, S-POP's distribution.",
           "Then gate[:, None] * q + (1 - gate[:, None]) * probs; give rows with no click a gate of 0."],
    diagnose=_mixture_diagnose,
)
