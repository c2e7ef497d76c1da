"""The nbval plugin: a warning on a lesson's stderr fails its cell; a clean lesson is saved with its outputs."""

from __future__ import annotations

import nbformat
import pytest
from nbval_record import ROOT, unclean_stderr

pytestmark = pytest.mark.integration  # runs nbval (a kernel) in a subprocess


def _write(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_unclean_stderr_finds_warnings_and_tracebacks_only():
    def err(text):
        return {"output_type": "stream", "name": "stderr", "text": text}

    assert unclean_stderr([err("/x/y.py:3: UserWarning: careful\n")])
    assert unclean_stderr([err("TqdmWarning: IProgress not found. Please update jupyter and ipywidgets.\n")])
    assert unclean_stderr([err("Traceback (most recent call last):\n  File ...")])
    assert unclean_stderr([err("WARNING:sessrec_course.serving.supervisor: stub died\n")])
    assert not unclean_stderr([err("epoch 1: 100%|##########| 10/10\n"), err("INFO training done\n")])
    assert not unclean_stderr([{"output_type": "stream", "name": "stdout", "text": "UserWarning in a print\n"}])


def test_plugin_fails_a_warning_cell_and_saves_a_clean_lesson(pytester, tmp_path, monkeypatch):
    executed = tmp_path / "executed"
    monkeypatch.setenv("SESSREC_EXECUTED_DIR", str(executed))
    pytester.makeconftest("pytest_plugins = ['nbval_record']")
    _write(pytester.path / "clean.ipynb", "x = 41", "print(x + 1)")
    _write(pytester.path / "noisy.ipynb", "import warnings", "warnings.warn('lesson is noisy')")
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "tests"))  # the subprocess imports the plugin from tests/
    result = pytester.runpytest_subprocess("--nbval-lax", "-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*printed a warning or traceback on stderr*", "*lesson is noisy*"])
    saved = nbformat.read(executed / "clean.ipynb", as_version=4)
    assert saved.cells[1].outputs[0]["text"] == "42\n"
    assert "iopub.execute_input" in saved.cells[1].metadata["execution"]
    assert not (executed / "noisy.ipynb").exists(), "a failing lesson is not saved"


def test_a_serving_lesson_cell_fails_when_a_process_listens_beyond_loopback(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("SESSREC_EXECUTED_DIR", str(tmp_path / "executed"))
    pytester.makeconftest("pytest_plugins = ['nbval_record']")
    listen = ("import subprocess, sys\n"
              "code = 'import socket, time; s = socket.socket(); s.bind((\"%s\", 0)); s.listen(); time.sleep(1.5)'\n"
              "subprocess.run([sys.executable, '-c', code], check=True)")
    _write(pytester.path / "06_probe.ipynb", listen % "127.0.0.1", listen % "0.0.0.0")
    _write(pytester.path / "05_probe.ipynb", listen % "0.0.0.0")  # not a serving lesson: not watched
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "tests"))
    result = pytester.runpytest_subprocess("--nbval-lax", "-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*06_probe.ipynb: processes of the lesson listen beyond loopback*0.0.0.0*"])
