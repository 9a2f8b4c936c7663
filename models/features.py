"""Feature kinds: how Transform turns a raw column into a model input, and the input's cardinality."""

import tensorflow as tf
import tensorflow_transform as tft

from config import FeatureConfig, FeatureKind
from models import tensors


def _vocabulary(feature: FeatureConfig, raw) -> tf.Tensor:
    return tft.compute_and_apply_vocabulary(tensors.column_values(raw, default=""), top_k=feature.top_k,
                                            num_oov_buckets=feature.oov_buckets, vocab_filename=feature.name)


def _hash(feature: FeatureConfig, raw) -> tf.Tensor:
    return tf.strings.to_hash_bucket_fast(tensors.column_values(raw, default=""), feature.hash_buckets)


def _bucketized(feature: FeatureConfig, raw) -> tf.Tensor:
    return tft.apply_buckets(tensors.finite_numbers(raw), [list(feature.boundaries)])


def _zscore(feature: FeatureConfig, raw) -> tf.Tensor:
    return tft.scale_to_z_score(tensors.finite_numbers(raw))


def _log(feature: FeatureConfig, raw) -> tf.Tensor:
    return tft.scale_to_z_score(tf.math.log1p(tf.maximum(tensors.finite_numbers(raw), 0.0)))


# One transform per kind: categorical kinds give int64 ids in [0, cardinality), numeric kinds standardised float32.
TRANSFORMS = {
    FeatureKind.VOCABULARY: _vocabulary,
    FeatureKind.HASH: _hash,
    FeatureKind.BUCKETIZED: _bucketized,
    FeatureKind.ZSCORE: _zscore,
    FeatureKind.LOG: _log,
}


def transform_feature(feature: FeatureConfig, raw) -> tf.Tensor:
    """The model input of one raw column; preprocessing_fn calls it once per declared feature."""
    return TRANSFORMS[feature.kind](feature, raw)


def cardinality(feature: FeatureConfig, tf_transform_output) -> int:
    """Number of distinct ids a categorical feature can take after Transform (OOV buckets included)."""
    if feature.kind == FeatureKind.VOCABULARY:
        return tf_transform_output.vocabulary_size_by_name(feature.name) + feature.oov_buckets
    if feature.kind == FeatureKind.HASH:
        return feature.hash_buckets
    if feature.kind == FeatureKind.BUCKETIZED:
        return len(feature.boundaries) + 1
    raise ValueError(f"feature '{feature.name}' of kind '{feature.kind}' is numeric: it has no cardinality")


def cardinalities(features, tf_transform_output) -> dict[str, int]:
    """{name: cardinality} of the categorical ones among ``features``; the Trainer sizes the embeddings by it."""
    return {f.name: cardinality(f, tf_transform_output) for f in features if f.is_categorical}
