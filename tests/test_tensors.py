"""Parsed log columns to dense tensors: absent values and non-finite numbers."""

import tensorflow as tf

from models.tensors import finite_numbers


def test_finite_numbers_maps_absent_nan_and_inf_to_zero():
    # Rows: 1.5, absent, NaN, +inf, -inf, -2 (a sparse column, as a sometimes-logged number is parsed).
    raw = tf.SparseTensor(indices=[[0, 0], [2, 0], [3, 0], [4, 0], [5, 0]],
                          values=tf.constant([1.5, float("nan"), float("inf"), float("-inf"), -2.0]),
                          dense_shape=[6, 1])
    assert finite_numbers(raw).numpy().tolist() == [1.5, 0.0, 0.0, 0.0, 0.0, -2.0]


def test_finite_numbers_casts_integers():
    assert finite_numbers(tf.constant([[3], [7]], tf.int64)).numpy().tolist() == [3.0, 7.0]
