"""Text features and text labels through preprocessing_fn, run by tf.Transform on Beam over a tiny dataset (analysed
on the first rows, applied to those and to rows with values the analysis never saw), with exact expected ids."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from config import PipelineConfig, to_custom_config
from models import features, text
from models.preprocessing import preprocessing_fn

CONFIG = PipelineConfig.from_dict({
    "name": "tiny-assistant",
    "features": [{"name": "text", "kind": "text", "tokenizer": "word_punct", "max_tokens": 5, "top_k": 9}],
    "tasks": [
        {"name": "intent", "type": "multiclass", "label_key": "intent", "label_vocabulary": True},
        {"name": "keywords", "type": "multilabel", "label_key": "keywords", "max_labels": 2,
         "classes": ["billing", "delivery", "account"]},
        {"name": "slots", "type": "sequence_labeling", "label_key": "slots", "text_feature": "text",
         "label_vocabulary": True},
    ],
})
FEATURE_SPEC = {name: tf.io.VarLenFeature(tf.string) for name in ("text", "intent", "keywords", "slots")}
TRAIN = [  # text, intent, keywords, slots
    (["Cancel my order"], ["cancel"], ["delivery"], ["O", "O", "B-object"]),
    (["cancel the ORDER now! please"], ["cancel"], ["billing", "delivery", "account"],
     ["O", "O", "B-object", "B-time", "O", "O"]),
    (["hi"], ["greet"], [], ["O"]),
    ([""], [], ["unknown"], []),
    ([], [""], [], []),
    (["where is my order ?"], ["track"], ["account"], ["O", "O", "B-object", "I-object"]),  # 4 tags, 5 tokens
]
UNSEEN = [(["refund my order"], ["refund"], ["billing"], ["O", "O", "B-place"]),
          (["cancel my order"], ["cancel"], [], [])]  # an utterance no annotator tagged


def _rows(rows):
    return [dict(zip(("text", "intent", "keywords", "slots"), row, strict=True)) for row in rows]


def _transform(config, unseen_rows, out):
    """``config``'s Transform analysed on TRAIN and applied to it and to ``unseen_rows``: ({column: TRAIN's
    values}, {column: unseen_rows' values}, the transform's folder)."""
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(FEATURE_SPEC))
    with tft_beam.Context(temp_dir=str(out / "tmp"), force_tf_compat_v1=False):
        (rows, _), transform_fn = (_rows(TRAIN), metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, to_custom_config(config)))
        unseen, _ = ((_rows(unseen_rows), metadata), transform_fn) | tft_beam.TransformDataset()
        _ = transform_fn | tft_beam.WriteTransformFn(str(out / "transform"))
    columns = {key: np.array([row[key] for row in rows]) for key in rows[0]}
    return columns, {key: np.array([row[key] for row in unseen]) for key in unseen[0]}, str(out / "transform")


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    return _transform(CONFIG, UNSEEN, tmp_path_factory.mktemp("tft"))


def test_token_ids_lowercased_split_at_punctuation_truncated_and_padded(transformed):
    # vocabulary by frequency, ties in reverse byte order: order my cancel where the please now is hi; ? and ! are
    # beyond top_k (the OOV id 10); ids are 1 + the row, 0 is padding; "please" is the 6th token of row 1: cut
    np.testing.assert_array_equal(transformed[0]["text"], [[3, 2, 1, 0, 0], [3, 5, 1, 7, 10], [9, 0, 0, 0, 0],
                                                           [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [4, 8, 2, 1, 10]])


def test_a_word_training_never_saw_takes_the_oov_id(transformed):
    np.testing.assert_array_equal(transformed[1]["text"][0], [10, 2, 1, 0, 0])


def test_text_cardinality_counts_vocabulary_oov_and_padding(transformed):
    output = tft.TFTransformOutput(transformed[2])
    assert features.cardinality(CONFIG.features[0], output) == 9 + 1 + 1


def test_the_oov_ids_token_dropout_reads_are_the_ids_an_unseen_word_takes(transformed):
    size = features.cardinality(CONFIG.features[0], tft.TFTransformOutput(transformed[2]))
    assert text.oov_ids(CONFIG.features[0]) == 1
    assert list(range(size - text.oov_ids(CONFIG.features[0]), size)) == [transformed[1]["text"][0][0]]
    assert text.oov_ids(dataclasses.replace(CONFIG.features[0], hash_buckets=50)) == 0


def test_intent_names_become_ids_by_frequency_and_missing_or_empty_weigh_nothing(transformed):
    columns = transformed[0]
    np.testing.assert_array_equal(columns["intent_label"], [0, 0, 2, 0, 0, 1])  # cancel, track, greet
    np.testing.assert_array_equal(columns["intent_weight"], [1, 1, 1, 0, 0, 1])
    assert tft.TFTransformOutput(transformed[2]).vocabulary_by_name("intent_classes") == [b"cancel", b"track",
                                                                                            b"greet"]


def test_an_intent_training_never_saw_is_minus_one_with_weight_zero(transformed):
    assert transformed[1]["intent_label"][0] == -1 and transformed[1]["intent_weight"][0] == 0


def test_keyword_names_become_config_class_ids_padded_with_minus_one(transformed):
    columns = transformed[0]
    np.testing.assert_array_equal(columns["keywords_label"], [[1, -1], [0, 1], [-1, -1], [-1, -1], [-1, -1],
                                                              [2, -1]])
    np.testing.assert_array_equal(columns["keywords_weight"], [1, 1, 0, 1, 0, 1])


def test_bio_tags_become_structured_ids_masked_where_absent_misaligned_or_padding(transformed):
    columns = transformed[0]  # types by frequency: object (0), time (1): O 0, B-object 1, I-object 2, B-time 3
    np.testing.assert_array_equal(columns["slots_label"], [[0, 0, 1, 0, 0], [0, 0, 1, 3, 0], [0] * 5, [0] * 5,
                                                           [0] * 5, [0, 0, 1, 2, 0]])
    np.testing.assert_array_equal(columns["slots_weight"], [[1, 1, 1, 0, 0], [1] * 5, [1, 0, 0, 0, 0], [0] * 5,
                                                            [0] * 5, [0] * 5])  # the last: 4 tags for 5 tokens


def test_a_tag_of_a_type_training_never_saw_weighs_nothing(transformed):
    np.testing.assert_array_equal(transformed[1]["slots_label"][0], [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(transformed[1]["slots_weight"][0], [1, 1, 0, 0, 0])


def test_an_utterance_without_tags_is_untagged_not_all_o(transformed):
    np.testing.assert_array_equal(transformed[1]["text"][1], [3, 2, 1, 0, 0])
    np.testing.assert_array_equal(transformed[1]["slots_weight"][1], [0, 0, 0, 0, 0])


def test_tokens_outside_transform_match_its_cut():
    feature = CONFIG.features[0]
    cut = text.tokens(tf.constant(["Où est ma commande?", "  two   spaces ", ""]), feature)
    assert cut.to_list() == [[b"o\xc3\xb9", b"est", b"ma", b"commande", b"?"], [b"two", b"spaces"], []]


NGRAMS = PipelineConfig.from_dict({
    "name": "tiny-ngrams",
    "features": [{"name": "text", "kind": "text", "max_tokens": 3, "char_ngram_buckets": 1000,
                  "char_ngram_sizes": [3, 4], "char_ngrams_per_token": 4}],
    "tasks": [{"name": "intent", "type": "multiclass", "label_key": "intent", "num_classes": 2}],
}).features[0]


def _bucket_ids(grams):
    return list(tf.strings.to_hash_bucket_fast(grams, 1000).numpy() + 1)


def test_char_ngrams_of_each_token_in_order_of_length_cut_per_token_and_padded():
    # "hi" is "<hi>": two 3-grams, one 4-gram, then padding; "abcd" is "<abcd>": four 3-grams fill its four places,
    # its 4-grams are cut; the third position has no token, and the empty row is all padding.
    ids = text.char_ngram_ids(tf.ragged.constant([["hi", "abcd"], []]), NGRAMS).numpy()
    assert ids.shape == (2, 3 * 4)
    np.testing.assert_array_equal(ids[0], [*_bucket_ids(["<hi", "hi>", "<hi>"]), 0,
                                           *_bucket_ids(["<ab", "abc", "bcd", "cd>"]), 0, 0, 0, 0])
    np.testing.assert_array_equal(ids[1], [0] * 12)


def test_a_misspelt_word_shares_the_char_ngrams_of_its_start_with_the_word():
    ids = text.char_ngram_ids(tf.ragged.constant([["order"], ["ordr"]]), NGRAMS).numpy()[:, :4]
    assert ids[0, 0] == ids[1, 0] and ids[0, 1] == ids[1, 1]  # "<or", "ord"
    assert set(ids[0, 2:]).isdisjoint(ids[1, 2:])  # "rde", "der" against "rdr", "dr>"


def test_the_text_input_with_char_ngrams_is_the_token_ids_then_each_tokens_ngram_ids():
    raw = tf.constant(["Hi abcd", ""])
    length = lambda tokens: tf.cast(tf.strings.length(tokens, "UTF8_CHAR"), tf.int64)  # noqa: E731
    inputs = text.model_input(text.tokens(raw, NGRAMS), NGRAMS, length)
    assert inputs.shape == (2, 3 * (1 + 4))
    np.testing.assert_array_equal(inputs[:, :3], [[3, 5, 0], [0, 0, 0]])  # 1 + the lookup: the token's length
    ids, grams = text.split_input(inputs, 3, 4)
    np.testing.assert_array_equal(ids, inputs[:, :3])
    np.testing.assert_array_equal(grams, text.char_ngram_ids(text.tokens(raw, NGRAMS), NGRAMS).numpy().reshape(2, 3, 4))


SHAPED = CONFIG.replace(features=(dataclasses.replace(CONFIG.features[0], oov_buckets=5, oov_by_shape=True),))
UNSEEN_SHAPES = [(["refund order 48213 95341610 dlolars"], [], [], []), (["iy364847"], [], [], [])]


@pytest.fixture(scope="module")
def shaped(tmp_path_factory):
    """SHAPED's Transform (5 OOV buckets, chosen by shape): as ``transformed`` for SHAPED and UNSEEN_SHAPES."""
    return _transform(SHAPED, UNSEEN_SHAPES, tmp_path_factory.mktemp("tft-shaped"))


def test_shapes_cut_letters_digits_and_long_runs():
    words = ["order", "48213", "iy364847", "$19.90", "Málaga", "HELP", "a", "17th"]
    assert text.shapes(tf.constant(words)).numpy().tolist() == [
        b"aaaa", b"0000", b"aa0000", b"$00.00", b"Aaaaa", b"AAAA", b"a", b"00aa"]


def test_an_oov_token_takes_its_shapes_bucket_and_a_vocabulary_token_keeps_its_id(shaped):
    # Vocabulary ids 1-9 as in the test above, OOV ids 10 + the bucket of " " + shape among 5: " aaaa" 2, " 0000" 4,
    # " aa0000" 1, " !" 0 (by their text the numbers would take 4 and 1, dlolars 0).
    np.testing.assert_array_equal(shaped[0]["text"][1], [3, 5, 1, 7, 10])  # "!" is beyond top_k
    np.testing.assert_array_equal(shaped[1]["text"], [[12, 1, 14, 14, 12], [11, 0, 0, 0, 0]])
    assert features.cardinality(SHAPED.features[0], tft.TFTransformOutput(shaped[2])) == 9 + 5 + 1


def test_the_on_device_lookup_gives_an_oov_token_the_same_shape_bucket_as_transform(shaped):
    from models import lite

    constants = lite.TransformConstants(None, tft.TFTransformOutput(shaped[2]))
    on_device = features.on_device_transform(SHAPED.features[0], constants)
    utterances = tf.constant([row[0][0] for row in UNSEEN_SHAPES])
    np.testing.assert_array_equal(on_device(utterances).numpy(), shaped[1]["text"])
