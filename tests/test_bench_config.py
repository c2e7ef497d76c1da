"""The benchmark configs: a split file is an override merged over ``default.toml``, tables key by key."""

from __future__ import annotations

import pytest
from sessrec_bench import quality
from sessrec_bench.quality import load_config

DEFAULT = ('seed = 42\nvalid_sessions = 1000\n\n[train]\nepochs = 4\nlearning_rate = 0.002\npatience = 2\n\n'
           '[models.gru]\nhidden_size = 64\ndropout = 0.1\n')


@pytest.fixture()
def configs(tmp_path, monkeypatch):
    """A configs folder in tmp_path holding the default above."""
    (tmp_path / "default.toml").write_text(DEFAULT)
    monkeypatch.setattr(quality, "configs_dir", lambda: tmp_path)
    return tmp_path


def test_a_split_override_wins_and_the_rest_comes_from_the_default(configs):
    (configs / "ring.toml").write_text("valid_sessions = 30\n\n[train]\nepochs = 9\n\n[models.gru]\ndropout = 0.3\n"
                                       "\n[models.mlp]\nwindow = 3\n")
    config = load_config("ring")
    assert config["valid_sessions"] == 30 and config["seed"] == 42
    assert config["train"] == {"epochs": 9, "learning_rate": 0.002, "patience": 2}
    assert config["models"] == {"gru": {"hidden_size": 64, "dropout": 0.3}, "mlp": {"window": 3}}
    assert config["_path"] == str(configs / "ring.toml")
    assert load_config("unknown_split")["train"]["epochs"] == 4  # no file of its own: the default alone


def test_an_explicit_config_path_is_merged_over_the_default_too(configs, tmp_path_factory):
    path = tmp_path_factory.mktemp("elsewhere") / "mine.toml"
    path.write_text("[train]\npatience = 5\n")
    config = load_config("ring", path)
    assert config["train"] == {"epochs": 4, "learning_rate": 0.002, "patience": 5}
    assert config["_path"] == str(path)


@pytest.mark.parametrize("text, key", [("valid_session = 30\n", "'valid_session'"),
                                       ("[trian]\nepochs = 9\n", "'trian'"),
                                       ("train = 3\n", "'train' must be a table"),
                                       ("[models]\ngru = 3\n", "models.gru must be a table")])
def test_an_unknown_or_misshapen_setting_names_the_file_and_the_key(configs, text, key):
    (configs / "ring.toml").write_text(text)
    with pytest.raises(ValueError, match="ring.toml") as error:
        load_config("ring")
    assert key in str(error.value)


def test_an_unknown_setting_in_the_default_is_reported_against_the_default(configs):
    (configs / "default.toml").write_text("epoch = 3\n" + DEFAULT)
    (configs / "ring.toml").write_text("seed = 1\n")
    with pytest.raises(ValueError, match=r"default\.toml: unknown setting 'epoch'"):
        load_config("ring")


def test_the_shipped_split_configs_are_thin_overrides_of_the_default_recipe():
    default = load_config("default")
    digi, yc = load_config("diginetica"), load_config("yoochoose1_64")
    assert default["time_budget_s"] == default["max_length"] == default["train"]["batch_size"] == "auto"
    for config in (digi, yc):
        assert config["time_budget_s"] == 3300  # the tuned runs' budget; the rest is the recipe
        assert config["train"] == default["train"] and config["neural_models"] == ["transformer"]
        assert {k for k in config if config[k] != default[k]} == {"_path", "time_budget_s"} | (
            {"models"} if config is yc else set())
    assert yc["models"]["transformer"]["item_skip"] and "item_skip" not in digi["models"]["transformer"]
