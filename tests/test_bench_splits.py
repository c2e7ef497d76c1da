"""The benchmark split reader and its re-encoding for the course's evaluate (benchmarks/sessrec_bench/splits.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sessrec_bench.splits import benchmark_cases, load_benchmark, pairs_to_cases

from sessrec_course.data import DataError
from sessrec_course.paths import shared_data_dir

BENCH = shared_data_dir() / "benchmarks"


def needs(path):
    return pytest.mark.skipif(not path.exists(), reason=f"shared research data not found at {path}")


@needs(BENCH / "yoochoose1_64")
def test_benchmark_reader_counts():
    split = load_benchmark("yoochoose1_64")
    assert len(split.train_sessions) == 116_167
    assert len(split.test_targets) == 55_898
    assert split.item_cardinality == 37_484
    assert sum(len(s) for s in split.train_sessions) == split.stats["train_clicks"]
    prefixes, targets = split.train_pairs()
    assert len(targets) == 369_859
    assert split.test_prefixes[0].tolist() == [33611, 37169, 6409] and split.test_targets[0] == 33128


@needs(BENCH / "diginetica")
def test_benchmark_reader_diginetica():
    split = load_benchmark("diginetica")
    assert (len(split.train_sessions), len(split.test_targets)) == (186_670, 60_858)
    assert split.item_cardinality == 43_098


def _split_folder(tmp_path, test_text: str):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "train_sessions.txt").write_text("3 4 5\n4 5\n6 3\n", encoding="utf-8")
    (folder / "test.tsv").write_text(test_text, encoding="utf-8")
    return folder


def test_benchmark_reader_takes_columns_by_name_and_ignores_extra_ones(tmp_path):
    _split_folder(tmp_path, "session_id\ttarget\ttimestamp\tprefix\n7\t5\t1700000000\t3 4\n"
                            "8\t9\t1700000100\t6\n")
    split = load_benchmark("mine", root=tmp_path)
    assert [p.tolist() for p in split.test_prefixes] == [[3, 4], [6]]
    assert split.test_targets.tolist() == [5, 9]
    assert split.item_cardinality == 10  # max id (a test target) + 1


@pytest.mark.parametrize(("text", "match"), [
    ("session_id\tprefix\n1\t3 4\n", "lacks column.*'target'"),
    ("prefix target\n3 4 5\n", "lacks column.*'prefix', 'target'"),  # spaces, not tabs: no such columns
    ("", "lacks column"),
    ("prefix\ttarget\textra\n3 4\t5\n", "line 2 has 2 fields, the header 3"),
    ("prefix\ttarget\n3 4\t5 6\n", "line 2 has 2 ids in 'target'"),
    ("prefix\ttarget\n3 x\t5\n", "non-integer item id on line 2"),
])
def test_benchmark_reader_names_what_is_wrong(tmp_path, text, match):
    _split_folder(tmp_path, text)
    with pytest.raises(DataError, match=match) as caught:
        load_benchmark("mine", root=tmp_path)
    assert "test.tsv" in str(caught.value)


def test_pairs_to_cases_keeps_recent_items_and_rejects_empty_prefixes():
    prefixes, targets = pairs_to_cases([[2, 3, 4], [5]], [6, 7], max_length=2)
    assert prefixes.tolist() == [[3, 4], [5, 0]]
    assert targets.tolist() == [6, 7]
    with pytest.raises(ValueError, match="prefix 1 is empty"):
        pairs_to_cases([[2], []], [3, 4])


def test_benchmark_cases_shift_ids_so_raw_item_1_is_not_oov():
    split = SimpleNamespace(train_sessions=[np.array([1, 2, 3])], test_prefixes=[np.array([3, 1]), np.array([2])],
                            test_targets=np.array([1, 4]), item_cardinality=5)
    cases = benchmark_cases(split)
    assert [s.tolist() for s in cases.train_sessions] == [[2, 3, 4]]
    assert cases.prefixes.tolist() == [[4, 2], [3, 0]]
    assert cases.targets.tolist() == [2, 5]
    assert cases.n_items == 6
