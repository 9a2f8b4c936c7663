"""Turning parsed log columns (dense [batch, 1] or sparse where a value may be absent) into [batch] vectors."""

import tensorflow as tf


def column_values(x, default) -> tf.Tensor:
    """The single value of each row as a [batch] tensor; rows without a value get ``default``."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(_one_per_row(x), default_value=tf.cast(default, x.dtype))
    return tf.reshape(x, [-1])


def column_present(x) -> tf.Tensor:
    """A [batch] bool tensor: True where the row has a value."""
    if isinstance(x, tf.SparseTensor):
        ones = tf.SparseTensor(x.indices, tf.ones_like(x.values, dtype=tf.bool), x.dense_shape)
        return tf.reshape(tf.sparse.to_dense(_one_per_row(ones), default_value=False), [-1])
    return tf.ones_like(tf.reshape(x, [-1]), dtype=tf.bool)


def _one_per_row(x: tf.SparseTensor) -> tf.SparseTensor:
    """Fixes the column dimension at 1, so an all-absent batch still densifies to [batch, 1]."""
    return tf.SparseTensor(x.indices, x.values, tf.stack([x.dense_shape[0], tf.constant(1, tf.int64)]))
