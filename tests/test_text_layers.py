"""The sequence encoder and its masked poolings: padding never reaches the states or the pooled vector."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from config import SequenceEncoder as Kind
from models.text_layers import SequenceEncoder, TextFeatureEncoder, dropped_ids, masked_max, masked_mean

HUGE = 1e30
# Four rows of five tokens: full, padded at the end, a hole in the middle, all padding.
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 1, 1, 0], [0, 0, 0, 0, 0]], dtype=bool)
SMALL = {"units": 4, "num_layers": 2, "heads": 2, "max_tokens": 8}


def _tokens(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _encoder(kind, **kwargs):
    return SequenceEncoder(kind, **{**SMALL, **kwargs})


def test_masked_mean_and_max_ignore_huge_padding_and_pool_an_empty_row_to_zeros():
    values = tf.constant([[[-1.0, 2.0], [-3.0, -4.0], [HUGE, -HUGE], [HUGE, HUGE]],
                          [[HUGE, HUGE], [-HUGE, -HUGE], [1.0, 1.0], [0.0, 0.0]]])
    mask = tf.constant([[True, True, False, False], [False, False, False, False]])
    np.testing.assert_array_equal(masked_mean(values, mask).numpy(), [[-2.0, -1.0], [0.0, 0.0]])
    np.testing.assert_array_equal(masked_max(values, mask).numpy(), [[-1.0, 2.0], [0.0, 0.0]])
    for kind, pool in ((Kind.MEAN, masked_mean), (Kind.MAX, masked_max)):
        states, pooled = SequenceEncoder(kind)(values, mask)
        np.testing.assert_array_equal(pooled.numpy(), pool(values, mask).numpy())
        np.testing.assert_array_equal(states.numpy(), [[[-1.0, 2.0], [-3.0, -4.0], [0.0, 0.0], [0.0, 0.0]],
                                                       [[0.0, 0.0]] * 4])


def test_masked_poolings_have_finite_gradients_on_an_empty_row():
    values = tf.constant(_tokens([2, 3, 2]))
    mask = tf.constant([[True, False, False], [False, False, False]])
    with tf.GradientTape() as tape:
        tape.watch(values)
        total = tf.reduce_sum(masked_mean(values, mask)) + tf.reduce_sum(masked_max(values, mask))
    gradient = tape.gradient(total, values).numpy()
    np.testing.assert_array_equal(gradient, [[[2.0, 2.0], [0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0]] * 3])


@pytest.mark.parametrize("kind", list(Kind))
def test_padded_values_change_nothing_and_padded_states_are_zero(kind):
    encoder = _encoder(kind)
    tokens = _tokens([4, 5, 3])
    garbage = np.where(MASK[:, :, None], tokens, HUGE * np.sign(_tokens([4, 5, 3], seed=1))).astype(np.float32)
    states, pooled = encoder(tokens, tf.constant(MASK))
    garbage_states, garbage_pooled = encoder(garbage, tf.constant(MASK))
    out = encoder.output_dim(3)
    assert out == {Kind.MEAN: 3, Kind.MAX: 3, Kind.CNN: 4, Kind.GRU: 8, Kind.LSTM: 8, Kind.TRANSFORMER: 4}[kind]
    assert states.shape == (4, 5, out) and pooled.shape == (4, out)
    np.testing.assert_array_equal(garbage_states.numpy(), states.numpy())
    np.testing.assert_array_equal(garbage_pooled.numpy(), pooled.numpy())
    assert np.all(states.numpy()[~MASK] == 0.0)
    np.testing.assert_array_equal(pooled.numpy()[3], np.zeros(out))
    assert np.all(np.isfinite(pooled.numpy()))


def test_cnn_reads_padding_as_zeros():
    encoder = SequenceEncoder(Kind.CNN, units=1, kernel_size=3)
    tokens = tf.constant([[[1.0], [2.0], [3.0], [1000.0]], [[-1.0], [1.0], [1000.0], [1000.0]]])
    mask = tf.constant([[True, True, True, False], [True, True, False, False]])
    encoder(tokens, mask)
    # out[t] = 1 x[t-1] + 10 x[t] + 100 x[t+1] - 5, then relu; the "same" padding and the masked tokens are zeros.
    encoder.set_weights([np.array([1.0, 10.0, 100.0], np.float32).reshape(3, 1, 1), np.array([-5.0], np.float32)])
    states, pooled = encoder(tokens, mask)
    np.testing.assert_array_equal(states.numpy()[:, :, 0], [[205.0, 316.0, 27.0, 0.0], [85.0, 4.0, 0.0, 0.0]])
    np.testing.assert_array_equal(pooled.numpy(), [[316.0], [85.0]])


@pytest.mark.parametrize("kind", [Kind.GRU, Kind.LSTM, Kind.TRANSFORMER])
def test_a_padded_row_encodes_as_the_row_alone(kind):
    encoder = _encoder(kind)
    lengths = [5, 2, 4]
    tokens = _tokens([3, 5, 3])
    mask = np.arange(5)[None, :] < np.array(lengths)[:, None]
    states, pooled = encoder(tokens, tf.constant(mask))
    for row, n in enumerate(lengths):
        alone_states, alone_pooled = encoder(tokens[row:row + 1, :n], tf.ones([1, n], tf.bool))
        np.testing.assert_allclose(pooled.numpy()[row], alone_pooled.numpy()[0], atol=1e-5)
        np.testing.assert_allclose(states.numpy()[row, :n], alone_states.numpy()[0], atol=1e-5)


@pytest.mark.parametrize("kind", list(Kind))
def test_get_config_round_trip_gives_the_same_outputs(kind):
    encoder = _encoder(kind, kernel_size=2, dropout=0.1, name="encoder")
    config = encoder.get_config()
    assert type(config["kind"]) is str and config["kind"] == kind.value
    clone = SequenceEncoder.from_config(config)
    revived = tf_keras.layers.deserialize(tf_keras.layers.serialize(encoder))
    assert clone.get_config() == config and revived.get_config() == config
    tokens, mask = _tokens([4, 5, 3]), tf.constant(MASK)
    expected = encoder(tokens, mask)
    clone(tokens, mask)
    clone.set_weights(encoder.get_weights())
    for got, want in zip(clone(tokens, mask), expected, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


# lstm runs the same Bidirectional path as gru; tracing a recurrent layer takes seconds, so one of the two is traced.
@pytest.mark.parametrize("kind", [Kind.MEAN, Kind.MAX, Kind.CNN, Kind.GRU, Kind.TRANSFORMER])
def test_runs_in_a_tf_function_of_unknown_length(kind):
    encoder = _encoder(kind, num_layers=1)
    encode = tf.function(lambda tokens, mask: encoder(tokens, mask),
                         input_signature=[tf.TensorSpec([None, None, 3], tf.float32),
                                          tf.TensorSpec([None, None], tf.bool)])
    for length in (5, 3):
        tokens, mask = _tokens([4, length, 3]), tf.constant(MASK[:, :length])
        for got, want in zip(encode(tokens, mask), encoder(tokens, mask), strict=True):
            np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)


def test_unknown_kind_and_indivisible_heads_are_refused():
    with pytest.raises(ValueError):
        SequenceEncoder("bag")
    with pytest.raises(ValueError, match="heads must divide units"):
        SequenceEncoder(Kind.TRANSFORMER, units=5, heads=2)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_the_text_feature_encoder_reads_up_to_the_last_token_and_gives_every_position(kind):
    encoder = TextFeatureEncoder("text", 20, 4, kind, units=4, max_tokens=6, readers=["a", "b"])
    ids = tf.constant([[3, 5, 0, 0, 0, 0], [7, 0, 0, 0, 0, 0]], tf.int64)
    out = encoder(ids)
    assert set(out) == {"a", "b"}
    vectors = encoder.tokens(ids)
    for reader, (states, pooled) in out.items():
        full_states, full_pooled = encoder.encoders[reader](vectors, tf.not_equal(ids, 0))
        assert states.shape == (2, 6, encoder.encoders[reader].output_dim(4))
        np.testing.assert_allclose(states.numpy(), full_states.numpy(), atol=1e-5)
        np.testing.assert_allclose(pooled.numpy(), full_pooled.numpy(), atol=1e-5)


def test_the_text_feature_encoder_round_trips_its_config():
    encoder = TextFeatureEncoder("text", 20, 4, "cnn", units=8, num_layers=2, max_tokens=6, name="text_text_encoder")
    again = TextFeatureEncoder.from_config(encoder.get_config())
    assert again.get_config() == encoder.get_config() and list(again.encoders) == [""]


def test_a_tokens_vector_adds_the_mean_of_its_char_ngram_rows_to_its_own_row():
    # Two token positions, two n-grams per token: token 1 reads n-grams 1 and 2, token 2 reads n-gram 3 alone;
    # "mean" states are the token vectors themselves.
    encoder = TextFeatureEncoder("text", 4, 2, "mean", max_tokens=2, char_ngram_buckets=3, char_ngrams_per_token=2)
    inputs = tf.constant([[1, 2, 1, 2, 3, 0], [0, 0, 0, 0, 0, 0]], tf.int64)
    encoder(inputs)
    encoder.tokens.set_weights([np.array([[9, 9], [1, 0], [0, 1], [5, 5]], np.float32)])
    encoder.char_ngrams.set_weights([np.array([[7, 7], [2, 4], [4, 8], [10, 20]], np.float32)])
    states, pooled = encoder(inputs)[""]
    np.testing.assert_allclose(states.numpy()[0], [[1 + 3, 0 + 6], [0 + 10, 1 + 20]])
    np.testing.assert_allclose(states.numpy()[1], [[0, 0], [0, 0]])
    np.testing.assert_allclose(pooled.numpy(), [[7, 13.5], [0, 0]])


def test_the_char_ngram_table_gets_its_gradient_from_the_ngrams_a_batch_reads_only():
    encoder = TextFeatureEncoder("text", 4, 2, "mean", max_tokens=2, char_ngram_buckets=3, char_ngrams_per_token=2)
    inputs = tf.constant([[1, 0, 2, 0, 0, 0]], tf.int64)
    with tf.GradientTape() as tape:
        _, pooled = encoder(inputs)[""]
        loss = tf.reduce_sum(pooled)
    gradient = tape.gradient(loss, encoder.char_ngrams.embeddings)
    assert isinstance(gradient, tf.IndexedSlices)
    np.testing.assert_array_equal(gradient.indices.numpy(), [2])  # the n-gram read, not the 0 that pads it
    np.testing.assert_array_equal(tf.convert_to_tensor(gradient).numpy(), [[0, 0], [0, 0], [1, 1], [0, 0]])


def test_the_text_feature_encoder_with_char_ngrams_round_trips_its_config():
    encoder = TextFeatureEncoder("text", 20, 4, "cnn", max_tokens=6, char_ngram_buckets=50, char_ngrams_per_token=3)
    again = TextFeatureEncoder.from_config(encoder.get_config())
    assert again.get_config() == encoder.get_config() and again.char_ngrams.input_dim == 51


def test_an_input_without_the_char_ngrams_the_encoder_reads_is_refused_by_name():
    encoder = TextFeatureEncoder("text", 4, 2, "mean", max_tokens=2, char_ngram_buckets=3, char_ngrams_per_token=2)
    with pytest.raises(ValueError, match="text feature 'text': its input has 2 ids per example, but 2 tokens with 2 "
                                         "n-grams each need 6"):
        encoder(tf.constant([[1, 2]], tf.int64))


def test_dropped_ids_read_real_tokens_as_oov_ids_at_the_rate_and_leave_padding():
    tf.random.set_seed(0)
    ids = tf.constant(np.tile([[1, 2, 3, 4, 5, 0, 0, 0]], [5000, 1]), tf.int64)
    dropped = dropped_ids(ids, 0.25, first_oov=6, end=9).numpy()
    changed = dropped != ids.numpy()
    assert not changed[:, 5:].any() and (dropped[:, 5:] == 0).all()
    assert set(np.unique(dropped[changed])) == {6, 7, 8}
    # 25,000 real tokens: the share read as OOV is 0.25 within 4 binomial standard deviations (0.011).
    assert abs(changed[:, :5].mean() - 0.25) < 0.011
    assert (dropped_ids(ids, 0.0, 6, 9).numpy() == ids.numpy()).all()


def test_token_dropout_reads_only_the_oov_rows_in_training_and_nothing_changes_in_inference():
    # Table of 6 ids: padding, 3 known tokens, 2 OOV ids; "mean" states are the token vectors themselves.
    encoder = TextFeatureEncoder("text", 6, 1, "mean", max_tokens=4, token_dropout=0.5, oov_ids=2)
    inputs = tf.constant(np.tile([[1, 2, 3, 0]], [400, 1]), tf.int64)
    encoder(inputs)
    encoder.tokens.set_weights([np.array([[0], [1], [2], [3], [100], [100]], np.float32)])
    inference, _ = encoder(inputs)[""]
    np.testing.assert_array_equal(inference.numpy()[0, :, 0], [1, 2, 3, 0])
    training, _ = encoder(inputs, training=True)[""]
    values = training.numpy()[:, :, 0]
    assert set(np.unique(values[:, :3])) == {1, 2, 3, 100} and (values[:, 3] == 0).all()
    for column, own in enumerate([1, 2, 3]):
        assert 0.4 < (values[:, column] == 100).mean() < 0.6 and set(np.unique(values[:, column])) == {own, 100}


def test_token_dropout_needs_oov_ids_and_round_trips_its_config():
    with pytest.raises(ValueError, match="text feature 'text': token_dropout reads tokens as OOV ids, but the table "
                                         "has 0 of its 6 ids for OOV tokens"):
        TextFeatureEncoder("text", 6, 1, "mean", token_dropout=0.1)
    encoder = TextFeatureEncoder("text", 6, 1, "cnn", token_dropout=0.1, oov_ids=2)
    assert TextFeatureEncoder.from_config(encoder.get_config()).get_config() == encoder.get_config()


def test_encoder_dropout_zeroes_or_doubles_each_cnn_state_in_training_and_leaves_inference_and_padding_alone():
    # One 3-token row and one padded row, 400 times; cnn states after dropout 0.5 are 0 or 2x inference's.
    encoder = TextFeatureEncoder("text", 6, 4, "cnn", units=8, max_tokens=4, dropout=0.5, readers=["", "slots"])
    inputs = tf.constant(np.tile([[1, 2, 3, 0], [4, 5, 0, 0]], [200, 1]), tf.int64)
    inference = {reader: states.numpy() for reader, (states, _) in encoder(inputs).items()}
    assert all(encoder.encoders[reader].dropout == 0.5 for reader in ("", "slots"))
    for reader, (states, _) in encoder(inputs, training=True).items():
        states, kept = states.numpy(), inference[reader]
        doubled, zeroed = np.isclose(states, 2 * kept, atol=1e-6), states == 0
        assert (doubled | zeroed).all()
        active = kept != 0
        assert 0.4 < zeroed[active].mean() < 0.6
        assert (states[0::2, 3] == 0).all() and (states[1::2, 2:] == 0).all()  # padding stays exactly 0
    again = {reader: states.numpy() for reader, (states, _) in encoder(inputs).items()}
    assert all((again[reader] == inference[reader]).all() for reader in inference)


def test_encoder_dropout_round_trips_its_config():
    encoder = TextFeatureEncoder("text", 6, 2, "gru", dropout=0.25)
    config = encoder.get_config()
    assert config["dropout"] == 0.25
    assert TextFeatureEncoder.from_config(config).encoders[""].dropout == 0.25
