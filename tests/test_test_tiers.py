"""The test tiers of tests/conftest.py: every collected test has exactly one of unit, integration, notebooks."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import TIERS

CONFTEST = Path(__file__).with_name("conftest.py")


def test_every_test_of_this_run_has_exactly_one_tier(request):
    for item in request.session.items:
        tiers = [tier for tier in TIERS if item.get_closest_marker(tier) is not None]
        assert len(tiers) == 1, f"{item.nodeid}: tiers {tiers}"


def _notebook(code: str) -> str:
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": [code]}
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_the_hook_sorts_tests_into_their_tiers(pytester):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n    unit: u\n    integration: i\n    notebooks: n\n"
                     "addopts = --strict-markers\n")
    pytester.makepyfile(
        test_plain="import pytest\n\ndef test_quick():\n    pass\n\n@pytest.mark.slow\ndef test_trains():\n    pass\n")
    # in a package, so its module name cannot clash with the suite's own test_serving_server
    package = pytester.mkpydir("demo")
    (package / "test_serving_server.py").write_text("def test_real_server():\n    pass\n")
    (pytester.path / "lesson.ipynb").write_text(_notebook("x = 1"))
    expected = {"unit": ["test_plain.py::test_quick"],
                "integration": ["test_plain.py::test_trains", "demo/test_serving_server.py::test_real_server"],
                "notebooks": ["lesson.ipynb::Cell 0"]}
    for tier, nodeids in expected.items():
        result = pytester.runpytest_inprocess("--nbval-lax", "--collect-only", "-q", "-m", tier)
        collected = sorted(line for line in result.outlines if "::" in line)
        assert collected == sorted(nodeids), (tier, result.outlines)
