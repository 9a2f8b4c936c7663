"""BIO-constrained decoding of per-token tag probabilities (models.tag_decoding): hand-computed cases, numpy and
TensorFlow agreeing, and the served graph through TFLite's converter."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from models.tag_decoding import decode, decode_tf, inside_tags

# Tag ids: 0 O, 1 B-a, 2 I-a, 3 B-b, 4 I-b.


def _both(probabilities):
    probabilities = np.asarray(probabilities, np.float32)
    numpy_tags = decode(probabilities)
    np.testing.assert_array_equal(decode_tf(tf.constant(probabilities)).numpy(), numpy_tags)
    return numpy_tags.tolist()


def test_inside_tags_are_the_even_ids_above_outside():
    assert inside_tags(5).tolist() == [False, False, True, False, True]
    assert inside_tags(4).tolist() == [False, False, True, False]  # an even count's last id is a B- alone


def test_decoding_is_the_best_well_formed_sequence_by_exhaustive_search():
    probabilities = np.random.default_rng(2).dirichlet(np.full(5, 0.5), size=(30, 4)).astype(np.float32)
    sequences = np.array(list(itertools.product(range(5), repeat=4)))
    sequences = sequences[_well_formed(sequences)]
    log_p = np.log(probabilities.astype(np.float64) + 1e-12)
    totals = log_p[:, np.arange(4)[None, :], sequences].sum(axis=-1)  # [examples, sequences]
    np.testing.assert_array_equal(_both(probabilities), sequences[totals.argmax(axis=1)])


def test_an_inside_tag_after_outside_becomes_a_whole_span():
    # argmax: O, I-a. Well-formed sequences: O O 0.12, O B 0.06, B O 0.06, B B 0.03, B I 0.21: B-a I-a wins.
    assert _both([[[0.6, 0.3, 0.1], [0.2, 0.1, 0.7]]]) == [[1, 2]]


def test_an_inside_tag_after_outside_becomes_outside_when_that_is_likelier():
    # argmax: O, I-a. O O 0.8 x 0.4 = 0.32 beats B I 0.1 x 0.5 = 0.05.
    assert _both([[[0.8, 0.1, 0.1], [0.4, 0.1, 0.5]]]) == [[0, 0]]


def test_no_row_starts_inside_a_span():
    assert _both([[[0.2, 0.3, 0.5]]]) == [[1]]


def test_a_span_keeps_one_type():
    # argmax: B-a, I-b. B-a I-a 0.03, B-a O 0.06, B-a B-b 0.06, B-b I-b 0.175: the span becomes type b.
    assert _both([[[0.05, 0.6, 0.05, 0.25, 0.05], [0.1, 0.05, 0.05, 0.1, 0.7]]]) == [[3, 4]]


def _well_formed(tags):
    """[n] bools: no I- tag of a row follows anything but the B- or I- of its own type (nor starts the row)."""
    inside = (tags > 0) & (tags % 2 == 0)
    previous = np.concatenate([np.zeros((len(tags), 1), np.int64), tags[:, :-1]], axis=1)
    return ~(inside & (previous != tags) & (previous != tags - 1)).any(axis=1)


def test_a_well_formed_argmax_is_kept_and_every_decoding_is_well_formed():
    probabilities = np.random.default_rng(0).dirichlet(np.full(7, 0.3), size=(200, 12)).astype(np.float32)
    tags = np.array(_both(probabilities))
    assert _well_formed(tags).all()
    argmax = probabilities.argmax(axis=-1)
    kept = _well_formed(argmax)
    assert 0 < kept.sum() < 200
    np.testing.assert_array_equal(tags[kept], argmax[kept])


def test_padding_given_outside_does_not_change_the_real_tokens():
    real = [[0.6, 0.3, 0.1], [0.2, 0.1, 0.7]]
    assert _both([real + [[1.0, 0.0, 0.0]] * 3]) == [[1, 2, 0, 0, 0]]


def test_decode_refuses_probabilities_without_a_token_axis():
    with pytest.raises(ValueError, match=r"\[examples, tokens, tags\]"):
        decode(np.ones((2, 3)))


def test_the_tf_decoding_converts_to_builtin_tflite_ops():
    function = tf.function(decode_tf, input_signature=[tf.TensorSpec([None, 6, 5], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    probabilities = np.random.default_rng(1).dirichlet(np.ones(5), size=(3, 6)).astype(np.float32)
    (source,), (result,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(source["index"], probabilities.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], probabilities)
    interpreter.invoke()
    np.testing.assert_array_equal(interpreter.get_tensor(result["index"]), decode(probabilities))
