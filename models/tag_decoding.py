"""The tags a token-tagging head gives: the most likely well-formed BIO sequence under its per-token probabilities.

A head's softmax scores each token on its own, so the most likely tag of each token can make a sequence that no
annotator writes: ``I-date`` after ``O``, ``B-time I-date``. Span scoring (``models.evaluation.spans``) would then
count a broken span. Decoding instead finds, by Viterbi, the sequence with the highest sum of log-probabilities among
those where an ``I-X`` follows only a ``B-X`` or an ``I-X`` (so no row starts with ``I-``); ``O`` and every ``B-``
may follow anything. That structure makes a step linear in the tag count (hundreds of tags for hundreds of slot
types) where a full transition matrix would be quadratic. No transition has a learnt score: the constraint alone
(as a BIO-constrained decoder over a softmax tagger does), so it adds no weights and needs no training.

Tag ids follow ``models.evaluation.spans``' scheme: 0 is ``O``, 2k + 1 ``B-`` and 2k + 2 ``I-`` of type k. Both
functions decode every position of a row: the model gives padding ``O`` with probability 1
(``models.multitask_model``), which any tag may precede, so padding never changes a real token's tag. ``decode``
(numpy, the metrics) and ``decode_tf`` (the served graph) give the same ids for the same probabilities
(``tests/test_tag_decoding.py``).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

_FLOOR = 1e-12  # added before the log: a probability of exactly 0 stays a finite, very unlikely choice
_FORBIDDEN = -1e9  # the start score of an I- tag: no row starts inside a span


def inside_tags(num_tags: int) -> np.ndarray:
    """[T] bools: the ``I-`` tags (even ids above 0). ``I-`` of type k (id 2k + 2) may follow only ``B-`` of k
    (its id minus 1) or itself, and never start a row; ``O`` and every ``B-`` may follow anything."""
    tags = np.arange(int(num_tags))
    return (tags > 0) & (tags % 2 == 0)


def decode(probabilities) -> np.ndarray:
    """[n, L] int64 tag ids from [n, L, T] probabilities: per row, the well-formed BIO sequence of the highest
    summed log-probability (ties go to the lower tag id). Each position costs O(T), not O(T^2): the best
    predecessor of ``O`` and of every ``B-`` is the best tag overall, that of ``I-X`` the better of ``B-X``
    and ``I-X``."""
    probabilities = np.asarray(probabilities, np.float32)
    if probabilities.ndim != 3:
        raise ValueError(f"tag probabilities must be [examples, tokens, tags], got shape {probabilities.shape}")
    n, length, num_tags = probabilities.shape
    if length == 0:
        return np.zeros((n, 0), np.int64)
    inside = inside_tags(num_tags)
    ids = np.arange(num_tags)
    begin = np.where(inside, ids - 1, ids)  # I-X's other possible predecessor, B-X
    log_p = np.log(probabilities + np.float32(_FLOOR))
    score = np.where(inside, np.float32(_FORBIDDEN), np.float32(0.0))[None, :] + log_p[:, 0]
    back = np.zeros((n, length, num_tags), np.int64)
    for position in range(1, length):
        from_begin = score[:, begin]
        take_begin = from_begin >= score  # a tie goes to B-X, the lower id
        back[:, position] = np.where(inside, np.where(take_begin, begin, ids), score.argmax(axis=1)[:, None])
        best = np.where(inside, np.where(take_begin, from_begin, score), score.max(axis=1)[:, None])
        score = best + log_p[:, position]
    tags = np.zeros((n, length), np.int64)
    tags[:, -1] = score.argmax(axis=1)
    rows = np.arange(n)
    for position in range(length - 1, 0, -1):
        tags[:, position - 1] = back[rows, position, tags[:, position]]
    return tags


def decode_tf(probabilities: tf.Tensor) -> tf.Tensor:
    """``decode`` in TensorFlow: [batch, L, T] float probabilities (L and T known when the graph is built) ->
    [batch, L] int64 tag ids. The positions are unrolled into plain core ops (no loop, no tensor list), so TF
    Serving runs it and TFLite converts it to built-in ops."""
    length, num_tags = probabilities.shape[1], probabilities.shape[2]
    if length is None or num_tags is None:
        raise ValueError(f"decoding needs the token and tag counts when the graph is built, got {probabilities.shape}")
    inside_np = inside_tags(num_tags)
    ids_np = np.arange(num_tags)
    inside, ids = tf.constant(inside_np[None, :]), tf.constant(ids_np[None, :], tf.int64)
    begin_np = np.where(inside_np, ids_np - 1, ids_np)
    begin = tf.constant(begin_np[None, :], tf.int64)
    log_p = tf.math.log(tf.cast(probabilities, tf.float32) + _FLOOR)
    score = tf.constant(np.where(inside_np, _FORBIDDEN, 0.0)[None, :], tf.float32) + log_p[:, 0]
    backs = []
    for position in range(1, length):
        from_begin = tf.gather(score, begin_np, axis=1)
        take_begin = from_begin >= score
        backs.append(tf.where(inside, tf.where(take_begin, begin, ids), tf.argmax(score, axis=1)[:, None]))
        best = tf.where(inside, tf.where(take_begin, from_begin, score), tf.reduce_max(score, axis=1)[:, None])
        score = best + log_p[:, position]
    tags = [tf.argmax(score, axis=1)]
    for back in reversed(backs):
        tags.append(tf.gather(back, tags[-1], batch_dims=1))
    return tf.stack(tags[::-1], axis=1)
