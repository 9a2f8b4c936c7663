"""Feature kinds: one table (``KINDS``) says for each kind whether it is categorical, whether the log must hold
numbers, how Transform turns the raw column into a model input, and the input's cardinality. Preprocessing, the
model builder, preflight and warm start read it."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

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


def _log1p_of_positive(raw) -> tf.Tensor:
    return tf.math.log1p(tf.maximum(tensors.finite_numbers(raw), 0.0))


def _log(feature: FeatureConfig, raw) -> tf.Tensor:
    return tft.scale_to_z_score(_log1p_of_positive(raw))


class DeviceConstants(Protocol):
    """What the on-device graph (``models.lite``) reads from Transform's output instead of its asset files."""

    def lookup(self, feature: FeatureConfig) -> Callable[[tf.Tensor], tf.Tensor]:
        """[n] strings -> [n] int64 ids as the feature's Transform vocabulary gives them, from a constant table."""

    def standardization(self, feature: FeatureConfig, values: Callable) -> tuple[float, float]:
        """(mean, standard deviation) by which Transform standardises ``values(raw)`` for ``feature``."""


def _vocabulary_on_device(feature: FeatureConfig, constants: DeviceConstants):
    lookup = constants.lookup(feature)
    return lambda raw: lookup(tensors.column_values(raw, default=""))


def _standardized_on_device(values: Callable, feature: FeatureConfig, constants: DeviceConstants):
    mean, std = constants.standardization(feature, values)
    return lambda raw: (values(raw) - mean) / std


def _text_on_device(feature: FeatureConfig, constants: DeviceConstants):
    lookup = (partial(tf.strings.to_hash_bucket_fast, num_buckets=feature.hash_buckets) if feature.hash_buckets
              else constants.lookup(feature))
    return lambda raw: text.model_input(text.tokens(raw, feature), feature, lookup)


def _vocabulary_size(feature: FeatureConfig, tf_transform_output) -> int:
    return tf_transform_output.vocabulary_size_by_name(feature.name) + feature.oov_buckets


@dataclass(frozen=True)
class Kind:
    """What a feature kind is: categorical (an int64 id in [0, cardinality) that the model embeds: a kind with a
    ``cardinality``) or numeric (a standardised float32); ``numbers`` (the log must hold numbers: preflight refuses
    text); its ``transform`` (raw column -> model input, in Transform's graph); for a categorical kind its
    ``cardinality`` (the ids it can take after Transform, OOV buckets included; None for a numeric kind); and
    ``vocabulary``: its ids index the Transform vocabulary named after the feature, if it has one (warm start
    carries embedding rows by token); ``sequence``: the input is [batch, max_tokens] token ids (0: padding), then
    their character n-gram ids when the feature has those (``models.text.model_input``), that a sequence encoder
    reads, not one id per example; ``on_device``: (feature, DeviceConstants)
    -> the same transform with no asset file (TFLite, ``models.lite``)."""

    numbers: bool
    transform: Callable[[FeatureConfig, tf.Tensor], tf.Tensor]
    on_device: Callable[[FeatureConfig, DeviceConstants], Callable[[tf.Tensor], tf.Tensor]]
    cardinality: Callable[[FeatureConfig, object], int] | None = None
    vocabulary: bool = False
    sequence: bool = False

    @property
    def categorical(self) -> bool:
        return self.cardinality is not None


# The one table of feature kinds, keyed by config.registry.FeatureKind.
KINDS: dict[FeatureKind, Kind] = {
    FeatureKind.VOCABULARY: Kind(numbers=False, transform=_vocabulary, on_device=_vocabulary_on_device,
                                 cardinality=_vocabulary_size, vocabulary=True),
    FeatureKind.HASH: Kind(numbers=False, transform=_hash, on_device=lambda feature, _: partial(_hash, feature),
                           cardinality=lambda feature, _: feature.hash_buckets),
    FeatureKind.BUCKETIZED: Kind(numbers=True, transform=_bucketized,
                                 on_device=lambda feature, _: partial(_bucketized, feature),
                                 cardinality=lambda feature, _: len(feature.boundaries) + 1),
    FeatureKind.ZSCORE: Kind(numbers=True, transform=_zscore,
                             on_device=partial(_standardized_on_device, tensors.finite_numbers)),
    FeatureKind.LOG: Kind(numbers=True, transform=_log, on_device=partial(_standardized_on_device, _log1p_of_positive)),
    FeatureKind.TEXT: Kind(numbers=False, transform=text.token_ids, on_device=_text_on_device,
                           cardinality=text.cardinality, vocabulary=True, sequence=True),
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


def on_device_transform(feature: FeatureConfig, constants: DeviceConstants) -> Callable[[tf.Tensor], tf.Tensor]:
    """The feature's transform for the on-device graph: raw column -> the same model input, with Transform's
    vocabularies and statistics as constants (``models.lite`` builds it once per feature)."""
    return KINDS[feature.kind].on_device(feature, constants)


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
