"""Protocols: all prefixes, last item, benchmark pairs; truncation keeps the most recent items."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sessrec_course.evaluation import all_prefixes, last_item, to_ragged

SESSIONS = [[2, 3, 4, 5], [6], [7, 8], []]


def test_all_prefixes_every_position_with_truncation():
    prefixes, targets, index = all_prefixes(SESSIONS, max_length=2, return_session_index=True)
    assert prefixes.tolist() == [[2, 0], [2, 3], [3, 4], [7, 0]]
    assert targets.tolist() == [3, 4, 5, 8]
    assert index.tolist() == [0, 0, 0, 2]
    assert prefixes.dtype == np.int64


def test_all_prefixes_without_max_length_uses_longest_prefix():
    prefixes, targets = all_prefixes(SESSIONS)
    assert prefixes.tolist() == [[2, 0, 0], [2, 3, 0], [2, 3, 4], [7, 0, 0]]


def test_last_item_only():
    prefixes, targets, index = last_item(SESSIONS, max_length=2, return_session_index=True)
    assert prefixes.tolist() == [[3, 4], [7, 0]]
    assert targets.tolist() == [5, 8]
    assert index.tolist() == [0, 2]


def test_inputs_in_every_supported_form_agree():
    expected = all_prefixes(SESSIONS, max_length=3)
    arrow = pa.array([np.array(s, dtype=np.int32) for s in SESSIONS], type=pa.list_(pa.int32()))
    chunked = pa.chunked_array([arrow.slice(0, 2), arrow.slice(2)])
    import pandas as pd

    series = pd.Series([np.array(s, dtype=np.int32) for s in SESSIONS])
    for form in (arrow, chunked, series, to_ragged(SESSIONS)):
        got = all_prefixes(form, max_length=3)
        assert got[0].tolist() == expected[0].tolist() and got[1].tolist() == expected[1].tolist()


def test_bad_sessions_give_clear_errors():
    with pytest.raises(ValueError, match="integer item ids"):
        all_prefixes([[2.5, 3.0]])
    with pytest.raises(ValueError, match="max_length"):
        all_prefixes(SESSIONS, max_length=0)
