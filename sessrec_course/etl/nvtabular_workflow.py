"""The course's session ETL redone with NVTabular 23.8 on CPU (the Merlin kernel), decoded and compared."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sessrec_course.etl.dataset import prepare_default_dataset
from sessrec_course.etl.distributed import read_sessions_folder
from sessrec_course.etl.split import temporal_split
from sessrec_course.ids import FIRST_ID
from sessrec_course.paths import write_directory_atomically

NVT_PAD, NVT_NULL, NVT_OOV, NVT_FIRST = 0, 1, 2, 3  # NVTabular's encoding (the course's: 0 pad, 1 OOV, items)
UNKNOWN = -1  # raw id of padding / null / out-of-vocabulary after decoding (both sides)
ITEMS, CATEGORIES, COUNT, FIRST_TIME = "item_id-list", "category-list", "item_id-count", "timestamp-first"
# what Merlin prints on every CPU run, and its import-time notes about an absent tritonclient or TensorFlow
MERLIN_NOISE = ("Initializing an NVTabular Dataset in CPU mode", "dtype mappings did not load")


def quiet(*extra: str) -> None:
    """Silence Merlin's notices of every CPU run (``MERLIN_NOISE``) and the ``extra`` warning messages."""
    for text in MERLIN_NOISE + extra:
        warnings.filterwarnings("ignore", message=f".*{text}.*")


def skip_tensorflow() -> bool:
    """Keep TensorFlow (3 s) out of Merlin's imports, unless imported already; return whether it is kept out."""
    # merlin-core falls back on ImportError, which a None entry in sys.modules gives
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"] is None  # already imported (lesson Merlin 03), or already kept out
    if "merlin.core" in sys.modules:
        return False  # Merlin is loaded already: what it imported stays
    sys.modules["tensorflow"] = None  # type: ignore[assignment]
    return True


def import_nvtabular() -> Any:
    """Import NVTabular (without TensorFlow: :func:`skip_tensorflow`) with its CPU-mode notices silenced."""
    skip_tensorflow()
    quiet()
    import nvtabular

    return nvtabular


def session_workflow(max_length: int = 20, min_length: int = 2, freq_threshold: int = 0,
                     out_path: str | Path = ".") -> Any:
    """The blog's graph: Categorify → Groupby session by time → ListSlice → Filter."""
    nvt = import_nvtabular()
    from merlin.schema import Tags
    from nvtabular import ops

    out = str(out_path)
    items = ["item_id"] >> ops.Categorify(freq_threshold=freq_threshold, out_path=out) >> ops.TagAsItemID()
    cats = ["category"] >> ops.Categorify(out_path=out) >> ops.AddTags([Tags.CATEGORICAL, Tags.ITEM])
    features = ["session_id", "timestamp"] + items + cats
    aggs = {"item_id": ["list", "count"], "category": ["list"], "timestamp": ["first"]}
    grouped = features >> ops.Groupby(groupby_cols=["session_id"], sort_cols=["timestamp"], aggs=aggs, name_sep="-")
    lists = grouped[[ITEMS, CATEGORIES]] >> ops.ListSlice(-max_length) >> ops.ValueCount()
    kept = grouped[["session_id", COUNT, FIRST_TIME]] + lists
    return nvt.Workflow(kept >> ops.Filter(f=lambda df: df[COUNT] >= min_length))


def vocabulary(workflow: Any, column: str) -> np.ndarray:
    """Raw value of every encoded id of a Categorify output column (``-1`` for padding, null and OOV)."""
    unique = pd.read_parquet(workflow.output_schema[column].properties["cat_path"])
    raw_column = [c for c in unique.columns if not c.endswith("_size")][0]
    table = np.full(NVT_FIRST + len(unique), UNKNOWN, np.int64)
    table[unique.index.to_numpy()] = unique[raw_column].to_numpy(np.int64)
    return table


def _lookup(table: np.ndarray, lists: pd.Series) -> list[np.ndarray]:
    return [table[np.asarray(v, dtype=np.int64)] for v in lists]


def _decoded(sessions: pd.DataFrame, items: list, categories: list, count: str, start: str) -> pd.DataFrame:
    frame = pd.DataFrame({"session_id": sessions["session_id"].to_numpy(np.int64), "items": items,
                          "categories": categories, "count": sessions[count].to_numpy(np.int64),
                          "start_time": pd.to_datetime(sessions[start]).to_numpy("datetime64[ns]")})
    return frame.sort_values("session_id", ignore_index=True)


def decoded_nvtabular(sessions: pd.DataFrame, items: np.ndarray, categories: np.ndarray) -> pd.DataFrame:
    """NVTabular's sessions in raw ids: session_id, items, categories, count (before slicing), start_time."""
    return _decoded(sessions, _lookup(items, sessions[ITEMS]), _lookup(categories, sessions[CATEGORIES]), COUNT,
                    FIRST_TIME)


def decoded_course(sessions: pd.DataFrame, workflow: Any) -> pd.DataFrame:
    """The course ``SessionWorkflow``'s sessions in raw ids, in the columns of :func:`decoded_nvtabular`."""
    cat_table = np.concatenate([np.full(FIRST_ID, UNKNOWN, np.int64), workflow.category_raw.astype(np.int64)])
    return _decoded(sessions, [workflow.decode_item_ids(v) for v in sessions["item_id_list"]],
                    _lookup(cat_table, sessions["category_list"]), "length", "start_time")  # length: after truncation


def _kind(course: np.ndarray, nvt: np.ndarray) -> str:
    """Why two decoded item lists of one session differ: vocabulary, order, or other."""
    if len(course) != len(nvt):
        return "other"
    unequal = course != nvt
    if ((course[unequal] == UNKNOWN) | (nvt[unequal] == UNKNOWN)).all():
        return "vocabulary"
    return "order" if sorted(course.tolist()) == sorted(nvt.tolist()) else "other"


def to_course_ids(nvt_ids: np.ndarray) -> np.ndarray:
    """NVTabular item ids in the course's layout: real items 3.. → 2.., null and OOV → 1, padding stays 0."""
    ids = np.asarray(nvt_ids, dtype=np.int64)
    return np.where(ids >= NVT_FIRST, ids - 1, np.where(ids > 0, 1, 0))


def from_course_ids(course_ids: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_course_ids` on real items and padding; the course's OOV (1) → NVTabular's OOV (2)."""
    ids = np.asarray(course_ids, dtype=np.int64)
    return np.where(ids >= 2, ids + 1, np.where(ids == 1, NVT_OOV, 0))


def course_layout(scores: np.ndarray) -> np.ndarray:
    """Scores of every NVTabular id in the course's layout (padding, OOV, items from 2): the null column dropped."""
    return np.concatenate([scores[:, :1], scores[:, NVT_OOV:NVT_OOV + 1], scores[:, NVT_FIRST:]], axis=1)


def compare_sessions(course: pd.DataFrame, nvt: pd.DataFrame, max_length: int) -> dict[str, Any]:
    """Sessions whose decoded outputs differ, by kind (``vocabulary``: only where a side is unknown...)."""
    only_course = sorted(set(course["session_id"]) - set(nvt["session_id"]))
    only_nvt = sorted(set(nvt["session_id"]) - set(course["session_id"]))
    both = course.merge(nvt, on="session_id", suffixes=("_course", "_nvt"))
    result: dict[str, Any] = {"sessions": len(both), "only_course": only_course, "only_nvtabular": only_nvt,
                              **{kind: [] for kind in ("vocabulary", "order", "other", "categories", "count", "start_time")}}
    for row in both.itertuples(index=False):
        if not np.array_equal(row.items_course, row.items_nvt):
            result[_kind(row.items_course, row.items_nvt)].append(int(row.session_id))
        if not np.array_equal(row.categories_course, row.categories_nvt):
            result["categories"].append(int(row.session_id))
        if min(row.count_nvt, max_length) != row.count_course:
            result["count"].append(int(row.session_id))
        if row.start_time_course != row.start_time_nvt:
            result["start_time"].append(int(row.session_id))
    return result


def run_etl(frames: dict[str, pd.DataFrame], out: str | Path, workflow: Any) -> dict[str, Any]:
    """Fit ``workflow`` on ``frames["train"]``, transform all; write parquet, workflow, decoded copies."""
    nvt = import_nvtabular()
    out, started = Path(out), time.perf_counter()
    data = {k: nvt.Dataset(f, cpu=True) for k, f in frames.items()}
    workflow.fit(data["train"])
    fitted = time.perf_counter()
    sessions = {k: workflow.transform(d).to_ddf().compute() for k, d in data.items()}
    transformed = time.perf_counter()
    for split, dataset in data.items():
        workflow.transform(dataset).to_parquet(str(out / split), out_files_per_proc=1)
    timings = {"fit_s": fitted - started, "transform_s": transformed - fitted,
               "parquet_s": time.perf_counter() - transformed, "events": sum(len(f) for f in frames.values())}
    return finish(out, workflow, sessions, timings)


def finish(out: str | Path, workflow: Any, sessions: dict[str, pd.DataFrame], timings: dict[str, Any]) -> dict[str, Any]:
    """Save the fitted workflow and the decoded sessions under ``out``; write ``etl.json`` last (done marker)."""
    nvt = import_nvtabular()
    out = Path(out)
    workflow.save(str(out / "workflow"))
    items, categories = vocabulary(workflow, ITEMS), vocabulary(workflow, CATEGORIES)
    for split, frame in sessions.items():
        decoded_nvtabular(frame, items, categories).to_parquet(out / f"decoded-{split}.parquet")
    result = {**timings, "nvtabular": nvt.__version__, "item_cardinality": int(len(items)),
              **{f"{k}_sessions": int(len(v)) for k, v in sessions.items()}}
    (out / "etl.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def read_split(root: str | Path, split: str) -> pd.DataFrame:
    """The sessions NVTabular's ``to_parquet`` wrote to ``root/split/`` (its part files, in session order)."""
    return read_sessions_folder(Path(root) / split, "*.parquet")


def capped_copy(root: str | Path, out: str | Path, max_train_sessions: int | None,
                max_test_sessions: int | None = None) -> Path:
    """``out/{train,test}/``: the first sessions (by id) of each split, with the schema fitted on all of train."""
    root, out = Path(root), Path(out)
    for split in ("train", "test"):
        frame = read_split(root, split).iloc[:max_train_sessions if split == "train" else max_test_sessions]
        (out / split).mkdir(parents=True, exist_ok=True)
        frame.to_parquet(out / split / "part_0.parquet", index=False)
        shutil.copy2(root / split / "schema.pbtxt", out / split / "schema.pbtxt")
    return out


def merlin_sessions_dir(profile: Any = None, freq_threshold: int = 0) -> Path:
    """Where the NVTabular output of the default dataset lives (beside the course's own, per profile)."""
    return prepare_default_dataset(profile).root.parent / f"merlin-f{freq_threshold}"


def raw_splits(profile: Any = None) -> dict[str, pd.DataFrame]:
    """The raw train / valid / test events of the course's default dataset (the rows lesson 01 splits)."""
    data = prepare_default_dataset(profile)
    days = float(data.manifest["split_days"])
    return temporal_split(data.events(), valid_days=days, test_days=days, source=str(data.events_path))


def prepare_merlin_sessions(profile: Any = None, freq_threshold: int = 0, force: bool = False) -> Path:
    """The default dataset through NVTabular into :func:`merlin_sessions_dir`, once (reused when complete)."""
    profile = prepare_default_dataset(profile).profile
    root = merlin_sessions_dir(profile, freq_threshold)
    if force or not (root / "etl.json").is_file():
        frames = raw_splits(profile)
        write_directory_atomically(root, lambda tmp: run_etl(frames, tmp, session_workflow(
            profile.max_length, freq_threshold=freq_threshold, out_path=tmp)))
    return root


def main(argv: list[str] | None = None) -> None:
    """Fit on train, transform train and test, write both and their decoded copies, print timings as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--train", "--test", "--out"):
        parser.add_argument(name, required=True)
    for name, default in (("--max-length", 20), ("--min-length", 2), ("--freq-threshold", 0)):
        parser.add_argument(name, type=int, default=default)
    args = parser.parse_args(argv)
    frames = {"train": pd.read_parquet(args.train), "test": pd.read_parquet(args.test)}
    workflow = session_workflow(args.max_length, args.min_length, args.freq_threshold, args.out)
    print(json.dumps(run_etl(frames, args.out, workflow)))


if __name__ == "__main__":
    main()
