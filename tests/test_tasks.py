"""Task types: masked losses with exact values on tiny tensors, label encoding, heads and metrics."""

import math

import numpy as np
import pytest
import tensorflow as tf

from config import BlessingConfig, ConfigError, TaskConfig, TaskType
from models.tasks import (
    BinaryTask,
    MulticlassTask,
    MultilabelTask,
    RegressionTask,
    SequenceLabelingTask,
    class_ids,
    make_task,
)


def _task(cls, type_, **kwargs):
    return cls(TaskConfig(name="t", type=type_, label_key="y", **kwargs))


def _loss(task, labels, weights, predictions):
    return float(task.loss(tf.constant(labels), tf.constant(weights, tf.float32), tf.constant(predictions)))


def test_binary_loss_averages_over_present_labels_only():
    task = _task(BinaryTask, "binary")
    loss = _loss(task, [1.0, 0.0, 0.0], [1, 1, 0], [0.8, 0.4, 0.9])
    assert loss == pytest.approx((-math.log(0.8) - math.log(0.6)) / 2, rel=1e-5)


def test_regression_loss_is_masked_mean_squared_error():
    task = _task(RegressionTask, "regression")
    assert _loss(task, [2.0, 0.0, 5.0], [1, 0, 1], [1.0, 7.0, 2.0]) == pytest.approx(5.0)


def test_multiclass_loss_is_masked_cross_entropy():
    task = _task(MulticlassTask, "multiclass", num_classes=3)
    probs = [[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]]
    assert _loss(task, np.array([2, 0], np.int64), [1, 1], probs) == pytest.approx(
        (-math.log(0.5) - math.log(0.1)) / 2, rel=1e-5)
    assert _loss(task, np.array([2, 0], np.int64), [0, 1], probs) == pytest.approx(-math.log(0.1), rel=1e-5)


def test_multilabel_loss_is_masked_mean_binary_cross_entropy_over_the_labels():
    task = _task(MultilabelTask, "multilabel", num_classes=2)
    loss = _loss(task, [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [1, 1, 0], [[0.8, 0.4], [0.3, 0.9], [0.1, 0.1]])
    expected = ((-math.log(0.8) - math.log(0.6)) / 2 + (-math.log(0.7) - math.log(0.9)) / 2) / 2
    assert loss == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("task", [_task(BinaryTask, "binary"), _task(RegressionTask, "regression")])
def test_all_missing_batch_gives_zero_loss_and_zero_gradient(task):
    predictions = tf.Variable([0.3, 0.9])
    with tf.GradientTape() as tape:
        loss = task.loss(tf.constant([1.0, 0.0]), tf.zeros([2]), predictions)
    assert float(loss) == 0.0
    assert np.all(np.isfinite(tape.gradient(loss, predictions).numpy()))


def test_encode_label_maps_absent_and_minus_one_to_weight_zero():
    # Rows: 1, absent, -1, 0  (a sparse column, as a label that is only sometimes logged is parsed).
    raw = tf.SparseTensor(indices=[[0, 0], [2, 0], [3, 0]], values=tf.constant([1, -1, 0], tf.int64),
                          dense_shape=[4, 1])
    label, weight = _task(BinaryTask, "binary").encode_label(raw)
    assert label.numpy().tolist() == [1.0, 0.0, 0.0, 0.0]
    assert weight.numpy().tolist() == [1.0, 0.0, 0.0, 1.0]


def test_encode_label_counts_a_non_finite_label_as_missing():
    raw = tf.constant([[2.5], [float("nan")], [float("inf")], [0.0]])
    label, weight = _task(RegressionTask, "regression").encode_label(raw)
    assert label.numpy().tolist() == [2.5, 0.0, 0.0, 0.0]
    assert weight.numpy().tolist() == [1.0, 0.0, 0.0, 1.0]


def test_encode_label_of_an_all_absent_batch():
    raw = tf.SparseTensor(indices=tf.zeros([0, 2], tf.int64), values=tf.zeros([0], tf.float32), dense_shape=[3, 0])
    label, weight = _task(RegressionTask, "regression").encode_label(raw)
    assert label.numpy().tolist() == [0.0, 0.0, 0.0] and weight.numpy().tolist() == [0.0, 0.0, 0.0]


def test_encode_label_keeps_minus_one_when_the_task_says_it_is_a_value():
    raw = tf.constant([[-1.0], [2.5]])
    label, weight = _task(RegressionTask, "regression", missing_value=None).encode_label(raw)
    assert label.numpy().tolist() == [-1.0, 2.5] and weight.numpy().tolist() == [1.0, 1.0]


def test_multiclass_label_is_an_int_class_id():
    raw = tf.constant([[3], [-1]], tf.int64)
    label, weight = _task(MulticlassTask, "multiclass", num_classes=5).encode_label(raw)
    assert label.dtype == tf.int64 and label.numpy().tolist() == [3, 0] and weight.numpy().tolist() == [1.0, 0.0]


def test_multilabel_label_is_a_multi_hot_row_missing_when_absent_or_minus_one():
    # Rows: [1, 0, 1], absent, [-1, -1, -1], [0, 0, 0]  (a present all-zero row is a real label).
    raw = tf.SparseTensor(indices=[[0, 0], [0, 1], [0, 2], [2, 0], [2, 1], [2, 2], [3, 0], [3, 1], [3, 2]],
                          values=tf.constant([1, 0, 1, -1, -1, -1, 0, 0, 0], tf.int64), dense_shape=[4, 3])
    label, weight = _task(MultilabelTask, "multilabel", num_classes=3).encode_label(raw)
    assert label.numpy().tolist() == [[1, 0, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert weight.numpy().tolist() == [1.0, 0.0, 0.0, 1.0]
    dense_label, dense_weight = _task(MultilabelTask, "multilabel", num_classes=2).encode_label(
        tf.constant([[0, 1], [-1, -1]], tf.int64))
    assert dense_label.numpy().tolist() == [[0, 1], [0, 0]] and dense_weight.numpy().tolist() == [1.0, 0.0]


def test_multilabel_row_with_too_many_values_is_an_error():
    raw = tf.SparseTensor(indices=[[0, 0], [0, 1], [0, 2]], values=tf.constant([1, 0, 1], tf.int64),
                          dense_shape=[1, 3])
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than 2 values"):
        _task(MultilabelTask, "multilabel", num_classes=2).encode_label(raw)


def test_heads_and_served_shapes():
    x = tf.ones([4, 6])
    binary, multiclass = _task(BinaryTask, "binary"), _task(MulticlassTask, "multiclass", num_classes=3)
    assert binary.predictions(binary.make_head()(x)).shape == (4,)
    probs = multiclass.predictions(multiclass.make_head()(x))
    assert probs.shape == (4, 3) and np.allclose(probs.numpy().sum(axis=1), 1.0, atol=1e-6)
    multilabel = _task(MultilabelTask, "multilabel", num_classes=3)
    scores = multilabel.predictions(multilabel.make_head()(x)).numpy()
    assert scores.shape == (4, 3) and np.all((scores > 0) & (scores < 1))


def test_metrics_ignore_missing_labels():
    (auc,) = _task(BinaryTask, "binary").make_metrics()
    # Perfectly ranked on the present labels; the missing one would invert the ranking if it counted.
    auc.update_state([1.0, 0.0, 0.0], [0.9, 0.1, 0.95], sample_weight=[1.0, 1.0, 0.0])
    assert float(auc.result()) == pytest.approx(1.0)


def test_multilabel_metric_ignores_missing_rows():
    task = _task(MultilabelTask, "multilabel", num_classes=2)
    (auc,) = task.make_metrics()
    # Perfectly ranked on the present rows; the missing row would invert the ranking if it counted.
    auc.update_state([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], [[0.9, 0.1], [0.2, 0.8], [0.9, 0.1]],
                     sample_weight=task.metric_weights(tf.constant([1.0, 1.0, 0.0])))
    assert float(auc.result()) == pytest.approx(1.0)


def test_key_metric_names_are_the_names_in_tfma_output():
    tasks = [_task(BinaryTask, "binary"), _task(RegressionTask, "regression"),
             _task(MulticlassTask, "multiclass", num_classes=3), _task(MultilabelTask, "multilabel", num_classes=2)]
    tasks.append(_task(SequenceLabelingTask, "sequence_labeling", text_feature="x", classes=("a",)))
    assert [t.key_metric_name for t in tasks] == ["auc", "root_mean_squared_error", "sparse_categorical_accuracy",
                                                  "auc", "span_f1"]


def test_present_rows_exclude_nan_and_the_missing_value_in_any_column():
    binary = _task(BinaryTask, "binary")
    assert binary.present(np.array([1.0, np.nan, -1.0, 0.0])).tolist() == [True, False, False, True]
    multilabel = _task(MultilabelTask, "multilabel", num_classes=2)
    rows = np.array([[1.0, 0.0], [np.nan, np.nan], [-1.0, -1.0], [0.0, -1.0]])
    assert multilabel.present(rows).tolist() == [True, False, False, False]
    assert _task(RegressionTask, "regression", missing_value=None).present(np.array([-1.0, np.nan])).tolist() == [
        True, False]


def test_the_blessing_rule_follows_the_key_metric_direction():
    click = BinaryTask(TaskConfig(name="c", type="binary", label_key="y",
                                  blessing=BlessingConfig(bound=0.55, tolerance=0.01)))
    assert click.blessing_rule.describe() == ">= 0.55, change >= -0.01 or within noise"
    watch = RegressionTask(TaskConfig(name="w", type="regression", label_key="y",
                                      blessing=BlessingConfig(tolerance=0.05, evidence="point")))
    assert (watch.blessing_rule.metric, watch.blessing_rule.describe()) == ("root_mean_squared_error",
                                                                           "change <= +0.05")


@pytest.mark.parametrize("cls, type_", [(MulticlassTask, "multiclass"), (MultilabelTask, "multilabel")])
def test_a_class_type_needs_num_classes(cls, type_):
    with pytest.raises(ConfigError, match=rf"task 't': {type_} needs num_classes >= 2 \(or classes.*got 0"):
        _task(cls, type_)


def test_each_task_type_names_its_keras_metric():
    tagging = {TaskType.SEQUENCE_LABELING: {"text_feature": "x", "classes": ("a",)}}
    names = [make_task(TaskConfig(name="t", type=t, label_key="y", num_classes=3, **tagging.get(t, {}))
                       ).keras_metric_name for t in TaskType]
    assert names == ["t_auc", "t_rmse", "t_accuracy", "t_auc", "t_token_accuracy"]


# --- text labels and per-token tasks ------------------------------------------------------------------------------

def _tagger(**kwargs):
    return _task(SequenceLabelingTask, "sequence_labeling", text_feature="text", classes=("date", "city"), **kwargs)


def test_per_token_loss_is_the_cross_entropy_mean_over_the_weighted_tokens():
    task = _tagger()  # 5 tags: O, B-date, I-date, B-city, I-city
    assert task.units == 5
    probs = np.full((2, 3, 5), 0.1)
    probs[0, 0] = [0.6, 0.1, 0.1, 0.1, 0.1]  # O at 0.6
    probs[0, 1] = [0.1, 0.6, 0.1, 0.1, 0.1]
    probs[0, 2, 2] = 0.6  # padding: weight 0
    probs[1, 0, 3] = 0.6
    labels = np.array([[0, 2, 4], [3, 0, 0]], np.int64)
    weights = [[1, 1, 0], [1, 0, 0]]
    expected = (-math.log(0.6) - math.log(0.1) - math.log(0.6)) / 3
    assert _loss(task, labels, weights, probs.astype(np.float32)) == pytest.approx(expected, rel=1e-5)


def test_a_tokens_loss_reads_its_tags_probability_clipped_at_keras_epsilon():
    task = _tagger()
    probs = np.zeros((1, 2, 5), np.float32)
    probs[0, 0] = [0.0, 1.0, 0.0, 0.0, 0.0]  # its tag at 0: -log(1e-7), not inf
    probs[0, 1] = [0.25, 0.0, 0.0, 0.0, 0.75]
    losses = task.per_example_loss(tf.constant([[0, 4]], tf.int64), tf.constant(probs)).numpy()
    np.testing.assert_allclose(losses, [[-math.log(1e-7), -math.log(0.75)]], rtol=1e-6)


def test_a_taggers_training_rows_are_compared_with_the_tags_and_weights_at_their_positions():
    task = _tagger()
    labels = tf.constant([[1, 2, 0], [3, 0, 0]], tf.int64)
    weights = tf.constant([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    rows = tf.constant(np.full((3, 5), 0.2, np.float32))
    positions = tf.constant([[0, 1], [1, 0], [0, 2]], tf.int64)  # any order: each row with its own place
    tags, token_weights, compared = task.compared(labels, weights, (rows, positions))
    assert tags.numpy().tolist() == [2, 3, 0] and token_weights.numpy().tolist() == [1.0, 1.0, 0.0]
    assert compared is rows
    assert _loss(task, tags.numpy(), token_weights.numpy(), rows.numpy()) == pytest.approx(-math.log(0.2), rel=1e-5)
    dense = np.zeros((2, 3, 5), np.float32)
    assert task.compared(labels, weights, dense) == (labels, weights, dense)  # served predictions: as they are


def test_a_taggers_rows_go_to_their_tokens_positions_and_padding_reads_outside():
    task = _tagger()
    rows = np.arange(15, dtype=np.float32).reshape(3, 5)  # the real tokens' rows, in row-major order
    mask = tf.constant([[True, False, True], [False, False, False], [True, False, False]])
    spread = task.at_positions(tf.constant(rows), mask).numpy()
    outside = [1, 0, 0, 0, 0]
    np.testing.assert_array_equal(spread, [[rows[0], outside, rows[1]], [outside] * 3, [rows[2], outside, outside]])


def test_a_class_training_never_saw_weighs_nothing_and_gives_no_nan():
    task = _task(MulticlassTask, "multiclass", classes=("a", "b", "c"))
    loss = _loss(task, np.array([-1, 1], np.int64), [0, 1], [[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]])
    assert loss == pytest.approx(-math.log(0.6), rel=1e-5)


def test_config_classes_give_ids_and_minus_one_for_other_names():
    task = _task(MulticlassTask, "multiclass", classes=("cancel", "track"))
    ids = class_ids(task, tf.constant(["track", "cancel", "refund", ""]), tf.constant([], tf.string))
    assert ids.numpy().tolist() == [1, 0, -1, -1]


def test_multilabel_names_stored_as_ids_become_multi_hot_targets():
    task = _task(MultilabelTask, "multilabel", classes=("billing", "delivery", "account"))
    targets = task.targets(tf.constant([[0, 2], [-1, -1], [1, -1]], tf.int64))
    assert targets.numpy().tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]


def test_served_names_of_a_tagger_are_o_then_b_and_i_per_type():
    assert _tagger().served_names(["date", "city"]) == ["O", "B-date", "I-date", "B-city", "I-city"]


def test_a_tagger_serves_the_most_likely_tag_per_token_and_nothing_at_padding():
    task = _tagger()
    names = tf.constant(task.served_names(["date", "city"]))
    probs = tf.one_hot([[1, 2, 0, 4]], 5)
    tags = task.named_outputs(probs, names, tf.constant([[7, 3, 9, 0]], tf.int64))["t_tags"]
    assert tags.numpy().tolist() == [[b"B-date", b"I-date", b"O", b""]]


def test_a_tagger_serves_a_well_formed_sequence_where_each_token_argmax_is_not():
    task = _tagger()
    names = tf.constant(task.served_names(["date", "city"]))
    # argmax: O, I-date, I-city. Decoded: B-date I-date (0.3 x 0.7 beats O O's 0.6 x 0.2), then B-city.
    probs = tf.constant([[[0.6, 0.3, 0.1, 0.0, 0.0], [0.2, 0.1, 0.7, 0.0, 0.0], [0.1, 0.1, 0.1, 0.3, 0.4]]])
    tags = task.named_outputs(probs, names, tf.constant([[7, 3, 9]], tf.int64))["t_tags"]
    assert tags.numpy().tolist() == [[b"B-date", b"I-date", b"B-city"]]


def test_a_class_head_serves_its_class_names_beside_the_probabilities():
    task = _task(MulticlassTask, "multiclass", classes=("a", "b"))
    named = task.named_outputs(tf.constant([[0.3, 0.7], [0.9, 0.1]]), tf.constant(["a", "b"]), None)
    assert named["t_classes"].numpy().tolist() == [[b"a", b"b"], [b"a", b"b"]]


def test_a_tagger_needs_its_text_feature_and_text_tags():
    with pytest.raises(ConfigError, match="needs text_feature"):
        _task(SequenceLabelingTask, "sequence_labeling", classes=("a",))
    with pytest.raises(ConfigError, match="tags are text"):
        _task(SequenceLabelingTask, "sequence_labeling", text_feature="text")


def test_a_number_label_type_refuses_class_names():
    with pytest.raises(ConfigError, match="a binary label is a number"):
        _task(BinaryTask, "binary", classes=("yes", "no"))


def test_the_tagger_score_is_the_exact_span_f1():
    task = _tagger()
    labels = np.array([[1, 2, 0, 3]])
    predictions = np.eye(5)[[[1, 2, 0, 1]]]  # date span right, city span mistyped
    assert task.score(labels, np.ones((1, 4)), predictions) == pytest.approx(2 * 1 / (2 + 2))
