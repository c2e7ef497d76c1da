"""The id contract and ranking rule exist once; the copy that travels into Triton (``serving/transform.py``) matches."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from sessrec_course import arrays, ids
from sessrec_course.serving import transform

TRANSFORM_FILE = Path(transform.__file__)
# transform.py runs inside Triton's python backend, where the package cannot be imported: its own copies
CONTRACT = {"PAD_ID": ids.PAD_ID, "OOV_ID": ids.OOV_ID, "FIRST_ITEM_ID": ids.FIRST_ID, "RAW_PAD": ids.RAW_PAD}


def module_constants(path: Path) -> dict[str, object]:
    """Top-level ``NAME = literal`` assignments of a python file."""
    out = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def test_transform_copy_of_the_ids_matches_ids_py():
    found = module_constants(TRANSFORM_FILE)
    assert {name: found.get(name) for name in CONTRACT} == CONTRACT


def test_constant_reader_sees_a_mismatch(tmp_path):
    fake = tmp_path / "t.py"
    fake.write_text("PAD_ID = 0\nOOV_ID = 3\nFIRST_ITEM_ID = 2\nRAW_PAD = -1\nX = f()\n")
    found = module_constants(fake)
    assert {name: found.get(name) for name in CONTRACT} != CONTRACT
    assert "X" not in found


def test_transform_imports_nothing_but_numpy():
    tree = ast.parse(TRANSFORM_FILE.read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert modules <= {"numpy", "__future__"}, modules


@pytest.mark.parametrize("seed", range(5))
def test_serving_top_k_equals_the_shared_ranking(seed):
    rng = np.random.default_rng(seed)
    n_rows, n_items, k = 16, 300, 20
    scores = rng.integers(0, 6, size=(n_rows, n_items)).astype(np.float32)  # many ties
    raw_of_encoded = np.r_[-1, -1, 1000 + np.arange(n_items - 2)]
    state = transform.ServingState(raw_of_encoded, 5, np.arange(2, 2 + k), np.ones(k, np.float32))
    encoded = np.full((n_rows, 5), 2)
    raw, top = state.top_k(scores, encoded, k)
    expected = arrays.top_k_indices(scores[:, 2:], k) + 2
    np.testing.assert_array_equal(raw, raw_of_encoded[expected])
    np.testing.assert_array_equal(top, np.take_along_axis(scores, expected, axis=1))


def test_shared_ranking_rules():
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 3.0]])
    assert arrays.top_k_indices(scores, 3).tolist() == [[1, 2, 4]]
    assert arrays.order_desc(scores[0]).tolist() == [1, 2, 4, 3, 0]
    assert arrays.ranks_of(scores, np.array([4])).tolist() == [3]
    with pytest.raises(ValueError, match="k=6"):
        arrays.top_k_indices(scores, 6)
