"""Text features in Transform's graph, with core TensorFlow ops only (``tf.strings``), so the same graph runs in
Transform, in both serving signatures, in stock TF Serving and in TFLite's Select TF ops.

An utterance is lowercased (``lowercase``), cut into tokens (``tokenizer``: whitespace; or word_punct, where every
punctuation character is a token of its own), and its first ``max_tokens`` tokens become ids: 0 is padding, and a
token's id is 1 + its row in a vocabulary over tokens (``top_k``, ``frequency_threshold``, then ``oov_buckets``
ids for the rest, hashed by the token's text or, with ``oov_by_shape``, by its shape: ``by_shape``) or 1 + its
hash bucket (``hash_buckets``). The model input is [batch, max_tokens] int64, padded
with 0 at the end; a missing or empty utterance is all padding. A sequence_labeling head tags the same tokens
(``tokens``), so its tags line up with the ids.

With ``char_ngram_buckets`` the input goes on with each token's character n-grams (``char_ngram_ids``): [batch,
max_tokens x (1 + char_ngrams_per_token)], the token ids first, then per token position its n-gram ids (1 + the
n-gram's hash bucket, 0 for padding). One tensor per feature keeps every consumer of Transform's output (the
model's inputs, the on-device graph, warm start) keyed by feature; ``split_input`` takes it apart.
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
    """The text feature's model input (``model_input``) in Transform's graph (``models.features.KINDS``)."""
    cut = tokens(raw, feature)
    if feature.hash_buckets:
        return model_input(cut, feature,
                           lambda values: tf.strings.to_hash_bucket_fast(values, feature.hash_buckets))
    vocabulary = tft.vocabulary(cut.flat_values, top_k=feature.top_k,
                                frequency_threshold=feature.frequency_threshold or None, vocab_filename=feature.name)
    return model_input(cut, feature,
                       lambda values: tft.apply_vocabulary(values, vocabulary, num_oov_buckets=feature.oov_buckets))


def model_input(cut: tf.RaggedTensor, feature: FeatureConfig, lookup) -> tf.Tensor:
    """[batch, input_width(feature)] int64: the token ids of ``cut`` (``ids_of``; with ``oov_by_shape`` an OOV
    token's bucket is its shape's, ``by_shape``), then with ``char_ngram_buckets`` their character n-gram ids
    (``char_ngram_ids``)."""
    ids = ids_of(cut, feature, by_shape(lookup, feature.oov_buckets) if feature.oov_by_shape else lookup)
    return tf.concat([ids, char_ngram_ids(cut, feature)], axis=1) if feature.char_ngram_buckets else ids


def shapes(tokens: tf.Tensor) -> tf.Tensor:
    """[n] strings: the shape of each token, its upper-case letters as ``A``, other letters as ``a``, digits as
    ``0``, every other character as it is, and each run of one of those three longer than 4 cut to 4: ``order`` ->
    ``aaaa``, ``48213`` -> ``0000``, ``iy364847`` -> ``aa0000``, ``$19.90`` -> ``$00.00``, ``Málaga`` -> ``Aaaaa``."""
    shape = tf.strings.regex_replace(tokens, r"[\p{Ll}\p{Lt}\p{Lm}\p{Lo}]", "a")  # first: "A" is a letter too
    shape = tf.strings.regex_replace(shape, r"\p{Lu}", "A")
    shape = tf.strings.regex_replace(shape, r"\pN", "0")
    for mark in ("A", "a", "0"):
        shape = tf.strings.regex_replace(shape, f"{mark}{{5,}}", mark * 4)
    return shape


# What an OOV token is looked up as under oov_by_shape: its shape after a space, which no token holds (tokenizers
# cut at whitespace), so the lookup hashes it into the OOV buckets. The space alone gives the first OOV id.
_SHAPE_PREFIX = " "


def by_shape(lookup, oov_buckets: int):
    """``lookup`` (tokens -> ids, a vocabulary's then ``oov_buckets`` hashed OOV ids) with each OOV token's id
    taken from its shape's hash instead of its own text's (``shapes``): unseen numbers, codes and words each share
    the OOV rows of their own kind. A vocabulary token keeps its id."""
    def lookup_by_shape(tokens):
        ids = lookup(tokens)
        sentinel = tf.constant([_SHAPE_PREFIX])
        first_oov = lookup(sentinel)[0] - tf.strings.to_hash_bucket_fast(sentinel, oov_buckets)[0]
        shaped = lookup(tf.strings.join([_SHAPE_PREFIX, shapes(tokens)]))
        return tf.where(ids < first_oov, ids, shaped)
    return lookup_by_shape


def split_input(inputs: tf.Tensor, max_tokens: int, ngrams_per_token: int) -> tuple[tf.Tensor, tf.Tensor | None]:
    """(token ids [batch, max_tokens], n-gram ids [batch, max_tokens, ngrams_per_token]) of a text feature's model
    input [batch, max_tokens x (1 + ngrams_per_token)] (``model_input``); with ``ngrams_per_token`` 0, (``inputs``
    as they are, None)."""
    if not ngrams_per_token:
        return inputs, None
    return inputs[:, :max_tokens], tf.reshape(inputs[:, max_tokens:], [-1, max_tokens, ngrams_per_token])


def char_ngram_ids(cut: tf.RaggedTensor, feature: FeatureConfig) -> tf.Tensor:
    """[batch, max_tokens x char_ngrams_per_token] int64: for each of a row's first ``max_tokens`` tokens of ``cut``,
    1 + the hash bucket (of ``char_ngram_buckets``) of each of its first ``char_ngrams_per_token`` character
    n-grams, then 0; a padded position is all 0. A token's n-grams are those of ``<token>`` (the markers tell a
    word's start and end from its middle), every length of ``char_ngram_sizes`` in turn: all 3-grams first, then
    the 4-grams, and so on; a token shorter than a length has none of it."""
    kept = cut[:, :feature.max_tokens]
    marked = tf.strings.join(["<", kept.flat_values, ">"])
    grams = tf.concat([_ngrams(marked, size) for size in feature.char_ngram_sizes],
                      axis=1)[:, :feature.char_ngrams_per_token]
    ids = tf.ragged.map_flat_values(
        lambda values: tf.strings.to_hash_bucket_fast(values, feature.char_ngram_buckets) + 1, grams)
    per_token = ids.to_tensor(PADDING_ID, shape=[None, feature.char_ngrams_per_token])
    per_row = tf.RaggedTensor.from_row_splits(per_token, kept.row_splits).to_tensor(
        PADDING_ID, shape=[None, feature.max_tokens, feature.char_ngrams_per_token])
    return tf.reshape(per_row, [-1, feature.max_tokens * feature.char_ngrams_per_token])


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


def oov_ids(feature: FeatureConfig) -> int:
    """How many ids at the end of a text feature's table (``cardinality``) are OOV ids: its ``oov_buckets`` under a
    vocabulary, none under hashing, where every token has a bucket."""
    return 0 if feature.hash_buckets else feature.oov_buckets


def _ngrams(words: tf.Tensor, size: int) -> tf.RaggedTensor:
    """[n, (grams)] strings: the n-grams of ``size`` characters of each of the [n] ``words``, in order. Substrings by
    UTF-8 character, not ``tf.strings.ngrams``: TFLite's Select TF ops have Substr and not StringNGrams."""
    starts = tf.ragged.range(tf.maximum(tf.strings.length(words, unit="UTF8_CHAR") - size + 1, 0))
    positions = tf.cast(starts.flat_values, tf.int32)
    values = tf.strings.substr(tf.gather(words, starts.value_rowids()), positions, tf.fill(tf.shape(positions), size),
                               unit="UTF8_CHAR")
    return tf.RaggedTensor.from_row_splits(values, starts.row_splits)
