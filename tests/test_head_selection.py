"""Per-head model selection: each head keeps the weights of its own best validation epoch."""

import numpy as np
from helpers import CARDINALITIES, CONFIG, batch, tiny_model

from models.builder import build_model
from models.head_selection import BestEpochPerHead, head_models


class _Weights:
    """Stands in for a Keras model: its weights are the epoch number it was trained to."""

    def __init__(self):
        self.epoch, self.stop_training = -1, False

    def get_weights(self):
        return [np.array(self.epoch)]

    def set_weights(self, weights):
        self.epoch = int(weights[0])


def run(losses: dict[str, list[float]], patience: int) -> tuple[BestEpochPerHead, _Weights, int]:
    """Feeds per-epoch validation losses to the callback until it stops training; returns it, the model and the
    number of epochs trained."""
    callback, model = BestEpochPerHead(list(losses), patience), _Weights()
    callback.set_model(model)
    callback.on_train_begin()
    epochs = len(next(iter(losses.values())))
    for epoch in range(epochs):
        model.epoch = epoch
        logs = {f"val_{name}_loss": values[epoch] for name, values in losses.items()}
        logs["val_loss"] = sum(logs.values())
        callback.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback.on_train_end()
    return callback, model, epoch + 1


def test_each_head_keeps_its_own_best_epoch_and_the_model_the_best_total():
    # conversion peaks at epoch 1 and then overfits; click improves until epoch 4; total is best at epoch 1.
    callback, model, trained = run({"click": [0.50, 0.49, 0.485, 0.482, 0.481, 0.483, 0.49, 0.50],
                                    "conversion": [0.40, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60]}, patience=2)
    assert callback.best_epochs == {"click": 4, "conversion": 1}
    assert trained == 7  # stopped 2 epochs after the last improvement of any head (click, epoch 4)
    assert callback.kept_epoch == 1 and model.epoch == 1  # restored to the best total validation loss
    assert {name: int(w[0]) for name, w in callback.head_weights.items()} == {"click": 4}
    assert callback.summary() == "serving conversion from epoch 2; click from epoch 5"


def test_heads_that_peak_with_the_total_need_no_copy():
    callback, model, _ = run({"click": [0.5, 0.4, 0.45, 0.46], "interest": [1.0, 0.9, 0.95, 0.97]}, patience=2)
    assert callback.head_weights == {} and model.epoch == 1


def test_patience_zero_stops_at_the_first_epoch_without_improvement():
    _, _, trained = run({"click": [0.5, 0.4, 0.45, 0.3]}, patience=0)
    assert trained == 3


def test_a_copy_per_distinct_epoch_serves_the_heads_that_peaked_there():
    model = tiny_model()
    model(batch())
    weights = [w + 1.0 for w in model.get_weights()]
    copies = head_models(tiny_model, {"click": weights, "interest": weights}, batch())
    assert copies["click"] is copies["interest"]
    for copy_weight, expected in zip(copies["click"].get_weights(), weights, strict=True):
        np.testing.assert_array_equal(copy_weight, expected)
    assert not np.allclose(copies["click"](batch())["click"], model(batch())["click"])


def test_dense_weight_copies_leave_the_id_tables_to_the_restored_model():
    model = tiny_model()
    model(batch())
    epoch_0 = [w.copy() for w in model.get_weights()]
    callback = BestEpochPerHead(["click", "watch_time", "interest"], patience=2, copy_id_tables=False)
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_end(0, {"val_click_loss": 1.0, "val_watch_time_loss": 1.0, "val_interest_loss": 1.0,
                              "val_loss": 3.0})
    for variable in model.weights:
        variable.assign(variable + 1.0)
    callback.on_epoch_end(1, {"val_click_loss": 0.5, "val_watch_time_loss": 2.0, "val_interest_loss": 2.0,
                              "val_loss": 4.5})  # click's best epoch; the total's best stays epoch 0
    callback.on_train_end()
    for restored, expected in zip(model.get_weights(), epoch_0, strict=True):
        np.testing.assert_array_equal(restored, expected)
    tables = {id(v) for v in model.id_tables()}
    click = callback.head_weights["click"]
    assert [w is None for w in click] == [id(v) in tables for v in model.weights] and tables

    copy = head_models(lambda: build_model(CONFIG, CARDINALITIES, id_layers_from=model), callback.head_weights,
                       batch())["click"]
    assert copy.encoder is model.encoder and copy.towers["click"] is not model.towers["click"]
    for variable, original in zip(copy.weights, epoch_0, strict=True):
        shift = 0.0 if id(variable) in tables else 1.0  # the tables: the restored epoch's; the rest: epoch 1's
        np.testing.assert_allclose(variable.numpy(), original + shift, rtol=1e-6)


def test_dense_weight_copies_of_a_text_model_share_its_text_encoder_and_leave_the_restored_model_intact():
    import tensorflow as tf
    import tf_keras

    from config import PipelineConfig

    config = PipelineConfig.from_dict({
        "name": "tiny-assistant",
        "features": [{"name": "text", "kind": "text", "max_tokens": 4, "embedding_dim": 4, "encoder": "cnn",
                      "encoder_units": 4, "sharing": "by_level"}],
        "tasks": [{"name": "intent", "type": "multiclass", "label_key": "intent", "classes": ["a", "b", "c"]},
                  {"name": "slots", "type": "sequence_labeling", "label_key": "slots", "text_feature": "text",
                   "classes": ["date", "city"]}],
        "model": {"head_copies": "dense_weights"}})
    tf_keras.utils.set_random_seed(0)
    features = {"text": tf.constant([[3, 5, 1, 0], [2, 0, 0, 0]], tf.int64)}
    model = build_model(config, {"text": 10})
    model(features)
    callback = BestEpochPerHead(["intent", "slots"], patience=2, copy_id_tables=False)
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_end(0, {"val_intent_loss": 1.0, "val_slots_loss": 1.0, "val_loss": 2.0})
    epoch_0 = [w.copy() for w in model.get_weights()]
    for variable in model.weights:
        variable.assign(variable + 1.0)
    callback.on_epoch_end(1, {"val_intent_loss": 2.0, "val_slots_loss": 0.5, "val_loss": 2.5})  # slots' best
    callback.on_train_end()
    shared = {id(v) for v in model.text_encoders["text"].weights}
    assert [w is None for w in callback.head_weights["slots"]] == [id(v) in shared for v in model.weights]

    copy = head_models(lambda: build_model(config, {"text": 10}, id_layers_from=model), callback.head_weights,
                       features)["slots"]
    for restored, expected in zip(model.get_weights(), epoch_0, strict=True):  # nothing written into the shared
        np.testing.assert_array_equal(restored, expected)
    assert copy.text_encoders["text"] is model.text_encoders["text"]
    for variable, original in zip(copy.weights, epoch_0, strict=True):
        shift = 0.0 if id(variable) in shared else 1.0  # text encoder: the restored epoch's; the rest: epoch 1's
        np.testing.assert_allclose(variable.numpy(), original + shift, rtol=1e-6)
