"""Smoke test of the benchmark command on a tiny split folder written in tmp_path (seconds, not a timing test)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sessrec_bench.__main__ import QUALITY_HEADING, main
from sessrec_bench.quality import neural_model_names, split_held_out
from sessrec_bench.recipe import hold_out
from sessrec_bench.report import target_verdict, update_section


def _write_split(folder, n_sessions: int = 300, seed: int = 0) -> None:
    """Sessions that walk a ring of 30 items (i -> i+1), so the next item is learnable; test = held-out walks."""
    rng = np.random.default_rng(seed)
    folder.mkdir()

    def walk() -> list[int]:
        start, length = int(rng.integers(1, 31)), int(rng.integers(2, 7))
        return [(start + i - 1) % 30 + 1 for i in range(length)]

    (folder / "train_sessions.txt").write_text("\n".join(" ".join(map(str, walk())) for _ in range(n_sessions)) + "\n")
    lines = ["prefix\ttarget"]
    for _ in range(60):
        session = walk()
        lines.append(" ".join(map(str, session[:-1])) + "\t" + str(session[-1]))
    (folder / "test.tsv").write_text("\n".join(lines) + "\n")


def _write_config(path) -> None:
    path.write_text("seed = 1\nmax_length = 8\nvalid_sessions = 20\ntime_budget_s = 0\n\n"
                    "[train]\nepochs = 3\nbatch_size = 32\nlearning_rate = 0.01\npatience = 3\n\n"
                    "[models.gru]\nhidden_size = 16\ndropout = 0.0\n\n[models.mlp]\nhidden_size = 16\ndropout = 0.0\n")


def test_quality_command_on_a_tiny_split(tmp_path):
    split = tmp_path / "ring"
    _write_split(split)
    config, out, doc = tmp_path / "tiny.toml", tmp_path / "quality.json", tmp_path / "benchmarks.md"
    _write_config(config)
    doc.write_text("# Benchmarks\n\n## Someone else's section\n\nkeep me\n")
    args = ["quality", str(split), "--models", "gru", "mlp", "--baselines", "POP", "Markov",
            "--config", str(config), "--json", str(out), "--markdown", str(doc)]
    assert main(args) == 0
    raw = json.loads(out.read_text())
    rows = {row["model"]: row for row in raw["results"][0]["rows"]}
    blends = {f"{m} + V-SKNN + SR (blend)" for m in ("gru", "mlp")}  # default.toml's blend, merged in
    assert set(rows) == {"POP", "Markov", "gru (torch)", "mlp (torch)", *blends}
    assert raw["results"][0]["test_cases"] == 60
    for name in blends:  # the rules know the ring: the weights chosen on held-out walks lean on them
        assert rows[name]["blend_weights"]["SR"] > 0 and rows[name]["Recall@10"] == pytest.approx(100.0)
    # a deterministic ring: the Markov chain is perfect, popularity is not; the GRU learns the ring
    assert rows["Markov"]["Recall@10"] == pytest.approx(100.0)
    assert rows["POP"]["Recall@10"] < 60
    assert rows["gru (torch)"]["Recall@20"] > rows["POP"]["Recall@20"]
    assert rows["gru (torch)"]["epochs"] == 3 and not rows["gru (torch)"]["budget_limited"]
    text = doc.read_text()
    assert "keep me" in text and f"## {QUALITY_HEADING}" in text and "| gru (torch) |" in text
    # same seed, same numbers
    assert main([*args[:-4], "--json", str(tmp_path / "again.json")]) == 0
    again = {r["model"]: r for r in json.loads((tmp_path / "again.json").read_text())["results"][0]["rows"]}
    assert again["gru (torch)"]["MRR@20"] == rows["gru (torch)"]["MRR@20"]
    # the section can be re-rendered from the raw JSON alone
    rendered = tmp_path / "rendered.md"
    assert main(["render", str(out), "--markdown", str(rendered)]) == 0
    assert "| Markov | course baseline | 100.00 |" in rendered.read_text()


def _gru_on_the_ring(tmp_path, settings: str) -> dict:
    """The quality command's rows for the GRU and POP on the ring, with ``settings`` over the tiny config."""
    split, config, out = tmp_path / "ring", tmp_path / "tiny.toml", tmp_path / "quality.json"
    _write_split(split)
    _write_config(config)
    config.write_text(settings + config.read_text())
    assert main(["quality", str(split), "--models", "gru", "--baselines", "POP", "--config", str(config),
                 "--json", str(out)]) == 0
    return {row["model"]: row for row in json.loads(out.read_text())["results"][0]["rows"]}


def test_a_model_trained_with_the_sampled_softmax_learns_the_ring(tmp_path):
    """4 uniform draws of 31 ids a step (+ the batch's own items): the GRU still learns the ring, and says so."""
    rows = _gru_on_the_ring(tmp_path, "sampled_negatives = 4\nblend = []\n")
    assert set(rows) == {"POP", "gru (torch)"} and rows["gru (torch)"]["sampled_negatives"] == 4
    assert rows["gru (torch)"]["Recall@20"] > rows["POP"]["Recall@20"] + 20


def test_an_ensemble_trains_one_model_per_seed_and_blends_their_mean(tmp_path):
    rows = _gru_on_the_ring(tmp_path, "ensemble = 2\n")
    alone, blend = rows["gru (torch)"], rows["gru + V-SKNN + SR (blend)"]
    scores = alone["members_valid_mrr"]
    assert alone["ensemble"] == 2 and len(scores) == 2 and scores[0] != scores[1]  # seeds 1 and 2 differ
    assert alone["Recall@20"] > rows["POP"]["Recall@20"] + 20 and blend["blend_valid"]["model alone"][1] > 0


def test_a_misspelt_train_setting_names_the_file_and_the_key(tmp_path):
    split = tmp_path / "ring"
    _write_split(split, n_sessions=60)
    config = tmp_path / "typo.toml"
    _write_config(config)
    config.write_text(config.read_text().replace("patience = 3", "patiense = 3"))
    with pytest.raises(ValueError, match=r"typo\.toml: unknown \[train\] setting\(s\) \['patiense'\] for gru"):
        main(["quality", str(split), "--models", "gru", "--baselines", "POP", "--config", str(config),
              "--json", str(tmp_path / "x.json")])


def test_quality_rejects_a_folder_without_the_split_files(tmp_path):
    with pytest.raises(SystemExit, match="train_sessions.txt"):
        main(["quality", str(tmp_path), "--json", str(tmp_path / "x.json")])


def test_the_blend_weights_read_held_out_sessions_the_early_stopping_did_not():
    sessions = [np.array([i, i + 1]) for i in range(7)]
    stop, blend = split_held_out(sessions, blend=True)
    assert [s[0] for s in stop] == [0, 2, 4, 6] and [s[0] for s in blend] == [1, 3, 5]  # both span the period
    assert split_held_out(sessions, blend=False) == (sessions, sessions)  # no blend: all of them stop
    assert split_held_out(sessions[:1], blend=True) == (sessions[:1], sessions[:1])  # one session cannot split


def test_hold_out_keeps_every_session_once_latest_or_seeded_random():
    sessions = [np.array([i, i + 1]) for i in range(10)]
    train, valid = hold_out(sessions, 3)
    assert [s[0] for s in valid] == [7, 8, 9] and [s[0] for s in train] == list(range(7))
    train, valid = hold_out(sessions, 3, "random", seed=0)
    firsts = sorted(s[0] for s in train + valid)
    assert firsts == list(range(10)) and len(valid) == 3
    assert sorted(s[0] for s in valid) != [7, 8, 9]  # not the latest
    assert [s[0] for s in hold_out(sessions, 3, "random", seed=0)[1]] == [s[0] for s in valid]  # seeded
    assert [s[0] for s in train] == sorted(s[0] for s in train)  # time order kept
    with pytest.raises(ValueError, match="valid_holdout"):
        hold_out(sessions, 3, "oldest")
    with pytest.raises(ValueError, match="valid_sessions"):
        hold_out(sessions, 10)


def test_update_section_replaces_only_its_own_section(tmp_path):
    doc = tmp_path / "b.md"
    doc.write_text("# B\n\n## A\n\nold a\n\n## C\n\nc text\n")
    update_section(doc, "A", "new a")
    update_section(doc, "D", "d text")
    assert doc.read_text() == "# B\n\n## A\n\nnew a\n\n## C\n\nc text\n\n## D\n\nd text\n"


def test_target_verdict_names_the_metric_that_falls_short():
    reference = (70.57, 30.94)
    assert target_verdict({"Recall@20": 71.07, "MRR@20": 30.27}, reference) == (
        "misses the SR-GNN target (70.57 / 30.94): MRR@20 30.27 < 30.94")
    assert target_verdict({"Recall@20": 70.0, "MRR@20": 29.0}, reference).endswith(
        "P@20 70.00 < 70.57, MRR@20 29.00 < 30.94")
    assert target_verdict({"Recall@20": 70.57, "MRR@20": 31.0}, reference).startswith("meets")


def test_models_come_from_the_command_line_then_the_config():
    assert neural_model_names({"neural_models": ["transformer"]}, ["gru"]) == ["gru"]
    assert neural_model_names({"neural_models": ["transformer"]}) == ["transformer"]
    assert neural_model_names({}) == ["gru", "transformer", "mlp"]
    with pytest.raises(ValueError, match="neural_models must be a list"):
        neural_model_names({"neural_models": "transformer", "_path": "x.toml"})


def test_speed_command_runs_every_part_it_is_given(tmp_path):
    """Tiny sizes: the ETL child process, one epoch of one model, the tables; serving has its own tests."""
    out, doc = tmp_path / "speed.json", tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Other\n\nkeep me\n")
    args = ["speed", "--etl-events", "20000", "--train-events", "20000", "--models", "mlp", "--hidden-size", "8",
            "--batch-size", "64", "--serving-requests", "0", "--json", str(out), "--markdown", str(doc)]
    assert main(args) == 0
    raw = json.loads(out.read_text())
    (etl,) = raw["etl"]
    assert etl["events"] == 20000 and etl["sessions"] > 100 and etl["events_per_s"] > 0 and etl["peak_rss_mib"] > 0
    (row,) = raw["training"]["rows"]
    assert row["preset"] == "mlp" and row["hidden_size"] == 8 and row["sessions_per_s"] > 0 and row["epochs"] == 1
    assert raw["serving"] is None
    text = doc.read_text()
    assert "keep me" in text and "| 20,000 |" in text and "| course mlp (mlp, causal) | 8 | 64 |" in text
    assert "**Serving**" not in text


def _write_stride_split(folder, n_sessions: int = 400, seed: int = 0) -> None:
    """Walks of a 40-item ring whose stride (1, 2 or 3) is fixed per session: the last item alone leaves three
    equally likely next items (Markov's MRR@20 ~ 0.6), two items settle the stride for a sequence model."""
    rng = np.random.default_rng(seed)
    folder.mkdir()

    def walk() -> list[int]:
        start, stride, length = int(rng.integers(0, 40)), int(rng.integers(1, 4)), int(rng.integers(3, 8))
        return [(start + stride * i) % 40 + 1 for i in range(length)]

    (folder / "train_sessions.txt").write_text("\n".join(" ".join(map(str, walk())) for _ in range(n_sessions)) + "\n")
    lines = ["prefix\ttarget"]
    for _ in range(100):
        session = walk()
        lines += [" ".join(map(str, session[:t])) + "\t" + str(session[t]) for t in range(2, len(session))]
    (folder / "test.tsv").write_text("\n".join(lines) + "\n")


def test_the_default_recipe_beats_markov_on_a_small_split(tmp_path):
    """``benchmarks/configs/default.toml`` (its "auto" settings derived here) with 6 epochs instead of a time budget,
    so the result does not depend on the machine's load."""
    split = tmp_path / "stride"
    _write_stride_split(split)
    out, config = tmp_path / "quality.json", tmp_path / "six_epochs.toml"
    config.write_text("time_budget_s = 0\n\n[train]\nepochs = 6\n")  # merged over default.toml
    assert main(["quality", str(split), "--baselines", "Markov", "--config", str(config), "--json", str(out)]) == 0
    result = json.loads(out.read_text())["results"][0]
    rows = {row["model"]: row for row in result["rows"]}
    blend = "transformer + V-SKNN + SR (blend)"
    assert set(rows) == {"Markov", "transformer (torch)", blend}  # the recipe trains its one model, then blends
    recipe = rows["transformer (torch)"]
    assert recipe["recipe"]["batch_size"] == 32 and recipe["model_config"]["repeat_bias"] is False  # no re-clicks
    assert recipe["model_config"]["score_scale"] == 16.0 and recipe["train_config"]["bf16"] is None
    assert 50 < rows["Markov"]["MRR@20"] < 75  # three equally likely strides
    assert recipe["epochs"] == 6 and recipe["MRR@20"] > rows["Markov"]["MRR@20"] + 10
    weights = rows[blend]["blend_weights"]
    assert sum(weights.values()) == pytest.approx(1.0) and weights["model"] > 0  # the model is always in
    assert rows[blend]["MRR@20"] > rows["Markov"]["MRR@20"] + 10 and rows[blend]["kind"] == "recipe"
