"""Row updates of the id tables: RowAdam's exact steps on tiny tables, its lazy decay, the per-lookup L2, and a
model trained with model.id_updates: rows touching only the rows its batch read."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from helpers import CONFIG, batch, tiny_model

from config import ConfigError, IdUpdates, ModelConfig
from models.builder import ID_OPTIMIZERS
from models.layers import FactorInteraction, FeatureEncoder, id_table
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


def test_a_row_not_read_keeps_its_moments_unlike_kerass_adam():
    table, optimizer = _table(), RowAdam(0.1)
    optimizer.apply_gradients([(_rows([[1.0, 1.0]], [0]), table)])
    optimizer.apply_gradients([(_rows([[1.0, 1.0]], [2]), table)])
    # Row 0 is not read in step 2: no momentum step, no moment decay (Keras' Adam would move it by ~0.09).
    np.testing.assert_allclose(table.numpy()[0], [0.9, 1.9], rtol=1e-5)
    np.testing.assert_allclose(optimizer._momentums[0].numpy()[0], [0.1, 0.1], rtol=1e-6)
    # Row 2's first update in step 2, bias-corrected for step 2: lr * sqrt(1 - b2^2) / (1 - b1^2) * m / sqrt(v).
    m, v = 0.1, 0.001
    expected = 5.0 - 0.1 * np.sqrt(1 - 0.999 ** 2) / (1 - 0.9 ** 2) * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(table.numpy()[2, 0], expected, rtol=1e-5)


def test_decay_is_paid_at_the_next_update_and_by_settle():
    table, optimizer = _table(), RowAdam(0.1, weight_decay=0.5)  # each step shrinks a row by 1 - 0.1 * 0.5
    optimizer.apply_gradients([(_rows([[1.0, 1.0], [2.0, -2.0], [1.0, 1.0]], [0, 2, 0]), table)])
    np.testing.assert_allclose(table.numpy(), [[0.85, 1.8], [3.0, 4.0], [4.65, 5.8]], rtol=1e-5)
    optimizer.apply_gradients([(_rows([[1.0, 1.0]], [2]), table)])
    row_2 = table.numpy()[2]
    optimizer.settle()  # row 0 missed step 2, row 1 both steps; row 2 is up to date
    np.testing.assert_allclose(table.numpy(), [[0.85 * 0.95, 1.8 * 0.95], [3.0 * 0.95 ** 2, 4.0 * 0.95 ** 2], row_2],
                               rtol=1e-5)
    settled = table.numpy()
    optimizer.settle()
    np.testing.assert_allclose(table.numpy(), settled)  # idempotent


def test_lazy_decay_equals_a_decay_of_every_row_at_every_step():
    lazy, optimizer = _table(), RowAdam(0.1, weight_decay=0.5)
    dense = _table()
    for step in range(4):
        optimizer.apply_gradients([(_rows([[0.0, 0.0]], [step % 2]), lazy)])  # zero gradients: decay alone
        dense.assign(dense * 0.95)
    optimizer.settle()
    np.testing.assert_allclose(lazy.numpy(), dense.numpy(), rtol=1e-6)


def test_a_dense_gradient_updates_every_row():
    table, optimizer = _table(), RowAdam(0.1)
    optimizer.apply_gradients([(tf.constant([[1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]), table)])
    np.testing.assert_allclose(table.numpy(), [[0.9, 2.1], [2.9, 3.9], [5.0, 6.0]], rtol=1e-5)


def test_config_round_trip_and_no_whole_table_weight_decay():
    optimizer = RowAdam(0.01, weight_decay=2.0)
    clone = RowAdam.from_config(optimizer.get_config())
    assert (clone.row_decay, float(clone.learning_rate)) == (2.0, pytest.approx(0.01))
    assert optimizer.weight_decay is None and not optimizer.jit_compile


def test_a_table_whose_l2_is_a_decay_adds_no_loss():
    table = id_table(3, 2, "user_embedding", l2=0.5, l2_as_decay=True)
    table(tf.constant([1, 2]))
    assert table.losses == [] and table.embeddings_regularizer is None
    whole = id_table(3, 2, "user_embedding", l2=0.5, l2_as_decay=False)
    whole(tf.constant([0]))
    whole.set_weights([np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]])])
    np.testing.assert_allclose(float(tf.add_n(whole.losses)), 0.5 * 31)  # every row, whether read or not


def test_each_table_decays_by_the_l2_of_its_layer():
    model = tiny_model(id_updates="rows", embedding_l2=0.5)
    model(batch(4))
    (table,) = model.id_tables()
    assert model.id_table_l2(table) == 0.5
    encoder = FeatureEncoder({"user": 3}, {"user": 2}, [], embedding_l2=0.1, l2_as_decay=True)
    factors = FactorInteraction({"user": 3, "item": 2}, 2, l2=0.1, l2_as_decay=True)
    assert encoder.get_config()["l2_as_decay"] and factors.get_config()["l2_as_decay"]
    optimizer = RowAdam(0.1, weight_decay=lambda v: 2.0 if "item" in v.name else 0.0)
    user, item = tf.Variable(tf.ones([2, 1]), name="user"), tf.Variable(tf.ones([2, 1]), name="item")
    optimizer.apply_gradients([(_rows([[0.0]], [0], (2, 1)), user), (_rows([[0.0]], [0], (2, 1)), item)])
    optimizer.settle()
    np.testing.assert_allclose(user.numpy(), [[1.0], [1.0]])
    np.testing.assert_allclose(item.numpy(), [[0.8], [0.8]], rtol=1e-6)  # 1 - 0.1 x 2, read or not


def test_a_rows_model_steps_only_the_rows_its_batch_read():
    model = tiny_model(id_updates="rows", embedding_l2=0.0)
    features = batch(16)
    features["device"] = tf.constant([0, 2] * 8, tf.int64)  # row 1 and the OOV row 3 are not read
    model.fit(tf.data.Dataset.from_tensors(features), epochs=1, verbose=0)
    before = model.encoder.embeddings["device"].embeddings.numpy()
    model.fit(tf.data.Dataset.from_tensors(features), epochs=1, verbose=0)
    after = model.encoder.embeddings["device"].embeddings.numpy()
    np.testing.assert_array_equal(after[[1, 3]], before[[1, 3]])
    assert np.abs(after[[0, 2]] - before[[0, 2]]).min() > 0
    assert isinstance(model.id_optimizer, RowAdam)
    adam_slots = {v.name for v in model.optimizer.variables}
    assert not any("embedding" in name for name in adam_slots)  # the dense Adam holds no table slots


def test_a_whole_table_model_has_no_row_optimizer_and_every_mode_has_one_entry():
    assert tiny_model().id_optimizer is None
    assert set(ID_OPTIMIZERS) == set(IdUpdates)


def test_a_decay_of_a_whole_row_per_step_is_refused():
    with pytest.raises(ConfigError, match="a row's decay per step"):
        dataclasses.replace(CONFIG.model, id_updates="rows", embedding_l2=20.0)  # x learning rate 0.05 = 1
    assert ModelConfig(id_updates="rows", embedding_l2=3.0).id_updates == IdUpdates.ROWS
    assert ModelConfig(embedding_l2=30.0).id_updates == IdUpdates.WHOLE_TABLE  # an L2 loss: any size
