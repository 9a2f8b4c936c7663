"""TFMA metrics and plots of one head, all derived from one vectorised summary per head and slice.

TFMA's own metrics each run a Python combiner on every example of every slice (19 of them for the four default
heads, about 25 microseconds each), which capped the Evaluator at about 700 events/s per core. Here every metric and
plot of a head is a TFMA ``DerivedMetricComputation`` over one shared ``MetricComputation`` (TFMA de-duplicates it by
its key, as it does for its own MeanLabel and Calibration): its combiner appends each example's label, prediction and
weight to a buffer and folds 1,024 of them at a time into numpy histograms and sums. The metric names, the plot
protos and the approximations (10,000 thresholds for the AUCs, TFMA's interpolation rules) are TFMA's, so reports,
blessing thresholds and baselines read them unchanged. Which sums and histograms a head's summary gathers is the
task's choice (``Task.summary_parts``, passed in each metric's config as ``parts``); ``eval_config`` names these
classes by module path.
"""

import json
from typing import Any

import apache_beam as beam
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import metrics_for_slice_pb2

from models.evaluation import spans
from models.evaluation.summary import Part

AUC_THRESHOLDS = 10_000  # TFMA's default for AUC and AUCPrecisionRecall
FOLD_EVERY = 1_024  # examples buffered before they are folded into the histograms
# HeadSummary's AUC histograms (AUC_THRESHOLDS - 1 bins each) and confusion matrices: pickled by their non-zero cells
_SPARSE_ON_THE_WIRE = ("positives", "negatives", "confusion", "seen")


class HeadSummary:
    """Everything the metrics of one head need, for one slice: sums, and histograms over the prediction. The
    combiner below creates and merges it; the derived metrics read it."""

    def __init__(self, parts, plot_range: tuple[float, float], plot_buckets: int):
        self.parts = frozenset(Part(part) for part in parts)
        self.plot_range, self.plot_buckets = plot_range, plot_buckets
        self.labels, self.predictions, self.weights = [], [], []  # not yet folded
        self.weight = self.weighted_labels = self.weighted_predictions = 0.0
        self.squared_error = self.absolute_error = 0.0
        bins = AUC_THRESHOLDS - 1  # bin j holds predictions in [j, j + 1) / (thresholds - 1)
        self.positives = np.zeros(bins) if Part.RANKING in self.parts else None
        self.negatives = np.zeros(bins) if Part.RANKING in self.parts else None
        # plot buckets: (-inf, left), plot_buckets between left and right, [right, inf); rows: weight, label, prediction
        self.plot = np.zeros((3, plot_buckets + 2)) if Part.CALIBRATION in self.parts else None
        self.confusion = None  # [actual, predicted] weights, sized by the first predictions seen (multiclass)
        self.seen = None  # [actual, predicted] examples, weighted or not: TFMA lists every cell it has seen
        self.unseen = 0.0  # examples whose class label is -1: a class name training never saw
        # sequence labelling (Part.SPANS): weighted tokens whose decoded tag is the label, and their weight; span
        # counts per slot type (spans' conlleval rules), grown to the types the prediction width T holds
        self.token_hits = self.token_weight = 0.0
        empty = np.zeros(0, np.int64) if Part.SPANS in self.parts else None
        self.span_correct, self.span_gold, self.span_predicted = empty, empty, empty

    def __getstate__(self) -> dict:
        """The summary as Beam ships it between stages: the AUC histograms and the confusion matrices by their
        non-empty cells only. A slice's summary mostly has far fewer examples than cells, and TFMA's jackknife
        ships each of its 20 partial summaries per slice and head to 19 samples: 500 intents' two dense matrices
        are 4 MB a copy, 3 GB a slice (benchmarks/README.md, "The Evaluator's memory with 500 intents")."""
        state = self.__dict__.copy()
        for name in _SPARSE_ON_THE_WIRE:
            if state[name] is not None:
                filled = np.flatnonzero(state[name])
                state[name] = (state[name].shape, filled, state[name].ravel()[filled])
        return state

    def __setstate__(self, state: dict) -> None:
        for name in _SPARSE_ON_THE_WIRE:
            if state[name] is not None:
                shape, filled, values = state[name]
                state[name] = np.zeros(shape)
                state[name].flat[filled] = values
        self.__dict__.update(state)

    def add(self, label, prediction, weight) -> None:
        """Buffers one example's arrays; folds the buffer when it is full."""
        self.labels.append(label)
        self.predictions.append(prediction)
        self.weights.append(weight)
        if len(self.weights) >= FOLD_EVERY:
            self.fold()

    def fold(self) -> "HeadSummary":
        """Adds the buffered examples to the sums and histograms; returns self."""
        if not self.weights:
            return self
        if Part.SPANS in self.parts:
            self._fold_spans()
            return self
        weights = np.concatenate([np.ravel(w) for w in self.weights]).astype(np.float64)
        predictions = np.stack([np.ravel(p) for p in self.predictions]).astype(np.float64)
        labels = np.stack([np.ravel(v) for v in self.labels]).astype(np.float64)
        self.labels, self.predictions, self.weights = [], [], []
        if Part.CLASSES in self.parts:
            self._fold_classes(labels[:, 0].astype(np.int64), predictions, weights)
            return self
        self.weight += weights.sum()
        if Part.MICRO in self.parts:  # micro-average: each (example, label) pair is one weighted point
            weights = np.repeat(weights, labels.shape[1])
        labels, predictions = labels.ravel(), predictions.ravel()
        self.weighted_labels += weights @ labels
        self.weighted_predictions += weights @ predictions
        if Part.ERRORS in self.parts:
            self.squared_error += weights @ np.square(predictions - labels)
            self.absolute_error += weights @ np.abs(predictions - labels)
        if self.positives is not None:
            bins = np.clip((predictions * len(self.positives)).astype(np.int64), 0, len(self.positives) - 1)
            self.positives += np.bincount(bins, weights * labels, len(self.positives))
            self.negatives += np.bincount(bins, weights * (1.0 - labels), len(self.negatives))
        if self.plot is not None:
            bucket = self._plot_bucket(predictions)
            for row, values in enumerate((weights, weights * labels, weights * predictions)):
                self.plot[row] += np.bincount(bucket, values, self.plot.shape[1])
        return self

    def _fold_classes(self, labels, predictions, weights) -> None:
        if self.confusion is None:
            self.confusion = np.zeros((predictions.shape[1], predictions.shape[1]))
            self.seen = np.zeros_like(self.confusion)
        known = labels >= 0
        self.unseen += float(np.sum(~known))
        labels, predictions, weights = labels[known], predictions[known], weights[known]
        self.weight += weights.sum()
        cells = (labels, predictions.argmax(axis=1))
        np.add.at(self.confusion, cells, weights)
        np.add.at(self.seen, cells, 1.0)

    def _fold_spans(self) -> None:
        """Per example: label [L] tag ids, prediction [L, T] (or its [L * T] flattening) probabilities, weight [L]
        (or one weight for all its tokens); a token of weight 0 is not part of the sequence. ``weight`` counts the
        examples with a labelled token."""
        labels = np.stack([np.ravel(v) for v in self.labels]).astype(np.int64)
        length = labels.shape[1]
        predictions = np.stack([np.reshape(p, (length, -1)) for p in self.predictions])
        weights = np.stack([np.broadcast_to(np.ravel(w), (length,)) for w in self.weights]).astype(np.float64)
        self.labels, self.predictions, self.weights = [], [], []
        valid = weights > 0
        tags = spans.predicted_tags(predictions)
        self.weight += float(valid.any(axis=1).sum())
        self.token_hits += float(weights[valid] @ (tags[valid] == labels[valid]))
        self.token_weight += float(weights[valid].sum())
        self._grow_spans(spans.num_types_seen(labels, predictions, valid))
        counts = spans.span_counts(labels, tags, valid, len(self.span_gold))
        self.span_correct, self.span_gold, self.span_predicted = (
            total + count for total, count in zip((self.span_correct, self.span_gold, self.span_predicted), counts,
                                                  strict=True))

    def _grow_spans(self, num_types: int) -> None:
        """Pads the span counts with zeros up to ``num_types`` types."""
        grow = max(num_types - len(self.span_gold), 0)
        self.span_correct, self.span_gold, self.span_predicted = (
            np.pad(counts, (0, grow)) for counts in (self.span_correct, self.span_gold, self.span_predicted))

    def _plot_bucket(self, predictions) -> np.ndarray:
        left, right = self.plot_range
        inside = np.floor((predictions - left) / (right - left) * self.plot_buckets).astype(np.int64) + 1
        return np.where(predictions < left, 0, np.where(predictions >= right, self.plot_buckets + 1,
                                                        np.clip(inside, 1, self.plot_buckets)))

    def merge(self, other: "HeadSummary") -> None:
        """Adds another slice part's (folded) summary to this one."""
        self.fold()
        other.fold()
        for name in ("weight", "weighted_labels", "weighted_predictions", "squared_error", "absolute_error", "unseen"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("positives", "negatives", "plot"):
            if getattr(self, name) is not None:
                getattr(self, name).__iadd__(getattr(other, name))
        if other.confusion is not None and self.confusion is None:
            self.confusion, self.seen = np.zeros_like(other.confusion), np.zeros_like(other.seen)
        if other.confusion is not None:
            self.confusion += other.confusion
            self.seen += other.seen
        if other.span_gold is not None:
            self.token_hits += other.token_hits
            self.token_weight += other.token_weight
            self._grow_spans(len(other.span_gold))
            other._grow_spans(len(self.span_gold))
            self.span_correct = self.span_correct + other.span_correct
            self.span_gold = self.span_gold + other.span_gold
            self.span_predicted = self.span_predicted + other.span_predicted

    def confusion_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(tp, fp, tn, fn) at TFMA's 10,000 AUC thresholds: -epsilon, j / 9,999 for j = 1 .. 9,998, 1 + epsilon."""
        above_positives = np.concatenate([np.cumsum(self.positives[::-1])[::-1], [0.0]])
        above_negatives = np.concatenate([np.cumsum(self.negatives[::-1])[::-1], [0.0]])
        tp, fp = above_positives, above_negatives
        return tp, fp, above_negatives[0] - fp, above_positives[0] - tp


class _HeadSummaryCombiner(beam.CombineFn):
    """Feeds every example of a slice to a HeadSummary: reads the head's label, prediction and weight straight from
    TFMA's standard metric inputs."""

    def __init__(self, key: tfma.metrics.MetricKey, parts: tuple[str, ...], plot_range, plot_buckets: int):
        self._key, self._parts = key, parts
        self._plot_range, self._plot_buckets = tuple(plot_range), plot_buckets

    def create_accumulator(self) -> HeadSummary:
        return HeadSummary(self._parts, self._plot_range, self._plot_buckets)

    def add_input(self, summary: HeadSummary, element: tfma.metrics.StandardMetricInputs) -> HeadSummary:
        key = self._key
        weight = _head_value(element["example_weights"], key) if element.get("example_weights") else 1.0
        summary.add(_head_value(element["labels"], key), _head_value(element["predictions"], key), weight)
        return summary

    def merge_accumulators(self, summaries) -> HeadSummary:
        summaries = iter(summaries)
        merged = next(summaries).fold()
        for summary in summaries:
            merged.merge(summary)
        return merged

    def compact(self, summary: HeadSummary) -> HeadSummary:
        return summary.fold()

    def extract_output(self, summary: HeadSummary) -> dict[tfma.metrics.MetricKey, HeadSummary]:
        return {self._key: summary.fold()}


def _head_value(values, key: tfma.metrics.MetricKey):
    """The head's entry of a (model ->) output -> value mapping of TFMA's extracts."""
    if isinstance(values, dict) and key.model_name in values:
        values = values[key.model_name]
    if isinstance(values, dict):
        values = values[key.output_name]
    return values


def _summary_computations(parts: tuple[str, ...], plot_range, plot_buckets: int):
    """The function TFMA calls for each model and output: the shared summary computation of one head."""

    def computations(name=None, eval_config=None, model_name="", output_name="", sub_key=None,
                     aggregation_type=None, class_weights=None, example_weighted=False):
        key = tfma.metrics.MetricKey(name=f"_head_summary_{'_'.join(parts)}_{plot_range[0]}_{plot_range[1]}_"
                                          f"{plot_buckets}",
                                     model_name=model_name, output_name=output_name, sub_key=sub_key,
                                     example_weighted=example_weighted)
        return [tfma.metrics.MetricComputation(
            keys=[key], preprocessors=None, combiner=_HeadSummaryCombiner(key, parts, plot_range, plot_buckets))]

    return computations


class HeadMetric(tfma.metrics.Metric):
    """One TFMA metric (or plot) of a head, read from the head's summary. Subclasses name it and say how: ``value``
    (a float, or a plot proto when ``plot`` is true). Its config (from MetricConfig.config) describes the summary:
    ``parts`` (``summary.Part`` names: what it gathers), ``plot_range`` and ``plot_buckets``; every metric of a head
    must be given the same, so that they share it."""

    metric_name = ""
    plot = False

    def __init__(self, parts=(), plot_range=(0.0, 1.0), plot_buckets: int = 20, name: str = ""):
        self.parts, self.plot_range, self.plot_buckets = tuple(sorted(parts)), tuple(plot_range), plot_buckets
        super().__init__(tfma.metrics.merge_per_key_computations(self._computations), name=name or self.metric_name,
                         parts=list(self.parts), plot_range=list(plot_range), plot_buckets=plot_buckets)

    def _computations(self, name, eval_config=None, model_name="", output_name="", sub_key=None,
                      aggregation_type=None, class_weights=None, example_weighted=False, **_):
        summary = _summary_computations(self.parts, self.plot_range, self.plot_buckets)(
            model_name=model_name, output_name=output_name, sub_key=sub_key, example_weighted=example_weighted)
        summary_key = summary[-1].keys[-1]
        key_type = tfma.metrics.PlotKey if self.plot else tfma.metrics.MetricKey
        key = key_type(name=name, model_name=model_name, output_name=output_name, sub_key=sub_key,
                       example_weighted=example_weighted)
        summary.append(tfma.metrics.DerivedMetricComputation(
            keys=[key], result=lambda metrics: {key: self.value(metrics[summary_key])}))
        return summary

    def value(self, summary: HeadSummary) -> Any:
        raise NotImplementedError


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")


class HeadExampleCount(HeadMetric):
    """Examples that carry the head's label (their weights' sum, as TFMA's weighted ExampleCount)."""

    metric_name = "example_count"

    def value(self, summary):
        return float(summary.weight)


class HeadWeightedExampleCount(HeadExampleCount):
    """TFMA's WeightedExampleCount: the weights' sum."""

    metric_name = "weighted_example_count"


class _Ratio(HeadMetric):
    """A ratio of two of the summary's sums, named by ``numerator`` and ``denominator``."""

    numerator = denominator = ""

    def value(self, summary):
        return _ratio(getattr(summary, self.numerator), getattr(summary, self.denominator))


class HeadMeanLabel(_Ratio):
    metric_name, numerator, denominator = "mean_label", "weighted_labels", "weight"


class HeadMeanPrediction(_Ratio):
    metric_name, numerator, denominator = "mean_prediction", "weighted_predictions", "weight"


class HeadCalibration(_Ratio):
    """Weighted predictions over weighted labels (TFMA's Calibration)."""

    metric_name, numerator, denominator = "calibration", "weighted_predictions", "weighted_labels"


class HeadMeanAbsoluteError(_Ratio):
    metric_name, numerator, denominator = "mean_absolute_error", "absolute_error", "weight"


class HeadRootMeanSquaredError(HeadMetric):
    metric_name = "root_mean_squared_error"

    def value(self, summary):
        return float(np.sqrt(_ratio(summary.squared_error, summary.weight)))


class HeadAUC(HeadMetric):
    """ROC AUC at TFMA's 10,000 thresholds, trapezoidal (TFMA's AUC, interpolation)."""

    metric_name = "auc"

    def value(self, summary):
        tp, fp, tn, fn = summary.confusion_counts()
        with np.errstate(divide="ignore", invalid="ignore"):
            recall, fp_rate = tp / (tp + fn), fp / (fp + tn)
        return float(np.nansum((fp_rate[:-1] - fp_rate[1:]) * (recall[:-1] + recall[1:]) / 2.0))


class HeadAUCPrecisionRecall(HeadMetric):
    """PR AUC at TFMA's 10,000 thresholds, with TFMA's (Davis and Goadrich) interpolation."""

    metric_name = "auc_precision_recall"

    def value(self, summary):
        tp, fp, _, fn = summary.confusion_counts()
        with np.errstate(divide="ignore", invalid="ignore"):
            dtp = tp[:-1] - tp[1:]
            p = tp + fp
            dp = p[:-1] - p[1:]
            slope = dtp / np.maximum(dp, 0)
            intercept = tp[1:] - slope * p[1:]
            ratio = np.where((p[:-1] > 0) & (p[1:] > 0), p[:-1] / np.maximum(p[1:], 0), np.ones_like(p[1:]))
            increments = slope * (dtp + intercept * np.log(ratio)) / np.maximum(tp[1:] + fn[1:], 0)
        return float(np.nansum(increments))


class HeadSparseCategoricalAccuracy(HeadMetric):
    """Share of the weight whose most likely class is the label (Keras' SparseCategoricalAccuracy)."""

    metric_name = "sparse_categorical_accuracy"

    def value(self, summary):
        return _ratio(np.trace(summary.confusion), summary.weight) if summary.confusion is not None else float("nan")


class HeadTokenAccuracy(_Ratio):
    """Weighted share of the labelled tokens whose most likely tag is the label (sequence labelling); NaN with no
    labelled token."""

    metric_name, numerator, denominator = "token_accuracy", "token_hits", "token_weight"


class _SpanMetric(HeadMetric):
    """A metric of the summary's span counts per type (``Part.SPANS``); ``spans`` holds the conventions."""

    def counts(self, summary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(correct, gold, predicted) spans per type."""
        if summary.span_gold is None:
            raise ValueError(f"{type(self).__name__} needs a summary with the '{Part.SPANS}' part")
        return summary.span_correct, summary.span_gold, summary.span_predicted


class HeadSpanPrecision(_SpanMetric):
    """Correct over predicted spans, all types (micro); 0 with no predicted span."""

    metric_name = "span_precision"

    def value(self, summary):
        return spans.precision_recall_f1(*self.counts(summary))[0]


class HeadSpanRecall(_SpanMetric):
    """Correct over gold spans, all types (micro); 0 with no gold span."""

    metric_name = "span_recall"

    def value(self, summary):
        return spans.precision_recall_f1(*self.counts(summary))[1]


class HeadSpanF1(_SpanMetric):
    """Micro F1 of the spans over all types: 2 * correct / (gold + predicted); 0 with neither (conlleval)."""

    metric_name = "span_f1"

    def value(self, summary):
        return spans.precision_recall_f1(*self.counts(summary))[2]


class HeadSpanCountsByType(_SpanMetric):
    """The span counts of each slot type, as JSON text: {"correct": [...], "gold": [...], "predicted": [...]}, one
    entry per type id (the report names the types and derives each one's F1 and support). Text, so that TFMA does
    not subtract it from the baseline's: the two models may know different numbers of types."""

    metric_name = "span_counts_by_type"

    def value(self, summary):
        correct, gold, predicted = self.counts(summary)
        return json.dumps({"correct": correct.tolist(), "gold": gold.tolist(), "predicted": predicted.tolist()})


class HeadUnseenLabelCount(HeadMetric):
    """Examples whose label names a class that training never saw (label -1, weight 0): neither trained on nor
    scored, and counted here."""

    metric_name = "unseen_label_count"

    def value(self, summary):
        return float(summary.unseen)


class HeadCalibrationPlot(HeadMetric):
    """TFMA's calibration plot proto: weight, label and prediction sums per bucket of the prediction."""

    metric_name = "calibration_plot"
    plot = True

    def value(self, summary):
        left, right = summary.plot_range
        edges = [float("-inf")] + [left + i * (right - left) / summary.plot_buckets
                                   for i in range(summary.plot_buckets + 1)] + [float("inf")]
        proto = metrics_for_slice_pb2.CalibrationHistogramBuckets()
        for i, (weight, label, prediction) in enumerate(summary.plot.T):
            proto.buckets.add(lower_threshold_inclusive=edges[i], upper_threshold_exclusive=edges[i + 1],
                              num_weighted_examples={"value": weight}, total_weighted_label={"value": label},
                              total_weighted_refined_prediction={"value": prediction})
        return proto


class HeadMultiClassConfusionMatrixPlot(HeadMetric):
    """TFMA's multi-class confusion matrix proto at threshold 0 (the most likely class): every cell an example
    fell in, with its weight."""

    metric_name = "multi_class_confusion_matrix_plot"
    plot = True

    def value(self, summary):
        proto = metrics_for_slice_pb2.MultiClassConfusionMatrixAtThresholds()
        matrix = proto.matrices.add(threshold=0.0)
        if summary.confusion is None:
            return proto
        for actual, predicted in np.argwhere(summary.seen):
            matrix.entries.add(actual_class_id=int(actual), predicted_class_id=int(predicted),
                               num_weighted_examples=float(summary.confusion[actual, predicted]))
        return proto
