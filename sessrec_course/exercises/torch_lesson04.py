"""Lesson 04 exercises: every position is a training case, reading the state at the last click, a repeat-aware score.

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
