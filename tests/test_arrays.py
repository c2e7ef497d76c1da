"""The one padding kernel accepts every session form the course uses and keeps the right end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sessrec_course.arrays import pad_ragged, pad_right, to_ragged

SESSIONS = [[2, 3, 4], [], [5], [6, 7]]
EXPECTED = [[3, 4], [0, 0], [5, 0], [6, 7]]


class _CudfLike:
    """Stands in for a cudf list Series: only ``to_arrow``."""

    def __init__(self, array: pa.Array) -> None:
        self._array = array

    def to_arrow(self) -> pa.Array:
        return self._array


def _forms():
    arrow = pa.array(SESSIONS, type=pa.list_(pa.int32()))
    yield SESSIONS
    yield pd.Series([np.asarray(s) for s in SESSIONS])
    yield arrow
    yield pa.chunked_array([arrow.slice(0, 2), arrow.slice(2)])
    yield _CudfLike(arrow)
    yield to_ragged(SESSIONS)


@pytest.mark.parametrize("form", list(_forms()), ids=lambda f: type(f).__name__)
def test_every_form_pads_the_same(form):
    assert pad_right(form, 2).tolist() == EXPECTED


def test_sliced_arrow_keeps_offsets():
    arrow = pa.array(SESSIONS, type=pa.list_(pa.int64()))
    assert pad_right(arrow.slice(2), 2).tolist() == EXPECTED[2:]


def test_dtype_and_width_of_the_longest():
    deltas = pa.array([[0.0, 1.5], [2.5]], type=pa.list_(pa.float32()))
    out = pad_right(deltas, 3, dtype=np.float32)
    assert out.dtype == np.float32 and out.tolist() == [[0.0, 1.5, 0.0], [2.5, 0.0, 0.0]]
    values, offsets = to_ragged(SESSIONS)
    assert pad_ragged(values, offsets[:-1], offsets[1:], None).shape == (4, 3)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="integer item ids"):
        pad_right([[1.5]], 2)
    with pytest.raises(ValueError, match="at least 1"):
        pad_right(SESSIONS, 0)
