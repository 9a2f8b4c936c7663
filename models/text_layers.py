"""Keras layers for text features: a sequence encoder that turns token vectors into per-token states and one pooled
vector, and the masked poolings it reads. Padding (mask False) reaches neither the states nor the pooled vector."""

import tensorflow as tf
import tf_keras

from config import SequenceEncoder as Kind
from models.layers import EMBEDDING_SUFFIX
from models.text import split_input


def zero_padding(values, mask):
    """``values`` [batch, L, d] with the positions where ``mask`` [batch, L] is False set to exactly 0.0 (selected,
    not multiplied: an inf or NaN at a padded position gives 0.0 too). Output: [batch, L, d]."""
    return tf.where(mask[:, :, None], values, tf.zeros_like(values))


def dropped_ids(ids, rate: float, first_oov: int, end: int):
    """``ids`` [batch, L] int64 with each real (non-zero) id replaced, with probability ``rate``, by an id drawn
    uniformly from [``first_oov``, ``end``): a known token read as an unknown one. Padding (0) stays. Output: [batch,
    L] int64."""
    drop = (tf.random.uniform(tf.shape(ids)) < rate) & tf.not_equal(ids, 0)
    return tf.where(drop, tf.random.uniform(tf.shape(ids), first_oov, end, dtype=ids.dtype), ids)


def masked_mean(values, mask):
    """The mean of ``values`` [batch, L, d] over the positions where ``mask`` [batch, L] is True; zeros for a row
    with no True position. Output: [batch, d]."""
    count = tf.reduce_sum(tf.cast(mask, values.dtype), axis=1, keepdims=True)
    return tf.reduce_sum(zero_padding(values, mask), axis=1) / tf.maximum(count, 1.0)


def masked_max(values, mask):
    """The elementwise max of ``values`` [batch, L, d] over the positions where ``mask`` [batch, L] is True (padded
    positions are -inf, so they never win); zeros for a row with no True position. Output: [batch, d]."""
    lowest = tf.fill(tf.shape(values), tf.constant(float("-inf"), values.dtype))
    largest = tf.reduce_max(tf.where(mask[:, :, None], values, lowest), axis=1)
    return tf.where(tf.reduce_any(mask, axis=1)[:, None], largest, tf.zeros_like(largest))


def ngram_means(table: tf_keras.layers.Embedding, grams):
    """Per token position, the mean of the rows of ``table`` that its n-gram ids ``grams`` [batch, L, n] name (0:
    no n-gram); 0.0 at a position with none. Only the ids present are looked up, so the table's gradient names
    their rows alone: most of a padded batch's ids are 0 (short tokens, short utterances), and a lookup of every
    id would hand the row optimizer all of them. Output: [batch, L, table's output_dim]."""
    where = tf.where(tf.not_equal(grams, 0))  # [ids present, 3]: (row, position, n-gram)
    shape = tf.shape(grams, out_type=tf.int64)
    position = where[:, 0] * shape[1] + where[:, 1]
    positions = shape[0] * shape[1]
    rows = table(tf.gather_nd(grams, where))
    sums = tf.math.unsorted_segment_sum(rows, position, positions)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(position, rows.dtype), position, positions)
    return tf.reshape(sums / tf.maximum(counts, 1.0)[:, None], [shape[0], shape[1], table.output_dim])


# How each kind pools its states into one vector.
POOLING = {Kind.MEAN: masked_mean, Kind.MAX: masked_max, Kind.CNN: masked_max, Kind.GRU: masked_mean,
           Kind.LSTM: masked_mean, Kind.TRANSFORMER: masked_mean}


@tf_keras.utils.register_keras_serializable(package="mtl")
class SequenceEncoder(tf_keras.layers.Layer):
    """Per-token states and one pooled vector of a sequence of token vectors, padding masked everywhere.

    ``kind`` (a ``config.SequenceEncoder`` member or its string) chooses the encoder; the input's padded positions
    are zeroed first, and every kind's states are exactly 0.0 at padded positions:

    - ``mean`` / ``max``: the states are the token vectors; pooled is their masked mean / masked max.
    - ``cnn``: ``num_layers`` Conv1D(``units``, ``kernel_size``, padding "same", relu), each followed by Dropout
      and reading padded positions as zeros (like a zero-padded sequence); pooled is the masked max.
    - ``gru`` / ``lstm``: ``num_layers`` Bidirectional(GRU / LSTM(``units``, return_sequences, input ``dropout``))
      given the mask, so padded steps leave the state as it is and the backward direction starts at each row's
      last real token; the states have 2 x ``units``; pooled is the masked mean. Plain Keras recurrent layers, no
      custom ops.
    - ``transformer``: a Dense projection to ``units`` plus learned position embeddings (``max_tokens`` x
      ``units``, by absolute position, so a row's padding goes at its end), then ``num_layers`` blocks of
      MultiHeadAttention(``heads`` heads of ``units // heads``, attention ``dropout``) in which real tokens attend to
      real tokens only, Dropout, residual and LayerNormalization, then a feed-forward Dense(2 x ``units``, relu)
      -> Dense(``units``), Dropout, residual and LayerNormalization; pooled is the masked mean.

    Arguments: ``kind``; ``units`` = 32 (cnn filters, gru / lstm units per direction, transformer width);
    ``kernel_size`` = 3 (cnn); ``num_layers`` = 1 (cnn, gru, lstm, transformer); ``heads`` = 2 (transformer, must
    divide ``units``); ``max_tokens`` = 64 (transformer: the longest sequence); ``dropout`` = 0.0 (cnn, gru, lstm,
    transformer; only when training).

    Input: ``token_vectors`` [batch, L, d] float32 (L <= ``max_tokens``, may be unknown until run) and ``mask``
    [batch, L] bool (True: a real token). Output: (states [batch, L, out], pooled [batch, out]) with out =
    ``output_dim(d)``; a row with no real token pools to zeros.
    """

    def __init__(self, kind: str, units: int = 32, kernel_size: int = 3, num_layers: int = 1, heads: int = 2,
                 max_tokens: int = 64, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.kind = Kind(kind)
        self.units, self.kernel_size, self.num_layers = units, kernel_size, num_layers
        self.heads, self.max_tokens, self.dropout = heads, max_tokens, dropout
        if self.kind == Kind.CNN:
            self.convs = [tf_keras.layers.Conv1D(units, kernel_size, padding="same", activation="relu")
                          for _ in range(num_layers)]
            self.drop = tf_keras.layers.Dropout(dropout)
        elif self.kind in (Kind.GRU, Kind.LSTM):
            cell = tf_keras.layers.GRU if self.kind == Kind.GRU else tf_keras.layers.LSTM
            self.rnns = [tf_keras.layers.Bidirectional(cell(units, return_sequences=True, dropout=dropout))
                         for _ in range(num_layers)]
        elif self.kind == Kind.TRANSFORMER:
            if units % heads:
                raise ValueError(f"the transformer encoder's {heads} heads must divide units, got {units}")
            self.projection = tf_keras.layers.Dense(units)
            self.positions = tf_keras.layers.Embedding(max_tokens, units, name="positions")
            self.drop = tf_keras.layers.Dropout(dropout)
            self.blocks = [[tf_keras.layers.MultiHeadAttention(num_heads=heads, key_dim=units // heads,
                                                               dropout=dropout),
                            tf_keras.layers.LayerNormalization(),
                            tf_keras.layers.Dense(2 * units, activation="relu"),
                            tf_keras.layers.Dense(units),
                            tf_keras.layers.LayerNormalization()]
                           for _ in range(num_layers)]

    def output_dim(self, input_dim: int) -> int:
        """The size of each state and of the pooled vector for token vectors of size ``input_dim``."""
        if self.kind in (Kind.MEAN, Kind.MAX):
            return input_dim
        return 2 * self.units if self.kind in (Kind.GRU, Kind.LSTM) else self.units

    def call(self, token_vectors, mask, training=False):
        x = zero_padding(token_vectors, mask)
        if self.kind == Kind.CNN:
            for conv in self.convs:
                x = zero_padding(self.drop(conv(x), training=training), mask)
        elif self.kind in (Kind.GRU, Kind.LSTM):
            for rnn in self.rnns:
                x = rnn(x, mask=mask, training=training)
        elif self.kind == Kind.TRANSFORMER:
            x = self.projection(x) + self.positions(tf.range(tf.shape(x)[1]))
            real_to_real = tf.logical_and(mask[:, :, None], mask[:, None, :])
            for attention, attention_norm, hidden, output, output_norm in self.blocks:
                attended = attention(x, x, attention_mask=real_to_real, training=training)
                x = attention_norm(x + self.drop(attended, training=training))
                x = output_norm(x + self.drop(output(hidden(x)), training=training))
        states = zero_padding(x, mask)
        return states, POOLING[self.kind](states, mask)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind.value, "units": self.units,
                "kernel_size": self.kernel_size, "num_layers": self.num_layers, "heads": self.heads,
                "max_tokens": self.max_tokens, "dropout": self.dropout}


@tf_keras.utils.register_keras_serializable(package="mtl")
class TextFeatureEncoder(tf_keras.layers.Layer):
    """One text feature's token embeddings and its sequence encoder(s): the token table of ``feature`` (named
    ``<feature>_embedding``; ``cardinality`` ids,
    ``embedding_dim``; row 0, padding, is masked out) is read by one SequenceEncoder when ``readers`` is empty
    (hard sharing, the reader ""), or by one SequenceEncoder per reader (soft sharing: a task each, over the same
    token embeddings). With ``char_ngram_buckets``, a token's vector is its row of the token table plus the mean of
    its character n-grams' rows in a table of their own (``<feature>_char_ngrams``: 1 + ``char_ngram_buckets`` rows
    of ``embedding_dim``, row 0 padding), so a token with an OOV id still has a vector of its own. With
    ``token_dropout``, training reads each real token as one of the last ``oov_ids`` ids of the table (the
    vocabulary's OOV ids; ``dropped_ids``) with that probability, so the encoders learn to read a word they do not
    know from its context, as they must for every value, name and typo that training never saw.

    Arguments: ``feature``, ``cardinality`` and ``embedding_dim`` (the token table); ``kind``, ``units`` = 32,
    ``num_layers`` = 1, ``max_tokens`` = 64 and ``dropout`` = 0.0 (each SequenceEncoder's; ``max_tokens`` is also
    the input's token positions);
    ``readers`` = () (hard sharing; a reader "" among others is an encoder the heads without one of their own
    share); ``char_ngram_buckets`` = 0 (no n-grams) and ``char_ngrams_per_token`` = 0; ``token_dropout`` = 0.0 (none)
    and ``oov_ids`` = 0 (the count of OOV ids at the end of the table; token_dropout needs at least one).

    Input: [batch, L] int64 token ids, 0 for padding (``models.text.token_ids``); with n-grams [batch, max_tokens
    x (1 + char_ngrams_per_token)], the token ids then each token's n-gram ids (``models.text.model_input``).
    Output: {reader: (states [batch, L, out], pooled [batch, out])}, L = max_tokens with n-grams.
    """

    def __init__(self, feature: str, cardinality: int, embedding_dim: int, kind: str, units: int = 32,
                 num_layers: int = 1, max_tokens: int = 64, dropout: float = 0.0, readers: list[str] = (),
                 char_ngram_buckets: int = 0, char_ngrams_per_token: int = 0, token_dropout: float = 0.0,
                 oov_ids: int = 0, **kwargs):
        super().__init__(**kwargs)
        if token_dropout and not 1 <= oov_ids < cardinality:
            raise ValueError(f"text feature '{feature}': token_dropout reads tokens as OOV ids, but the table has "
                             f"{oov_ids} of its {cardinality} ids for OOV tokens")
        self.feature, self.cardinality, self.embedding_dim, self.kind = feature, cardinality, embedding_dim, \
            Kind(kind).value
        self.units, self.num_layers, self.max_tokens, self.readers = units, num_layers, max_tokens, list(readers)
        self.dropout = dropout
        self.char_ngram_buckets = char_ngram_buckets
        self.char_ngrams_per_token = char_ngrams_per_token if char_ngram_buckets else 0
        self.token_dropout, self.oov_ids = token_dropout, oov_ids
        # Named as every id table is (models.layers.EMBEDDING_SUFFIX): warm start carries its rows by token.
        self.tokens = tf_keras.layers.Embedding(cardinality, embedding_dim, name=f"{feature}{EMBEDDING_SUFFIX}")
        # Hash buckets mean the same n-grams in every run: warm start copies the table as it is.
        self.char_ngrams = tf_keras.layers.Embedding(char_ngram_buckets + 1, embedding_dim,
                                                     name=f"{feature}_char_ngrams") if char_ngram_buckets else None
        self.encoders = {reader: SequenceEncoder(self.kind, units=units, num_layers=num_layers, max_tokens=max_tokens,
                                                 dropout=dropout, name=f"{reader or 'shared'}_sequence_encoder")
                         for reader in self.readers or [""]}

    def call(self, inputs, training=False):
        width = self.max_tokens * (1 + self.char_ngrams_per_token)
        if self.char_ngrams_per_token and inputs.shape[1] not in (None, width):
            raise ValueError(f"text feature '{self.feature}': its input has {inputs.shape[1]} ids per example, but "
                             f"{self.max_tokens} tokens with {self.char_ngrams_per_token} n-grams each need {width}: "
                             "the model was built for other char_ngram settings than its Transform ran with")
        ids, grams = split_input(inputs, self.max_tokens, self.char_ngrams_per_token)
        # The encoders read up to the batch's last real token (a recurrent encoder steps once per position); their
        # states are padded back to the input's width, so a per-token head sees every position.
        width = tf.shape(ids)[1]
        mask = tf.not_equal(ids, 0)
        used = tf.maximum(tf.reduce_max(tf.where(mask, tf.range(1, width + 1)[None, :], 0)), 1)
        ids, mask = ids[:, :used], mask[:, :used]
        if training and self.token_dropout:
            ids = dropped_ids(ids, self.token_dropout, self.cardinality - self.oov_ids, self.cardinality)
        vectors = self.tokens(ids)
        if grams is not None:
            vectors += ngram_means(self.char_ngrams, grams[:, :used])
        outputs = {}
        for reader, encoder in self.encoders.items():
            states, pooled = encoder(vectors, mask, training=training)
            outputs[reader] = (tf.pad(states, [[0, 0], [0, width - used], [0, 0]]), pooled)
        return outputs

    def get_config(self):
        return {**super().get_config(), "feature": self.feature, "cardinality": self.cardinality,
                "embedding_dim": self.embedding_dim, "kind": self.kind, "units": self.units,
                "num_layers": self.num_layers, "max_tokens": self.max_tokens, "dropout": self.dropout,
                "readers": self.readers, "char_ngram_buckets": self.char_ngram_buckets,
                "char_ngrams_per_token": self.char_ngrams_per_token,
                "token_dropout": self.token_dropout, "oov_ids": self.oov_ids}
