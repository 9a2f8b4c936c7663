"""Feature kinds: one table (``KINDS``) says for each kind whether it is categorical, whether the log must hold
numbers, how Transform turns the raw column into a model input, and the input's cardinality. Preprocessing, the
model builder, preflight and warm start read it."""

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf
import tensorflow_transform as tft

from config import FeatureConfig, FeatureKind
from models import tensors, text


def _vocabulary(feature: FeatureConfig, raw) -> tf.Tensor:
    return tft.compute_and_apply_vocabulary(tensors.column_values(raw, default=""), top_k=feature.top_k,
                                            frequency_threshold=feature.frequency_threshold or None,
                                            num_oov_buckets=feature.oov_buckets, vocab_filename=feature.name)


def _hash(feature: FeatureConfig, raw) -> tf.Tensor:
    return tf.strings.to_hash_bucket_fast(tensors.column_values(raw, default=""), feature.hash_buckets)


def _bucketized(feature: FeatureConfig, raw) -> tf.Tensor:
    return tft.apply_buckets(tensors.finite_numbers(raw), [list(feature.boundaries)])


def _zscore(feature: FeatureConfig, raw) -> tf.Tensor:
    return tft.scale_to_z_score(tensors.finite_numbers(raw))


def _log(feature: FeatureConfig, raw) -> tf.Tensor:
    return tft.scale_to_z_score(tf.math.log1p(tf.maximum(tensors.finite_numbers(raw), 0.0)))


def _vocabulary_size(feature: FeatureConfig, tf_transform_output) -> int:
    return tf_transform_output.vocabulary_size_by_name(feature.name) + feature.oov_buckets


@dataclass(frozen=True)
class Kind:
    """What a feature kind is: categorical (an int64 id in [0, cardinality) that the model embeds: a kind with a
    ``cardinality``) or numeric (a standardised float32); ``numbers`` (the log must hold numbers: preflight refuses
    text); its ``transform`` (raw column -> model input, in Transform's graph); for a categorical kind its
    ``cardinality`` (the ids it can take after Transform, OOV buckets included; None for a numeric kind); and
    ``vocabulary``: its ids index the Transform vocabulary named after the feature, if it has one (warm start
    carries embedding rows by token); ``sequence``: the input is [batch, max_tokens] token ids (0: padding) that a
    sequence encoder reads (``models.text``), not one id per example."""

    numbers: bool
    transform: Callable[[FeatureConfig, tf.Tensor], tf.Tensor]
    cardinality: Callable[[FeatureConfig, object], int] | None = None
    vocabulary: bool = False
    sequence: bool = False

    @property
    def categorical(self) -> bool:
        return self.cardinality is not None


# The one table of feature kinds, keyed by config.registry.FeatureKind.
KINDS: dict[FeatureKind, Kind] = {
    FeatureKind.VOCABULARY: Kind(numbers=False, transform=_vocabulary, cardinality=_vocabulary_size, vocabulary=True),
    FeatureKind.HASH: Kind(numbers=False, transform=_hash, cardinality=lambda feature, _: feature.hash_buckets),
    FeatureKind.BUCKETIZED: Kind(numbers=True, transform=_bucketized,
                                 cardinality=lambda feature, _: len(feature.boundaries) + 1),
    FeatureKind.ZSCORE: Kind(numbers=True, transform=_zscore),
    FeatureKind.LOG: Kind(numbers=True, transform=_log),
    FeatureKind.TEXT: Kind(numbers=False, transform=text.token_ids, cardinality=text.cardinality, vocabulary=True,
                           sequence=True),
}


def is_categorical(feature: FeatureConfig) -> bool:
    """True for a feature that becomes one id per example (embedded by the model), False for a numeric input or
    a text feature's token ids."""
    kind = KINDS[feature.kind]
    return kind.categorical and not kind.sequence


def is_numeric(feature: FeatureConfig) -> bool:
    """True for a feature that becomes one standardised float per example."""
    return not KINDS[feature.kind].categorical


def is_text(feature: FeatureConfig) -> bool:
    """True for a text feature: token ids that a sequence encoder reads."""
    return KINDS[feature.kind].sequence


def transform_feature(feature: FeatureConfig, raw) -> tf.Tensor:
    """The model input of one raw column; preprocessing_fn calls it once per declared feature."""
    return KINDS[feature.kind].transform(feature, raw)


def cardinality(feature: FeatureConfig, tf_transform_output) -> int:
    """Number of distinct ids a categorical feature can take after Transform (OOV buckets included)."""
    kind = KINDS[feature.kind]
    if not kind.categorical:
        raise ValueError(f"feature '{feature.name}' of kind '{feature.kind}' is numeric: it has no cardinality")
    return kind.cardinality(feature, tf_transform_output)


def cardinalities(features, tf_transform_output) -> dict[str, int]:
    """{name: cardinality} of the categorical and text ones among ``features``; the Trainer sizes the embeddings
    by it."""
    return {f.name: cardinality(f, tf_transform_output) for f in features if KINDS[f.kind].categorical}
