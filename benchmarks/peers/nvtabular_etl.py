"""The course's session ETL redone with NVTabular 23.8 in CPU mode (runs in .venv-merlin, not the course venv).

Usage: ``.venv-merlin/bin/python benchmarks/peers/nvtabular_etl.py --train TRAIN.parquet --test TEST.parquet
--out DIR [--max-length 20]``. Prints one JSON line of timings. Same work as ``SessionWorkflow``:
Categorify item_id and category (vocabulary fitted on train; unseen → an OOV index), time since the
previous event within the session (DifferenceLag), start weekday/hour, Groupby session_id sorted by time
(item/category/time-delta lists, count, first and last timestamp; duration left as last − first), Filter sessions of length ≥ 2,
ListSlice keeping the last ``max_length`` events. Timed: ``fit`` on train, ``transform`` of train and test
materialised (``to_ddf().compute()``; the sort by session and time DifferenceLag needs is in
``fit``), then ``to_parquet`` separately. Also writes ``schema.pbtxt`` for T4R.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

warnings.filterwarnings("ignore")


def build_workflow(max_length: int):
    """The NVTabular graph equivalent to the course's SessionWorkflow."""
    import nvtabular as nvt
    from merlin.schema import Tags
    from nvtabular import ops

    items = ["item_id"] >> ops.Categorify() >> ops.TagAsItemID()
    cats = ["category"] >> ops.Categorify() >> ops.AddTags([Tags.CATEGORICAL, Tags.ITEM])
    ts = ["timestamp"] >> ops.LambdaOp(lambda col: col.astype("int64") // 10**9) >> ops.Rename(name="ts")
    lagged = ts >> ops.DifferenceLag(partition_cols=["session_id"], shift=1)
    delta = (lagged["ts_difference_lag_1"] >> ops.FillMissing(0) >> ops.Rename(name="delta") >> ops.AddTags([Tags.CONTINUOUS]))
    weekday = ["timestamp"] >> ops.LambdaOp(lambda col: col.dt.weekday) >> ops.Rename(name="weekday")
    hour = ["timestamp"] >> ops.LambdaOp(lambda col: col.dt.hour) >> ops.Rename(name="hour")
    grouped = (["session_id"] + items + cats + ts + delta + weekday + hour) >> ops.Groupby(
        groupby_cols=["session_id"], sort_cols=["ts"],
        aggs={"item_id": ["list", "count"], "category": ["list"], "delta": ["list"], "ts": ["first", "last"],
              "weekday": ["first"], "hour": ["first"]}, name_sep="-")
    lists = grouped["item_id-list", "category-list", "delta-list"] >> ops.ListSlice(-max_length) >> ops.ValueCount()
    # duration = ts-last - ts-first is left to the reader (a LambdaOp over two grouped columns does not
    # build in this release): slightly LESS work than the course side does
    kept = grouped["session_id", "item_id-count", "weekday-first", "hour-first", "ts-first", "ts-last"] + lists
    return nvt.Workflow(kept >> ops.Filter(f=lambda df: df["item_id-count"] >= 2))


def main() -> None:
    """Fit on train, transform train and test, print timings as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-length", type=int, default=20)
    args = parser.parse_args()
    import nvtabular as nvt
    import pandas as pd

    train_df, test_df = pd.read_parquet(args.train), pd.read_parquet(args.test)
    for df in (train_df, test_df):
        df["category"] = df["category"].astype("int64")
    workflow = build_workflow(args.max_length)
    start = time.perf_counter()
    # DifferenceLag needs rows ordered by session and time (NVTabular does not sort before it): sort, timed
    train_df = train_df.sort_values(["session_id", "timestamp"], kind="stable").reset_index(drop=True)
    test_df = test_df.sort_values(["session_id", "timestamp"], kind="stable").reset_index(drop=True)
    train_ds, test_ds = nvt.Dataset(train_df, cpu=True), nvt.Dataset(test_df, cpu=True)
    workflow.fit(train_ds)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    train_out = workflow.transform(train_ds).to_ddf().compute()
    test_out = workflow.transform(test_ds).to_ddf().compute()
    transform_s = time.perf_counter() - start
    start = time.perf_counter()
    workflow.transform(train_ds).to_parquet(f"{args.out}/train", out_files_per_proc=1)
    workflow.transform(test_ds).to_parquet(f"{args.out}/test", out_files_per_proc=1)
    parquet_s = time.perf_counter() - start
    workflow.save(f"{args.out}/workflow")
    print(json.dumps({"fit_s": fit_s, "transform_s": transform_s, "parquet_s": parquet_s,
                      "events": int(len(train_df) + len(test_df)), "train_sessions": int(len(train_out)),
                      "test_sessions": int(len(test_out)), "nvtabular": nvt.__version__,
                      "item_cardinality": int(train_out["item_id-list"].explode().max()) + 1}))


if __name__ == "__main__":
    main()
