"""The GTC'23 tutorial's Merlin Models 23.12 MLP, RNN and Transformer (TensorFlow 2.12, the Merlin kernel)."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from sessrec_course.etl.nvtabular_workflow import ITEMS, course_layout, from_course_ids, quiet


def import_merlin_models() -> Any:
    """Import ``merlin.models.tf`` with TensorFlow's C++ log and Merlin's CPU notices silenced."""
    if "tensorflow" in sys.modules and sys.modules["tensorflow"] is None:
        raise RuntimeError("TensorFlow is off in this process (nvtabular_workflow.skip_tensorflow): "
                           "import merlin.models.tf before NVTabular or Transformers4Rec: restart the kernel")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # oneDNN / CUDA-not-found lines on every import
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # merlin-models' import notes on moved TF modules
    quiet("The initializer TruncatedNormal is unseeded")  # Keras, on the initializers of the TF XLNet
    import merlin.models.tf as mm

    return mm


def fresh_keras(seed: int) -> Any:
    """``merlin.models.tf`` with a fresh, seeded Keras state: each model starts as after the tutorial's kernel restart."""
    mm = import_merlin_models()
    import tensorflow as tf

    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(seed)
    return mm


def dataset(data_dir: str | Path, split: str, columns: tuple[str, ...] = (ITEMS,)) -> Any:
    """NVTabular's ``data_dir/split`` as a ``Dataset`` of ``columns``, its lists tagged SEQUENCE."""
    import_merlin_models()
    from merlin.io import Dataset
    from merlin.schema import Schema, Tags

    data = Dataset(str(Path(data_dir) / split), engine="parquet", cpu=True)
    narrowed = data.schema.select_by_name(list(columns))
    data.schema = Schema([col.with_tags([Tags.SEQUENCE]) if col.is_list else col for col in narrowed])
    return data


def mlp_model(schema: Any, dim: int = 64, seed: int = 42) -> Any:
    """The tutorial's MLP: the mean of the session's item embeddings → MLPBlock → softmax over all items."""
    mm = fresh_keras(seed)
    from merlin.schema import Tags

    embeddings = mm.Embeddings(schema.select_by_tag(Tags.CATEGORICAL), sequence_combiner="mean", dim=dim)
    input_block = mm.InputBlockV2(schema, categorical=embeddings)
    mlp_block = mm.MLPBlock([128, dim], no_activation_last_layer=True)
    prediction_task = mm.CategoricalOutput(schema.select_by_name(ITEMS), default_loss="categorical_crossentropy")
    return mm.Model(input_block, mlp_block, prediction_task)


def rnn_model(schema: Any, dim: int = 64, seed: int = 42) -> Any:
    """The tutorial's RNN with a GRU (the course's RNN; the tutorial used an LSTM): embeddings per click → GRU → MLP."""
    mm = fresh_keras(seed)
    import tensorflow as tf
    from merlin.schema import Tags

    embeddings = mm.Embeddings(schema.select_by_tag(Tags.CATEGORICAL), sequence_combiner=None, dim=dim)
    input_block = mm.InputBlockV2(schema, embeddings=embeddings)
    rnn_layer = tf.keras.layers.GRU(dim, return_sequences=False)
    mlp_block = mm.MLPBlock([128, dim], activation="relu", no_activation_last_layer=True)
    prediction_task = mm.CategoricalOutput(schema.select_by_name(ITEMS), default_loss="categorical_crossentropy")
    return mm.Model(input_block, rnn_layer, mlp_block, prediction_task)


def transformer_model(schema: Any, dim: int = 64, n_head: int = 2, n_layer: int = 2, attn_type: str = "uni",
                      seed: int = 42) -> tuple[Any, Any]:
    """The tutorial's Transformer (embeddings → MLP → XLNetBlock → MLP → tied output) and its XLNet block;
    ``attn_type="uni"`` is causal (XLNet's default ``"bi"`` would read the next click, the target)."""
    mm = fresh_keras(seed)
    from merlin.schema import Tags

    embeddings = mm.Embeddings(schema.select_by_tag(Tags.CATEGORICAL), sequence_combiner=None, dim=dim)
    input_block = mm.InputBlockV2(schema, embeddings=embeddings)
    mlp_block = mm.MLPBlock([128, dim], activation="relu", no_activation_last_layer=True)
    xlnet_block = mm.XLNetBlock(d_model=dim, n_head=n_head, n_layer=n_layer, attn_type=attn_type)
    dense_block = mm.SequentialBlock(input_block, mlp_block, xlnet_block)
    mlp_block2 = mm.MLPBlock([128, dim], activation="relu", no_activation_last_layer=True)
    item_id_name = schema.select_by_tag(Tags.ITEM_ID).first.properties["domain"]["name"]
    prediction_task = mm.CategoricalOutput(to_call=input_block["categorical"][item_id_name])
    return mm.Model(dense_block, mlp_block2, prediction_task), xlnet_block


def train_and_evaluate(model: Any, train: Any, test: Any, transformer: Any = None, epochs: int = 1,
                       batch_size: int = 256, learning_rate: float = 5e-3, ks: tuple[int, ...] = (10, 20),
                       run_eagerly: bool = False) -> dict[str, Any]:
    """``model.compile/fit/evaluate`` as the tutorial does; the training seconds and Merlin's own metrics."""
    mm = import_merlin_models()
    import tensorflow as tf
    from merlin.schema import Tags

    seq_schema = train.schema.select_by_tag(Tags.SEQUENCE)
    fit_pre = (mm.SequencePredictLast(schema=seq_schema, target=ITEMS) if transformer is None
               else mm.SequencePredictNext(schema=seq_schema, target=ITEMS, transformer=transformer))
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate), run_eagerly=run_eagerly,
                  loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True),
                  metrics=mm.TopKMetricsAggregator.default_metrics(top_ks=list(ks)))
    start = time.perf_counter()
    model.fit(train, epochs=epochs, batch_size=batch_size, pre=fit_pre, verbose=0)
    train_s = time.perf_counter() - start
    predict_last = mm.SequencePredictLast(schema=seq_schema, target=ITEMS, transformer=transformer)
    raw = model.evaluate(test, batch_size=batch_size, pre=predict_last, return_dict=True, verbose=0)
    metrics = {label + key[len(prefix):]: float(value) for key, value in raw.items()  # Recall@20...
               for prefix, label in (("recall_at_", "Recall@"), ("mrr_at_", "MRR@"))
               if key.startswith(prefix)}
    return {"train_s": train_s, "merlin": metrics, "raw": {k: float(v) for k, v in raw.items()}}


class MerlinModelsRecommender:
    """A trained Merlin Models model behind the course's ``score(prefixes) -> (B, n_items)`` protocol (course ids)."""

    def __init__(self, model: Any, max_length: int = 20) -> None:
        self.model, self.max_length = model, max_length

    def nvt_scores(self, prefixes: np.ndarray) -> np.ndarray:
        """Scores of every NVTabular id (0 padding, 1 null, 2 OOV, items from 3) after each course-id prefix."""
        import tensorflow as tf

        ids = from_course_ids(prefixes)[:, -self.max_length:]
        ragged = tf.RaggedTensor.from_row_lengths(ids[ids != 0].astype(np.int64)[:, None], (ids != 0).sum(1))
        return self.model({ITEMS: ragged}, training=False).numpy()

    def score(self, prefixes: np.ndarray) -> np.ndarray:
        """Scores in the course's layout after each prefix (the protocol of the course's ``evaluate``)."""
        return course_layout(self.nvt_scores(prefixes))
