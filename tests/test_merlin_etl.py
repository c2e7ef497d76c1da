"""NVTabular (the Merlin kernel) and the course's ``SessionWorkflow`` do the same ETL, up to pinned differences.

The NVTabular side runs in ``.venv-merlin`` (``make merlin``) through a subprocess; the course side and the
comparison run here. The one documented difference on the generated data: Categorify counts every training
event, the course counts only events of sessions that pass the length filter, so an item near the frequency
threshold can be known to NVTabular and out-of-vocabulary to the course. Clicks with equal timestamps within a
session may also come out in another order (NVTabular's Groupby sorts with an unstable sort).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sessrec_course.data.synthetic import generate_events
from sessrec_course.etl import SessionWorkflow, temporal_split
from sessrec_course.etl.nvtabular_workflow import UNKNOWN, compare_sessions, decoded_course

ROOT = Path(__file__).resolve().parents[1]
MERLIN_PYTHON = ROOT / ".venv-merlin" / "bin" / "python"
MAX_LENGTH, THRESHOLD = 20, 5


def _decoded(session_id: int, items: list[int], count: int | None = None) -> dict:
    return {"session_id": session_id, "items": np.asarray(items), "categories": np.zeros(len(items), np.int64),
            "count": len(items) if count is None else count, "start_time": np.datetime64(0, "ns")}


@pytest.mark.unit
def test_compare_sessions_names_each_kind_of_difference():
    course = pd.DataFrame([_decoded(1, [5, 6, 7]), _decoded(2, [5, UNKNOWN]), _decoded(3, [5, 6]),
                           _decoded(4, [5, 6]), _decoded(5, [8, 9]), _decoded(6, [1, 2], count=2)])
    nvt = pd.DataFrame([_decoded(1, [5, 6, 7]), _decoded(2, [5, 9]), _decoded(3, [6, 5]), _decoded(4, [5, 7]),
                        _decoded(7, [1, 2]), _decoded(6, [1, 2], count=25)])
    found = compare_sessions(course, nvt, max_length=20)
    assert found["sessions"] == 5
    assert (found["only_course"], found["only_nvtabular"]) == ([5], [7])
    assert (found["vocabulary"], found["order"], found["other"]) == ([2], [3], [4])
    assert found["count"] == [6]  # 25 clicks do not truncate to a length of 2 at max_length 20
    assert found["categories"] == found["start_time"] == []


@pytest.fixture(scope="module")
def both_outputs(tmp_path_factory) -> dict:
    if not MERLIN_PYTHON.exists():
        pytest.skip(f"no Merlin kernel venv at {MERLIN_PYTHON}: build it with `make merlin`")
    tmp = tmp_path_factory.mktemp("merlin-etl")
    events = generate_events(n_events=40_000, n_items=600, n_categories=10, n_days=14, seed=7)
    parts = temporal_split(events, valid_days=1, test_days=2)
    for split in ("train", "test"):
        parts[split].to_parquet(tmp / f"{split}.parquet")
    done = subprocess.run([str(MERLIN_PYTHON), "-m", "sessrec_course.etl.nvtabular_workflow", "--train",
                           str(tmp / "train.parquet"), "--test", str(tmp / "test.parquet"), "--out", str(tmp / "nvt"),
                           "--max-length", str(MAX_LENGTH), "--freq-threshold", str(THRESHOLD)],
                          capture_output=True, text=True, timeout=600, cwd=tmp, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    workflow = SessionWorkflow(max_length=MAX_LENGTH, min_item_frequency=THRESHOLD).fit(parts["train"])
    return {"parts": parts, "workflow": workflow, "out": tmp / "nvt", "timings": json.loads(done.stdout.splitlines()[-1]),
            "course": {s: decoded_course(workflow.transform(parts[s]), workflow) for s in ("train", "test")},
            "nvt": {s: pd.read_parquet(tmp / "nvt" / f"decoded-{s}.parquet") for s in ("train", "test")}}


def _threshold_items(train: pd.DataFrame) -> set[int]:
    """Items at or above the threshold over all training clicks, below it over sessions of two or more clicks."""
    everything = train["item_id"].value_counts()
    lengths = train.groupby("session_id")["item_id"].transform("size")
    kept = train.loc[lengths >= 2, "item_id"].value_counts().reindex(everything.index, fill_value=0)
    return set(everything.index[(everything >= THRESHOLD) & (kept < THRESHOLD)].tolist())


@pytest.mark.integration
@pytest.mark.parametrize("split", ["train", "test"])
def test_nvtabular_and_course_etl_agree_up_to_the_pinned_differences(both_outputs, split):
    course, nvt = both_outputs["course"][split], both_outputs["nvt"][split]
    found = compare_sessions(course, nvt, MAX_LENGTH)
    assert found["sessions"] == len(course) == len(nvt) > 100
    assert found["only_course"] == found["only_nvtabular"] == [], "both keep the sessions of >= 2 clicks"
    assert found["other"] == found["categories"] == found["count"] == found["start_time"] == []
    # the vocabulary difference is exactly the sessions holding an item that only Categorify's count keeps
    known_to_nvt_only = _threshold_items(both_outputs["parts"]["train"])
    assert known_to_nvt_only, "the generated data should put some item between the two counts"
    holds = [int(s) for s, items in zip(nvt["session_id"], nvt["items"], strict=True)
             if known_to_nvt_only & set(items.tolist())]
    assert found["vocabulary"] == holds
    events = both_outputs["parts"][split]
    tied = set(events.loc[events.duplicated(["session_id", "timestamp"]), "session_id"].tolist())
    assert set(found["order"]) <= tied, "only clicks with equal timestamps may change order"


@pytest.mark.integration
def test_vocabularies_are_each_sides_counts_at_the_threshold(both_outputs):
    train = both_outputs["parts"]["train"]
    everything = train["item_id"].value_counts()
    lengths = train.groupby("session_id")["item_id"].transform("size")
    kept = train.loc[lengths >= 2, "item_id"].value_counts()
    nvt_vocabulary = pd.read_parquet(both_outputs["out"] / "categories" / "unique.item_id.parquet")["item_id"]
    assert set(nvt_vocabulary.tolist()) == set(everything.index[everything >= THRESHOLD].tolist())
    assert set(both_outputs["workflow"].item_raw.tolist()) == set(kept.index[kept >= THRESHOLD].tolist())
    # + 3: NVTabular's padding, null and out-of-vocabulary rows
    assert both_outputs["timings"]["item_cardinality"] == len(nvt_vocabulary) + 3


@pytest.mark.unit
def test_the_merlin_kernel_is_registered_where_the_course_jupyter_looks():
    if not MERLIN_PYTHON.exists():
        pytest.skip(f"no Merlin kernel venv at {MERLIN_PYTHON}: build it with `make merlin`")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("sessrec-merlin")
    except NoSuchKernel:
        pytest.fail("kernel sessrec-merlin is not registered for the course venv's Jupyter: run `make merlin`")
    assert Path(spec.argv[0]) == MERLIN_PYTHON, f"the kernel runs {spec.argv[0]}, not this checkout's Merlin venv"
