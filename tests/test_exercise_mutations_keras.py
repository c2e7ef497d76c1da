"""The TensorFlow lessons' exercise checks against wrong answers (integration tier: importing TensorFlow alone takes
most of a minute on 2 cores): AST mutants and learners' mistakes fail, each mistake with its own hint."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")

from exercise_mistakes import (  # noqa: E402
    Summary,
    check_hints_give_no_code,
    check_mistakes,
    check_mutants,
    check_never_raises,
    load,
)

pytestmark = pytest.mark.slow
MODULES = ("keras_lesson03", "keras_lesson04", "keras_lesson05")
EXERCISES = {eid: (ex, equivalent.get(eid, {})) for module in MODULES
             for exercises, equivalent in [load(module)] for eid, ex in exercises.items()}


@pytest.fixture(scope="module", autouse=True)
def kill_table(request):
    """Print the table of kills at the end of the run."""
    if not request.config.pluginmanager.has_plugin("exercise-kills"):
        request.config.pluginmanager.register(Summary(), "exercise-kills")
    yield


@pytest.mark.parametrize("eid", EXERCISES)
def test_mutants_of_the_reference_fail_the_check(eid):
    check_mutants(eid, *EXERCISES[eid])


@pytest.mark.parametrize("eid", EXERCISES)
def test_learners_mistakes_fail_with_their_own_hint(eid):
    check_mistakes(eid, EXERCISES[eid][0])


@pytest.mark.parametrize("eid", EXERCISES)
def test_reference_passes_and_check_never_raises_on_a_stub_a_missing_return_or_an_error(eid):
    check_never_raises(EXERCISES[eid][0])


@pytest.mark.parametrize("eid", EXERCISES)
def test_hints_nudge_and_only_the_solution_gives_code(eid):
    check_hints_give_no_code(EXERCISES[eid][0])
