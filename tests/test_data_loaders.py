"""Loaders on the real files in ../shared/data (skipped when absent) and on small hand-written bad files."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from sessrec_course.data import loaders
from sessrec_course.data.download import download_file, instructions, sha256_of
from sessrec_course.data.errors import DataError
from sessrec_course.etl import SessionWorkflow
from sessrec_course.paths import shared_data_dir

YC = shared_data_dir() / "yoochoose-rsc15-100k" / "prepared"
DIGI = shared_data_dir() / "diginetica-sample" / "sample_train-item-views.csv"


def needs(path):
    return pytest.mark.skipif(not path.exists(), reason=f"shared research data not found: {path}")


@needs(YC)
def test_yoochoose_rsc15_100k_transforms_to_published_session_counts(tmp_path):
    train = loaders.load_yoochoose_prepared(YC / "yoochoose-clicks-100k_train_full.txt")
    test = loaders.load_yoochoose_prepared(YC / "yoochoose-clicks-100k_test.txt")
    assert (len(train), len(test)) == (70_278, 13_568)
    wf = SessionWorkflow(max_length=50).fit(train)
    out_train, out_test = wf.transform(train), wf.transform(test)
    assert (len(out_train), len(out_test)) == (17_794, 3_416)
    assert wf.item_cardinality == 2_933 + 2
    assert not (np.concatenate(out_test["item_id_list"].tolist()) == 1).any()  # every test item is in train
    assert train["timestamp"].min() >= pd.Timestamp("2014-04-01")
    assert test["timestamp"].min() > train["timestamp"].max() - pd.Timedelta(days=1)
    # save -> load -> transform is identical on real data
    wf.save(tmp_path / "wf")
    pd.testing.assert_frame_equal(SessionWorkflow.load(tmp_path / "wf").transform(test), out_test)


@needs(DIGI)
def test_diginetica_sample():
    events = loaders.load_diginetica(DIGI)
    assert len(events) == 12_391
    assert events["session_id"].nunique() == 2_986
    assert events["item_id"].nunique() == 7_139
    assert events["timestamp"].min() >= pd.Timestamp("2016-01-03")
    assert events["timestamp"].max() < pd.Timestamp("2016-06-02")
    # first row: 2016-05-09 + 526309 ms
    assert events["timestamp"].iloc[0] == pd.Timestamp("2016-05-09") + pd.Timedelta(milliseconds=526_309)
    out = SessionWorkflow().fit(events).transform(events)
    assert 0 < len(out) <= 2_986


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_booking_and_rees46_formats(tmp_path):
    booking = write(tmp_path, "train_set.csv",
                    "user_id,checkin,checkout,city_id,device_class,affiliate_id,booker_country,hotel_country,"
                    "utrip_id\n1,2016-08-13,2016-08-14,8183,desktop,7168,Elbonia,Gondal,1000027_1\n"
                    "1,2016-08-14,2016-08-16,15626,desktop,7168,Elbonia,Gondal,1000027_1\n"
                    "2,2016-04-09,2016-04-11,3763,mobile,359,Gondal,Cobra Island,1000033_1\n")
    ev = loaders.load_booking_trips(booking)
    assert ev["session_id"].tolist() == [1, 1, 2]
    assert ev["item_id"].tolist() == [8183, 15626, 3763]
    assert ev["category"].tolist() == [0, 0, 1]
    assert ev["timestamp"].iloc[1] == pd.Timestamp("2016-08-14")
    rees = write(tmp_path, "2019-Oct.csv",
                 "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
                 "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,aa-1\n"
                 "2019-10-01 00:00:05 UTC,cart,3900821,2053013552326770905,appliances,aqua,33.20,554748717,bb-2\n"
                 "2019-10-01 00:00:07 UTC,view,3900822,2053013552326770905,appliances,aqua,31.00,554748717,bb-2\n"
                 "2019-10-01 00:00:09 UTC,view,3900822,2053013552326770905,appliances,aqua,31.00,554748717,\n")
    ev = loaders.load_rees46(rees)
    assert ev["session_id"].tolist() == [1, 2, 2]  # the row without user_session is dropped
    assert ev["event_type"].tolist() == ["view", "cart", "view"]
    assert ev["price"].dtype == np.float32
    assert ev["timestamp"].iloc[2] == pd.Timestamp("2019-10-01 00:00:07")


def test_generic_table_with_mapping(tmp_path):
    path = write(tmp_path, "log.csv", "sid,sku,ts\n5,100,1700000000\n5,101,1700000010\n")
    ev = loaders.load_table(path, {"session_id": "sid", "item_id": "sku", "timestamp": "ts"}, timestamp_unit="s")
    assert ev["item_id"].tolist() == [100, 101]
    assert ev["timestamp"].iloc[0] == pd.Timestamp(1_700_000_000, unit="s")
    parquet = tmp_path / "log.parquet"
    ev.to_parquet(parquet)
    pd.testing.assert_frame_equal(loaders.load_table(parquet), ev)


@pytest.mark.parametrize("text, column", [
    ("SessionId\tItemId\n1\t2\n", "Time"),  # missing column
    ("SessionId\tItemId\tTime\n1\tabc\t1396860669\n", "ItemId"),  # wrong type
    ("SessionId\tItemId\tTime\n\t5\t1396860669\n", "SessionId"),  # null id
    ("SessionId\tItemId\tTime\n1\t5\tyesterday\n", "Time"),  # unparsable timestamp
    ("SessionId\tItemId\tTime\n", None),  # header only
    ("", None),  # empty file
])
def test_bad_files_raise_one_clear_error(tmp_path, text, column):
    path = write(tmp_path, "bad.txt", text)
    with pytest.raises(DataError) as info:
        loaders.load_yoochoose_prepared(path)
    assert str(path) in str(info.value)
    if column:
        assert repr(column) in str(info.value)


def test_bad_iso_timestamp_in_generic_table(tmp_path):
    path = write(tmp_path, "log.csv", "session_id,item_id,timestamp\n1,2,2024-01-01T10:00:00\n1,3,not a time\n")
    with pytest.raises(DataError, match="'not a time'"):
        loaders.load_table(path)


def test_missing_file_gives_instructions(tmp_path):
    with pytest.raises(FileNotFoundError, match="kaggle"):
        loaders.load_rees46(tmp_path / "nope.csv")
    assert "train-item-views.csv" in instructions("diginetica")


def test_download_verifies_sha256_and_keeps_nothing_on_mismatch(tmp_path):
    source = write(tmp_path, "src.bin", "hello clicks")
    good = hashlib.sha256(b"hello clicks").hexdigest()
    target = download_file(source.as_uri(), tmp_path / "out" / "data.bin", sha256=good)
    assert sha256_of(target) == good
    with pytest.raises(OSError, match="sha256 mismatch"):
        download_file(source.as_uri(), tmp_path / "out2" / "data.bin", sha256="0" * 64)
    assert list((tmp_path / "out2").iterdir()) == []


def test_raw_yoochoose_clicks_format(tmp_path):
    path = write(tmp_path, "yoochoose-clicks.dat",
                 "1,2014-04-07T10:51:09.277Z,214536502,0\n1,2014-04-07T10:54:09.868Z,214536500,S\n"
                 "2,2014-04-07T13:56:37.614Z,214662742,2058651347\n2,2014-04-07T13:57:19.373Z,214825110,3\n")
    ev = loaders.load_yoochoose_clicks(path)
    assert ev["category"].tolist() == [-1, loaders.YOOCHOOSE_SPECIAL_OFFER, 2058651347, 3]
    assert ev["timestamp"].iloc[0] == pd.Timestamp("2014-04-07 10:51:09.277")
    assert ev["session_id"].tolist() == [1, 1, 2, 2]


GOOD = "session_id,item_id,timestamp,price,category\n1,5,2024-01-01T10:00:00,9.5,3\n"


@pytest.mark.parametrize(("rows", "column", "row", "says", "expects"), [
    ("1,99999999999999999999,2024-01-01T10:01:00,1,3\n", "item_id", 1, "99999999999999999999 is outside int64",
     "integer ids from 0 to 2**63-1"),
    ("1,18446744073709551615,2024-01-01T10:01:00,1,3\n", "item_id", 1, "18446744073709551615 is outside int64",
     "integer ids from 0 to 2**63-1"),
    ("1,inf,2024-01-01T10:01:00,1,3\n", "item_id", 1, "inf is not finite", "integer ids"),
    ("1,7.0,2024-01-01T10:01:00,1,3\n1,9007199254740993,2024-01-01T10:02:00,1,3\n", "item_id", 2,
     "9007199254740992.0 was read as a float (the column holds a decimal), which loses integers beyond 2**53",
     "written without decimals"),
    ("1,7.5,2024-01-01T10:01:00,1,3\n", "item_id", 1, "7.5 is not an integer", "integer ids"),
    ("1,-1,2024-01-01T10:01:00,1,3\n", "item_id", 1, "-1 is below 0", "-1 is the serving padding"),
    ("-4,6,2024-01-01T10:01:00,1,3\n", "session_id", 1, "-4 is below 0", "from 0 to 2**63-1"),
    ("1,6,2024-01-01T10:01:00,cheap,3\n", "price", 1, "'cheap' is not a finite number", "prices as numbers"),
    ("1,6,2024-01-01T10:01:00,1,shoes\n", "category", 1, "'shoes' is not an integer", "integers within int64"),
    ("1,6,2099-01-01T10:01:00,1,3\n", "timestamp", 1, "2099-01-01 10:01:00 is outside 1995-01-01 .. ",
     "click times from 1995 to a year from now"),
    ("1,6,1970-01-01T00:00:00,1,3\n", "timestamp", 1, "1970-01-01 00:00:00 is outside 1995-01-01", "from 1995"),
])
def test_bad_values_are_refused_with_file_column_row_and_expectation(tmp_path, rows, column, row, says, expects):
    path = write(tmp_path, "log.csv", GOOD + rows)
    with pytest.raises(DataError) as caught:
        loaders.load_table(path)
    message = str(caught.value)
    assert says in message and expects in message
    assert f"file/source: {path}" in message and f"column: {column!r}" in message and f"row: {row}" in message


def test_duplicated_column_names_are_refused_in_csv_and_parquet(tmp_path):
    path = write(tmp_path, "log.csv", "session_id,item_id,timestamp,item_id\n1,5,2024-01-01T10:00:00,6\n")
    with pytest.raises(DataError, match="2 columns are named 'item_id'.*log.csv.*expected: unique column names"):
        loaders.load_table(path)
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays([pa.array([1]), pa.array([5]), pa.array([6])], ["session_id", "item_id", "item_id"])
    pq.write_table(table, tmp_path / "log.parquet")
    with pytest.raises(DataError, match="2 columns are named 'item_id'.*log.parquet"):
        loaders.load_table(tmp_path / "log.parquet")


def test_parquet_float_ids_beyond_2_53_are_refused_and_exact_ones_kept(tmp_path):
    frame = pd.DataFrame({"session_id": [1.0, 1.0], "item_id": [2.0**53, 3.0],
                          "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:01"])})
    frame.to_parquet(tmp_path / "log.parquet")
    with pytest.raises(DataError, match=r"9007199254740992.0 was read as a float.*column: 'item_id'; row: 0"):
        loaders.load_table(tmp_path / "log.parquet")
    frame.assign(item_id=[2.0**53 - 1, 3.0]).to_parquet(tmp_path / "ok.parquet")
    assert loaders.load_table(tmp_path / "ok.parquet")["item_id"].tolist() == [2**53 - 1, 3]


def test_large_exact_ids_and_text_ids_survive_exactly(tmp_path):
    path = write(tmp_path, "log.tsv", "SessionId\tItemId\tTime\n9223372036854775807\t9007199254740993\t1396860669\n"
                                      "9223372036854775807\t9007199254740995\t1396860670\n")
    ev = loaders.load_yoochoose_prepared(path)
    assert ev["session_id"].tolist() == [2**63 - 1] * 2 and ev["item_id"].tolist() == [2**53 + 1, 2**53 + 3]
    text = pd.DataFrame({"session_id": ["7", "7"], "item_id": ["9007199254740993", "12"],
                         "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:01"])})
    text.to_parquet(tmp_path / "text.parquet")
    assert loaders.load_table(tmp_path / "text.parquet")["item_id"].tolist() == [2**53 + 1, 12]


def test_yoochoose_clicks_refuse_a_text_category(tmp_path):
    path = write(tmp_path, "yoochoose-clicks.dat", "1,2014-04-07T10:51:09.277Z,214536502,0\n"
                                                   "1,2014-04-07T10:54:09.868Z,214536500,shoes\n")
    with pytest.raises(DataError, match="'shoes' is not an integer.*column: 'Category'; row: 1"):
        loaders.load_yoochoose_clicks(path)
