"""Time features (issue #24 item 4): the course's extension (input, padding, export refusal) and the benchmark's
plumbing (the loader, evaluation and training of the research switch, its "auto" rule)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")

from sessrec_bench.time_features import (  # noqa: E402
    N_TIME_FEATURES,
    FeatureBatch,
    TimeFeatures,
    make_feature_loader,
    read_time_features,
    time_feature_values,
    train_time_model,
)

from sessrec_course.evaluation import all_prefixes, evaluate, last_item  # noqa: E402
from sessrec_course.models import ModelConfig, build_model  # noqa: E402
from sessrec_course.models.torch_base import SessionModel  # noqa: E402
from sessrec_course.models.torch_export import export_onnx  # noqa: E402
from sessrec_course.profiles import get_profile  # noqa: E402
from sessrec_course.training import TorchRecommender  # noqa: E402
from sessrec_course.training.torch_data import make_loader, read_sessions  # noqa: E402

VARIANTS = [("mlp", "gpt2"), ("gru", "gpt2"), ("transformer", "gpt2"), ("transformer", "bert"), ("transformer", "xlnet")]
N_ITEMS = 40
IDS = torch.tensor([[5, 6, 7, 0, 0, 0], [9, 0, 0, 0, 0, 0], [3, 4, 5, 6, 7, 8]])


def make(name: str, backbone: str, time_features: bool = True, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = ModelConfig(name=name, backbone=backbone, item_cardinality=N_ITEMS, hidden_size=16, max_length=6,
                         num_layers=2, time_features=time_features)
    model = build_model(config, extensions=(TimeFeatures,) if time_features else ()).eval()
    if time_features:  # the projection starts at zero; give it weights so that the features matter
        with torch.no_grad():
            model.time_projection.weight.normal_()
            model.time_projection.bias.normal_()
    return model


def features_for(ids: torch.Tensor, seed: int = 1) -> torch.Tensor:
    return torch.randn(*ids.shape, N_TIME_FEATURES, generator=torch.Generator().manual_seed(seed))


def etl_table(sessions, gaps, hours, weekdays) -> pa.Table:
    """An ETL-contract table with the columns the time features read."""
    return pa.table({
        "session_id": pa.array(np.arange(len(sessions), dtype=np.int64)),
        "item_id_list": pa.array(sessions, type=pa.list_(pa.int32())),
        "time_delta_list": pa.array(gaps, type=pa.list_(pa.float32())),
        "start_weekday": pa.array(weekdays, type=pa.int8()), "start_hour": pa.array(hours, type=pa.int8()),
    })


@pytest.mark.parametrize(("name", "backbone"), VARIANTS)
def test_padding_and_truncation_with_features_are_those_of_the_ids(name, backbone):
    model = make(name, backbone)
    features = features_for(IDS)
    with torch.no_grad():
        scores = model(IDS, features)
        noisy = features.clone()
        noisy[IDS == 0] = 50.0  # whatever sits at padding is ignored
        wider = model(torch.cat([IDS, torch.zeros(3, 4, dtype=torch.long)], 1), torch.cat([noisy, features_for(
            torch.zeros(3, 4), seed=2)], 1))
        keep = model.max_length if model.config.causal else model.max_length - 1
        long = torch.arange(2, 12)[None]
        long_features = features_for(long, seed=3)
        truncated = model(long, long_features)
        kept = model(long[:, -keep:], long_features[:, -keep:])
        empty = model(torch.zeros(2, 4, dtype=torch.long), features_for(torch.zeros(2, 4), seed=4))
    assert scores.shape == (3, N_ITEMS)
    with model.reading(IDS, noisy):
        assert (model.embed(IDS)[IDS == 0] == 0).all()  # padding embeds to zero, features or not
    torch.testing.assert_close(wider, scores, rtol=0, atol=1e-5)
    torch.testing.assert_close(truncated, kept, rtol=0, atol=1e-5)
    torch.testing.assert_close(empty[0, 2:], model.output_bias[2:])  # an empty session still gets popularity


@pytest.mark.parametrize(("name", "backbone"), VARIANTS)
def test_features_change_the_scores_and_the_loss_learns_them(name, backbone):
    model = make(name, backbone)
    features = features_for(IDS)
    with torch.no_grad():
        assert not torch.allclose(model(IDS, features), model(IDS, 2 * features), atol=1e-4)
    model.train()
    torch.manual_seed(5)
    loss = model.loss(FeatureBatch(IDS, features))
    loss.backward()
    assert torch.isfinite(loss) and model.time_projection.weight.grad.abs().sum() > 0
    torch.manual_seed(5)
    wider = model.loss(FeatureBatch(torch.cat([IDS, torch.zeros(3, 2, dtype=torch.long)], 1),
                                    torch.cat([features, torch.ones(3, 2, N_TIME_FEATURES)], 1)))
    torch.testing.assert_close(wider, loss, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("name", "backbone"), VARIANTS)
def test_id_only_models_are_unchanged_and_a_fresh_projection_adds_nothing(name, backbone):
    plain = make(name, backbone, time_features=False)
    assert "time_features" not in plain.config.to_dict()  # the checkpoint key of id-only models stays as it was
    fresh = make(name, backbone, time_features=True)
    shared = {k: v for k, v in fresh.state_dict().items() if not k.startswith("time_projection")}
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in shared.items())  # same seed, same start
    with torch.no_grad():
        fresh.time_projection.weight.zero_()
        fresh.time_projection.bias.zero_()
    missing = fresh.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["time_projection.bias", "time_projection.weight"]
    with torch.no_grad():
        torch.testing.assert_close(fresh(IDS, features_for(IDS)), plain(IDS), rtol=0, atol=1e-5)
    with pytest.raises(TypeError):  # an id-only model takes no features at all
        plain(IDS, features_for(IDS))
    with pytest.raises(ValueError, match="research switch of the benchmark tree"):  # nor builds a timed one silently
        build_model(fresh.config)
    with pytest.raises(ValueError, match="trained with time_features"):
        fresh(IDS)
    with pytest.raises(ValueError, match=r"shape \(3, 6, 5\)"):
        fresh(IDS, features_for(IDS)[:, :, :2])


def test_a_subclass_written_for_ids_alone_scores_and_trains_with_time_features_too():
    class IdsOnly(SessionModel):
        def sequence_hidden(self, item_ids):  # a model's one part: ids → states
            return self.embed(item_ids)

    config = ModelConfig(name="gru", item_cardinality=N_ITEMS, hidden_size=8, max_length=6)
    model = IdsOnly(config)
    assert model(IDS).shape == (3, N_ITEMS) and torch.isfinite(model.loss(IDS))
    timed = type("Timed", (IdsOnly, TimeFeatures), {})(config)  # the extension needs nothing of the model
    assert timed(IDS, features_for(IDS)).shape == (3, N_ITEMS)
    assert torch.isfinite(timed.loss(FeatureBatch(IDS, features_for(IDS))))


def test_time_features_compose_with_the_course_extensions():
    from sessrec_course.models.torch_extensions import RepeatMixture, ScoreScale

    config = ModelConfig(name="gru", item_cardinality=N_ITEMS, hidden_size=16, max_length=6, time_features=True,
                         repeat_bias=True, repeat_mixture=True, score_scale=16.0)
    torch.manual_seed(0)
    model = build_model(config, extensions=(TimeFeatures,))
    assert all(isinstance(model, c) for c in (TimeFeatures, RepeatMixture, ScoreScale))
    assert {"time_projection.weight", "repeat_gate.weight", "repeat_bias"} <= set(model.state_dict())
    loss = model.loss(FeatureBatch(IDS, features_for(IDS)))
    loss.backward()
    assert torch.isfinite(loss) and model.repeat_gate.weight.grad.abs().sum() > 0
    with torch.no_grad():
        scores = model.eval()(IDS, features_for(IDS))
    assert scores.shape == (3, N_ITEMS) and torch.isfinite(scores[:, 2:]).all()


def test_etl_columns_become_log_gaps_and_start_circles(tmp_path):
    table = etl_table([[2, 3, 4], [5, 6]], [[0.0, 9.0, 99.0], [0.0, 0.5]], [6, 23], [0, 3])
    values, offsets = time_feature_values(table)
    np.testing.assert_array_equal(offsets, [0, 3, 5])
    np.testing.assert_allclose(values[:3, 0], np.log1p([0, 9, 99]), rtol=1e-6)
    np.testing.assert_allclose(values[0, 1:], [1.0, 0.0, 0.0, 1.0], atol=1e-6)  # 06:00 on a Monday
    np.testing.assert_allclose(values[4, 1:3], [np.sin(2 * np.pi * 23 / 24), np.cos(2 * np.pi * 23 / 24)], rtol=1e-5)
    pq.write_table(table, tmp_path / "s.parquet")
    padded = read_time_features(tmp_path / "s.parquet", 2)  # the last 2 clicks, like read_sessions
    np.testing.assert_array_equal(read_sessions(tmp_path / "s.parquet", 2), [[3, 4], [5, 6]])
    np.testing.assert_allclose(padded[0, :, 0], np.log1p([9, 99]), rtol=1e-6)
    pq.write_table(table.drop(["start_hour"]), tmp_path / "old.parquet")
    with pytest.raises(ValueError, match=r"old.parquet.*\['start_hour'\].*re-run the ETL"):
        read_time_features(tmp_path / "old.parquet", 2)
    with pytest.raises(ValueError, match="time_delta_list holds -1"):
        time_feature_values(etl_table([[2, 3]], [[0.0, -1.0]], [1], [1]))


def test_loader_gives_features_aligned_with_the_ids_only_when_asked():
    ids = np.array([[2, 3, 0, 0], [4, 0, 0, 0], [5, 6, 7, 0]])
    features = np.arange(4 * 3 * N_TIME_FEATURES, dtype=np.float32).reshape(3, 4, N_TIME_FEATURES)
    (batch,) = list(make_feature_loader(ids, features, batch_size=2, shuffle=False))
    assert isinstance(batch, FeatureBatch) and len(batch) == 2
    assert batch.item_ids.tolist() == [[2, 3, 0], [5, 6, 7]]
    np.testing.assert_array_equal(batch.features.numpy(), features[[0, 2], :3])
    (plain,) = list(make_loader(ids, batch_size=2, shuffle=False))
    assert isinstance(plain, torch.Tensor)


def test_all_prefixes_and_evaluate_carry_features_by_hand():
    sessions = [np.array([2, 3, 4]), np.array([5, 6])]
    values = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]], dtype=np.float32)
    ragged = (values, np.array([0, 3, 5]))
    prefixes, targets, features = all_prefixes(sessions, max_length=2, features=ragged)
    np.testing.assert_array_equal(prefixes, [[2, 0], [2, 3], [5, 0]])
    np.testing.assert_array_equal(targets, [3, 4, 6])
    np.testing.assert_array_equal(features[..., 0], [[0, 0], [0, 1], [10, 0]])
    np.testing.assert_array_equal(last_item(sessions, 2, features=ragged)[2][..., 0], [[0, 1], [10, 0]])
    plain = all_prefixes(sessions, max_length=2)
    assert len(plain) == 2 and np.array_equal(plain[0], prefixes)  # the id-only API is unchanged

    def by_feature(ids, feats):  # recommends item 2 + (feature of the last click) % 5 first, then by id
        scores = np.zeros((len(ids), 8), dtype=np.float32)
        last = feats[np.arange(len(ids)), (ids != 0).sum(1) - 1, 0].astype(int)
        scores[np.arange(len(ids)), 2 + last % 5] = 1.0
        return scores
    # case 1: top = 2 + 0 = 2, target 3 → rank 2; case 2: top 3, target 4 → rank 3; case 3: top 2, target 6 → rank 5
    result = evaluate(by_feature, prefixes, targets, ks=(1, 20), features=features, batch_size=2, progress=False)
    assert result["MRR@20"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 5) / 3)
    assert result["Recall@1"] == 0.0
    with pytest.raises(ValueError, match="one vector per prefix position"):
        evaluate(by_feature, prefixes, targets, features=features[:, :1], progress=False)


def test_export_refuses_a_time_feature_model_and_says_what_to_do(tmp_path):
    model = make("gru", "gpt2")
    with pytest.raises(ValueError, match=r"raw item ids only.*time_features=False"):
        export_onnx(model, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_the_serving_pipeline_refuses_a_time_feature_model_before_training(tmp_path, monkeypatch):
    from sessrec_course.serving import pipeline
    from sessrec_course.training import torch_pipeline

    trained = []
    monkeypatch.setattr(torch_pipeline, "fit_model", lambda *a, **k: trained.append(1))  # must never be reached
    monkeypatch.setattr(torch_pipeline, "fit", lambda *a, **k: trained.append(1))
    with pytest.raises(ValueError, match=r"raw item ids only.*time_features=False"):
        pipeline.export_course_model("gru", output_dir=tmp_path, model_overrides={"time_features": True})
    assert not trained and not list(tmp_path.iterdir())


def write_gap_dataset(folder, n_train: int = 400) -> None:
    """Sessions whose next item (10 or 11) is told by the gap before the current click, not by any item id."""
    folder.mkdir()
    for split, n, seed in (("train", n_train, 0), ("valid", 80, 1), ("test", 80, 2)):
        rng = np.random.default_rng(seed)
        sessions, gaps = [], []
        for _ in range(n):
            gap = rng.choice([2.0, 3000.0], size=7)
            gap[0] = 0.0
            sessions.append([int(rng.integers(2, 10))] + [10 + int(g > 100) for g in gap[:-1]])
            gaps.append(gap.tolist())
        pq.write_table(etl_table(sessions, gaps, rng.integers(0, 24, n), rng.integers(0, 7, n)),
                       folder / f"{split}.parquet")
    (folder / "schema.json").write_text(json.dumps({"item_cardinality": 12, "max_length": 8}), encoding="utf-8")


def test_training_with_time_features_learns_what_the_ids_cannot_tell(tmp_path):
    write_gap_dataset(tmp_path / "data")
    profile = get_profile("ci", hidden_size=16, batch_size=32, epochs=10, eval_max_sessions=None)
    runs = {on: train_time_model("gru", tmp_path / "data", profile, time_features=on, learning_rate=2e-2)
            for on in (False, True)}
    plain, timed = (history.best_score for _, history in (runs[False], runs[True]))
    assert timed > 0.95 and plain < 0.85  # without the gaps a next 10 or 11 is a coin toss: MRR at most 0.79
    with pytest.raises(ValueError, match="trained with time_features"):
        TorchRecommender(runs[True][0]).score(np.array([[2, 10, 0]]))


@pytest.mark.parametrize("tied", [True, False])
def test_time_features_auto_turns_them_on_only_where_the_start_hour_tells_the_items(tmp_path, tied):
    from sessrec_bench.time_features import time_features_auto

    rng = np.random.default_rng(1)
    n = 400
    hours = rng.integers(0, 24, n)
    morning = hours < 12 if tied else rng.random(n) < 0.5
    items = [list(rng.choice(np.arange(2, 12) if m else np.arange(12, 22), 3)) for m in morning]
    starts = np.datetime64("2024-03-04", "ns") + np.arange(n).astype("timedelta64[h]")
    table = pa.table({"session_id": pa.array(np.arange(n)), "item_id_list": pa.array(items, pa.list_(pa.int32())),
                      "time_delta_list": pa.array([[0.0, 5.0, 5.0]] * n, pa.list_(pa.float32())),
                      "start_weekday": pa.array(np.zeros(n), pa.int8()), "start_hour": pa.array(hours, pa.int8()),
                      "start_time": pa.array(starts)})
    for split in ("train", "valid", "test"):
        pq.write_table(table, tmp_path / f"{split}.parquet")
    (tmp_path / "schema.json").write_text(json.dumps({"item_cardinality": 22, "max_length": 5}), encoding="utf-8")
    assert time_features_auto(tmp_path / "train.parquet") is tied
    from sessrec_course.training.common import training_setup

    assert training_setup("gru", tmp_path, get_profile("ci")).model.time_features is False  # off unless asked


def test_popularity_by_start_hour_against_overall_popularity_by_hand():
    from sessrec_bench.time_features import hour_or_overall_popularity_mrr, time_features_pay

    # 9 morning sessions click 2 then 3, 9 evening ones 4 then 5; the latest two (one of each) are held out
    sessions = [np.array([2, 3]), np.array([4, 5])] * 10
    hours = np.array([8, 20] * 10)
    hour_mrr, overall_mrr = hour_or_overall_popularity_mrr(sessions, hours)
    # by hour: 3 and 5 rank second in their slice (1/2 each); overall all four tie, ids in order: 3 → 2nd, 5 → 4th
    assert (hour_mrr, overall_mrr) == pytest.approx((0.5, (1 / 2 + 1 / 4) / 2))
    assert hour_or_overall_popularity_mrr(sessions, np.array([8] * 20)) == pytest.approx((0.375, 0.375))
    assert hour_or_overall_popularity_mrr(sessions[:5], hours[:5]) == (0.0, 0.0)  # nothing to hold out
    assert time_features_pay(0.5, 0.375) and not time_features_pay(0.40, 0.375) and not time_features_pay(0.1, 0.0)
