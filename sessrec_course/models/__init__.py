"""Session models in PyTorch: one short file per model, one shared base, one export module.

Every model maps right-padded item ids ``(B, L)`` (0 = padding) to scores over the whole catalogue
``(B, item_cardinality)``, and is trained with a full-catalogue softmax (cross-entropy).

- :mod:`.config`            ``ModelConfig``, shared by both frameworks (torch-free)
- :mod:`.torch_base`        embeddings (+ category from an item→category buffer), output layer, loss
- :mod:`.torch_mlp`         MLP over the last N items
- :mod:`.torch_gru`         GRU4Rec-style recurrent model trained on every position
- :mod:`.torch_transformer` Hugging Face GPT-2 (causal), BERT and XLNet (masked) backbones
- :mod:`.torch_hstu`        HSTU (pointwise SiLU attention, gating; Zhai et al. 2024), written out
- :mod:`.torch_extensions`  research extensions that compose: repeat bias, RepeatNet, NISER, time features
- :mod:`.torch_export`      ONNX export, parity check, loading a saved model
- :mod:`.keras_build`       ``build_keras_model``: the Keras twins (``keras_*.py``)

Import torch-free names (``ModelConfig``) from here; ``build_model`` imports torch when called.
"""

from __future__ import annotations

from sessrec_course.models.config import BACKBONES, MODEL_NAMES, ModelConfig

__all__ = ["BACKBONES", "MODEL_NAMES", "ModelConfig", "build_model"]


def build_model(config: ModelConfig, item_category=None, extensions: tuple[type, ...] = ()):
    """The untrained torch model for ``config`` (``item_category``: item→category lookup), with ``extensions``
    (mixins such as the benchmark's chunked loss) and those its switches turn on (:mod:`.torch_extensions`)."""
    from sessrec_course.models.torch_extensions import extend

    if config.name == "mlp":
        from sessrec_course.models.torch_mlp import MLPSessionModel as cls
    elif config.name == "gru":
        from sessrec_course.models.torch_gru import GRUSessionModel as cls
    elif config.name == "hstu":
        from sessrec_course.models.torch_hstu import HSTUSessionModel as cls
    else:
        from sessrec_course.models.torch_transformer import TransformerSessionModel as cls
    return extend(cls, config, tuple(extensions))(config, item_category=item_category)
