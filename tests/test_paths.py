"""The one atomic folder writer and the one atomic file writer every save/export goes through."""

from __future__ import annotations

import pytest

from sessrec_course.paths import write_directory_atomically


def test_replaces_an_existing_folder_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "model"
    write_directory_atomically(target, lambda d: (d / "a.txt").write_text("old"))
    write_directory_atomically(target, lambda d: (d / "b.txt").write_text("new"))
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failing_writer_leaves_the_old_folder_untouched(tmp_path):
    target = tmp_path / "model"
    write_directory_atomically(target, lambda d: (d / "a.txt").write_text("old"))

    def broken(folder):
        (folder / "half.txt").write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_directory_atomically(target, broken)
    assert (target / "a.txt").read_text() == "old" and not (target / "half.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_file_writer_replaces_the_file_and_a_failure_keeps_the_old_one(tmp_path):
    from sessrec_course.paths import write_file_atomically

    target = tmp_path / "sub" / "result.json"
    write_file_atomically(target, lambda f: f.write_text("old"))
    write_file_atomically(target, lambda f: f.write_text("new"))
    assert target.read_text() == "new"

    def broken(file):
        file.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_file_atomically(target, broken)
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]


def test_keep_leaves_a_folder_a_concurrent_writer_finished(tmp_path):
    target = tmp_path / "data"
    write_directory_atomically(target, lambda d: (d / "theirs.txt").write_text("done"))
    write_directory_atomically(target, lambda d: (d / "ours.txt").write_text("late"),
                               keep=lambda existing: (existing / "theirs.txt").exists())
    assert sorted(p.name for p in target.iterdir()) == ["theirs.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["data"]
