"""Profiles: one environment variable picks the run size; bad names are refused clearly."""

from __future__ import annotations

import pytest

from sessrec_course import profiles
from sessrec_course.profiles import PROFILES, get_profile


def test_env_var_selects_the_profile(monkeypatch):
    monkeypatch.setenv(profiles.ENV_VAR, "full")
    assert get_profile().name == "full"
    monkeypatch.setenv(profiles.ENV_VAR, " CI ")
    assert get_profile().name == "ci"


def test_argument_wins_over_env_var(monkeypatch):
    monkeypatch.setenv(profiles.ENV_VAR, "full")
    assert get_profile("workshop").name == "workshop"


def test_default_follows_the_device(monkeypatch):
    monkeypatch.delenv(profiles.ENV_VAR, raising=False)
    monkeypatch.setattr("sessrec_course.device.cuda_available", lambda: True)
    assert get_profile().name == "full"
    monkeypatch.setattr("sessrec_course.device.cuda_available", lambda: False)
    assert get_profile().name == "workshop"


def test_unknown_profile_names_the_variable_and_the_choices(monkeypatch):
    monkeypatch.setenv(profiles.ENV_VAR, "huge")
    with pytest.raises(ValueError, match=r"'huge'.*SESSREC_PROFILE.*\['ci', 'full', 'workshop'\]"):
        get_profile()


def test_overrides_replace_single_fields():
    profile = get_profile("ci", epochs=7)
    assert profile.epochs == 7 and profile.n_events == PROFILES["ci"].n_events


def test_profiles_grow_from_ci_to_full():
    ci, workshop, full = PROFILES["ci"], PROFILES["workshop"], PROFILES["full"]
    for field in ("n_events", "n_items", "epochs", "load_test_requests"):
        assert getattr(ci, field) < getattr(workshop, field) < getattr(full, field), field
