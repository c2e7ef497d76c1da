"""Merlin lesson 01: learners' wrong answers, and the mutants of the references that are equivalent to them."""

from __future__ import annotations

from exercise_mistakes import mistake

_FLOAT_KEY = "a float equal to an int finds the same dict key"
_LENGTHS = "the decoded sessions have the lengths of the encoded ones by construction"
EQUIVALENT = {
    "merlin01.q1": {"return [[table.get(float(code), -1) for code in session] for session in sessions]": _FLOAT_KEY},
    "merlin01.q2": {
        "course = {float(raw): 2 + i for i, raw in enumerate(course_raw)}": _FLOAT_KEY,
        "return [[0 if code == 0 else course.get(item, 1) for code, item in zip(codes, items, strict=True)] for "
        "codes, items in zip(sessions, raw)]": _LENGTHS,
        "return [[0 if code == 0 else course.get(item, 1) for code, item in zip(codes, items)] for codes, items in "
        "zip(sessions, raw, strict=True)]": _LENGTHS,
        "return [[0 if code == 0 else course.get(item, 1) for code, item in zip(codes, items, strict=True)] for "
        "codes, items in zip(sessions, raw, strict=False)]": _LENGTHS,
        "return [[0 if code == 0 else course.get(item, 1) for code, item in zip(codes, items, strict=False)] for "
        "codes, items in zip(sessions, raw, strict=True)]": _LENGTHS,
    },
}


@mistake("merlin01.q1", "not of 2")
def course_offsets(unique, sessions):  # the course's layout (items from 2)
    return [[int(unique[c - 2]) if 2 <= c < len(unique) + 2 else -1 for c in s] for s in sessions]


@mistake("merlin01.q1", "decode to -1")
def special_ids_unchanged(unique, sessions):
    return [[int(unique[c - 3]) if c >= 3 else c for c in s] for s in sessions]


@mistake("merlin01.q1", "0, 1 and 2 are not items")
def wraps_around(unique, sessions):
    return [[int(unique[c - 3]) for c in s] for s in sessions]  # 0, 1, 2 read unique[-3..-1]


@mistake("merlin01.q1", "raw ids are values")
def zero_is_missing(unique, sessions):
    return [[int(unique[c - 3]) or -1 if c >= 3 else -1 for c in s] for s in sessions]


@mistake("merlin01.q1")
def flattened(unique, sessions):
    return [int(unique[c - 3]) if c >= 3 else -1 for s in sessions for c in s]


@mistake("merlin01.q2", "go through the raw id")
def shift_down_by_one(unique, course_raw, sessions):
    return [[c - 1 if c > 2 else c for c in s] for s in sessions]


@mistake("merlin01.q2", "from 2")
def course_from_one(unique, course_raw, sessions):
    raw_of = {3 + i: r for i, r in enumerate(unique)}
    ids = {r: 1 + i for i, r in enumerate(course_raw)}
    return [[0 if c == 0 else ids.get(raw_of.get(c), 1) for c in s] for s in sessions]


@mistake("merlin01.q2", "padding stays 0")
def padding_unknown(unique, course_raw, sessions):
    raw_of = {3 + i: r for i, r in enumerate(unique)}
    ids = {r: 2 + i for i, r in enumerate(course_raw)}
    return [[ids.get(raw_of.get(c), 1) for c in s] for s in sessions]


@mistake("merlin01.q2", "not padding")
def unknown_as_padding(unique, course_raw, sessions):
    raw_of = {3 + i: r for i, r in enumerate(unique)}
    ids = {r: 2 + i for i, r in enumerate(course_raw)}
    return [[ids.get(raw_of.get(c), 0) for c in s] for s in sessions]


@mistake("merlin01.q2", "go through the raw id")
def position_in_unique(unique, course_raw, sessions):
    return [[0 if c == 0 else (c - 1 if c >= 3 and unique[c - 3] in course_raw else 1) for c in s] for s in sessions]


@mistake("merlin01.q2", "go through the raw id")
def keeps_nvtabular_ids(unique, course_raw, sessions):
    return [list(s) for s in sessions]
