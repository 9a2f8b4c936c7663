"""Helpers shared by the test modules: a tiny three-task config, batches for it, a check that training lowers
every task's loss, and the size of the good_logs fixture."""

import dataclasses

import numpy as np
import tensorflow as tf
import tf_keras

from config import PipelineConfig
from models.builder import build_model

CONFIG = PipelineConfig.from_dict({
    "name": "tiny",
    "features": [{"name": "device", "kind": "vocabulary", "embedding_dim": 3}, {"name": "price", "kind": "zscore"}],
    "tasks": [{"name": "click", "type": "binary", "label_key": "click", "tower": [4]},
              {"name": "watch_time", "type": "regression", "label_key": "watch_time", "tower": [4]},
              {"name": "interest", "type": "multiclass", "label_key": "interest", "num_classes": 3}],
    "model": {"shared_layers": [8], "learning_rate": 0.05},
})
CARDINALITIES = {"device": 4}
GOOD_LOG_EVENTS = 300  # events in the good_logs fixture's span (conftest.py)


def batch(n=16, seed=0) -> dict[str, tf.Tensor]:
    """A transformed batch of CONFIG's features, labels and weights (about half the watch times missing)."""
    rng = np.random.default_rng(seed)
    return {
        "device": tf.constant(rng.integers(0, 3, n)), "price": tf.constant(rng.normal(size=n), tf.float32),
        "click_label": tf.constant(rng.integers(0, 2, n), tf.float32), "click_weight": tf.ones([n]),
        "watch_time_label": tf.constant(rng.gamma(2.0, 1.0, n), tf.float32),
        "watch_time_weight": tf.constant(rng.integers(0, 2, n), tf.float32),
        "interest_label": tf.constant(rng.integers(0, 3, n)), "interest_weight": tf.ones([n]),
    }


def tiny_model(config: PipelineConfig = CONFIG, **model_changes):
    """An unbuilt, compiled model of ``config`` (Adam, learning rate 0.05) with ``model_changes`` to its model."""
    tf_keras.utils.set_random_seed(0)
    config = config.replace(model=dataclasses.replace(config.model, **model_changes))
    return build_model(config, CARDINALITIES)


def assert_training_reduces_every_task_loss(model, steps=60):
    dataset = tf.data.Dataset.from_tensors(batch(64)).repeat()
    before = model.evaluate(dataset, steps=1, return_dict=True, verbose=0)
    model.fit(dataset, steps_per_epoch=steps, verbose=0)
    after = model.evaluate(dataset, steps=1, return_dict=True, verbose=0)
    for name in ("click_loss", "watch_time_loss", "interest_loss"):
        assert after[name] < before[name], name


def transformed_examples_schema():
    """The schema of CONFIG's transformed examples (as Transform writes it: one value per feature and example)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    for name, value in batch(1).items():
        feature = schema.feature.add(name=name, type=schema_pb2.INT if value.dtype == tf.int64 else schema_pb2.FLOAT)
        feature.shape.SetInParent()
        feature.presence.min_fraction = 1.0
    return schema


def write_transformed_examples(folder, n=512, shards=2, seed=0) -> None:
    """``n`` of CONFIG's transformed examples (``batch(n, seed)``) as gzip TFRecords part-K.gz in ``folder``."""
    from data.writer import write_examples

    columns = {name: value.numpy() for name, value in batch(n, seed).items()}
    for shard in range(shards):
        write_examples(columns, f"{folder}/part-{shard}.gz", rows=range(shard, n, shards))
