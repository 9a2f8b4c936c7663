"""Row updates of the id tables: RowAdam's exact steps on tiny tables, its catching up of the rows it did not
read (Keras' Adam with a whole-table L2, in closed form), and a model trained with model.id_updates: rows touching
only the rows its batch read."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from helpers import CONFIG, batch, tiny_model

from config import ConfigError, IdUpdates, ModelConfig
from models.builder import ID_OPTIMIZERS, build_model
from models.layers import ROW_UPDATES_FROM, FactorInteraction, FeatureEncoder, id_table
from models.row_optimizer import RowAdam


def _rows(values, indices, shape=(3, 2)):
    return tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(indices, tf.int64),
                            tf.constant(shape, tf.int64))


def _table():
    return tf.Variable([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])


def test_a_step_moves_only_the_rows_read_by_adams_first_step():
    table, optimizer = _table(), RowAdam(0.1)
    optimizer.apply_gradients([(_rows([[1.0, 1.0], [2.0, -2.0], [1.0, 1.0]], [0, 2, 0]), table)])
    # Row 0 was read twice: its gradient is the sum [2, 2], once. Adam's first step is lr * sign(g) = 0.1.
    np.testing.assert_allclose(table.numpy(), [[0.9, 1.9], [3.0, 4.0], [4.9, 6.1]], rtol=1e-5)
    m, v = optimizer._momentums[0].numpy(), optimizer._velocities[0].numpy()
    np.testing.assert_allclose(m, [[0.2, 0.2], [0.0, 0.0], [0.2, -0.2]], rtol=1e-6)
    np.testing.assert_allclose(v, [[0.004, 0.004], [0.0, 0.0], [0.004, 0.004]], rtol=1e-6)


def _alpha(lr, step):
    return lr * np.sqrt(1 - 0.999 ** step) / (1 - 0.9 ** step)


def test_a_row_not_read_is_left_alone_until_it_is_read_or_settled():
    table, optimizer = _table(), RowAdam(0.1)
    optimizer.apply_gradients([(_rows([[1.0, 1.0]], [0]), table)])
    optimizer.apply_gradients([(_rows([[1.0, 1.0]], [2]), table)])
    np.testing.assert_allclose(table.numpy()[0], [0.9, 1.9], rtol=1e-5)  # not read in step 2: not touched
    np.testing.assert_allclose(optimizer._momentums[0].numpy()[0], [0.1, 0.1], rtol=1e-6)
    # Row 2's first update, in step 2 (no moments to catch up): bias-corrected for step 2.
    np.testing.assert_allclose(table.numpy()[2, 0], 5.0 - _alpha(0.1, 2) * 0.1 / (np.sqrt(0.001) + 1e-7), rtol=1e-5)


def test_settle_carries_a_row_on_by_its_momentum_as_adam_would():
    table, optimizer = _table(), RowAdam(0.1)
    optimizer.apply_gradients([(_rows([[1.0, 1.0]], [0]), table)])  # row 0: m 0.1, v 0.001
    for _ in range(2):
        optimizer.apply_gradients([(_rows([[0.0, 0.0]], [2]), table)])
    optimizer.settle()
    # Two missed steps: alpha_2 x m / sqrt(v) x (r + r^2), r = b1 / sqrt(b2); the moments decay by b1^2, b2^2.
    r = 0.9 / np.sqrt(0.999)
    drift = _alpha(0.1, 2) * 0.1 / (np.sqrt(0.001) + 1e-7) * (r + r ** 2)
    np.testing.assert_allclose(table.numpy()[0], np.array([0.9, 1.9]) - drift, rtol=1e-5)
    np.testing.assert_allclose(optimizer._momentums[0].numpy()[0], [0.081, 0.081], rtol=1e-5)
    np.testing.assert_allclose(optimizer._velocities[0].numpy()[0], [0.001 * 0.999 ** 2] * 2, rtol=1e-5)
    # Keras' Adam stepping the whole table: the same but for its bias correction, alpha_3 = 0.86 alpha_2, in step 3.
    dense, adam = _table(), tf_keras.optimizers.Adam(0.1)
    for gradient in ([[1.0, 1.0], [0, 0], [0, 0]], [[0, 0]] * 3, [[0, 0]] * 3):
        adam.apply_gradients([(tf.constant(gradient, tf.float32), dense)])
    dense_drift = 0.9 - dense.numpy()[0, 0]
    assert abs(drift - dense_drift) < 0.1 * dense_drift


def test_an_l2_pulls_a_row_it_did_not_read_at_adams_pace():
    table, optimizer = _table(), RowAdam(0.1, l2=0.5)
    for _ in range(2):
        optimizer.apply_gradients([(_rows([[0.0, 0.0]], [0]), table)])
    optimizer.settle()
    # Row 1 was never read: no moments, so Adam's L2 step is its largest, lr per step (its sign's).
    np.testing.assert_allclose(table.numpy()[1], [2.8, 3.8], rtol=1e-6)
    dense, adam = _table(), tf_keras.optimizers.Adam(0.1)
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = 0.5 * tf.reduce_sum(dense ** 2)
        adam.apply_gradients([(tape.gradient(loss, dense), dense)])
    np.testing.assert_allclose(table.numpy()[1], dense.numpy()[1], rtol=1e-4)


def test_an_l2_that_would_overshoot_stops_at_zero():
    table, optimizer = tf.Variable([[0.05, -0.05], [1.0, 1.0]]), RowAdam(0.1, l2=0.5)
    for _ in range(3):
        optimizer.apply_gradients([(_rows([[0.0, 0.0]], [1], (2, 2)), table)])
    optimizer.settle()
    np.testing.assert_array_equal(table.numpy()[0], [0.0, 0.0])


def test_a_dense_gradient_updates_every_row():
    table, optimizer = _table(), RowAdam(0.1)
    optimizer.apply_gradients([(tf.constant([[1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]), table)])
    np.testing.assert_allclose(table.numpy(), [[0.9, 2.1], [2.9, 3.9], [5.0, 6.0]], rtol=1e-5)


def test_config_round_trip_and_no_whole_table_weight_decay():
    optimizer = RowAdam(0.01, l2=2.0)
    clone = RowAdam.from_config(optimizer.get_config())
    assert (clone.l2, float(clone.learning_rate)) == (2.0, pytest.approx(0.01))
    assert optimizer.weight_decay is None and not optimizer.jit_compile


def test_a_table_whose_l2_the_optimizer_applies_adds_no_loss():
    table = id_table(ROW_UPDATES_FROM, 2, "user_embedding", l2=0.5, l2_by_optimizer=True)
    table(tf.constant([1, 2]))
    assert table.losses == [] and table.embeddings_regularizer is None
    small = id_table(ROW_UPDATES_FROM - 1, 2, "device_embedding", l2=0.5, l2_by_optimizer=True)
    assert small.embeddings_regularizer is not None  # stepped by Keras' Adam, its L2 a loss term
    whole = id_table(3, 2, "user_embedding", l2=0.5, l2_by_optimizer=False)
    whole(tf.constant([0]))
    whole.set_weights([np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]])])
    np.testing.assert_allclose(float(tf.add_n(whole.losses)), 0.5 * 31)  # every row, whether read or not


def test_each_table_gets_the_l2_of_its_layer():
    model = tiny_model(id_updates="rows", embedding_l2=0.5)
    model(batch(4))
    (table,) = model.id_tables()
    assert model.id_table_l2(table) == 0.5
    encoder = FeatureEncoder({"user": 3}, {"user": 2}, [], embedding_l2=0.1, l2_by_optimizer=True)
    factors = FactorInteraction({"user": 3, "item": 2}, 2, l2=0.1, l2_by_optimizer=True)
    assert encoder.get_config()["l2_by_optimizer"] and factors.get_config()["l2_by_optimizer"]
    optimizer = RowAdam(0.1, l2=lambda v: 2.0 if "item" in v.name else 0.0)
    user, item = tf.Variable(tf.ones([2, 1]), name="user"), tf.Variable(tf.ones([2, 1]), name="item")
    optimizer.apply_gradients([(_rows([[0.0]], [0], (2, 1)), user), (_rows([[0.0]], [0], (2, 1)), item)])
    optimizer.settle()
    np.testing.assert_allclose(user.numpy(), [[1.0], [1.0]])
    # Row 0 read: Adam's first step on the L2's gradient 2 x 2 x 1, lr x its sign; row 1 caught up: at most lr.
    np.testing.assert_allclose(item.numpy(), [[0.9], [0.9]], rtol=1e-5)


def test_a_rows_model_steps_only_the_rows_its_batch_read():
    config = CONFIG.replace(model=dataclasses.replace(CONFIG.model, id_updates="rows"))
    model = build_model(config, {"device": ROW_UPDATES_FROM})
    features = batch(16)
    features["device"] = tf.constant([0, 2] * 8, tf.int64)  # rows 1 and 3 (and all others) are not read
    model.fit(tf.data.Dataset.from_tensors(features), epochs=1, verbose=0)
    before = model.encoder.embeddings["device"].embeddings.numpy()
    model.fit(tf.data.Dataset.from_tensors(features), epochs=1, verbose=0)
    after = model.encoder.embeddings["device"].embeddings.numpy()
    np.testing.assert_array_equal(after[[1, 3]], before[[1, 3]])
    assert np.abs(after[[0, 2]] - before[[0, 2]]).min() > 0
    assert isinstance(model.id_optimizer, RowAdam)
    assert not any("embedding" in v.name for v in model.optimizer.variables)  # Keras' Adam holds no table slots
    small = build_model(config, {"device": 4})
    small.fit(tf.data.Dataset.from_tensors(features), epochs=1, verbose=0)
    assert any("device_embedding" in v.name for v in small.optimizer.variables)  # a small table: Keras' Adam


def test_a_whole_table_model_has_no_row_optimizer_and_every_mode_has_one_entry():
    assert tiny_model().id_optimizer is None
    assert set(ID_OPTIMIZERS) == set(IdUpdates)


def test_row_updates_are_a_config_choice():
    assert ModelConfig(id_updates="rows").id_updates == IdUpdates.ROWS
    with pytest.raises(ConfigError, match="model.id_updates"):
        dataclasses.replace(CONFIG.model, id_updates="lazy")
