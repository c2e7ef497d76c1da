"""The 2026 peers benchmark: the course-side adapter, and one RecTools and one RecBole model on a tiny split."""

from __future__ import annotations

import numpy as np
import pytest
from sessrec_bench.peers_2026 import (
    PeerRecommender,
    evaluate_peer,
    parse_peers,
    peer_python,
    recipe_settings_for,
    run_peer,
)
from sessrec_bench.splits import benchmark_cases
from test_metrics import metrics_from_lists

from sessrec_course.evaluation import evaluate


def test_peer_scores_follow_the_stored_top_k_whatever_the_batches() -> None:
    prefixes = np.array([[2, 3, 0], [4, 0, 0], [2, 3, 0]])  # the third line repeats the first prefix
    items = np.array([[5, 1, -1], [2, 3, 4]])  # raw ids: +1 in the course's encoding
    scores = np.array([[0.9, 0.5, -np.inf], [0.3, 0.2, 0.1]], dtype=np.float32)
    recommender = PeerRecommender(prefixes[:2], items, scores, n_items=8)
    out = recommender.score(prefixes[[1, 0, 2]])
    assert out.shape == (3, 8)
    assert out[1, 6] == np.float32(0.9) and out[1, 2] == np.float32(0.5)
    assert np.isneginf(out[1, [0, 1, 3, 4, 5, 7]]).all()
    assert np.array_equal(out[1], out[2])
    assert out[0, 3] == np.float32(0.3) and out[0, 5] == np.float32(0.1)
    # target 6 ranks first on line 0; target 7 is unscored on line 1: after its 3 scored items and the -inf ids 2 and 6
    metrics = evaluate(recommender, prefixes[:2], np.array([6, 7]), ks=(1, 5, 10), progress=False, batch_size=1)
    assert metrics["Recall@1"] == 0.5 and metrics["Recall@5"] == 0.5 and metrics["Recall@10"] == 1.0
    assert metrics["MRR@10"] == pytest.approx((1 + 1 / 6) / 2)


def test_peer_adapter_rejects_mismatched_answers() -> None:
    prefixes = np.array([[2, 0], [3, 0]])
    with pytest.raises(ValueError, match="answered 1 lines"):
        PeerRecommender(prefixes, np.zeros((1, 3), dtype=np.int64), np.zeros((1, 3), dtype=np.float32), 5)
    with pytest.raises(ValueError, match="beyond the split's catalogue"):
        PeerRecommender(prefixes, np.full((2, 1), 9), np.zeros((2, 1), dtype=np.float32), 5)
    recommender = PeerRecommender(prefixes, np.full((2, 1), 2), np.zeros((2, 1), dtype=np.float32), 5)
    with pytest.raises(ValueError, match="only scores the test prefixes"):
        recommender.score(np.array([[4, 0]]))


def test_parse_peers() -> None:
    assert parse_peers(["rectools:hstu", "recbole"]) == [("rectools", "hstu"), ("recbole", "gru4rec"),
                                                         ("recbole", "srgnn"), ("recbole", "sasrec")]
    assert len(parse_peers(None)) == 6
    with pytest.raises(ValueError, match="unknown peer 'rectools:gru4rec'"):
        parse_peers(["rectools:gru4rec"])


def _tiny_split(folder, n_items: int = 40, seed: int = 0):
    """Sessions that walk the catalogue one id at a time (the next item is the last one + 1), some test lines."""
    rng = np.random.default_rng(seed)

    def session() -> list[int]:
        start, length = int(rng.integers(1, n_items - 6)), int(rng.integers(3, 7))
        return list(range(start, start + length))

    folder.mkdir()
    train = [session() for _ in range(300)]
    (folder / "train_sessions.txt").write_text("\n".join(" ".join(map(str, s)) for s in train) + "\n")
    lines = ["prefix\ttarget"]
    for _ in range(30):
        s = session()
        lines += [" ".join(map(str, s[:t])) + "\t" + str(s[t]) for t in range(1, len(s))]
    (folder / "test.tsv").write_text("\n".join(lines) + "\n")
    from sessrec_bench.quality import load_split

    return benchmark_cases(load_split(folder))


def test_the_peers_budget_follows_the_config_the_course_runs_with(tmp_path) -> None:
    """A folder named like a public split gets that split's tuned config (3,300 s), unless a config is given."""
    from sessrec_bench.quality import configs_dir

    _tiny_split(tmp_path / "diginetica")
    assert recipe_settings_for(tmp_path / "diginetica")["budget_s"] == 3300.0
    shipped = recipe_settings_for(tmp_path / "diginetica", configs_dir() / "default.toml")
    assert shipped["budget_s"] == 480.0  # the rule's floor, 1,200 training cases / 250 s: 120 s, for each of 4 seeds
    assert shipped["valid_sessions"] == 30  # 5 % of 300 would be 15: the floor of 100 capped at a tenth


@pytest.mark.slow  # a subprocess in each peer's venv
@pytest.mark.parametrize(("library", "model"), [("rectools", "sasrec"), ("recbole", "gru4rec")])
def test_a_peer_trains_within_its_budget_and_answers_every_line(tmp_path, library: str, model: str) -> None:
    if not peer_python(library).exists():
        pytest.skip(f".venv-{library} not built (`make peers-venvs`): the {library} peer cannot run")
    cases = _tiny_split(tmp_path / "tiny")
    settings = {"budget_s": 8.0, "max_length": 10, "valid_sessions": 30, "seed": 42}
    result = run_peer(library, model, tmp_path / "tiny", tmp_path / "out", settings, timeout_s=240)
    assert "error" not in result, result.get("error")
    assert result["library"] == library and result["model"] == model
    assert result["epochs_done"] >= 1 and result["lines_without_predictions"] == 0
    stored = np.load(tmp_path / "out" / "predictions.npz")
    assert stored["items"].shape == (len(cases.targets), 100)
    assert (np.diff(stored["scores"][:, :20], axis=1) <= 0).all(), "each line's list is best first"
    # the course's evaluate of the adapter agrees with the peer's own lists scored directly
    metrics = evaluate_peer(cases, tmp_path / "out", "tiny")
    direct = metrics_from_lists((stored["items"][:, :20] + 1).tolist(), cases.targets.tolist(), ks=(20,))
    assert metrics["Recall@20"] == pytest.approx(100 * direct["Recall@20"])
    assert metrics["MRR@20"] == pytest.approx(100 * direct["MRR@20"])
