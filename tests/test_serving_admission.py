"""Without a server: the admission table shared by the python-backend steps, its private folder on a shared
machine (planted links, pre-created and foreign files), and how ``limit_admission`` wires an export up."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from sessrec_course.serving import admission
from sessrec_course.serving.admission import (
    PREFIX,
    AdmissionTable,
    clear_tables,
    limit_admission,
    remove_tables,
    table_dir,
    table_path,
)
from sessrec_course.serving.repository import ServingConfig

FOREIGN_UID = 54_321  # another user, simulated with chown (the suite runs as root on the CI boxes)


@pytest.fixture
def table(tmp_path):
    opened = AdmissionTable(tmp_path / "table", slots=3, lease_ms=60_000)
    yield opened
    opened.close()


def test_admits_up_to_the_limit_in_request_order_and_frees_on_release(table):
    first = table.admit(2)
    second = table.admit(5)
    assert first.shape == (2, 2) and second.shape == (1, 2)  # 3 slots: 2, then 1 of 5, then none
    assert table.admit(1).shape == (0, 2) and table.in_use() == 3
    assert sorted(np.concatenate([first, second])[:, 0].tolist()) == [0, 1, 2]
    assert table.release(first) == 2 and table.in_use() == 1
    assert table.release(first) == 0, "a ticket frees its slot once"
    assert table.admit(4).shape == (2, 2)


def test_a_slot_past_its_lease_is_let_again_and_its_old_ticket_frees_nothing(tmp_path):
    short = AdmissionTable(tmp_path / "table", slots=1, lease_ms=30)
    try:
        lost = short.admit(1)
        assert short.admit(1).shape == (0, 2)
        time.sleep(0.06)
        assert short.in_use() == 0
        again = short.admit(1)
        assert again.shape == (1, 2) and again[0, 0] == lost[0, 0]
        assert short.release(lost) == 0 and short.admit(1).shape == (0, 2), "the old ticket freed the new holder"
        assert short.release(again) == 1
        assert short.release(np.array([[7, 1], [-1, 1]])) == 0  # no such slot: ignored
    finally:
        short.close()


def test_processes_share_one_table(table):
    held = table.admit(2)
    # the file alone, as the stubs load it (sessrec_admission.py), without the package's imports
    code = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('gate', sys.argv[2]); "
            "gate = importlib.util.module_from_spec(spec); spec.loader.exec_module(gate); "
            "t = gate.AdmissionTable(sys.argv[1], 3, 60000); print(len(t.admit(3)), t.in_use())")
    other = subprocess.run([sys.executable, "-c", code, str(table.path), admission.__file__], capture_output=True,
                           text=True, check=True, timeout=60)
    assert other.stdout.split() == ["1", "3"]  # the other process got the one slot left
    assert table.in_use() == 3 and table.release(held) == 2


def test_a_table_of_another_size_is_replaced_not_adopted(table):
    table.admit(2)
    other = AdmissionTable(table.path, slots=5)  # not made by a step of this server: a fresh table
    try:
        assert other.path.stat().st_size == 5 * 8 and other.in_use() == 0 and other.admit(5).shape == (5, 2)
    finally:
        other.close()
    with pytest.raises(ValueError, match="slots >= 1"):
        AdmissionTable(table.path, slots=0)


def test_tables_are_named_by_server_and_repository_and_removed_with_the_server(tmp_path):
    a, b = table_path(tmp_path / "a", server_pid=999_999_999), table_path(tmp_path / "b", server_pid=999_999_999)
    assert a != b and a.parent == table_dir() and a.name.startswith("999999999-")
    assert a.parent.name == f"{PREFIX}{os.geteuid()}" and stat.S_IMODE(a.parent.stat().st_mode) == 0o700
    assert table_path(tmp_path / "a", server_pid=999_999_999) == a
    for path in (a, b):
        AdmissionTable(path, slots=2).close()
    held = AdmissionTable(a, slots=2)
    held.admit(2)
    assert clear_tables(999_999_998) == [] and held.in_use() == 2  # another server's tables are left alone
    assert sorted(clear_tables(999_999_999)) == sorted([a, b])
    assert held.in_use() == 0 and held.admit(1).shape == (1, 2)  # after a reload every slot is free again
    held.close()
    assert sorted(remove_tables(999_999_999)) == sorted([a, b]) and not a.exists() and not b.exists()
    AdmissionTable(a, slots=2).close()  # no process 999999999: stale
    mine = table_path(tmp_path / "a", server_pid=os.getpid())
    AdmissionTable(mine, slots=2).close()
    try:
        removed = remove_tables()
        assert a in removed and mine not in removed and mine.exists()
    finally:
        mine.unlink()


def test_the_private_folder_is_made_0700_and_refused_when_it_is_a_link_or_not_ours(tmp_path):
    made = table_dir(tmp_path)
    assert made == tmp_path / f"{PREFIX}{os.geteuid()}" and stat.S_IMODE(made.stat().st_mode) == 0o700
    made.chmod(0o755)
    assert table_dir(tmp_path) == made and stat.S_IMODE(made.stat().st_mode) == 0o700, "ours but open: made private"
    made.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    made.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(PermissionError, match="not a link or a file"):
        table_dir(tmp_path)
    made.unlink()
    made.mkdir()
    os.chown(made, FOREIGN_UID, FOREIGN_UID)
    with pytest.raises(PermissionError, match=f"belongs to uid {FOREIGN_UID}"):
        table_dir(tmp_path)


def test_a_planted_link_is_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious" * 4)
    path = table_path(tmp_path / "repo", server_pid=999_999_997)
    path.symlink_to(victim)
    assert clear_tables(999_999_997) == [] and victim.read_bytes() == b"precious" * 4, "clearing followed a link"
    table = AdmissionTable(path, slots=4)  # the link is replaced by a fresh table of ours
    try:
        assert not path.is_symlink() and path.stat().st_size == 32 and table.admit(4).shape == (4, 2)
        assert victim.read_bytes() == b"precious" * 4
    finally:
        table.close()
    path.unlink()
    path.symlink_to(victim)
    assert remove_tables(999_999_997) == [path] and not path.is_symlink() and victim.read_bytes() == b"precious" * 4


def test_a_pre_created_file_full_of_garbage_holds_no_slot(tmp_path):
    path = table_path(tmp_path / "repo", server_pid=999_999_996)
    path.write_bytes(b"\x7f" * 8 * 3)  # stamps from the far future
    try:
        table = AdmissionTable(path, slots=3)
        assert table.in_use() == 0 and table.admit(3).shape == (3, 2)
        table.close()
        path.write_bytes(b"\x00" * 7)  # a wrong size no longer stops the model loading: replaced
        table = AdmissionTable(path, slots=3)
        assert path.stat().st_size == 24 and table.admit(3).shape == (3, 2)
        table.close()
    finally:
        path.unlink(missing_ok=True)


def test_another_users_leftover_is_ignored_by_the_sweeps_and_replaced_at_our_own_path(tmp_path):
    stale = table_path(tmp_path / "repo", server_pid=999_999_995)  # no such process: stale, but not ours
    stale.write_bytes(bytes(16))
    os.chown(stale, FOREIGN_UID, FOREIGN_UID)
    try:
        assert stale not in remove_tables() and stale.exists(), "another user's file was removed"
        assert clear_tables(999_999_995) == [] and remove_tables(999_999_995) == [] and stale.exists()
        table = AdmissionTable(stale, slots=2)  # a stub of ours needs that very path: its own fresh file
        try:
            assert stale.stat().st_uid == os.geteuid() and table.admit(2).shape == (2, 2)
        finally:
            table.close()
    finally:
        stale.unlink(missing_ok=True)


def test_limit_admission_passes_a_ticket_from_preprocess_to_model(tmp_path):
    pytest.importorskip("torch")
    from serving_helpers import tiny_events, tiny_onnx

    from sessrec_course.etl import SessionWorkflow
    from sessrec_course.serving import export_repository
    from sessrec_course.serving.pipeline import serving_state_from_workflow

    state = serving_state_from_workflow(SessionWorkflow(max_length=4).fit(tiny_events(n_sessions=30)))
    onnx_path = tiny_onnx(tmp_path / "m.onnx", state.item_cardinality)
    plain = export_repository(tmp_path / "plain", onnx_path, state, ServingConfig(top_k=3, model_backend="python"))
    assert not [p for p in plain.rglob("*") if p.suffix in (".py", ".pbtxt") and "admission" in p.read_text()]
    repo = limit_admission(export_repository(tmp_path / "repo", onnx_path, state,
                                             ServingConfig(top_k=3, model_backend="python")), 6, lease_ms=750)
    for step in ("preprocess", "model"):
        config = (repo / step / "config.pbtxt").read_text()
        assert 'key: "admission_max_in_flight" value: { string_value: "6" }' in config, step
        assert 'key: "admission_lease_ms" value: { string_value: "750" }' in config, step
        assert 'name: "admission_ticket" data_type: TYPE_INT64 dims: [ 2 ]' in config, step
        assert (repo / step / "1" / "sessrec_admission.py").is_file()
        assert (repo / step / "1" / "sessrec_step.py").read_text() == (plain / step / "1" / "model.py").read_text()
        assert "default_queue_policy" not in config
    assert 'name: "admission_ticket"' in (repo / "preprocess" / "config.pbtxt").read_text().split("output [")[1]
    assert 'name: "admission_ticket"' in (repo / "model" / "config.pbtxt").read_text().split("output [")[0]
    ensemble = (repo / "ensemble" / "config.pbtxt").read_text()
    assert ensemble.count('key: "admission_ticket" value: "admission_ticket"') == 2  # out of one, into the other
    with pytest.raises(ValueError, match="already behind an admission limit"):
        limit_admission(repo, 2)
    native = export_repository(tmp_path / "native", onnx_path, state, ServingConfig(top_k=3, model_backend="onnxruntime"))
    with pytest.raises(ValueError, match="max_in_flight needs model_backend='python'"):
        limit_admission(native, 2)
    with pytest.raises(ValueError, match="max_in_flight must be >= 1"):
        limit_admission(plain, 0)
    assert not (plain / "model" / "1" / "sessrec_admission.py").exists(), "a refused limit changed nothing"
