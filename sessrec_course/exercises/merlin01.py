"""Merlin lesson 01 exercises: decode NVTabular's Categorify ids, re-encode them in the course's ids."""

from sessrec_course.exercises.core import Case, Exercise, like


def decode_nvt(unique, sessions):
    """Raw ids of NVTabular-encoded sessions: ``unique[i]`` is the raw id of id ``3 + i``; 0, 1, 2 become -1."""
    table = {3 + i: int(raw) for i, raw in enumerate(unique)}
    return [[table.get(int(code), -1) for code in session] for session in sessions]


def nvt_to_course(unique, course_raw, sessions):
    """NVTabular ids → course ids through the raw id: 0 stays padding, anything unknown becomes OOV (1)."""
    course = {int(raw): 2 + i for i, raw in enumerate(course_raw)}
    raw = decode_nvt(unique, sessions)
    return [[0 if code == 0 else course.get(item, 1) for code, item in zip(codes, items, strict=True)]
            for codes, items in zip(sessions, raw, strict=True)]


def _decoded(unique, sessions, first=3):
    return [[int(unique[c - first]) if first <= c < len(unique) + first else -1 for c in s] for s in sessions]


def _recoded(unique, course_raw, sessions, first=2, padding=0, unknown=1):
    course = {int(raw): first + i for i, raw in enumerate(course_raw)}
    return [[padding if c == 0 else course.get(r, unknown) for c, r in zip(s, d, strict=True)]
            for s, d in zip(sessions, decode_nvt(unique, sessions), strict=True)]


q1 = Exercise(
    "decode NVTabular's Categorify ids", decode_nvt,
    [Case("real items only", ([40, 10, 30], [[3, 4], [5, 3, 3]]), "NVTabular's first real id is 3"),
     Case("padding, null and OOV", ([7, 8], [[3, 0, 0], [1, 4, 2]]), "0, 1 and 2 are not items"),
     Case("raw id 0 is an item", ([0, 5], [[4, 3, 2]]), "raw ids are values, 0 included"),
     Case("an empty session", ([5], [[], [3]]), "keep one (possibly empty) list per session")],
    hints=["Look raw ids up by NVTabular id: id 3 is unique[0], id 4 unique[1]...; ids below 3 are no items.",
           "Padding (0), null (1) and out-of-vocabulary (2) all decode to -1."],
    mistakes={"unique[0] is the raw id of NVTabular's first real id, 3, not of 2": like(_decoded, first=2),
              "ids 0, 1 and 2 are padding, null and OOV in NVTabular: they decode to -1":
                  lambda case, expected, got: any(e == -1 != g for es, gs in zip(expected, got, strict=True)
                                                  for e, g in zip(es, gs, strict=True))})
q2 = Exercise(
    "NVTabular ids to course ids", nvt_to_course,
    [Case("same items, other order", ([40, 10, 30], [10, 30, 40], [[3, 4, 5]]), "go through the raw id"),
     Case("padding stays padding", ([9], [9], [[3, 0]]), "padding (0) is 0 in both encodings"),
     Case("unknown on either side", ([6, 7], [7, 8], [[3, 4, 2, 1]]), "unknowns become the course OOV")],
    hints=["Decode to raw ids first (exercise 1), then look each raw id up in the course's vocabulary.",
           "The course's first item is 2; padding stays 0 and every other unknown becomes 1."],
    mistakes={"go through the raw id: NVTabular id → raw id → course id; the two vocabularies order items "
              "differently": lambda case, expected, got: any(got == [[c - shift * (c > 2) for c in s]
                                                                          for s in case.args[2]] for shift in (0, 1)),
              "the course numbers items from 2 (0 padding, 1 OOV)": like(_recoded, first=1),
              "padding stays 0: it is no item, not an unknown one": like(_recoded, padding=1),
              "an unknown item is the course's OOV, 1, not padding": like(_recoded, unknown=0)})
