"""Layers' get_config round trips, and the multi-task model's masked training behaviour."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from models.layers import MLP, DotInteraction, FeatureEncoder
from models.multitask_model import MultiTaskModel
from models.tasks import make_tasks
from models.zoo import make_architecture
from models.zoo.shared_bottom import SharedBottom
from pipeline.config import ModelConfig, PipelineConfig

CONFIG = PipelineConfig.from_dict({
    "name": "tiny",
    "features": [{"name": "device", "kind": "vocabulary", "embedding_dim": 3}, {"name": "price", "kind": "zscore"}],
    "tasks": [{"name": "click", "type": "binary", "label_key": "click", "tower": [4]},
              {"name": "watch_time", "type": "regression", "label_key": "watch_time", "tower": [4]},
              {"name": "interest", "type": "multiclass", "label_key": "interest", "num_classes": 3}],
    "model": {"shared_layers": [8]},
})


def _batch(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "device": tf.constant(rng.integers(0, 3, n)), "price": tf.constant(rng.normal(size=n), tf.float32),
        "click_label": tf.constant(rng.integers(0, 2, n), tf.float32), "click_weight": tf.ones([n]),
        "watch_time_label": tf.constant(rng.gamma(2.0, 1.0, n), tf.float32),
        "watch_time_weight": tf.constant(rng.integers(0, 2, n), tf.float32),
        "interest_label": tf.constant(rng.integers(0, 3, n)), "interest_weight": tf.ones([n]),
    }


def _model(**model_changes):
    """An unbuilt, compiled model of CONFIG with ``model_changes`` to its model config."""
    tf_keras.utils.set_random_seed(0)
    config = CONFIG.replace(model=dataclasses.replace(CONFIG.model, **model_changes))
    model = MultiTaskModel(config, make_tasks(config), {"device": 4})
    model.compile(optimizer=tf_keras.optimizers.Adam(0.05))
    return model


def assert_training_reduces_every_task_loss(model, steps=60):
    dataset = tf.data.Dataset.from_tensors(_batch(64)).repeat()
    before = model.evaluate(dataset, steps=1, return_dict=True, verbose=0)
    model.fit(dataset, steps_per_epoch=steps, verbose=0)
    after = model.evaluate(dataset, steps=1, return_dict=True, verbose=0)
    for name in ("click_loss", "watch_time_loss", "interest_loss"):
        assert after[name] < before[name], name


@pytest.mark.parametrize("layer", [
    FeatureEncoder({"device": 4}, {"device": 3}, ["price"], name="enc"),
    FeatureEncoder({"user": 3, "item": 2}, {"user": 2, "item": 2}, [], dot_interaction=["user", "item"]),
    DotInteraction(name="dot"),
    MLP([8, 4], name="mlp"),
    SharedBottom(["a", "b"], [8], name="sb"),
])
def test_get_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_dot_interaction_gives_each_pair_its_dot_product():
    a, b, c = tf.constant([[1.0, 2.0]]), tf.constant([[3.0, 4.0]]), tf.constant([[0.0, -1.0]])
    np.testing.assert_allclose(DotInteraction()([a, b, c]).numpy(), [[11.0, -2.0, -4.0]])


def test_encoder_appends_the_dot_product_of_the_named_embeddings():
    encoder = FeatureEncoder({"user": 3, "item": 2}, {"user": 2, "item": 2}, ["price"],
                             dot_interaction=["user", "item"])
    features = {"user": tf.constant([2, 0]), "item": tf.constant([1, 1]), "price": tf.constant([0.5, -1.0])}
    encoded = encoder(features).numpy()
    user = encoder.embeddings["user"].embeddings.numpy()[[2, 0]]
    item = encoder.embeddings["item"].embeddings.numpy()[[1, 1]]
    assert encoded.shape == (2, 2 + 2 + 1 + 1)  # item, user embeddings (sorted), price, user . item
    np.testing.assert_allclose(encoded[:, :4], np.concatenate([item, user], axis=1))
    np.testing.assert_allclose(encoded[:, 4], [0.5, -1.0])
    np.testing.assert_allclose(encoded[:, 5], (user * item).sum(axis=1), rtol=1e-6)


def test_architecture_from_config_and_unknown_name():
    assert isinstance(make_architecture(CONFIG.model, ["click"]), SharedBottom)
    with pytest.raises(ValueError, match="model.architecture 'transformer' not in"):
        make_architecture(ModelConfig(architecture="transformer"), ["click"])


def test_outputs_one_prediction_per_task():
    outputs = _model()(_batch())
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {"click": (16,), "watch_time": (16,),
                                                                "interest": (16, 3)}


def test_missing_labels_do_not_change_the_gradient():
    model = _model()
    batch = _batch()
    model(batch)
    changed = dict(batch, watch_time_label=tf.where(batch["watch_time_weight"] > 0, batch["watch_time_label"], 99.0))

    def gradients(features):
        with tf.GradientTape() as tape:
            loss = model.total_loss(model.task_losses(features, model(features, training=True)))
        return tape.gradient(loss, model.trainable_variables)

    for a, b in zip(gradients(batch), gradients(changed), strict=True):
        np.testing.assert_allclose(tf.convert_to_tensor(a), tf.convert_to_tensor(b), rtol=1e-6)


def test_per_example_normalization_weighs_each_task_by_the_share_of_the_batch_with_its_label():
    batch = _batch()  # every click and interest label present, about half the watch times
    share = float(tf.reduce_mean(batch["watch_time_weight"]))
    assert 0.0 < share < 1.0
    model = _model(loss_normalization="per_example")
    losses = model.task_losses(batch, model(batch))
    objective = model.objective_losses(batch, losses)
    assert {k: float(v) for k, v in objective.items()} == pytest.approx(
        {"click": float(losses["click"]), "interest": float(losses["interest"]),
         "watch_time": share * float(losses["watch_time"])})
    assert _model().objective_losses(batch, losses) is losses  # per_label: the means, unchanged


def test_per_example_normalization_trains_every_task():
    assert_training_reduces_every_task_loss(_model(loss_normalization="per_example"))


def test_training_reduces_every_task_loss():
    assert_training_reduces_every_task_loss(_model())


def test_fit_builds_an_unbuilt_model():
    model = _model()
    history = model.fit(tf.data.Dataset.from_tensors(_batch(32)).repeat(), steps_per_epoch=3, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
