"""perf_analyzer as the load generator: its input JSON, its CSV and export, bounded runs, and a real run.

The real run starts a tritonserver on a tiny real model and runs the real perf_analyzer binary against it
(`make perf-analyzer` installs it into .venv-perf, so `make test` always has it).
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from sessrec_bench.perf_analyzer import (
    PerfAnalyzerError,
    PerfAnalyzerLevel,
    _run_bounded,
    find_perf_analyzer,
    parse_csv,
    perf_analyzer_environment,
    read_profile_export,
    run_perf_analyzer,
    write_input_data,
)

HEADER = ("Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,"
          "Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency")


def test_input_data_holds_each_session_padded_without_the_batch_dim(tmp_path):
    path = write_input_data([[5, 3, 9], [], [7]], tmp_path / "in.json")
    data = json.loads(path.read_text())["data"]
    assert [d["item_id_list"]["content"] for d in data] == [[5, 3, 9], [-1], [7]]
    assert [d["item_id_list"]["shape"] for d in data] == [[3], [1], [1]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"], "no temporary file left behind"


def test_input_data_rejects_bad_sessions(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        write_input_data([], tmp_path / "in.json")
    with pytest.raises(ValueError, match="session 0: raw item ids must be >= 0"):
        write_input_data([[4, -2]], tmp_path / "in.json")
    assert list(tmp_path.iterdir()) == [], "nothing half-written"


def test_csv_rows_in_milliseconds(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text(f"{HEADER}\n2,666.424,57,958,0,47,862,124,0,1758,2535,2949,5893\n"
                    "4,1930.5,10,1000,500,40,1200,150,100,2900,3300,3500,4100\n")
    rows = parse_csv(path)
    assert [r["concurrency"] for r in rows] == [2, 4]
    assert rows[0]["throughput_per_s"] == 666.424
    assert (rows[0]["p50_ms"], rows[0]["p90_ms"], rows[0]["p95_ms"], rows[0]["p99_ms"]) == (1.758, 2.535, 2.949, 5.893)
    assert rows[0]["mean_ms"] == pytest.approx(2.048)  # 57 + 958 + 0 + 47 + 862 + 124 + 0 µs
    assert rows[1]["mean_ms"] == pytest.approx(3.0)


def test_csv_without_the_latency_parts_has_no_mean(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("Concurrency,Inferences/Second,p50 latency,p90 latency,p95 latency,p99 latency\n1,500,1000,2000,2500,4000\n")
    (row,) = parse_csv(path)
    assert row["p99_ms"] == 4.0 and np.isnan(row["mean_ms"])


def test_bad_csv_names_the_file_and_column(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("Concurrency,Inferences/Second,p50 latency\n1,500,1000\n")
    with pytest.raises(PerfAnalyzerError, match=r"out\.csv, line 2: no column 'p90 latency'"):
        parse_csv(path)
    path.write_text(f"{HEADER}\n1,fast,0,0,0,0,0,0,0,1,2,3,4\n")
    with pytest.raises(PerfAnalyzerError, match="'Inferences/Second' holds 'fast'"):
        parse_csv(path)
    path.write_text(HEADER + "\n")
    with pytest.raises(PerfAnalyzerError, match="no measurement rows"):
        parse_csv(path)


def test_request_latencies_and_span_from_the_profile_export(tmp_path):
    path = tmp_path / "export.json"
    requests = [{"timestamp": 3_000_000, "response_timestamps": [5_000_000, 9_000_000]},
                {"timestamp": 1_000_000, "response_timestamps": [2_500_000]},
                {"timestamp": 4_000_000, "response_timestamps": []}]  # no answer: left out
    path.write_text(json.dumps({"experiments": [{"experiment": {}, "requests": requests}]}))
    latencies, span = read_profile_export(path)
    assert latencies.tolist() == [2.0, 1.5]
    assert span == pytest.approx(0.008)  # first send 1 ms to last answer 9 ms
    path.write_text(json.dumps({"experiments": [{"requests": requests[2:]}]}))
    assert read_profile_export(path)[0].size == 0 and read_profile_export(path)[1] == 0.0
    path.write_text("{}")
    with pytest.raises(PerfAnalyzerError, match="export.json: not a readable"):
        read_profile_export(path)


def test_level_percentiles_come_from_perf_analyzer_then_from_latencies():
    level = PerfAnalyzerLevel(4, 100, 0.05, {50: 1.5, 90: 2.0, 95: 2.5, 99: 4.0}, 1.7,
                              latencies_ms=np.arange(1.0, 101.0))
    assert (level.percentile(50), level.percentile(99), level.throughput, level.mean_ms) == (1.5, 4.0, 2000.0, 1.7)
    assert level.percentile(75) == pytest.approx(75.25)  # from the latencies
    assert np.isnan(PerfAnalyzerLevel(1, 10, 5.0, {}, 1.0).percentile(50))
    assert PerfAnalyzerLevel(1, 10, 2.0, {}, 1.0, errors=4).throughput == 3.0


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_environment_adds_the_side_venv_libraries(tmp_path, monkeypatch):
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "libs").mkdir()
    binary = _executable(tmp_path / "venv" / "bin" / "perf_analyzer", "#!/bin/sh\n")
    cudart = tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / "nvidia" / "cuda_runtime" / "lib"
    cudart.mkdir(parents=True)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/existing")
    env = perf_analyzer_environment(binary)
    assert env["LD_LIBRARY_PATH"].split(os.pathsep) == [str(tmp_path / "venv" / "libs"), str(cudart), "/existing"]
    plain = _executable(tmp_path / "perf_analyzer", "#!/bin/sh\n")  # no venv around it: unchanged
    assert perf_analyzer_environment(plain)["LD_LIBRARY_PATH"] == "/existing"


def test_find_prefers_the_environment_variable(tmp_path, monkeypatch):
    binary = _executable(tmp_path / "my_perf_analyzer", "#!/bin/sh\n")
    monkeypatch.setenv("PERF_ANALYZER", str(binary))
    assert find_perf_analyzer() == binary
    binary.chmod(0o644)  # not executable: ignored
    assert find_perf_analyzer() != binary


def test_a_run_past_its_bound_is_killed(tmp_path):
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        _run_bounded(["sleep", "30"], dict(os.environ), tmp_path / "log", timeout_s=0.3)
    assert time.monotonic() - began < 10
    hanging = _executable(tmp_path / "hangs", "#!/bin/sh\necho starting up\nsleep 30\n")
    with pytest.raises(PerfAnalyzerError, match=r"(?s)hangs did not finish c=2.*starting up"):
        run_perf_analyzer("127.0.0.1:1", [[1]], [2], 10, binary=hanging, timeout_s=0.5)


def test_a_failing_binary_is_reported_with_its_output(tmp_path):
    failing = _executable(tmp_path / "fails", "#!/bin/sh\necho 'error: failed to get model metadata' >&2\nexit 3\n")
    with pytest.raises(PerfAnalyzerError, match=r"(?s)fails exited with code 3 at c=1.*failed to get model metadata"):
        run_perf_analyzer("127.0.0.1:1", [[1]], [1], 10, binary=failing)
    with pytest.raises(ValueError, match="'http' or 'grpc'"):
        run_perf_analyzer("127.0.0.1:1", [[1]], [1], 10, protocol="grpc-stream", binary=failing)


# ---- the real binary against a real server -----------------------------------------------------------------
needs_binary = pytest.mark.skipif(find_perf_analyzer() is None,
                                  reason="no perf_analyzer binary: run `make perf-analyzer` (make test installs it)")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    pytest.importorskip("torch")
    from serving_helpers import tiny_events, tiny_onnx

    from sessrec_course.etl import SessionWorkflow
    from sessrec_course.serving import ServingConfig, TritonServer, export_repository
    from sessrec_course.serving.pipeline import serving_state_from_workflow
    from sessrec_course.serving.server import find_tritonserver

    if find_tritonserver() is None:
        pytest.skip("no tritonserver binary")
    folder = tmp_path_factory.mktemp("perf")
    events = tiny_events(n_sessions=60)
    state = serving_state_from_workflow(SessionWorkflow(max_length=6).fit(events))
    repo = export_repository(folder / "repo", tiny_onnx(folder / "model.onnx", state.item_cardinality), state,
                             ServingConfig(top_k=5, max_batch_size=8, model_backend="python"))
    sessions = events.groupby("session_id")["item_id"].apply(list).tolist() + [[], [99_999]]
    with TritonServer(repo, log_path=folder / "triton.log") as server:
        yield server, sessions


def _perf_children() -> list[int]:
    """Child processes of this test process whose command is perf_analyzer (should be none after a run)."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_file.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if name.startswith("perf_analyzer") and int(rest[1]) == os.getpid():
            found.append(int(stat_file.parent.name))
    return found


@pytest.mark.slow
@needs_binary
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_real_perf_analyzer_against_the_served_ensemble(served, protocol):
    server, sessions = served
    url = server.http_url if protocol == "http" else server.grpc_url
    (level,) = run_perf_analyzer(url, sessions, [2], requests=200, protocol=protocol, timeout_s=120)
    assert (level.concurrency, level.requests, level.errors) == (2, 200, 0)
    assert level.throughput > 0 and level.client_cpu_s > 0 and level.wall_s >= level.seconds
    # the span from first send to last answer holds at least the slowest request and at most all of them
    assert level.latencies_ms.max() / 1e3 <= level.seconds <= level.latencies_ms.sum() / 1e3
    assert level.latencies_ms.size == 200 and (level.latencies_ms > 0).all()
    assert level.latencies_ms.min() <= level.percentile(50) <= level.percentile(99) <= level.latencies_ms.max() * 1.01
    assert _perf_children() == [], "perf_analyzer outlived its run"


@pytest.mark.slow
@needs_binary
def test_load_test_with_perf_analyzer_and_a_wrong_model(served):
    from sessrec_bench.loadtest import run_load_test

    server, sessions = served
    result = run_load_test(server.http_url, sessions, (1, 3), 150, "http", warmup=20, progress=False,
                           client="perf_analyzer")
    table = result.summary()
    assert table["concurrency"].tolist() == [1, 3] and table["requests"].tolist() == [150, 150]
    assert (table["errors"] == 0).all() and (table["throughput_per_s"] > 0).all()
    assert (table["p50_ms"] <= table["p99_ms"]).all() and (table["mean_ms"] > 0).all()
    with pytest.raises(PerfAnalyzerError, match="(?s)perf_analyzer exited with code .*no_such_model"):
        run_perf_analyzer(server.http_url, sessions, [1], 10, model="no_such_model")
    assert _perf_children() == []
