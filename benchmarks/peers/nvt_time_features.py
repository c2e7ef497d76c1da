"""The peers benchmark's NVTabular 23.8 ETL (runs in .venv-merlin): the blog's session graph of
:func:`sessrec_course.etl.nvtabular_workflow.session_workflow` plus the time features the course's ETL computes.

Usage: ``.venv-merlin/bin/python benchmarks/peers/nvt_time_features.py --train T --test T --out DIR
[--max-length 20]``. Prints one JSON line (timings and counts; the sort DifferenceLag needs counts as fitting).
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd


def time_feature_workflow(max_length: int, out_path: str, min_length: int = 2):
    """Categorify → Groupby session by time (+ seconds, lag to the previous click, weekday, hour) → ListSlice."""
    from sessrec_course.etl import nvtabular_workflow as nw

    nvt = nw.import_nvtabular()
    from merlin.schema import Tags
    from nvtabular import ops

    items = ["item_id"] >> ops.Categorify(out_path=out_path) >> ops.TagAsItemID()
    cats = ["category"] >> ops.Categorify(out_path=out_path) >> ops.AddTags([Tags.CATEGORICAL, Tags.ITEM])
    ts = ["timestamp"] >> ops.LambdaOp(lambda col: col.astype("int64") // 10**9) >> ops.Rename(name="ts")
    lagged = ts >> ops.DifferenceLag(partition_cols=["session_id"], shift=1)
    delta = (lagged["ts_difference_lag_1"] >> ops.FillMissing(0) >> ops.Rename(name="delta")
             >> ops.AddTags([Tags.CONTINUOUS]))
    weekday = ["timestamp"] >> ops.LambdaOp(lambda col: col.dt.weekday) >> ops.Rename(name="weekday")
    hour = ["timestamp"] >> ops.LambdaOp(lambda col: col.dt.hour) >> ops.Rename(name="hour")
    features = ["session_id", "timestamp"] + items + cats + ts + delta + weekday + hour
    aggs = {"item_id": ["list", "count"], "category": ["list"], "timestamp": ["first"], "delta": ["list"],
            "ts": ["last"], "weekday": ["first"], "hour": ["first"]}
    grouped = features >> ops.Groupby(groupby_cols=["session_id"], sort_cols=["timestamp"], aggs=aggs, name_sep="-")
    lists = grouped[[nw.ITEMS, nw.CATEGORIES, "delta-list"]] >> ops.ListSlice(-max_length) >> ops.ValueCount()
    kept = grouped[["session_id", nw.COUNT, nw.FIRST_TIME, "ts-last", "weekday-first", "hour-first"]] + lists
    return nvt.Workflow(kept >> ops.Filter(f=lambda df: df[nw.COUNT] >= min_length))


def main() -> None:
    """Sort, fit on train, transform train and test, write both and their decoded copies; print JSON."""
    from sessrec_course.etl import nvtabular_workflow as nw

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--train", "--test", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--max-length", type=int, default=20)
    args = parser.parse_args()
    frames = {"train": pd.read_parquet(args.train), "test": pd.read_parquet(args.test)}
    start = time.perf_counter()  # DifferenceLag needs rows ordered by session and time: timed with the fit
    frames = {k: f.sort_values(["session_id", "timestamp"], kind="stable", ignore_index=True)
              for k, f in frames.items()}
    sort_s = time.perf_counter() - start
    result = nw.run_etl(frames, args.out, time_feature_workflow(args.max_length, str(args.out)))
    print(json.dumps({**result, "fit_s": result["fit_s"] + sort_s}))


if __name__ == "__main__":
    main()
