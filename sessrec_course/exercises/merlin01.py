"""Merlin lesson 01 exercises: decode NVTabular's Categorify ids, and re-encode them in the course's ids.

NVTabular 23.8 numbers a column as 0 padding, 1 null, 2 out-of-vocabulary, real values from 3; the course as
0 padding, 1 out-of-vocabulary, real items from 2. numpy only (runs in the course and the Merlin kernel).
"""

from __future__ import annotations

from sessrec_course.exercises.core import Case, Exercise


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


def _decode_cases() -> list[Case]:
    return [
        Case("real items only", ([40, 10, 30], [[3, 4], [5, 3, 3]]),
             hint="NVTabular's first real id is 3: unique[0] is the raw id of encoded id 3"),
        Case("padding, null and OOV", ([7, 8], [[3, 0, 0], [1, 4, 2]]),
             hint="0 (padding), 1 (null) and 2 (out-of-vocabulary) are not items: decode them to -1"),
        Case("an empty session", ([5], [[], [3]]), hint="keep one (possibly empty) list per session"),
    ]


def _recode_cases() -> list[Case]:
    return [
        Case("same items, other order", ([40, 10, 30], [10, 30, 40], [[3, 4, 5]]),
             hint="go through the raw id: NVTabular id -> raw id -> course id (the course's first item is 2)"),
        Case("padding stays padding", ([9], [9], [[3, 0]]), hint="padding (0) is 0 in both encodings"),
        Case("unknown on either side", ([6, 7], [7, 8], [[3, 4, 2, 1]]),
             hint="an item the course does not know, and NVTabular's null (1) and OOV (2), become the course's OOV, 1"),
    ]


def _diagnose_decode(case: Case, expected, got) -> str | None:
    if not (isinstance(got, list) and all(isinstance(s, list) for s in got)):
        return "return a list of lists of ints, one list per session"
    flat = [(e, g) for es, gs in zip(expected, got, strict=False) for e, g in zip(es, gs, strict=False)]
    if any(e == -1 and g != -1 for e, g in flat):
        return "ids 0, 1 and 2 are padding, null and OOV in NVTabular: they decode to -1"
    return None


q1 = Exercise("decode NVTabular's Categorify ids", decode_nvt, _decode_cases, diagnose=_diagnose_decode,
              hints=["build a lookup {3: unique[0], 4: unique[1], ...}; ids below 3 are not items",
                     "dict.get(code, -1) covers padding, null and OOV at once"])
q2 = Exercise("NVTabular ids to course ids", nvt_to_course, _recode_cases,
              hints=["decode to raw ids first (exercise 1), then look the raw id up in {course_raw[i]: 2 + i}",
                     "keep 0 for padding; every other unknown becomes 1"])
