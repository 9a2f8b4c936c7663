"""Text features in Transform's graph, with core TensorFlow ops only (``tf.strings``), so the same graph runs in
Transform, in both serving signatures, in stock TF Serving and in TFLite's Select TF ops.

An utterance is lowercased (``lowercase``), cut into tokens (``tokenizer``: whitespace; or word_punct, where every
punctuation character is a token of its own), and its first ``max_tokens`` tokens become ids: 0 is padding, and a
token's id is 1 + its row in a vocabulary over tokens (``top_k``, ``frequency_threshold``, then ``oov_buckets``
ids for the rest) or 1 + its hash bucket (``hash_buckets``). The model input is [batch, max_tokens] int64, padded
with 0 at the end; a missing or empty utterance is all padding. A sequence_labeling head tags the same tokens
(``tokens``), so its tags line up with the ids.
"""

import tensorflow as tf
import tensorflow_transform as tft

from config import FeatureConfig, Tokenizer
from models import tensors

PADDING_ID = 0
# Every character that is neither a letter, a digit, a mark nor whitespace (RE2's Unicode classes).
_PUNCTUATION = r"([^\pL\pN\pM\s])"


def normalize(utterances: tf.Tensor, feature: FeatureConfig) -> tf.Tensor:
    """[batch] strings, lowercased (Unicode-aware) when the feature asks for it."""
    return tf.strings.lower(utterances, encoding="utf-8") if feature.lowercase else utterances


def tokens(raw, feature: FeatureConfig) -> tf.RaggedTensor:
    """[batch, (tokens)] strings: the normalised utterance of each row cut by the feature's tokenizer (a row
    without an utterance has none)."""
    text = normalize(tensors.column_values(raw, default=""), feature)
    if feature.tokenizer == Tokenizer.WORD_PUNCT:
        text = tf.strings.regex_replace(text, _PUNCTUATION, r" \1 ")
    return tf.strings.split(text)


def token_ids(feature: FeatureConfig, raw) -> tf.Tensor:
    """The text feature's model input: [batch, max_tokens] int64 ids, 0 for padding (``models.features.KINDS``)."""
    cut = tokens(raw, feature)
    if feature.hash_buckets:
        return ids_of(cut, feature, lambda values: tf.strings.to_hash_bucket_fast(values, feature.hash_buckets))
    vocabulary = tft.vocabulary(cut.flat_values, top_k=feature.top_k,
                                frequency_threshold=feature.frequency_threshold or None, vocab_filename=feature.name)
    return ids_of(cut, feature,
                  lambda values: tft.apply_vocabulary(values, vocabulary, num_oov_buckets=feature.oov_buckets))


def ids_of(cut: tf.RaggedTensor, feature: FeatureConfig, lookup) -> tf.Tensor:
    """[batch, max_tokens] int64: 1 + ``lookup(token)`` for each row's first ``max_tokens`` tokens of ``cut``
    (``tokens``), then padding. ``lookup`` maps [n] strings to [n] ids in [0, cardinality - 1): Transform's
    vocabulary or hashing here, a constant table on device (``models.lite``)."""
    kept = cut[:, :feature.max_tokens].to_sparse()
    shape = tf.stack([kept.dense_shape[0], tf.constant(feature.max_tokens, tf.int64)])
    return tf.sparse.to_dense(tf.SparseTensor(kept.indices, lookup(kept.values) + 1, shape),
                              default_value=PADDING_ID)


def cardinality(feature: FeatureConfig, tf_transform_output) -> int:
    """Ids a text feature's tokens can take, padding included: what its token embedding is sized by."""
    if feature.hash_buckets:
        return feature.hash_buckets + 1
    return tf_transform_output.vocabulary_size_by_name(feature.name) + feature.oov_buckets + 1
