"""Lesson 05 exercises: the causal mask of a padded batch, masked-item training inputs, the [MASK] at inference."""

from __future__ import annotations

import torch

from sessrec_course.exercises.core import Case, Exercise, like, same_mask


def causal_padding_mask(item_ids):
    """``(B, L, L)`` booleans: True where position i of a session may attend to position j (j ≤ i, j a real item)."""
    length = item_ids.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool).tril()  # itself and earlier positions, never later ones
    real = item_ids != 0  # (B, L): padding columns are never looked at
    return causal[None, :, :] & real[:, None, :]


def mask_items(item_ids, chosen, mask_id):
    """Masked training: ``chosen`` items and always the last real one become ``mask_id``; targets are 0 elsewhere."""
    present = item_ids != 0
    last = (present.sum(dim=1) - 1).clamp(min=0)
    is_last = torch.zeros_like(present).scatter(1, last[:, None], True) & present
    masked = (chosen | is_last) & present  # padding is never masked
    inputs = torch.where(masked, torch.full_like(item_ids, mask_id), item_ids)
    targets = torch.where(masked, item_ids, torch.zeros_like(item_ids))
    return inputs, targets


def append_mask(item_ids, mask_id):
    """Inference for a masked model: put ``mask_id`` right after each session's last item (one column wider)."""
    lengths = (item_ids != 0).sum(dim=1)
    wider = torch.cat([item_ids, torch.zeros_like(item_ids[:, :1])], dim=1)  # room for a full row's [MASK]
    return wider.scatter(1, lengths[:, None], mask_id)


def _mask(item_ids, lowest=1, keys=True, diagonal=0, causal=True):
    length = item_ids.shape[1]
    seen = torch.ones(length, length, dtype=torch.bool)
    seen = seen.tril(diagonal) if causal else seen
    real = item_ids >= lowest
    return seen[None] & (real[:, None, :] if keys else real[:, :, None])


q1 = Exercise(
    "a causal attention mask with padding", causal_padding_mask,
    [Case("two sessions, one padded", (torch.tensor([[4, 7, 2, 0], [5, 3, 8, 6]]),)),
     Case("one item", (torch.tensor([[9]]),), "a single position sees itself"),
     Case("OOV clicks", (torch.tensor([[1, 6, 1, 0], [3, 1, 0, 0]]),), "an OOV click is a real item"),
     Case("much padding", (torch.tensor([[3, 0, 0, 0, 0], [2, 6, 0, 0, 0], [8, 4, 5, 7, 0]]),),
          "columns of padding stay False in every row")],
    hints=["Two conditions, both needed: the column is not after the row (causal), and the column holds a real "
           "item (not padding).",
           "A lower-triangular (L, L) matrix and a (B, L) 'real item' matrix combine by broadcasting."],
    compare=same_mask,
    mistakes={"transposed: row i is the position that looks, column j the one looked at":
                  like(lambda i: causal_padding_mask(i).transpose(1, 2), same_mask),
              "padding is masked on the wrong axis: the column (the position looked at) must be a real item":
                  like(_mask, same_mask, keys=False),
              "padding columns are looked at: a position only attends real items": like(_mask, same_mask, lowest=0),
              "a position sees the future: nothing above the diagonal is True": like(_mask, same_mask, causal=False),
              "each position must also see itself (the diagonal)": like(_mask, same_mask, diagonal=-1),
              "an OOV click (id 1) is a real item: only padding (0) is masked": like(_mask, same_mask, lowest=2)})


def _masked(item_ids, chosen, mask_id, lowest=1, last=True, pad=False, every_target=False):
    present = item_ids >= lowest
    end = torch.zeros_like(present).scatter(1, (present.sum(1) - 1).clamp(min=0)[:, None], True) & present
    masked = (chosen if pad else chosen & (item_ids != 0)) | (end & last)
    inputs = torch.where(masked, torch.full_like(item_ids, mask_id), item_ids)
    return inputs, (item_ids if every_target else torch.where(masked, item_ids, torch.zeros_like(item_ids)))


def _masking_cases() -> list[Case]:
    ids, some = [[5, 8, 3, 0, 0], [4, 9, 7, 6, 2]], [[1, 0, 0, 0, 1], [0, 1, 0, 0, 0]]
    return [Case(label, (torch.tensor(ids), torch.tensor(drawn) > 0, mask), hint) for label, ids, drawn, mask, hint in [
        ("nothing drawn", ids, [[0] * 5] * 2, 12, "the last real item is masked even when the draw picks nothing"),
        ("a draw that hits padding", ids, some, 12, "padding is never masked and never a target"),
        ("an OOV click last", [[6, 2, 1, 0], [1, 0, 0, 0]], [[0] * 4] * 2, 9, "an OOV click is a real item"),
        ("an empty session", [[7, 4, 0], [0, 0, 0]], [[1, 0, 0], [1, 0, 0]], 10, "")]]


q2 = Exercise(
    "masked-item training inputs", mask_items, _masking_cases,
    hints=["Mask the drawn positions and each session's last real item, never padding; the targets keep the "
           "original id where masked and 0 elsewhere.",
           "The last real item sits at index length - 1; one boolean 'masked' matrix drives both outputs."],
    mistakes={"padding became [MASK]: only real items may be masked": like(_masked, pad=True),
              "targets hold every item: only masked positions carry a loss": like(_masked, every_target=True),
              "the last real item of every session must be masked (as at inference)": like(_masked, last=False),
              "an OOV click (id 1) is a real item: it can be the last one": like(_masked, lowest=2)})


def _appended(item_ids, mask_id, lowest=1, end=0, wider=True):
    at = (item_ids >= lowest).sum(dim=1) + end
    out = torch.cat([item_ids, torch.zeros_like(item_ids[:, :1])], dim=1) if wider else item_ids.clone()
    return out.scatter(1, at.clamp(0, out.shape[1] - 1)[:, None], mask_id)


q3 = Exercise(
    "append [MASK] to recommend", append_mask,
    [Case("sessions of different lengths", (torch.tensor([[4, 7, 0, 0], [3, 0, 0, 0]]), 20)),
     Case("a full session", (torch.tensor([[5, 6, 8], [2, 9, 0]]), 15), "a full row needs one more column"),
     Case("OOV clicks", (torch.tensor([[6, 1, 0], [1, 1, 0]]), 12), "an OOV click is a click"),
     Case("an empty session", (torch.tensor([[0, 0], [6, 0]]), 11), "an empty session is just [MASK]")],
    hints=["Each session's length is the position right after its last item: put the [MASK] id there, in a batch "
           "one column wider.",
           "Add a column of padding first, so that a full session has room."],
    mistakes={"the [MASK] goes right after the last real item, not after the padding":
                  lambda case, expected, got: (torch.as_tensor(got)[:, -1] == case.args[1]).all() and not (
                      expected[:, -1] == case.args[1]).all(),
              "the [MASK] replaced the last item: put it in the next position": like(_appended, end=-1),
              "one column wider than the batch, so that a full session has room": like(_appended, wider=False),
              "an OOV click (id 1) is a click: only padding (0) ends a session": like(_appended, lowest=2)})
