"""Turning parsed log columns (dense, or sparse where a value may be absent) into [batch] or [batch, k] tensors."""

import tensorflow as tf


def column_values(x, default) -> tf.Tensor:
    """The single value of each row as a [batch] tensor; rows without a value get ``default``."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(_one_per_row(x), default_value=tf.cast(default, x.dtype))
    return tf.reshape(x, [-1])


def finite_numbers(x) -> tf.Tensor:
    """The single number of each row as a [batch] float32 tensor; rows without a value, and NaN or ±inf values,
    become 0 (a non-finite number counts as missing, in training and in serving alike)."""
    values = tf.cast(column_values(x, default=0), tf.float32)
    return tf.where(tf.math.is_finite(values), values, tf.zeros_like(values))


def column_present(x) -> tf.Tensor:
    """A [batch] bool tensor: True where the row has a value."""
    if isinstance(x, tf.SparseTensor):
        ones = tf.SparseTensor(x.indices, tf.ones_like(x.values, dtype=tf.bool), x.dense_shape)
        return tf.reshape(tf.sparse.to_dense(_one_per_row(ones), default_value=False), [-1])
    return tf.ones_like(tf.reshape(x, [-1]), dtype=tf.bool)


def _one_per_row(x: tf.SparseTensor) -> tf.SparseTensor:
    """Fixes the column dimension at 1, so an all-absent batch still densifies to [batch, 1]."""
    return tf.SparseTensor(x.indices, x.values, tf.stack([x.dense_shape[0], tf.constant(1, tf.int64)]))


def row_values(x, width: int, default) -> tf.Tensor:
    """The ``width`` values of each row as [batch, width]; rows without values get ``default``."""
    if isinstance(x, tf.SparseTensor):
        with tf.control_dependencies([tf.debugging.assert_less(
                x.indices[:, 1], tf.cast(width, tf.int64), message=f"a row has more than {width} values")]):
            x = tf.SparseTensor(x.indices, x.values, tf.stack([x.dense_shape[0], tf.constant(width, tf.int64)]))
        return tf.sparse.to_dense(x, default_value=tf.cast(default, x.dtype))
    return tf.reshape(x, [-1, width])


def row_count(x, where=None) -> tf.Tensor:
    """A [batch] int tensor: how many values each row has (only those where ``where(values)`` holds)."""
    if isinstance(x, tf.SparseTensor):
        hits = tf.ones_like(x.values, tf.int32) if where is None else tf.cast(where(x.values), tf.int32)
        return tf.math.unsorted_segment_sum(hits, x.indices[:, 0], num_segments=x.dense_shape[0])
    hits = tf.ones_like(x, tf.int32) if where is None else tf.cast(where(x), tf.int32)
    return tf.reduce_sum(tf.reshape(hits, [tf.shape(x)[0], -1]), axis=1)
