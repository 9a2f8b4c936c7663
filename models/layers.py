"""Small, composable Keras layers shared by every architecture."""

import tensorflow as tf
import tf_keras

# An id table's layer is named <feature><suffix>: an embedding, or a factor table. Warm start finds the tables (and
# the feature whose vocabulary orders their rows) by these names.
EMBEDDING_SUFFIX, FACTORS_SUFFIX = "_embedding", "_factors"


def id_table_feature(layer_name: str) -> str | None:
    """The feature whose ids index the table of layer ``layer_name``, or None when it is not an id table."""
    for suffix in (EMBEDDING_SUFFIX, FACTORS_SUFFIX):
        if layer_name.endswith(suffix) and len(layer_name) > len(suffix):
            return layer_name.removesuffix(suffix)
    return None


@tf_keras.utils.register_keras_serializable(package="mtl")
class FeatureEncoder(tf_keras.layers.Layer):
    """Embeds categorical ids and stacks numeric inputs into one dense vector per example.

    ``cardinalities`` maps each categorical feature to its number of ids and ``embedding_dims`` to its
    embedding size; every name in ``numeric`` is taken as one standardised float. The embeddings of the
    features in ``dot_interaction`` (equal sizes) also contribute their pairwise dot products (DotInteraction).
    ``embedding_l2`` penalises the whole tables every step, or with ``l2_by_optimizer`` is no loss term: the id
    tables' optimizer applies it (models.row_optimizer.RowAdam, row by row).

    Input: {feature: [batch] ids or floats}. Output: [batch, sum of embedding_dims + len(numeric) + pairs].
    """

    def __init__(self, cardinalities: dict[str, int], embedding_dims: dict[str, int], numeric: list[str],
                 embedding_l2: float = 0.0, dot_interaction: list[str] = (), l2_by_optimizer: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.cardinalities = dict(cardinalities)
        self.embedding_dims = dict(embedding_dims)
        self.numeric = list(numeric)
        self.embedding_l2 = embedding_l2
        self.dot_interaction = list(dot_interaction)
        self.l2_by_optimizer = l2_by_optimizer
        self.embeddings = {
            name: id_table(size, self.embedding_dims[name], f"{name}{EMBEDDING_SUFFIX}", embedding_l2, l2_by_optimizer)
            for name, size in sorted(self.cardinalities.items())}
        self.interaction = DotInteraction(name="dot_interaction")

    def call(self, features):
        embedded = {name: self.embeddings[name](features[name]) for name in sorted(self.embeddings)}
        parts = list(embedded.values())
        parts += [tf.cast(features[name], tf.float32)[:, None] for name in self.numeric]
        if self.dot_interaction:
            parts.append(self.interaction([embedded[name] for name in self.dot_interaction]))
        if not parts:  # every feature is text (models.text_layers encodes it): an empty vector per example
            return tf.zeros(tf.stack([tf.shape(next(iter(features.values())))[0], 0]))
        return tf.concat(parts, axis=-1)

    def get_config(self):
        return {**super().get_config(), "cardinalities": self.cardinalities,
                "embedding_dims": self.embedding_dims, "numeric": self.numeric, "embedding_l2": self.embedding_l2,
                "dot_interaction": self.dot_interaction, "l2_by_optimizer": self.l2_by_optimizer}


@tf_keras.utils.register_keras_serializable(package="mtl")
class DotInteraction(tf_keras.layers.Layer):
    """Pairwise dot products of n equal-sized vectors (the factorisation-machine / DLRM interaction):
    [batch, d] x n -> [batch, n(n-1)/2], pairs in the order (0,1), (0,2), ..., (1,2), ...

    An MLP on concatenated embeddings learns a product like user . item only poorly; this hands it over.
    """

    def call(self, vectors):
        return tf.stack([tf.reduce_sum(vectors[i] * vectors[j], axis=-1)
                         for i in range(len(vectors)) for j in range(i + 1, len(vectors))], axis=-1)


@tf_keras.utils.register_keras_serializable(package="mtl")
class FactorInteraction(tf_keras.layers.Layer):
    """Factor vectors for two id features and their elementwise product u * v, [batch, dim]: each head reads it
    with weights of its own (generalised matrix factorisation), so every task learns from the user x item
    interaction without an MLP having to approximate a dot product. ``l2`` penalises the whole tables once per
    step (a Gaussian prior on every row, however often it is seen), as a loss term or, with ``l2_by_optimizer``,
    applied by the id tables' optimizer.

    Input: {feature: [batch] ids} for the two features. Output: [batch, dim].
    """

    def __init__(self, cardinalities: dict[str, int], dim: int, l2: float = 0.0, l2_by_optimizer: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.cardinalities, self.dim, self.l2, self.l2_by_optimizer = dict(cardinalities), dim, l2, l2_by_optimizer
        self.factors = [id_table(size, dim, f"{name}{FACTORS_SUFFIX}", l2, l2_by_optimizer,
                                 initializer=tf_keras.initializers.RandomNormal(stddev=dim ** -0.5))
                        for name, size in self.cardinalities.items()]

    def call(self, features):
        first, second = (table(features[name]) for table, name in zip(self.factors, self.cardinalities, strict=True))
        return first * second

    def get_config(self):
        return {**super().get_config(), "cardinalities": self.cardinalities, "dim": self.dim, "l2": self.l2,
                "l2_by_optimizer": self.l2_by_optimizer}


@tf_keras.utils.register_keras_serializable(package="mtl")
class MLP(tf_keras.layers.Layer):
    """A stack of Dense -> [BatchNorm] -> ReLU -> [Dropout] blocks; empty ``units`` is the identity."""

    def __init__(self, units: list[int], dropout: float = 0.0, batch_norm: bool = False, l2: float = 0.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = list(units)
        self.dropout, self.batch_norm, self.l2 = dropout, batch_norm, l2
        self.blocks = []
        for u in self.units:
            block = [tf_keras.layers.Dense(u, use_bias=not batch_norm, kernel_regularizer=_l2(l2))]
            block += [tf_keras.layers.BatchNormalization()] if batch_norm else []
            block += [tf_keras.layers.ReLU()]
            block += [tf_keras.layers.Dropout(dropout)] if dropout else []
            self.blocks.append(block)

    def call(self, x, training=False):
        for block in self.blocks:
            for layer in block:
                x = layer(x, training=training)
        return x

    def get_config(self):
        return {**super().get_config(), "units": self.units, "dropout": self.dropout,
                "batch_norm": self.batch_norm, "l2": self.l2}


# A table of fewer rows is read nearly whole by every batch, and Keras' Adam steps it faster than RowAdam does
# row by row (a per-table cost of a few small ops): it keeps its L2 as a loss term.
ROW_UPDATES_FROM = 1_000


def row_updated(rows: int) -> bool:
    """Whether a table of ``rows`` rows is stepped row by row when the model has an id optimizer: id_table (its L2
    not a loss term) and MultiTaskModel (which optimizer steps it) both ask this."""
    return rows >= ROW_UPDATES_FROM


def id_table(rows: int, dim: int, name: str, l2: float, l2_by_optimizer: bool,
             initializer="uniform") -> tf_keras.layers.Embedding:
    """An Embedding of ``rows`` x ``dim`` named ``name`` whose loss has l2 x |table|^2, or with ``l2_by_optimizer``
    (and at least ROW_UPDATES_FROM rows) no L2 term (it would give every row a gradient at every step): RowAdam
    applies that L2 row by row."""
    regularizer = None if l2_by_optimizer and row_updated(rows) else _l2(l2)
    return tf_keras.layers.Embedding(rows, dim, name=name, embeddings_initializer=initializer,
                                     embeddings_regularizer=regularizer)


def _l2(factor: float):
    return tf_keras.regularizers.L2(factor) if factor else None
