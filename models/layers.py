"""Small, composable Keras layers shared by every architecture."""

import tensorflow as tf
import tf_keras


@tf_keras.utils.register_keras_serializable(package="mtl")
class FeatureEncoder(tf_keras.layers.Layer):
    """Embeds categorical ids and stacks numeric inputs into one dense vector per example.

    ``cardinalities`` maps each categorical feature to its number of ids and ``embedding_dims`` to its
    embedding size; every name in ``numeric`` is taken as one standardised float.
    """

    def __init__(self, cardinalities: dict[str, int], embedding_dims: dict[str, int], numeric: list[str],
                 **kwargs):
        super().__init__(**kwargs)
        self.cardinalities = dict(cardinalities)
        self.embedding_dims = dict(embedding_dims)
        self.numeric = list(numeric)
        self.embeddings = {name: tf_keras.layers.Embedding(size, self.embedding_dims[name], name=f"{name}_embedding")
                           for name, size in sorted(self.cardinalities.items())}

    def call(self, features):
        parts = [self.embeddings[name](features[name]) for name in sorted(self.embeddings)]
        parts += [tf.cast(features[name], tf.float32)[:, None] for name in self.numeric]
        return tf.concat(parts, axis=-1)

    def get_config(self):
        return {**super().get_config(), "cardinalities": self.cardinalities,
                "embedding_dims": self.embedding_dims, "numeric": self.numeric}


@tf_keras.utils.register_keras_serializable(package="mtl")
class MLP(tf_keras.layers.Layer):
    """A stack of ReLU Dense layers; empty ``units`` is the identity."""

    def __init__(self, units: list[int], **kwargs):
        super().__init__(**kwargs)
        self.units = list(units)
        self.dense_layers = [tf_keras.layers.Dense(u, activation="relu") for u in self.units]

    def call(self, x):
        for layer in self.dense_layers:
            x = layer(x)
        return x

    def get_config(self):
        return {**super().get_config(), "units": self.units}
