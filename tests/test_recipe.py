"""The default recipe's data-dependent settings: derived from the training split by the stated rule."""

from __future__ import annotations

import numpy as np
import pytest
from sessrec_bench.recipe import (
    SplitStats,
    recipe_config,
    recipe_settings,
    resolve_auto,
    seeds_for,
    split_stats,
)


def test_split_stats_count_cases_items_lengths_and_re_clicks():
    sessions = [np.array([3, 4, 3]), np.array([5, 6]), np.array([7, 7, 7, 8])]
    stats = split_stats(sessions)
    assert (stats.sessions, stats.cases, stats.items) == (3, 6, 6)
    assert stats.repeat_ratio == pytest.approx(3 / 6)  # 3 (again), 7, 7
    assert stats.length_p95 == pytest.approx(np.percentile([3, 2, 4], 95))


def _stats(sessions=100_000, p95=11.0, repeat=0.25, spop=0.2, markov=0.3) -> SplitStats:
    return SplitStats(sessions=sessions, cases=3 * sessions, items=30_000, length_p95=p95, repeat_ratio=repeat,
                      spop_mrr=spop, markov_mrr=markov)


def test_a_large_split_gets_the_tuned_settings():
    assert recipe_settings(_stats()) == {"max_length": 20, "valid_sessions": 3000, "batch_size": 128,
                                         "repeat_bias": True, "repeat_mixture": False,  # Markov wins
                                         "time_budget_s": 900.0,  # 300k cases: the cap
                                         "ensemble": 1,  # the cap leaves no room for a second seed
                                         "repeat_bias_start": "zero",  # 10 cases an item
                                         "sampled_negatives": 0}  # 30k items: below 8 x 4096


def test_the_repeat_bias_starts_from_the_data_only_where_items_are_seen_a_few_times():
    # digi-sample: 8,437 cases over 6,217 items; yc100k: 52,484 over 2,933 (docs/benchmarks.md)
    digi = SplitStats(sessions=1_854, cases=8_437, items=6_217, length_p95=15.0, repeat_ratio=0.23)
    yc = SplitStats(sessions=17_794, cases=52_484, items=2_933, length_p95=10.0, repeat_ratio=0.36)
    assert recipe_settings(digi)["repeat_bias_start"] == "data"
    assert recipe_settings(yc)["repeat_bias_start"] == "zero"
    assert recipe_settings(_stats(sessions=40_000))["repeat_bias_start"] == "data"  # 120k cases, 30k items


def test_a_small_split_gets_smaller_batches_and_a_smaller_holdout():
    settings = recipe_settings(_stats(sessions=17_794))
    assert settings["valid_sessions"] == 889  # 5 %
    assert settings["batch_size"] == 32  # 128 and 64 would give fewer than 500 steps an epoch
    assert recipe_settings(_stats(sessions=40_000))["batch_size"] == 64
    assert recipe_settings(_stats(sessions=500))["valid_sessions"] == 50  # never more than a tenth
    assert recipe_settings(_stats(sessions=50_000))["time_budget_s"] == 600.0  # 150k cases / 250
    assert recipe_settings(_stats(sessions=5_000))["time_budget_s"] == 120.0  # the floor


def test_a_short_budget_trains_as_many_seeds_as_fit_the_cap():
    def seeds(sessions: int) -> tuple[float, int]:
        settings = recipe_settings(_stats(sessions=sessions))
        return settings["time_budget_s"], settings["ensemble"]

    assert seeds(100_000) == (900.0, 1) and seeds(60_000) == (720.0, 1)
    assert seeds(50_000) == (600.0, 1) and seeds(30_000) == (360.0, 2)
    assert seeds(20_000) == (240.0, 3) and seeds(17_494) == (209.928, 4)  # yc100k's 52,484 cases
    assert seeds(5_000) == (120.0, 4)  # the floor: at most 4 seeds, 480 s
    for sessions in (1_000, 17_494, 30_000, 75_000, 200_000):
        budget, n = seeds(sessions)
        assert n * budget <= 900.0 and (n == 4 or (n + 1) * budget > 900.0)


def test_the_seeds_follow_the_budget_a_config_sets():
    sessions = [np.array([2 + i % 40, 2 + (i + 1) % 40, 2 + (i + 3) % 40]) for i in range(600)]  # 1,200 cases
    auto = {"time_budget_s": "auto", "ensemble": "auto"}
    assert recipe_config(auto, sessions)[0]["ensemble"] == 4  # 120 s each
    assert recipe_config({**auto, "time_budget_s": 300.0}, sessions)[0]["ensemble"] == 3
    assert recipe_config({**auto, "time_budget_s": 3300.0}, sessions)[0]["ensemble"] == 1  # over the cap: one
    assert recipe_config({**auto, "time_budget_s": 0}, sessions)[0]["ensemble"] == 1  # no budget: one, to its stop
    assert recipe_config({**auto, "ensemble": 2}, sessions)[0]["ensemble"] == 2  # a number is kept
    assert [seeds_for(b) for b in (None, 0, 100, 225, 226, 450, 451, 900, 901)] == [1, 1, 4, 4, 3, 2, 1, 1, 1]


def test_only_a_large_catalogue_trains_with_the_sampled_softmax():
    def negatives(items: int) -> int:
        return recipe_settings(SplitStats(sessions=100_000, cases=300_000, items=items, length_p95=11.0,
                                          repeat_ratio=0.2))["sampled_negatives"]

    # Diginetica 43,097 items; YOOCHOOSE 1/64 17,376; synth-large 14,183; yc100k 2,933
    assert [negatives(n) for n in (60_000, 43_097, 32_768, 32_767, 17_376, 14_183, 2_933)] == [4096] * 3 + [0] * 4


def test_long_sessions_keep_more_items_and_no_re_clicks_drop_the_repeat_bias():
    assert recipe_settings(_stats(p95=27.0))["max_length"] == 30
    assert recipe_settings(_stats(p95=74.0))["max_length"] == 50
    assert recipe_settings(_stats(repeat=0.001))["repeat_bias"] is False
    assert recipe_settings(_stats(repeat=0.001))["repeat_mixture"] is False


def test_auto_values_are_filled_and_an_unknown_one_is_named():
    config = {"max_length": "auto", "seed": 1, "train": {"batch_size": "auto", "epochs": 3},
              "models": {"gru": {"repeat_bias": "auto", "hidden_size": 8}}}
    settings = recipe_settings(_stats(sessions=17_794))
    filled = resolve_auto(config, settings)
    assert filled == {"max_length": 20, "seed": 1, "train": {"batch_size": 32, "epochs": 3},
                      "models": {"gru": {"repeat_bias": True, "hidden_size": 8}}}
    assert config["max_length"] == "auto"  # the input is left alone
    with pytest.raises(ValueError, match="train.learning_rate = 'auto' has no rule"):
        resolve_auto({"train": {"learning_rate": "auto"}}, settings)


def test_repeat_bias_start_gives_each_distance_its_share_of_re_clicks():
    from sessrec_bench.recipe import repeat_bias_start

    # next items: 3 (new), 2 (clicked 1 step before the last), 2 (the last item itself) -> q = [1/3, 1/3, 0, 0]
    start = repeat_bias_start([np.array([2, 3, 2, 2])], max_length=4, n_items=10)
    assert start == pytest.approx([np.log(10), np.log(10), 0.0, 0.0])  # ln(q_d * 10 / (1 - 2/3))
    no_repeats = repeat_bias_start([np.array([2, 3, 4]), np.array([5, 6])], max_length=3, n_items=10)
    assert no_repeats.tolist() == [0.0, 0.0, 0.0]
    far = repeat_bias_start([np.array([2, 3, 4, 5, 2])], max_length=3, n_items=10)  # 3 steps back: beyond the window
    assert far.tolist() == [0.0, 0.0, 0.0]


def test_the_repeat_gate_starts_at_the_splits_re_click_share():
    from sessrec_bench.recipe import repeat_gate_start

    for share in (0.05, 0.36, 0.66):
        assert 1 / (1 + np.exp(-repeat_gate_start(share))) == pytest.approx(share)
    assert repeat_gate_start(0.0) == pytest.approx(np.log(0.01 / 0.99))  # finite at the ends
    assert repeat_gate_start(1.0) == pytest.approx(np.log(0.99 / 0.01))


def test_the_repeat_mixture_goes_where_re_clicks_out_predict_transitions():
    assert recipe_settings(_stats(spop=0.26, markov=0.23))["repeat_mixture"] is True
    assert recipe_settings(_stats(spop=0.25, markov=0.33))["repeat_mixture"] is False
    assert recipe_settings(_stats(repeat=0.001, spop=0.26, markov=0.23))["repeat_mixture"] is False  # no re-clicks


def test_the_held_out_checks_keep_the_latest_tenth_capped():
    from sessrec_bench.recipe import latest_held_out

    sessions = [np.array([i + 2, i + 3]) for i in range(50)]  # in time order
    fit, held = latest_held_out(sessions)
    assert len(held) == 5 and held[0] is sessions[45] and fit == sessions[:45]
    fit, held = latest_held_out(sessions, max_held_out=2)
    assert [s[0] for s in held] == [50, 51] and len(fit) == 48
    assert latest_held_out(sessions[:9]) == (sessions[:9], [])  # a tenth of 9 is none
    singles = sessions[:45] + [np.array([7])] * 5  # the latest tenth has no next item to predict
    assert latest_held_out(singles)[1] == []
    from sessrec_bench.recipe import hold_out

    assert latest_held_out(sessions) == hold_out(sessions, 5)  # one splitter: the checks and the early stopping


def test_held_out_s_pop_and_markov_tell_re_click_data_from_transition_data():
    from sessrec_bench.recipe import repeat_or_transition_mrr

    rng = np.random.default_rng(0)
    chains = [np.arange(start, start + 6) % 50 + 2 for start in rng.integers(0, 50, 300)]  # i → i + 1, no re-clicks
    loops = [rng.choice(np.arange(2, 52), 3, replace=False)[[0, 1, 2, 0, 1, 2]] for _ in range(300)]  # re-clicks
    spop, markov = repeat_or_transition_mrr(chains)
    assert markov > 0.9 and spop < 0.1
    spop, markov = repeat_or_transition_mrr(loops)
    assert spop > markov
    assert repeat_or_transition_mrr(chains[:5]) == (0.0, 0.0)  # too few sessions to hold a tenth out
    stats = split_stats(loops)
    assert stats.spop_mrr == pytest.approx(spop) and stats.markov_mrr == pytest.approx(markov)


def test_the_repeat_starts_are_set_before_training_on_the_models_that_have_them():
    from types import SimpleNamespace

    torch = pytest.importorskip("torch")
    from sessrec_bench.recipe import RepeatStarts, repeat_gate_start

    from sessrec_course.models import ModelConfig, build_model

    mixture = build_model(ModelConfig(name="gru", item_cardinality=10, hidden_size=8, max_length=4, repeat_bias=True,
                                      repeat_mixture=True))
    RepeatStarts(gate_bias=repeat_gate_start(0.36)).before_fit(SimpleNamespace(model=mixture))
    assert float(torch.sigmoid(mixture.repeat_gate.bias.detach())) == pytest.approx(0.36)
    additive = build_model(ModelConfig(name="gru", item_cardinality=10, hidden_size=8, max_length=4, repeat_bias=True))
    start = np.array([1.0, 0.5, 0.0, -1.0], dtype=np.float32)
    RepeatStarts(bias=start, gate_bias=0.3).before_fit(SimpleNamespace(model=additive))  # no gate: left alone
    assert additive.repeat_bias.tolist() == start.tolist() and not hasattr(additive, "repeat_gate")
