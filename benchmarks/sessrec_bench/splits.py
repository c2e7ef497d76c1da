"""Benchmark split folders (``train_sessions.txt`` + ``test.tsv``, the SR-GNN preprocessing) and their test cases.

:func:`load_benchmark` reads ids as they are (1-based, ``item_cardinality = max id + 1``, every ``test.tsv`` line
counts); :func:`benchmark_cases` re-encodes them for the course's ``evaluate`` (ids + 1, so raw item 1 is not OOV).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sessrec_course.arrays import pad_ragged, to_ragged
from sessrec_course.data.errors import DataError
from sessrec_course.paths import shared_data_dir

BENCHMARKS = ("diginetica", "yoochoose1_64")


@dataclass
class BenchmarkSplit:
    """Train sessions and (prefix, target) test cases of one benchmark."""

    name: str
    train_sessions: list[np.ndarray]
    test_prefixes: list[np.ndarray]
    test_targets: np.ndarray
    item_cardinality: int  # max item id + 1 (id 0 is padding)
    stats: dict = field(default_factory=dict)

    def train_pairs(self, min_prefix: int = 1) -> tuple[list[np.ndarray], np.ndarray]:
        """Return every (prefix, next item) pair of the training sessions with ``len(prefix) >= min_prefix``."""
        pairs = [(s[:t], s[t]) for s in self.train_sessions for t in range(max(min_prefix, 1), len(s))]
        return [p for p, _ in pairs], np.asarray([t for _, t in pairs], dtype=np.int64)

    def __repr__(self) -> str:
        return (f"BenchmarkSplit({self.name!r}: {len(self.train_sessions)} train sessions, "
                f"{len(self.test_targets)} test cases, item_cardinality={self.item_cardinality})")


def _parse_ids(text: str, source: Path, line: int) -> np.ndarray:
    try:
        return np.array(text.split(), dtype=np.int64)
    except (ValueError, OverflowError) as exc:
        raise DataError(f"non-integer item id on line {line}: {text[:60]!r}", source=str(source),
                        expected="space-separated integer ids") from exc


def _read_test_cases(test_file: Path) -> tuple[list[np.ndarray], list[int]]:
    """Read ``test.tsv`` by its column names: ``prefix`` and ``target``, other columns (session id, time) ignored."""
    lines = test_file.read_text(encoding="utf-8").splitlines()
    header = [name.strip() for name in lines[0].split("\t")] if lines else []
    missing = [name for name in ("prefix", "target") if name not in header]
    if missing:
        raise DataError(f"header {lines[0][:80] if lines else ''!r} lacks column(s) {missing}", source=str(test_file),
                        column="/".join(missing), expected="a tab-separated header with 'prefix' and 'target'")
    at_prefix, at_target = header.index("prefix"), header.index("target")
    prefixes, targets = [], []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != len(header):
            raise DataError(f"line {i} has {len(parts)} fields, the header {len(header)}", source=str(test_file),
                            expected="\t".join(header))
        prefixes.append(_parse_ids(parts[at_prefix], test_file, i))
        target = _parse_ids(parts[at_target], test_file, i)
        if len(target) != 1:
            raise DataError(f"line {i} has {len(target)} ids in 'target'", source=str(test_file), column="target",
                            expected="one item id")
        targets.append(int(target[0]))
    return prefixes, targets


def load_benchmark(name: str, root: str | Path | None = None) -> BenchmarkSplit:
    """Read benchmark ``name`` (``diginetica`` or ``yoochoose1_64``) from ``root`` or the shared data folder."""
    if name not in BENCHMARKS and root is None:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {BENCHMARKS}")
    folder = Path(root) / name if root is not None else shared_data_dir() / "benchmarks" / name
    if root is None and not folder.exists():
        raise FileNotFoundError(f"shared research data not found: {folder}. Put the shared folder beside the "
                                "repository (../shared/data) or point SESSREC_SHARED_DATA at it.")
    train_file, test_file = folder / "train_sessions.txt", folder / "test.tsv"
    if missing := [f for f in (train_file, test_file) if not f.is_file()]:
        raise FileNotFoundError(f"benchmark file missing: {missing[0]}")
    train = [_parse_ids(line, train_file, i + 1)
             for i, line in enumerate(train_file.read_text(encoding="utf-8").splitlines()) if line.strip()]
    prefixes, targets = _read_test_cases(test_file)
    stats_file = folder / "stats.json"
    stats = json.loads(stats_file.read_text(encoding="utf-8")) if stats_file.exists() else {}
    max_id = max(max(int(s.max()) for s in train if len(s)), max(targets),
                 max(int(p.max()) for p in prefixes if len(p)), int(stats.get("max_item_id", 0)))
    return BenchmarkSplit(name, train, prefixes, np.asarray(targets, dtype=np.int64), max_id + 1, stats)


def pairs_to_cases(prefixes, targets, max_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(prefix matrix, targets)`` from given (prefix list, target) pairs, e.g. a benchmark ``test.tsv``."""
    values, offsets = to_ragged(prefixes)
    targets = np.asarray(targets, dtype=np.int64)
    if len(targets) != len(offsets) - 1:
        raise ValueError(f"{len(offsets) - 1} prefixes but {len(targets)} targets")
    lengths = np.diff(offsets)
    if (lengths == 0).any():
        raise ValueError(f"prefix {int(np.argmin(lengths))} is empty; every benchmark case needs a prefix")
    return pad_ragged(values, offsets[:-1], offsets[1:], max_length), targets


class BenchmarkCases(NamedTuple):
    """A benchmark split in the course's encoding: ids shifted by one so that 1 stays the OOV id."""

    train_sessions: list[np.ndarray]
    prefixes: np.ndarray
    targets: np.ndarray
    n_items: int


def benchmark_cases(split, max_length: int | None = None) -> BenchmarkCases:
    """Every test line of a benchmark split as a case, ids shifted by +1 so that raw item 1 does not become OOV."""
    train = [np.asarray(s, dtype=np.int64) + 1 for s in split.train_sessions]
    prefixes, targets = pairs_to_cases([np.asarray(p, dtype=np.int64) + 1 for p in split.test_prefixes],
                                       np.asarray(split.test_targets, dtype=np.int64) + 1, max_length)
    return BenchmarkCases(train, prefixes, targets, int(split.item_cardinality) + 1)
