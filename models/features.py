"""Feature kinds: how Transform turns a raw column into a model input, and the input's cardinality."""

import tensorflow as tf
import tensorflow_transform as tft

from models import tensors
from pipeline.config import FeatureConfig


def transform_feature(feature: FeatureConfig, raw) -> tf.Tensor:
    """Categorical kinds become int64 ids in [0, cardinality); numeric kinds become standardised float32."""
    if feature.kind in ("vocabulary", "hash"):
        values = tensors.column_values(raw, default="")
        if feature.kind == "hash":
            return tf.strings.to_hash_bucket_fast(values, feature.hash_buckets)
        return tft.compute_and_apply_vocabulary(values, top_k=feature.top_k, num_oov_buckets=feature.oov_buckets,
                                                vocab_filename=feature.name)
    values = tf.cast(tensors.column_values(raw, default=0), tf.float32)
    if feature.kind == "bucketized":
        return tft.apply_buckets(values, [list(feature.boundaries)])
    if feature.kind == "log":
        values = tf.math.log1p(tf.maximum(values, 0.0))
    return tft.scale_to_z_score(values)


def cardinality(feature: FeatureConfig, tf_transform_output) -> int:
    """Number of distinct ids a categorical feature can take after Transform (OOV buckets included)."""
    if feature.kind == "vocabulary":
        return tf_transform_output.vocabulary_size_by_name(feature.name) + feature.oov_buckets
    if feature.kind == "hash":
        return feature.hash_buckets
    if feature.kind == "bucketized":
        return len(feature.boundaries) + 1
    raise ValueError(f"feature '{feature.name}' of kind '{feature.kind}' is numeric: it has no cardinality")
