"""The vectorised per-head TFMA metrics: hand-computed values on tiny inputs, and the same names and values as
TFMA's own metrics on the same predictions (a model-less TFMA run over tf.Examples)."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2

from models.evaluation import head_metrics as hm
from models.tasks import BinaryTask, MulticlassTask, MultilabelTask, RegressionTask

# What each task type's summary gathers, as the EvalConfig passes it.
BINARY, REGRESSION = BinaryTask.summary_parts, RegressionTask.summary_parts
MULTICLASS, MULTILABEL = MulticlassTask.summary_parts, MultilabelTask.summary_parts


def _summary(parts, labels, predictions, weights, plot_range=(0.0, 1.0)):
    summary = hm.HeadSummary(parts, plot_range, 4)
    for label, prediction, weight in zip(labels, predictions, weights, strict=True):
        summary.add(np.atleast_1d(label), np.atleast_1d(prediction), np.atleast_1d(weight))
    return summary.fold()


def _value(metric_class, summary):
    return metric_class(parts=summary.parts, plot_range=summary.plot_range, plot_buckets=summary.plot_buckets).value(
        summary)


def test_binary_counts_means_and_calibration():
    # the last example has weight 0: its label is missing and counts for nothing
    summary = _summary(BINARY, [1, 0, 1, 0], [0.9, 0.8, 0.2, 0.1], [1, 1, 2, 0])
    assert _value(hm.HeadExampleCount, summary) == 4.0
    assert _value(hm.HeadWeightedExampleCount, summary) == 4.0
    assert _value(hm.HeadMeanLabel, summary) == pytest.approx(3 / 4)
    assert _value(hm.HeadMeanPrediction, summary) == pytest.approx((0.9 + 0.8 + 0.4) / 4)
    assert _value(hm.HeadCalibration, summary) == pytest.approx(2.1 / 3)


def test_auc_counts_the_weighted_pairs_in_order():
    # positives 0.9 (w 1) and 0.2 (w 2), negative 0.8 (w 1): ordered pairs weigh 1 of 3
    summary = _summary(BINARY, [1, 0, 1, 0], [0.9, 0.8, 0.2, 0.1], [1, 1, 2, 0])
    assert _value(hm.HeadAUC, summary) == pytest.approx(1 / 3)


def test_precision_recall_auc_with_tfma_interpolation():
    perfect = _summary(BINARY, [1, 0], [0.9, 0.1], [1, 1])
    assert _value(hm.HeadAUCPrecisionRecall, perfect) == pytest.approx(1.0)
    reversed_ = _summary(BINARY, [1, 0], [0.1, 0.9], [1, 1])  # precision slides from 1/2 to 0 along recall 1
    assert _value(hm.HeadAUCPrecisionRecall, reversed_) == pytest.approx(1 - math.log(2))


def test_regression_errors_and_calibration_plot_buckets():
    summary = _summary(REGRESSION, [1.0, 3.0, 0.0, 7.0], [2.0, 1.0, -1.0, 9.0], [1, 1, 1, 0], (0.0, 4.0))
    assert _value(hm.HeadRootMeanSquaredError, summary) == pytest.approx(math.sqrt((1 + 4 + 1) / 3))
    assert _value(hm.HeadMeanAbsoluteError, summary) == pytest.approx((1 + 2 + 1) / 3)
    plot = _value(hm.HeadCalibrationPlot, summary)
    edges = [(b.lower_threshold_inclusive, b.upper_threshold_exclusive) for b in plot.buckets]
    assert edges == [(-math.inf, 0.0), (0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, math.inf)]
    weights = [b.num_weighted_examples.value for b in plot.buckets]
    labels = [b.total_weighted_label.value for b in plot.buckets]
    assert weights == [1, 0, 1, 1, 0, 0]  # -1 below the range, 1.0 and 2.0 on their buckets' lower edges
    assert labels == [0, 0, 3, 1, 0, 0]  # and 9.0 above it, with weight 0


def test_multiclass_accuracy_and_confusion_cells():
    predictions = [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]]
    summary = _summary(MULTICLASS, [0, 2, 0, 1], predictions, [1, 1, 2, 0])
    assert _value(hm.HeadSparseCategoricalAccuracy, summary) == pytest.approx(2 / 4)
    (matrix,) = _value(hm.HeadMultiClassConfusionMatrixPlot, summary).matrices
    cells = {(e.actual_class_id, e.predicted_class_id): e.num_weighted_examples for e in matrix.entries}
    assert cells == {(0, 0): 1.0, (0, 1): 2.0, (1, 2): 0.0, (2, 2): 1.0}  # a weight-0 example's cell is listed


def test_multilabel_auc_is_micro_averaged():
    # pairs (label, score): (1, .9) (0, .6) | (0, .3) (1, .4): positives .9, .4 against negatives .6, .3 -> 3 of 4
    summary = _summary(MULTILABEL, [[1, 0], [0, 1]], [[0.9, 0.6], [0.3, 0.4]], [1, 1])
    assert _value(hm.HeadAUC, summary) == pytest.approx(3 / 4)
    assert _value(hm.HeadExampleCount, summary) == 2.0  # examples, not pairs, as TFMA counts them


def test_merging_parts_equals_one_summary():
    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 2, 3000), rng.random(3000)
    weights = rng.integers(0, 2, 3000)
    whole = _summary(BINARY, labels, predictions, weights)
    combiner = hm._HeadSummaryCombiner(None, BINARY, (0.0, 1.0), 4)
    merged = combiner.merge_accumulators([_summary(BINARY, labels[:1234], predictions[:1234], weights[:1234]),
                                          _summary(BINARY, labels[1234:], predictions[1234:], weights[1234:])])
    for metric in (hm.HeadAUC, hm.HeadAUCPrecisionRecall, hm.HeadCalibration, hm.HeadExampleCount):
        assert _value(metric, merged) == pytest.approx(_value(metric, whole), abs=1e-12)


# --- against TFMA's own metrics -------------------------------------------------------------------------------

HEADS = {"click": "binary", "watch_time": "regression", "interest": "multiclass"}
TFMA_METRICS = {
    "binary": ["ExampleCount", "WeightedExampleCount", "AUC", "AUCPrecisionRecall", "Calibration", "MeanLabel",
               "MeanPrediction", "CalibrationPlot"],
    "regression": ["ExampleCount", "WeightedExampleCount", "RootMeanSquaredError", "MeanAbsoluteError", "MeanLabel",
                   "MeanPrediction", "CalibrationPlot"],
    "multiclass": ["ExampleCount", "WeightedExampleCount", "SparseCategoricalAccuracy",
                   "MultiClassConfusionMatrixPlot"],
}
PLOT_RANGE = {"binary": (0.0, 1.0), "regression": (0.0, 10.0), "multiclass": (0.0, 1.0)}


def _write_examples(path, n=3000):
    """Events with each head's label, weight (0 for about a third: the label is missing) and prediction."""
    rng = np.random.default_rng(7)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for _ in range(n):
            click_p = rng.random()
            scores = rng.dirichlet(np.ones(3))
            features = {
                "device": [rng.choice([b"phone", b"desktop"])],
                "click": [float(rng.random() < click_p)], "click_p": [float(click_p)],
                "watch_time": [float(rng.gamma(2.0))], "watch_time_p": [float(rng.gamma(2.0))],
                "interest": [int(rng.integers(0, 3))], "interest_p": scores.tolist(),
            }
            for head in HEADS:
                features[f"{head}_w"] = [float(rng.random() > 0.3)]
            feature = {}
            for key, values in features.items():
                if isinstance(values[0], bytes):
                    feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
                elif isinstance(values[0], int):
                    feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
                else:
                    feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def _evaluate(data, output, head_metrics: bool):
    """TFMA's run over the examples' stored predictions (no model), overall and by device."""
    spec = config_pb2.ModelSpec(label_keys={h: h for h in HEADS}, prediction_keys={h: f"{h}_p" for h in HEADS},
                                example_weight_keys={h: f"{h}_w" for h in HEADS})
    metrics_specs = []
    for head, kind in HEADS.items():
        if head_metrics:
            parts = {"binary": BINARY, "regression": REGRESSION, "multiclass": MULTICLASS}[kind]
            options = json.dumps({"parts": list(parts), "plot_range": list(PLOT_RANGE[kind]), "plot_buckets": 20})[1:-1]
            metrics = [config_pb2.MetricConfig(class_name=f"Head{name}", module="models.evaluation.head_metrics",
                                               config=options) for name in TFMA_METRICS[kind]]
        else:
            low, high = PLOT_RANGE[kind]
            metrics = [config_pb2.MetricConfig(
                class_name=name, config=f'"num_buckets": 20, "left": {low}, "right": {high}'
                if name == "CalibrationPlot" else "") for name in TFMA_METRICS[kind]]
        metrics_specs.append(config_pb2.MetricsSpec(output_names=[head], metrics=metrics))
    eval_config = config_pb2.EvalConfig(model_specs=[spec], metrics_specs=metrics_specs,
                                        slicing_specs=[config_pb2.SlicingSpec(),
                                                       config_pb2.SlicingSpec(feature_keys=["device"])])
    return tfma.run_model_analysis(eval_config=eval_config, data_location=str(data), output_path=str(output))


def _flat(result):
    metrics, plots = {}, {}
    for slice_key, by_output in result.slicing_metrics:
        for head, values in by_output.items():
            for name, value in values[""].items():
                metrics[(slice_key, head, name)] = value["doubleValue"]
    for slice_key, by_output in result.plots:
        for head, values in by_output.items():
            plots[(slice_key, head)] = values[""]
    return metrics, plots


def _numbers(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{path}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _numbers(item, f"{path}[{i}]")
    else:
        yield path, value


def test_same_names_and_values_as_tfma_own_metrics(tmp_path):
    data = tmp_path / "examples.tfrecord"
    _write_examples(data)
    ours_metrics, ours_plots = _flat(_evaluate(data, tmp_path / "ours", head_metrics=True))
    tfma_metrics, tfma_plots = _flat(_evaluate(data, tmp_path / "tfma", head_metrics=False))
    assert set(ours_metrics) == set(tfma_metrics) and len(ours_metrics) == 3 * 16  # 3 slices, 7 + 6 + 3 metrics
    for key, expected in tfma_metrics.items():
        tolerance = 2e-4 if "auc" in key[2] else 1e-6  # the AUCs: the same 10,000 thresholds, binned differently
        assert ours_metrics[key] == pytest.approx(expected, rel=tolerance, abs=tolerance), key
    assert set(ours_plots) == set(tfma_plots) and len(ours_plots) == 3 * 3
    for key, expected in tfma_plots.items():
        ours = dict(_numbers(ours_plots[key]))
        assert set(ours) == set(dict(_numbers(expected))), key
        for path, value in _numbers(expected):
            assert ours[path] == (pytest.approx(value, rel=1e-6, abs=1e-6) if isinstance(value, float) else value)


def test_a_summary_ships_its_histograms_by_their_filled_bins_and_comes_back_the_same():
    import pickle

    summary = _summary(BINARY, [1, 0, 1, 0], [0.9, 0.8, 0.2, 0.1], [1, 1, 2, 0.5])
    shipped = pickle.dumps(summary)
    assert len(shipped) < 2_000  # not 2 x 9,999 float64 bins (160 KB)
    back = pickle.loads(shipped)
    assert np.flatnonzero(back.positives).tolist() == [int(0.2 * 9_999), int(0.9 * 9_999)]
    np.testing.assert_array_equal(back.positives, summary.positives)
    np.testing.assert_array_equal(back.negatives, summary.negatives)
    np.testing.assert_array_equal(back.plot, summary.plot)
    assert _value(hm.HeadAUC, back) == _value(hm.HeadAUC, summary)


def test_a_summary_ships_its_confusion_matrices_by_their_filled_cells_and_comes_back_the_same():
    import pickle

    predictions = np.full((3, 500), 0.001)
    predictions[[0, 1, 2], [7, 7, 499]] = 0.5  # 500 classes: two dense [500, 500] matrices would be 4 MB
    summary = _summary(MULTICLASS, [7, 3, 499], predictions, [1, 2, 0])
    shipped = pickle.dumps(summary)
    assert len(shipped) < 2_000
    back = pickle.loads(shipped)
    assert back.confusion.shape == back.seen.shape == (500, 500)
    assert np.flatnonzero(back.seen).tolist() == [3 * 500 + 7, 7 * 500 + 7, 499 * 500 + 499]  # [actual, predicted]
    np.testing.assert_array_equal(back.confusion, summary.confusion)
    np.testing.assert_array_equal(back.seen, summary.seen)
    assert _value(hm.HeadSparseCategoricalAccuracy, back) == pytest.approx(1 / 3)
