"""PyTorch session models: shapes, padding never changes a score, defined answers for odd inputs."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from sessrec_course.models import ModelConfig, build_model  # noqa: E402
from sessrec_course.models.torch_base import MASKED_SCORE  # noqa: E402

VARIANTS = [("mlp", "gpt2"), ("gru", "gpt2"), ("transformer", "gpt2"), ("transformer", "bert"), ("transformer", "xlnet"),
            ("hstu", "gpt2")]
N_ITEMS = 40


def make(name: str, backbone: str, tie: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)
    config = ModelConfig(name=name, backbone=backbone, item_cardinality=N_ITEMS, category_cardinality=4,
                         hidden_size=16, max_length=6, num_layers=2, tie_weights=tie)
    return build_model(config, item_category=torch.arange(N_ITEMS) % 4).eval()


IDS = torch.tensor([[5, 6, 7, 0, 0, 0], [9, 0, 0, 0, 0, 0], [3, 4, 5, 6, 7, 8]])


@pytest.mark.parametrize(("name", "backbone"), VARIANTS)
def test_shapes_and_padding_never_changes_a_score(name, backbone):
    model = make(name, backbone)
    with torch.no_grad():
        scores = model(IDS)
        wider = model(torch.cat([IDS, torch.zeros(3, 5, dtype=torch.long)], dim=1))
        narrow = model(IDS[:2, :3])
    assert scores.shape == (3, N_ITEMS) and scores.dtype == torch.float32
    torch.testing.assert_close(wider, scores, rtol=0, atol=1e-6)
    torch.testing.assert_close(narrow, scores[:2], rtol=0, atol=1e-6)
    assert (scores[:, :2] == MASKED_SCORE).all()  # padding and OOV are never recommended
    assert not torch.allclose(scores[0], scores[1])  # different sessions, different scores


@pytest.mark.parametrize(("name", "backbone"), VARIANTS)
def test_long_session_keeps_last_items_and_odd_ids_are_defined(name, backbone):
    model = make(name, backbone)
    long = torch.tensor([[2, 3, 4, 5, 6, 7, 8, 9, 10, 11]])
    keep = model.max_length if model.config.causal else model.max_length - 1
    with torch.no_grad():
        torch.testing.assert_close(model(long), model(long[:, -keep:]), rtol=0, atol=1e-6)
        unseen = model(torch.tensor([[5, 1000, 0]]))  # outside the catalogue → OOV
        torch.testing.assert_close(unseen, model(torch.tensor([[5, 1, 0]])), rtol=0, atol=1e-6)
        empty = model(torch.zeros(2, 4, dtype=torch.long))
    assert torch.isfinite(empty).all()
    torch.testing.assert_close(empty[0, 2:], model.output_bias[2:])  # empty session → learnt popularity


@pytest.mark.parametrize(("name", "backbone"), VARIANTS)
def test_loss_ignores_padding_and_is_a_cross_entropy(name, backbone):
    model = make(name, backbone)
    torch.manual_seed(1)
    a = model.loss(IDS)
    torch.manual_seed(1)
    b = model.loss(torch.cat([IDS, torch.zeros(3, 4, dtype=torch.long)], dim=1))
    assert a.ndim == 0 and 0 < a.item() < 2 * torch.log(torch.tensor(float(N_ITEMS)))
    if model.config.causal:  # masked models draw random masks over a different shape
        torch.testing.assert_close(a, b)


def test_causal_targets_are_hand_computed():
    """Session [5, 6, 7]: GRU loss = mean CE of (h0 → 6) and (h1 → 7), nothing at the padding."""
    model = make("gru", "gpt2")
    ids = torch.tensor([[5, 6, 7, 0]])
    hidden = model.sequence_hidden(ids)
    logits = model.logits(hidden[0, :2])
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([6, 7]))
    torch.testing.assert_close(model.loss(ids), expected)


def test_niser_scores_are_scaled_cosines_by_hand():
    """score_scale > 0: score = scale * cos(session, item) + bias, in forward and in the loss alike."""
    torch.manual_seed(0)
    config = ModelConfig(name="gru", item_cardinality=N_ITEMS, hidden_size=16, max_length=6, score_scale=12.0)
    model = build_model(config).eval()
    ids = torch.tensor([[5, 6, 7, 0]])
    with torch.no_grad():
        model.output_bias.copy_(torch.linspace(-0.5, 0.5, N_ITEMS))
        hidden = model.sequence_hidden(ids)[0]  # (4, 16)
        items = model.item_embedding.weight[:N_ITEMS]
        cosine = torch.stack([torch.stack([torch.dot(h, e) / (h.norm() * e.norm().clamp(min=1e-12)) for e in items])
                              for h in hidden[:3]])
        expected = 12.0 * cosine + model.output_bias
        scores = model(ids)[0]
        torch.testing.assert_close(scores[2:], expected[2, 2:])  # the session's last item: position 2
        assert (scores[2:] - model.output_bias[2:]).abs().max() <= 12.0 + 1e-4  # bounded by the scale
        loss = torch.nn.functional.cross_entropy(expected[:2], torch.tensor([6, 7]))
        torch.testing.assert_close(model.loss(ids), loss)
    with pytest.raises(ValueError, match="score_scale must be >= 0"):
        ModelConfig(name="gru", item_cardinality=N_ITEMS, score_scale=-1.0)


def test_item_skip_adds_each_positions_own_item_embedding():
    """item_skip: the gpt2 output at t is the plain transformer output + item t's embedding (0 at padding)."""
    from dataclasses import replace

    torch.manual_seed(0)
    config = ModelConfig(name="transformer", item_cardinality=N_ITEMS, hidden_size=16, max_length=6, num_layers=2,
                         item_skip=True, score_scale=10.0)
    model = build_model(config).eval()
    with torch.no_grad():
        skipped = model.sequence_hidden(IDS)
        model.config = replace(config, item_skip=False)
        plain = model.sequence_hidden(IDS)
        plain_scores = model(IDS)
        model.config = config
        torch.testing.assert_close(skipped, plain + model.item_embedding.weight[IDS])
        assert (skipped[IDS == 0] == plain[IDS == 0]).all()  # padding adds nothing
        scores = model(IDS)
    assert not torch.allclose(scores, plain_scores)
    # session [5, 6, 7]: the score of item 7 (the last click) is the scaled cosine with plain + e_7
    expected = 10.0 * torch.nn.functional.cosine_similarity(plain[0, 2] + model.item_embedding.weight[7],
                                                            model.item_embedding.weight[7], dim=0)
    torch.testing.assert_close(scores[0, 7], expected)
    for name, backbone in (("gru", "gpt2"), ("transformer", "bert")):
        with pytest.raises(ValueError, match="item_skip is defined for the causal transformer"):
            ModelConfig(name=name, backbone=backbone, item_cardinality=N_ITEMS, item_skip=True)


@pytest.mark.parametrize("name", ["mlp", "gru", "transformer"])
def test_repeat_bias_adds_r_of_the_click_distance_by_hand(name):
    """repeat_bias: each item clicked d steps before the last click gets + r[d]; re-clicks add up."""
    torch.manual_seed(0)
    config = ModelConfig(name=name, item_cardinality=N_ITEMS, hidden_size=16, max_length=6, repeat_bias=True)
    model = build_model(config).eval()
    r = torch.tensor([1.5, -0.5, 0.25, 2.0, 4.0, 8.0])
    ids = torch.tensor([[2, 3, 2, 4, 0, 0, 0, 0], [9, 0, 0, 0, 0, 0, 0, 0], [0] * 8, [5, 6, 7, 8, 9, 10, 11, 12]])
    with torch.no_grad():
        plain = model(ids)
        model.repeat_bias.copy_(r)
        diff = model(ids) - plain
    expected = torch.zeros_like(diff)
    expected[0, 2], expected[0, 3], expected[0, 4] = r[3] + r[1], r[2], r[0]  # session 2 3 2 4
    expected[1, 9] = r[0]
    expected[3, 7:13] = r.flip(0)  # longer than max_length: 7 … 12 kept, 12 is the last click
    torch.testing.assert_close(diff, expected)  # the empty session keeps the popularity fallback


def test_repeat_bias_loss_equals_the_dense_cross_entropy_with_its_gradient():
    """Training: position t of ``[2, 3, 2, 4]`` adds r[t - k] at item k ≤ t; same loss and r-gradient as dense."""
    torch.manual_seed(0)
    config = ModelConfig(name="gru", item_cardinality=N_ITEMS, hidden_size=16, max_length=6, repeat_bias=True,
                         dropout=0.0)
    model = build_model(config)
    with torch.no_grad():
        model.repeat_bias.copy_(torch.tensor([1.5, -0.5, 0.25, 2.0, 4.0, 8.0]))
    ids = torch.tensor([[2, 3, 2, 4, 0, 0], [7, 7, 8, 0, 0, 0]])
    loss = model.loss(ids)
    (grad,) = torch.autograd.grad(loss, [model.repeat_bias])
    r = model.repeat_bias
    logits = model.logits(model.sequence_hidden(ids)[:, :-1])
    bonus = torch.zeros_like(logits)
    for b, row in enumerate(ids.tolist()):
        for t in range(5):
            for k in range(t + 1):
                if row[k]:
                    bonus[b, t, row[k]] += r[t - k]
    targets = ids[:, 1:]
    keep = targets > 1
    dense = torch.nn.functional.cross_entropy((logits + bonus)[keep], targets[keep])
    torch.testing.assert_close(loss, dense)
    torch.testing.assert_close(grad, torch.autograd.grad(dense, [r])[0])
    assert grad[5].abs() == 0 and grad[:3].abs().min() > 0  # no position is 5 steps after a click
    with pytest.raises(ValueError, match="repeat_bias is defined for causal models"):
        ModelConfig(name="transformer", backbone="bert", item_cardinality=N_ITEMS, repeat_bias=True)


def test_the_base_path_is_ids_only_and_extensions_compose_by_config():
    import inspect

    from sessrec_course.models.torch_base import SessionModel
    from sessrec_course.models.torch_extensions import RepeatBias, RepeatMixture, ScoreScale, extend
    from sessrec_course.models.torch_gru import GRUSessionModel

    for method in (SessionModel.forward, SessionModel.loss, SessionModel.embed, SessionModel.sequence_hidden,
                   GRUSessionModel.sequence_hidden):
        assert "features" not in inspect.signature(method).parameters
    plain = ModelConfig(name="gru", item_cardinality=N_ITEMS, hidden_size=16, max_length=6)
    assert extend(GRUSessionModel, plain) is GRUSessionModel  # no switch, no extension: the model itself
    recipe = ModelConfig(name="gru", item_cardinality=N_ITEMS, hidden_size=16, max_length=6, repeat_bias=True,
                         repeat_mixture=True, score_scale=16.0)
    model = build_model(recipe)
    assert [isinstance(model, c) for c in (RepeatMixture, RepeatBias, ScoreScale)] == [True, False, True]
    assert extend(GRUSessionModel, recipe) is type(model)  # one class per combination
    assert {"repeat_bias", "repeat_gate.weight", "repeat_gate.bias"} <= set(
        model.state_dict())  # the parameter names of the checkpoints written before the extensions moved


def test_extensions_stack_by_hand_repeat_bias_on_scaled_cosines():
    """score_scale + repeat_bias: score = scale · cos(session, item) + bias + r[d] of the item's clicks."""
    torch.manual_seed(0)
    config = ModelConfig(name="gru", item_cardinality=N_ITEMS, hidden_size=16, max_length=6, score_scale=8.0,
                         repeat_bias=True)
    model = build_model(config).eval()
    ids = torch.tensor([[5, 6, 5, 0]])
    with torch.no_grad():
        model.repeat_bias.copy_(torch.tensor([1.5, -0.5, 0.25, 2.0, 4.0, 8.0]))
        model.output_bias.copy_(torch.linspace(-0.5, 0.5, N_ITEMS))
        hidden = model.sequence_hidden(ids)[0, 2]
        cosine = torch.nn.functional.cosine_similarity(hidden[None], model.item_embedding.weight[:N_ITEMS], dim=1)
        expected = 8.0 * cosine + model.output_bias
        expected[5] += 1.5 + 0.25  # clicked at distances 0 and 2
        expected[6] += -0.5
        torch.testing.assert_close(model(ids)[0, 2:], expected[2:])


def test_weight_tying_shares_the_item_embedding():
    tied, untied = make("gru", "gpt2", tie=True), make("gru", "gpt2", tie=False)
    assert tied.output is None and untied.output is not None
    n_tied = sum(p.numel() for p in tied.parameters())
    n_untied = sum(p.numel() for p in untied.parameters())
    assert n_untied - n_tied == N_ITEMS * 16
    with torch.no_grad():
        tied.item_embedding.weight[7] += 1.0  # changing item 7's embedding changes its output score
        before = tied(IDS)[:, 7].clone()
        tied.item_embedding.weight[7] += 1.0
        assert not torch.allclose(tied(IDS)[:, 7], before)


def test_masked_model_puts_mask_after_the_session():
    model = make("transformer", "bert")
    inputs, targets = model.mask_items(torch.tensor([[5, 6, 7, 0]]))
    assert inputs[0, 2] == model.mask_id and targets[0, 2] == 7  # the last item is always masked
    assert inputs[0, 3] == 0 and targets[0, 3] == 0  # padding stays padding, no loss there


def test_attention_weights_hide_padding():
    model = make("transformer", "bert")
    att = model.attention_weights(IDS)
    assert att.shape == (2, 3, 2, 6, 6)
    assert float(att[:, 1, :, :, 1:].abs().max()) == 0.0  # session [9] attends to nothing after it
    torch.testing.assert_close(att.sum(-1), torch.ones_like(att.sum(-1)))


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="backbone"):
        ModelConfig(name="transformer", backbone="gpt5", item_cardinality=10)
    with pytest.raises(ValueError, match="category"):
        build_model(ModelConfig(name="gru", item_cardinality=10, category_cardinality=3),
                    item_category=torch.tensor([0, 0, 5]))


def _mixture_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    config = ModelConfig(name=name, item_cardinality=N_ITEMS, hidden_size=16, max_length=6, repeat_bias=True,
                         repeat_mixture=True, dropout=0.0)
    model = build_model(config)
    with torch.no_grad():
        model.repeat_bias.copy_(torch.tensor([1.5, -0.5, 0.25, 2.0, 4.0, 8.0]))
        model.repeat_gate.weight.normal_()
        model.repeat_gate.bias.fill_(0.3)
    return model


@pytest.mark.parametrize("name", ["mlp", "gru", "transformer"])
def test_repeat_mixture_scores_are_log_probabilities_of_the_mixture_by_hand(name):
    """log p(i) = log(g·q(i) + (1 − g)·softmax(s)_i), q(i) ∝ Σ exp(r[d]) over the clicks of i."""
    model = _mixture_model(name).eval()
    ids = torch.tensor([[2, 3, 2, 4, 0, 0]])
    with torch.no_grad():
        got = model(ids)
        hidden = model.sequence_hidden(ids)[0, 3]
        g = torch.sigmoid(model.repeat_gate(hidden)).squeeze()
        explore = torch.softmax(model.logits(hidden[None]).float()[0], dim=-1)
        r = model.repeat_bias
        w = torch.exp(torch.stack([r[3], r[2], r[1], r[0]]))  # clicks 2 3 2 4 at distances 3 2 1 0
        q = torch.zeros(N_ITEMS)
        q[2], q[3], q[4] = w[0] + w[2], w[1], w[3]
        expected = torch.log(g * q / w.sum() + (1 - g) * explore)
    torch.testing.assert_close(got[0, 2:], expected[2:])
    assert got[0, :2].max() == MASKED_SCORE


def test_repeat_mixture_trains_each_mode_on_its_own_loss_by_hand():
    """Loss of [2 3 2 4]: the softmax's cross-entropy on 3, 2, 4 + the gate's log-loss (re-click? no, yes, no)
    + the mean of −log q(2) over the three cases (only the second is a re-click, of the click 2 steps back)."""
    model = _mixture_model("gru")
    ids = torch.tensor([[2, 3, 2, 4]])
    hidden = model.sequence_hidden(ids)[0, :3]
    softmax_ce = torch.nn.functional.cross_entropy(model.logits(hidden), ids[0, 1:])
    gate = model.repeat_gate(hidden).squeeze(-1)
    gate_loss = torch.nn.functional.binary_cross_entropy_with_logits(gate, torch.tensor([0.0, 1.0, 0.0]))
    r = model.repeat_bias
    log_q = r[1] - torch.logsumexp(torch.stack([r[1], r[0]]), dim=0)  # at t = 1: clicks 2 (d = 1) and 3 (d = 0)
    expected = softmax_ce + gate_loss - log_q / 3
    got = model.loss(ids)
    torch.testing.assert_close(got, expected)
    grads = torch.autograd.grad(got, [model.repeat_bias, model.repeat_gate.weight])
    want = torch.autograd.grad(expected, [model.repeat_bias, model.repeat_gate.weight])
    for a, b in zip(grads, want, strict=True):
        torch.testing.assert_close(a, b)


def test_repeat_mixture_gate_moves_mass_between_re_clicks_and_new_items():
    """A gate near 1 ranks the session's items first by click count (S-POP); near 0 leaves the softmax's order."""
    model = _mixture_model("gru").eval()
    ids = torch.tensor([[7, 9, 7, 0, 0, 0]])
    with torch.no_grad():
        model.repeat_bias.zero_()
        model.repeat_gate.weight.zero_()
        plain = torch.log_softmax(model.logits(model.sequence_hidden(ids)[:, 2]).float(), dim=-1)
        model.repeat_gate.bias.fill_(12.0)
        top = model(ids)[0].topk(2).indices.tolist()
        model.repeat_gate.bias.fill_(-30.0)
        off = model(ids)[0]
    assert top == [7, 9]
    torch.testing.assert_close(off[2:], plain[0, 2:], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="repeat_mixture .* needs repeat_bias=True"):
        ModelConfig(name="gru", item_cardinality=N_ITEMS, repeat_mixture=True)
