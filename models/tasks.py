"""Task types. A task owns, in one place, everything that depends on its type: the settings its type needs, how a
raw label becomes a (label, weight) pair and which labels are present, its output layer, its masked loss, its
fusion input, its Keras metric, the TFMA metrics and plots that judge it (and the parts of the head summary they
read), its key metric and blessing rule, and its exact score on arrays (a benchmark's score, or a Bayes limit from
the generator's truth). The model, the trainer, the evaluator, the reports and the benchmarks ask the task; none of
them switch on the type. A new type is one class here and one entry in TASK_TYPES (its name in
``config.registry.TaskType``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar

import numpy as np
import tensorflow as tf
import tf_keras

from config import ConfigError, TaskConfig, TaskType
from models import tensors
from models.evaluation.blessing import BlessingRule
from models.evaluation.scores import rmse, roc_auc
from models.evaluation.summary import Part


class Task:
    """One prediction head of the multi-task model."""

    units: ClassVar[int] = 1
    activation: ClassVar[str | None] = None
    label_dtype: ClassVar[tf.DType] = tf.float32
    key_metric: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    probability: ClassVar[bool] = False  # one probability of an event per example (ESMM multiplies two)
    keras_metric: ClassVar[str]  # the suffix of its Keras metric's name: <task>_<keras_metric>
    tfma_metrics: ClassVar[tuple[str, ...]]  # TFMA's names of the metrics that judge this head
    tfma_plots: ClassVar[tuple[str, ...]] = ()  # and of the plots that show it
    summary_parts: ClassVar[tuple[Part, ...]] = ()  # what the head summary gathers for those metrics and plots

    def __init__(self, config: TaskConfig):
        self.config = config
        self.check_config()

    def check_config(self) -> None:
        """Raises ConfigError for settings this type needs and the config lacks."""

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def key_metric_name(self) -> str:
        """The key metric as TFMA names it in its output (the class name in snake case: AUC -> auc)."""
        return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", self.key_metric).lower()

    @property
    def keras_metric_name(self) -> str:
        """The name of its Keras training metric (TensorBoard's scalar, Keras' history key)."""
        return f"{self.name}_{self.keras_metric}"

    @property
    def blessing_rule(self) -> BlessingRule:
        """What blessing asks of this head's key metric: the config's bound and tolerance, in its direction."""
        blessing = self.config.blessing
        return BlessingRule(metric=self.key_metric_name, higher_is_better=self.higher_is_better,
                            bound=blessing.bound, tolerance=blessing.tolerance)

    @property
    def label_feature(self) -> str:
        return f"{self.name}_label"

    @property
    def weight_feature(self) -> str:
        return f"{self.name}_weight"

    @property
    def label_domain(self) -> tuple[int, int] | None:
        """The (smallest, largest) integer a present label may take, or None where any finite number may."""
        return None

    @property
    def scalar(self) -> bool:
        """True when the head gives one score per example (it can enter a fusion score)."""
        return self.units == 1

    def encode_label(self, raw) -> tuple[tf.Tensor, tf.Tensor]:
        """(label, weight): a valid label everywhere (0 where missing) and weight 0.0 where it is missing; a NaN or
        ±inf label counts as missing."""
        values = tensors.column_values(raw, default=0)
        present = tensors.column_present(raw)
        if values.dtype.is_floating:
            present &= tf.math.is_finite(values)
        if self.config.missing_value is not None:
            present &= tf.not_equal(values, tf.cast(self.config.missing_value, values.dtype))
        label = tf.where(present, tf.cast(values, self.label_dtype), tf.zeros_like(values, self.label_dtype))
        return label, tf.cast(present, tf.float32)

    def present(self, labels: np.ndarray) -> np.ndarray:
        """[n] bools: the rows of raw labels (one column, or [n, k] for a list label, NaN where absent) that hold a
        label: no NaN and no ``missing_value`` in them."""
        labels = np.asarray(labels, np.float64).reshape(len(labels), -1)
        missing = np.isnan(labels)
        if self.config.missing_value is not None:
            missing |= labels == self.config.missing_value
        return ~missing.any(axis=1)

    def make_head(self) -> tf_keras.layers.Layer:
        """The output layer on top of this task's tower."""
        return tf_keras.layers.Dense(self.units, activation=self.activation, name=f"{self.name}_head")

    def predictions(self, head_output: tf.Tensor) -> tf.Tensor:
        """The served prediction: [batch] for scalar heads, [batch, units] otherwise."""
        return tf.squeeze(head_output, axis=-1) if self.scalar else head_output

    def fusion_input(self, prediction: tf.Tensor) -> tf.Tensor:
        """What this head adds to a fusion score (before its weight): the prediction itself."""
        return prediction

    def per_example_loss(self, labels: tf.Tensor, predictions: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def loss(self, labels: tf.Tensor, weights: tf.Tensor, predictions: tf.Tensor) -> tf.Tensor:
        """Mean loss over the examples whose label is present; 0 (never NaN) when none is."""
        weighted = tf.reduce_sum(weights * self.per_example_loss(labels, predictions))
        return tf.math.divide_no_nan(weighted, tf.reduce_sum(weights))

    def make_metrics(self) -> list[tf_keras.metrics.Metric]:
        """Its Keras training metric (named ``keras_metric_name``), updated with the label weights so missing labels
        do not count."""
        raise NotImplementedError

    @property
    def plot_range(self) -> tuple[float, float]:
        """The predictions a calibration plot spreads over its buckets (outside: one bucket each side)."""
        return (0.0, 1.0)

    def metric_weights(self, weights: tf.Tensor) -> tf.Tensor:
        """The [batch] label weights shaped for this task's Keras metrics."""
        return weights

    def score(self, labels: np.ndarray, weights: np.ndarray, predictions: np.ndarray) -> float:
        """The key metric, computed exactly on the examples whose weight is positive: a model's predictions (the
        benchmarks), or the true probabilities or means behind the labels (the Bayes limit, pipeline.reports)."""
        raise NotImplementedError


class BinaryTask(Task):
    activation = "sigmoid"
    probability = True
    key_metric = "AUC"
    keras_metric = "auc"
    label_domain = (0, 1)
    tfma_metrics = ("ExampleCount", "WeightedExampleCount", "AUC", "AUCPrecisionRecall", "Calibration",
                    "MeanLabel", "MeanPrediction")
    tfma_plots = ("CalibrationPlot",)  # mean label against mean prediction in 20 buckets of the probability
    summary_parts = (Part.RANKING, Part.CALIBRATION)

    def per_example_loss(self, labels, predictions):
        return tf_keras.losses.binary_crossentropy(labels[:, None], predictions[:, None])

    def make_metrics(self):
        return [tf_keras.metrics.AUC(name=self.keras_metric_name)]

    def score(self, labels, weights, predictions):
        present = weights > 0
        return roc_auc(labels[present], predictions[present])


class RegressionTask(Task):
    key_metric = "RootMeanSquaredError"
    keras_metric = "rmse"
    higher_is_better = False
    tfma_metrics = ("ExampleCount", "WeightedExampleCount", "RootMeanSquaredError", "MeanAbsoluteError",
                    "MeanLabel", "MeanPrediction")
    tfma_plots = ("CalibrationPlot",)  # mean label per bucket of the prediction, 20 buckets over plot_range
    summary_parts = (Part.ERRORS, Part.CALIBRATION)

    def fusion_input(self, prediction):
        """log1p of the (non-negative part of the) predicted amount, so a long tail does not swamp the sum."""
        return tf.math.log1p(tf.maximum(prediction, 0.0))

    def per_example_loss(self, labels, predictions):
        return tf.square(labels - predictions)

    def make_metrics(self):
        return [tf_keras.metrics.RootMeanSquaredError(name=self.keras_metric_name)]

    @property
    def plot_range(self):
        return tuple(self.config.plot_range)

    def score(self, labels, weights, predictions):
        present = weights > 0
        return rmse(labels[present], predictions[present])


class MulticlassTask(Task):
    activation = "softmax"
    label_dtype = tf.int64
    key_metric = "SparseCategoricalAccuracy"
    keras_metric = "accuracy"
    tfma_metrics = ("ExampleCount", "WeightedExampleCount", "SparseCategoricalAccuracy")
    tfma_plots = ("MultiClassConfusionMatrixPlot",)  # of the most likely class
    summary_parts = (Part.CLASSES,)

    def __init__(self, config):
        super().__init__(config)
        self.units = config.num_classes

    def check_config(self):
        _require_classes(self.config)

    @property
    def label_domain(self):
        return (0, self.units - 1)

    def per_example_loss(self, labels, predictions):
        return tf_keras.losses.sparse_categorical_crossentropy(labels, predictions)

    def make_metrics(self):
        return [tf_keras.metrics.SparseCategoricalAccuracy(name=self.keras_metric_name)]

    def score(self, labels, weights, predictions):
        present = weights > 0
        return float(np.mean(predictions[present].argmax(axis=1) == labels[present]))


class MultilabelTask(Task):
    """Several independent yes/no labels per example, logged as a multi-hot list of ``num_classes`` ints.

    Its AUCs are micro-averaged: every (example, label) pair is one point, as TFMA scores a multi-hot label.
    """

    activation = "sigmoid"
    key_metric = "AUC"
    keras_metric = "auc"
    label_domain = (0, 1)
    tfma_metrics = ("ExampleCount", "WeightedExampleCount", "AUC", "AUCPrecisionRecall")
    summary_parts = (Part.RANKING, Part.MICRO)

    def __init__(self, config):
        super().__init__(config)
        self.units = config.num_classes

    def check_config(self):
        _require_classes(self.config)

    def encode_label(self, raw):
        """([batch, k] multi-hot, weight): a row is missing when absent or when any value is the missing value."""
        present = tensors.row_count(raw) > 0
        if self.config.missing_value is not None:
            missing = tf.cast(self.config.missing_value, raw.dtype)
            present &= tensors.row_count(raw, where=lambda v: tf.equal(v, missing)) == 0
        values = tf.cast(tensors.row_values(raw, self.units, default=0), tf.float32)
        label = tf.where(present[:, None], values, tf.zeros_like(values))
        return label, tf.cast(present, tf.float32)

    def per_example_loss(self, labels, predictions):
        return tf_keras.losses.binary_crossentropy(labels, predictions)  # mean over the k labels

    def make_metrics(self):
        return [tf_keras.metrics.AUC(name=self.keras_metric_name)]

    def metric_weights(self, weights):
        return weights[:, None]

    def score(self, labels, weights, predictions):
        present = weights > 0
        return roc_auc(labels[present].ravel(), predictions[present].ravel())


def _require_classes(config: TaskConfig) -> None:
    if config.num_classes < 2:
        raise ConfigError(f"task '{config.name}': {config.type} needs num_classes >= 2, got {config.num_classes}")


TASK_TYPES: dict[TaskType, type[Task]] = {
    TaskType.BINARY: BinaryTask,
    TaskType.REGRESSION: RegressionTask,
    TaskType.MULTICLASS: MulticlassTask,
    TaskType.MULTILABEL: MultilabelTask,
}


def make_task(config: TaskConfig) -> Task:
    """The Task of ``config``'s type."""
    return TASK_TYPES[config.type](config)


def make_tasks(configs: Iterable[TaskConfig]) -> list[Task]:
    """One Task per task config, in order (callers pass ``PipelineConfig.tasks``)."""
    return [make_task(c) for c in configs]
