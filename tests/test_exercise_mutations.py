"""The exercise checks against wrong answers (numpy, pandas and torch lessons): AST mutants of each reference
and hand-written learners' mistakes must fail, each mistake with its own hint; ``check`` never raises."""

from __future__ import annotations

import pytest
from exercise_mistakes import (
    MISTAKES,
    Summary,
    check_hints_give_no_code,
    check_mistakes,
    check_mutants,
    check_never_raises,
    load,
)

MODULES = ("lesson01", "lesson02", "torch_lesson03", "torch_lesson04", "torch_lesson05", "torch_lesson05b", "lesson06",
           "lesson07", "merlin01", "merlin02", "merlin03")
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


def test_every_mistake_belongs_to_an_exercise():
    assert set(MISTAKES) <= set(EXERCISES) | {eid for eid in MISTAKES if eid.startswith("keras_")}
