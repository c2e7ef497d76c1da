"""HSTU (models/torch_hstu.py): shapes, causality, padding, and the layer against a loop over the paper's equations."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from sessrec_course.models import ModelConfig, build_model  # noqa: E402

N_ITEMS, HIDDEN, MAX_LENGTH = 30, 8, 6
IDS = torch.tensor([[5, 6, 7, 0, 0, 0], [9, 0, 0, 0, 0, 0], [3, 4, 1, 6, 7, 8]])  # row 3 holds an OOV click


def make(**overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    config = ModelConfig(**{"name": "hstu", "item_cardinality": N_ITEMS, "hidden_size": HIDDEN,
                            "max_length": MAX_LENGTH, "num_layers": 2, "num_heads": 2, "dropout": 0.0, **overrides})
    model = build_model(config).eval()
    with torch.no_grad():  # a visible bias per distance and skewed norms, so that a wrong index or axis shows
        for layer in model.layers:
            layer.rab.copy_(torch.linspace(1.0, -1.0, MAX_LENGTH))
            layer.norm_av.weight.uniform_(0.5, 1.5)
    return model


def test_shapes_and_an_empty_session_is_finite():
    model = make()
    with torch.no_grad():
        hidden = model.sequence_hidden(IDS)
        scores = model(IDS)
        empty = model(torch.zeros(2, 4, dtype=torch.long))
    assert hidden.shape == (3, MAX_LENGTH, HIDDEN) and scores.shape == (3, N_ITEMS)
    assert torch.isfinite(hidden).all() and torch.isfinite(empty).all()
    torch.testing.assert_close(empty[0, 2:], model.output_bias[2:])  # nothing to read: the learnt popularity


def test_a_later_click_never_changes_an_earlier_position():
    model = make()
    ids = torch.tensor([[4, 9, 2, 7, 5, 3]])
    with torch.no_grad():
        base = model.sequence_hidden(ids)
        for t in range(1, ids.shape[1]):
            changed = ids.clone()
            changed[0, t] = 11
            other = model.sequence_hidden(changed)
            torch.testing.assert_close(other[:, :t], base[:, :t], rtol=0, atol=0)
            assert not torch.allclose(other[:, t], base[:, t])  # the click itself does count from there on


def test_padding_changes_nothing_at_the_clicks():
    model = make()
    with torch.no_grad():
        short = model.sequence_hidden(IDS[:, :3])
        padded = model.sequence_hidden(torch.cat([IDS[:, :3], torch.zeros(3, 3, dtype=torch.long)], dim=1))
        scores = model(IDS)
        wider = model(torch.cat([IDS, torch.zeros(3, 4, dtype=torch.long)], dim=1))
    clicks = IDS[:, :3] != 0
    torch.testing.assert_close(padded[:, :3][clicks], short[clicks], rtol=0, atol=1e-6)
    torch.testing.assert_close(wider, scores, rtol=0, atol=1e-6)


def by_hand(layer: torch.nn.Module, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The paper's layer, one (session, head, query) at a time: a loop over the keys each query may read."""
    batch, length, hidden = x.shape
    heads, d = layer.heads, hidden // layer.heads
    u, v, q, k = F.silu(layer.f1(layer.norm_x(x))).split(hidden, dim=-1)
    av = torch.zeros(batch, length, hidden)
    for b in range(batch):
        for h in range(heads):
            part = slice(h * d, (h + 1) * d)
            for i in range(length):
                if ids[b, i] == 0:
                    continue  # padding reads nothing
                for j in range(i + 1):  # causal: keys up to and including the query
                    if ids[b, j] != 0:
                        score = q[b, i, part] @ k[b, j, part] / d**0.5 + layer.rab[min(i - j, layer.max_length - 1)]
                        av[b, i, part] += F.silu(score) / layer.max_length * v[b, j, part]
    return x + layer.f2(layer.norm_av(av) * u)


def test_the_layer_equals_the_equations_written_as_loops():
    model = make()
    torch.manual_seed(1)
    x = torch.randn(3, MAX_LENGTH, HIDDEN)
    with torch.no_grad():
        for layer in model.layers:
            torch.testing.assert_close(layer(x, model.keep(IDS)), by_hand(layer, x, IDS), rtol=1e-5, atol=1e-5)


def test_pointwise_weights_keep_how_many_clicks_were_relevant():
    """Softmax would give a query the same output for one matching click or three; SiLU attention adds them up."""
    layer = make(num_heads=1).layers[0]
    q = torch.ones(1, 1, 4, 2)
    k = torch.tensor([[[[3.0, 3.0], [3.0, 3.0], [3.0, 3.0], [3.0, 3.0]]]])
    v = torch.tensor([[[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]]])
    keep = torch.ones(4, 4, dtype=torch.bool).tril()[None, None]
    with torch.no_grad():
        layer.rab.zero_()
        read = (layer.attention(q, k, keep) @ v)[0, 0, :, 0]
    torch.testing.assert_close(read, read[0] * torch.arange(1, 5.0))  # 1, 2, 3, 4 matching clicks


def test_config_errors_are_named():
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        make(hidden_size=9, num_heads=2)
    with pytest.raises(ValueError, match="item_skip is defined for the causal transformer"):
        ModelConfig(name="hstu", item_cardinality=N_ITEMS, item_skip=True)
    assert ModelConfig(name="hstu", item_cardinality=N_ITEMS).causal
