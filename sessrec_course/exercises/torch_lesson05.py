"""Lesson 05 exercises: the causal mask of a padded batch, masked-item training inputs, and the [MASK] appended at inference.

``from sessrec_course.exercises import torch_lesson05 as ex``; ``ex.q1.check(causal_padding_mask)``, ...
"""

from __future__ import annotations

import torch

from sessrec_course.exercises.core import Case, Exercise, same


def causal_padding_mask(item_ids):
    """``(B, L, L)`` booleans: True where position i of a session may attend to position j (j ≤ i, j a real item)."""
    length = item_ids.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool).tril()  # itself and earlier positions, never later ones
    real = item_ids != 0  # (B, L): padding columns are never looked at
    return causal[None, :, :] & real[:, None, :]


def _as_bool(value):
    """A mask as a boolean array (0/1, True/False, tensor or array): the pattern is what is compared."""
    return torch.as_tensor(value) != 0 if hasattr(value, "__len__") or hasattr(value, "shape") else value


def _mask_diagnose(case: Case, expected, got) -> str | None:
    got = _as_bool(got)
    if tuple(getattr(got, "shape", ())) != tuple(expected.shape):
        return f"one (L, L) mask per session: shape {tuple(expected.shape)}"
    if torch.equal(got, expected.transpose(1, 2)):
        return "transposed: row i is the position that looks, column j the one looked at; j may not come after i"
    if (got & ~expected).triu(1).any():
        return "a position sees the future: nothing above the diagonal may be True"
    if (got & ~expected).any():
        return "padding columns are looked at: a position may only attend to real items"
    if torch.equal(got, expected & ~torch.eye(expected.shape[1], dtype=torch.bool)):
        return "each position must also see itself (the diagonal), or the first one sees nothing"
    return None


q1 = Exercise(
    "a causal attention mask with padding",
    causal_padding_mask,
    [Case("two sessions, one padded", (torch.tensor([[4, 7, 2, 0], [5, 3, 8, 6]]),)),
     Case("one item", (torch.tensor([[9]]),), "a single position sees itself"),
     Case("much padding", (torch.tensor([[3, 0, 0, 0, 0], [2, 6, 0, 0, 0], [8, 4, 5, 7, 0]]),),
          "columns of padding stay False in every row")],
    hints=["Two conditions, both needed: the column is not after the row (causal), and the column holds a real "
           "item (not padding).",
           "A lower-triangular (L, L) matrix and a (B, L) 'real item' matrix combine by broadcasting: "
           "causal[None] & real[:, None, :]."],
    compare=lambda expected, got: same(expected, _as_bool(got)),
    diagnose=_mask_diagnose,
)


def mask_items(item_ids, chosen, mask_id):
    """Masked training: ``chosen`` items and always the last real one become ``mask_id``; targets are 0 elsewhere."""
    present = item_ids != 0
    last = (present.sum(dim=1) - 1).clamp(min=0)
    is_last = torch.zeros_like(present).scatter(1, last[:, None], True) & present
    masked = (chosen | is_last) & present  # padding is never masked
    inputs = torch.where(masked, torch.full_like(item_ids, mask_id), item_ids)
    targets = torch.where(masked, item_ids, torch.zeros_like(item_ids))
    return inputs, targets


def _masking_cases() -> list[Case]:
    ids = torch.tensor([[5, 8, 3, 0, 0], [4, 9, 7, 6, 2]])
    none = torch.zeros_like(ids, dtype=torch.bool)
    some = torch.tensor([[True, False, False, False, True], [False, True, False, False, False]])
    return [Case("nothing drawn", (ids, none, 12), "the last real item is masked even when the draw picks nothing"),
            Case("a draw that hits padding", (ids, some, 12), "padding is never masked and never a target"),
            Case("one short session", (torch.tensor([[7, 4, 0]]), torch.tensor([[True, False, False]]), 10))]


def _masking_diagnose(case: Case, expected, got) -> str | None:
    ids, chosen, mask_id = case.args
    if not isinstance(got, tuple | list) or len(got) != 2:
        return "return two tensors: (inputs, targets)"
    inputs, targets = (torch.as_tensor(t) for t in got)
    if inputs.shape != ids.shape or targets.shape != ids.shape:
        return f"inputs and targets keep the batch's shape {tuple(ids.shape)}"
    if ((ids == 0) & (inputs != 0)).any():
        return "padding became [MASK]: only real items may be masked"
    if torch.equal(targets, ids):
        return "targets hold every item: only masked positions carry a loss, the rest are 0"
    if torch.equal(inputs, expected[0]):
        return "inputs are right; targets are the original item at masked positions and 0 elsewhere"
    rows, last = torch.arange(len(ids)), ((ids != 0).sum(dim=1) - 1).clamp(min=0)
    if (inputs[rows, last] != mask_id)[(ids != 0).any(dim=1)].any():
        return "the last real item of every session must be masked: it is the case closest to inference"
    return None


q2 = Exercise(
    "masked-item training inputs",
    mask_items, _masking_cases,
    hints=["Mask the drawn positions and each session's last real item, never padding; the targets keep the "
           "original id where masked and 0 elsewhere.",
           "The last real item sits at index length - 1; a boolean 'masked' matrix then drives two torch.where."],
    diagnose=_masking_diagnose,
)


def append_mask(item_ids, mask_id):
    """Inference for a masked model: put ``mask_id`` right after each session's last item (one column wider)."""
    lengths = (item_ids != 0).sum(dim=1)
    wider = torch.cat([item_ids, torch.zeros_like(item_ids[:, :1])], dim=1)  # room for a full row's [MASK]
    return wider.scatter(1, lengths[:, None], mask_id)


def _append_diagnose(case: Case, expected, got) -> str | None:
    ids, mask_id = case.args
    got = torch.as_tensor(got)
    if got.shape != expected.shape:
        return f"one column wider than the batch, so a full session has room: shape {tuple(expected.shape)}"
    if (got[:, -1] == mask_id).all() and not (expected[:, -1] == mask_id).all():
        return "the [MASK] goes right after the last real item, not after the padding"
    last = ((ids != 0).sum(dim=1) - 1).clamp(min=0)
    if torch.equal(got, torch.cat([ids, torch.zeros_like(ids[:, :1])], dim=1).scatter(1, last[:, None], mask_id)):
        return "the [MASK] replaced the last item: keep every item and put it in the next position"
    return None


q3 = Exercise(
    "append [MASK] to recommend",
    append_mask,
    [Case("sessions of different lengths", (torch.tensor([[4, 7, 0, 0], [3, 0, 0, 0]]), 20)),
     Case("a full session", (torch.tensor([[5, 6, 8], [2, 9, 0]]), 15), "a full row needs one more column"),
     Case("an empty session", (torch.tensor([[0, 0], [6, 0]]), 11), "an empty session is just [MASK]")],
    hints=["Each session's length is the position right after its last item: put the [MASK] id there, in a batch "
           "one column wider.",
           "torch.cat a column of zeros, then scatter the mask id at index length."],
    diagnose=_append_diagnose,
)
