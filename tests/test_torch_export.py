"""Export for serving: ONNX gives the eager model's top-k on real sessions."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from torch_helpers import MAX_LENGTH, chain_sessions, write_tiny_dataset  # noqa: E402

from sessrec_course.arrays import pad_right  # noqa: E402
from sessrec_course.models.torch_export import (  # noqa: E402
    check_parity,
    export_onnx,
    exported_scores,
)
from sessrec_course.profiles import get_profile  # noqa: E402
from sessrec_course.training import train_model  # noqa: E402


@pytest.fixture(scope="module")
def sessions() -> np.ndarray:
    import pyarrow as pa

    lists = [s[: 1 + i % 6] for i, s in enumerate(chain_sessions(40, seed=5))]
    lists += [[], [2, 1000], list(range(2, 14))]  # empty, unseen id, longer than max_length
    return pad_right(pa.array(lists, type=pa.list_(pa.int32())), 12)


@pytest.mark.parametrize("name", ["mlp", "gru", "gru+repeat_bias", "transformer", "transformer+item_skip",
                                  "transformer+repeat_bias", "mlp+repeat_mixture", "bert", "xlnet", "hstu"])
def test_export_parity(tmp_path, name, sessions):
    folder = write_tiny_dataset(tmp_path / "data", n_train=80)
    profile = get_profile("ci", hidden_size=16, batch_size=32, epochs=1)
    name, _, flag = name.partition("+")
    overrides = {flag: True, **({"repeat_bias": True} if flag == "repeat_mixture" else {})} if flag else None
    model, _ = train_model(name, folder, profile, cache=False, progress=False, model_overrides=overrides)
    assert model.config.item_skip == (flag == "item_skip")
    assert model.config.repeat_bias == (flag in ("repeat_bias", "repeat_mixture"))
    if flag in ("repeat_bias", "repeat_mixture"):  # large, distinct bonuses so that the export must carry them
        with torch.no_grad():
            model.repeat_bias.copy_(torch.linspace(6.0, -3.0, model.max_length))
            if hasattr(model, "repeat_gate"):  # and a gate that differs from session to session
                model.repeat_gate.weight.normal_(std=3.0)
    ids = sessions
    onnx = export_onnx(model, tmp_path / "model.onnx", MAX_LENGTH)
    result = check_parity(model, onnx, ids, k=20)  # wider than exported, other batch size
    assert result["topk_agreement"] == 1.0 and result["max_abs_diff"] < 1e-4
    assert exported_scores(onnx, ids[:3, :4]).shape == (3, model.n_items)
    assert not list(tmp_path.glob(".model*"))  # no temporary files left
    # the served model stage cuts a batch to its longest session: the ONNX scores must not change
    batch = sessions[:8, :MAX_LENGTH]
    width = int(np.flatnonzero(batch.any(axis=0))[-1]) + 1
    assert width < MAX_LENGTH
    np.testing.assert_allclose(exported_scores(onnx, batch[:, :width]), exported_scores(onnx, batch),
                               rtol=1e-5, atol=1e-5)


def test_parity_check_catches_a_different_model(tmp_path):
    folder = write_tiny_dataset(tmp_path / "data", n_train=80)
    profile = get_profile("ci", hidden_size=16, batch_size=32, epochs=1)
    model, _ = train_model("gru", folder, profile, cache=False, progress=False)
    other, _ = train_model("gru", folder, profile, cache=False, progress=False, seed=3)
    path = export_onnx(other, tmp_path / "other.onnx", MAX_LENGTH)
    ids = np.array([[2, 3, 4, 0], [7, 8, 0, 0]])
    with pytest.raises(AssertionError, match="top-20 differs"):
        check_parity(model, path, ids)
