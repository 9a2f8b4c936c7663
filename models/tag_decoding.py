"""The tags a token-tagging head gives: the most likely well-formed BIO sequence under its per-token probabilities.

A head's softmax scores each token on its own, so the most likely tag of each token can make a sequence that no
annotator writes: ``I-date`` after ``O``, ``B-time I-date``. Span scoring (``models.evaluation.spans``) would then
count a broken span. Decoding instead finds, by Viterbi, the sequence with the highest sum of log-probabilities among
those where an ``I-X`` follows only a ``B-X`` or an ``I-X`` (so no row starts with ``I-``); ``O`` and every ``B-``
may follow anything. No transition has a learnt score: the constraint alone (as a BIO-constrained decoder over a
softmax tagger does), so it adds no weights and needs no training.

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
_FORBIDDEN = -1e9  # the log-score of a transition that breaks a span


def transition_scores(num_tags: int) -> tuple[np.ndarray, np.ndarray]:
    """(start [T], transitions [T, T] from the previous tag to the next): 0 where allowed, a large negative
    number where not. ``I-`` of type k (id 2k + 2) is allowed only after ``B-`` or ``I-`` of k and never first."""
    inside = np.array([tag > 0 and tag % 2 == 0 for tag in range(num_tags)])
    transitions = np.where(np.broadcast_to(inside, (num_tags, num_tags)), _FORBIDDEN, 0.0)
    for tag in np.flatnonzero(inside):
        transitions[tag - 1, tag] = transitions[tag, tag] = 0.0
    return np.where(inside, _FORBIDDEN, 0.0), transitions


def decode(probabilities) -> np.ndarray:
    """[n, L] int64 tag ids from [n, L, T] probabilities: per row, the well-formed BIO sequence of the highest
    summed log-probability (ties go to the lower tag id)."""
    probabilities = np.asarray(probabilities, np.float32)
    if probabilities.ndim != 3:
        raise ValueError(f"tag probabilities must be [examples, tokens, tags], got shape {probabilities.shape}")
    n, length, num_tags = probabilities.shape
    if length == 0:
        return np.zeros((n, 0), np.int64)
    start, transitions = (s.astype(np.float32) for s in transition_scores(num_tags))
    log_p = np.log(probabilities + np.float32(_FLOOR))
    score = start[None, :] + log_p[:, 0]
    back = np.zeros((n, length, num_tags), np.int64)
    for position in range(1, length):
        candidates = score[:, :, None] + transitions[None]  # [n, previous, next]
        back[:, position] = candidates.argmax(axis=1)
        score = candidates.max(axis=1) + log_p[:, position]
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
    start, transitions = (tf.constant(s, tf.float32) for s in transition_scores(num_tags))
    log_p = tf.math.log(tf.cast(probabilities, tf.float32) + _FLOOR)
    score, backs = start[None, :] + log_p[:, 0], []
    for position in range(1, length):
        candidates = score[:, :, None] + transitions[None]  # [batch, previous, next]
        backs.append(tf.argmax(candidates, axis=1))
        score = tf.reduce_max(candidates, axis=1) + log_p[:, position]
    tags = [tf.argmax(score, axis=1)]
    for back in reversed(backs):
        tags.append(tf.gather(back, tags[-1], batch_dims=1))
    return tf.stack(tags[::-1], axis=1)
