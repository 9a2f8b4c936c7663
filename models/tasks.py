"""Task types. A task owns, in one place, everything that depends on its type: the settings its type needs, how a
raw label becomes a (label, weight) pair and which labels are present, its output layer, its masked loss, its
fusion input, its Keras metric, the TFMA metrics and plots that judge it (and the parts of the head summary they
read), its key metric and blessing rule, and its exact score on arrays (a benchmark's score, or a Bayes limit from
the generator's truth). The model, the trainer, the evaluator, the reports and the benchmarks ask the task; none of
them switch on the type. A new type is one class here and one entry in TASK_TYPES (its name in
``config.registry.TaskType``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import ClassVar

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras

from config import ConfigError, TaskConfig, TaskType, UserError
from models import tag_decoding, tensors
from models.evaluation.blessing import BlessingRule
from models.evaluation.scores import rmse, roc_auc
from models.evaluation.spans import span_f1
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
    text_labels_allowed: ClassVar[bool] = False  # its label may be logged as class names (TaskConfig.text_labels)
    per_token: ClassVar[bool] = False  # it predicts for every token of its text feature ([batch, tokens, units])

    def __init__(self, config: TaskConfig):
        self.config = config
        self.check_config()

    def check_config(self) -> None:
        """Raises ConfigError for settings this type needs and the config lacks."""
        if self.config.text_labels and not self.text_labels_allowed:
            raise ConfigError(f"task '{self.name}': a {self.config.type} label is a number; remove classes and "
                              "label_vocabulary")

    @property
    def class_count(self) -> int:
        """How many classes the config names or counts (``classes``, else ``num_classes``, which the Trainer sets
        from Transform's vocabulary for ``label_vocabulary``: ``with_class_counts``)."""
        return len(self.config.classes) or self.config.num_classes

    @property
    def classes_file(self) -> str:
        """The name of Transform's vocabulary of this task's text label (``label_vocabulary``)."""
        return f"{self.name}_classes"

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def key_metric_name(self) -> str:
        """The key metric as TFMA names it in its output (the class name in snake case: AUC -> auc)."""
        return re.sub(r"(?<!^)(?=[A-Z][a-z])|(?<=[a-z])(?=[A-Z])", "_", self.key_metric).lower()

    @property
    def keras_metric_name(self) -> str:
        """The name of its Keras training metric (TensorBoard's scalar, Keras' history key)."""
        return f"{self.name}_{self.keras_metric}"

    @property
    def blessing_rule(self) -> BlessingRule:
        """What blessing asks of this head's key metric: the config's bound, tolerance and evidence, in its
        direction."""
        blessing = self.config.blessing
        return BlessingRule(metric=self.key_metric_name, higher_is_better=self.higher_is_better,
                            bound=blessing.bound, tolerance=blessing.tolerance, evidence=blessing.evidence)

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

    def encode_label(self, raw, tokens: tf.RaggedTensor | None = None,
                     max_tokens: int | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        """(label, weight): a valid label everywhere (0 where missing) and weight 0.0 where it is missing; a NaN or
        ±inf label counts as missing. A per-token task also takes the tokens of its text feature
        (``models.text.tokens``) and how many of them the model reads (``max_tokens``)."""
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

    def targets(self, labels: tf.Tensor) -> tf.Tensor:
        """What the loss and the metrics compare the predictions with, from the label as Transform stores it."""
        return labels

    def compared(self, labels: tf.Tensor, weights: tf.Tensor, prediction) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(targets, weights, predictions): what the loss and the Keras metrics compare, from the label and weight
        columns as Transform stores them and the model's prediction for this task."""
        return self.targets(labels), weights, prediction

    def served_names(self, class_names: list[str]) -> list[str]:
        """The name of each output unit, from the task's class names (``class_names``)."""
        return list(class_names)

    def named_outputs(self, prediction: tf.Tensor, names: tf.Tensor, tokens: tf.Tensor | None) -> dict:
        """The served outputs that name what ``prediction`` scores (``names``: [units] strings, ``served_names``);
        ``tokens``: the task's text feature's ids, for a per-token task."""
        return {f"{self.name}_classes": tf.tile(names[None, :], [tf.shape(prediction)[0], 1])}

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


class _ClassesTask(Task):
    """A head with a unit per class: the config counts (``num_classes``) or names (``classes``) them, or Transform
    names them (``label_vocabulary``); a label logged as numbers lies in ``number_domain``."""

    text_labels_allowed = True
    number_domain: ClassVar[tuple[int, int]]

    def __init__(self, config):
        super().__init__(config)
        self.units = self.class_count

    def check_config(self):
        super().check_config()
        _require_classes(self.config)

    @property
    def label_domain(self):
        return None if self.config.text_labels else self.number_domain


class MulticlassTask(_ClassesTask):
    """One class per example. A text label (class names) that training never saw is -1 with weight 0: counted by
    the Evaluator, neither trained on nor scored."""

    activation = "softmax"
    label_dtype = tf.int64
    key_metric = "SparseCategoricalAccuracy"
    keras_metric = "accuracy"
    tfma_plots = ("MultiClassConfusionMatrixPlot",)  # of the most likely class
    summary_parts = (Part.CLASSES,)

    @property
    def tfma_metrics(self):
        """Accuracy, and for class names the count of names training never saw."""
        counted = ("UnseenLabelCount",) if self.config.text_labels else ()
        return ("ExampleCount", "WeightedExampleCount", "SparseCategoricalAccuracy", *counted)

    @property
    def number_domain(self):
        return (0, self.units - 1)

    def encode_label(self, raw, tokens=None, max_tokens=None):
        if not self.config.text_labels:
            return super().encode_label(raw)
        values = tensors.column_values(raw, default="")
        present = tensors.column_present(raw) & tf.not_equal(values, "")
        ids = class_ids(self, values, tf.boolean_mask(values, present))
        known = present & (ids >= 0)
        label = tf.where(known, ids, tf.where(present, tf.constant(-1, tf.int64), tf.constant(0, tf.int64)))
        return label, tf.cast(known, tf.float32)

    def per_example_loss(self, labels, predictions):
        return tf_keras.losses.sparse_categorical_crossentropy(tf.maximum(labels, 0), predictions)

    def make_metrics(self):
        return [tf_keras.metrics.SparseCategoricalAccuracy(name=self.keras_metric_name)]

    def score(self, labels, weights, predictions):
        present = weights > 0
        return float(np.mean(predictions[present].argmax(axis=1) == labels[present]))


class MultilabelTask(_ClassesTask):
    """Several independent yes/no labels per example, logged as a multi-hot list of ``num_classes`` ints.

    Its AUCs are micro-averaged: every (example, label) pair is one point, as TFMA scores a multi-hot label.
    """

    activation = "sigmoid"
    key_metric = "AUC"
    keras_metric = "auc"
    tfma_metrics = ("ExampleCount", "WeightedExampleCount", "AUC", "AUCPrecisionRecall")
    summary_parts = (Part.RANKING, Part.MICRO)

    number_domain = (0, 1)  # a multi-hot row

    def encode_label(self, raw, tokens=None, max_tokens=None):
        """([batch, k] multi-hot, weight): a row is missing when absent or when any value is the missing value.
        A text label (a list of class names) is stored as [batch, max_labels] class ids, -1 where a row has fewer
        or a name training never saw (``targets`` makes it multi-hot)."""
        if self.config.text_labels:
            return self._encode_names(raw)
        present = tensors.row_count(raw) > 0
        if self.config.missing_value is not None:
            missing = tf.cast(self.config.missing_value, raw.dtype)
            present &= tensors.row_count(raw, where=lambda v: tf.equal(v, missing)) == 0
        values = tf.cast(tensors.row_values(raw, self.units, default=0), tf.float32)
        label = tf.where(present[:, None], values, tf.zeros_like(values))
        return label, tf.cast(present, tf.float32)

    def _encode_names(self, raw):
        names = raw if isinstance(raw, tf.SparseTensor) else tf.sparse.from_dense(raw)
        ids = class_ids(self, names.values, names.values)
        keep = (names.indices[:, 1] < self.config.max_labels) & (ids >= 0)
        width = tf.constant(self.config.max_labels, tf.int64)
        kept = tf.SparseTensor(tf.boolean_mask(names.indices, keep), tf.boolean_mask(ids, keep),
                               tf.stack([names.dense_shape[0], width]))
        label = tf.sparse.to_dense(kept, default_value=-1)
        return label, tf.cast(tensors.row_count(raw) > 0, tf.float32)

    def targets(self, labels):
        if not self.config.text_labels:
            return labels
        return tf.reduce_max(tf.one_hot(labels, self.units), axis=1)  # one_hot(-1) is all zeros

    def per_example_loss(self, labels, predictions):
        return tf_keras.losses.binary_crossentropy(labels, predictions)  # mean over the k labels

    def make_metrics(self):
        return [tf_keras.metrics.AUC(name=self.keras_metric_name)]

    def metric_weights(self, weights):
        return weights[:, None]

    def score(self, labels, weights, predictions):
        present = weights > 0
        return roc_auc(labels[present].ravel(), predictions[present].ravel())


class SequenceLabelingTask(Task):
    """One BIO tag per token of the text feature ``text_feature`` (its tokenizer, its first ``max_tokens``
    tokens): the label is the list of tags (``O``, ``B-<type>``, ``I-<type>``), one per token. Tags are stored as
    ids that need no names: 0 is O, 2k + 1 is B- and 2k + 2 is I- of slot type k (the config's ``classes``, or
    Transform's vocabulary of the types), so the head has 2 x types + 1 units per token. A token's weight is 0 where
    the event has no tags, where its tag list and its tokens differ in length (preflight refuses such logs), for a
    tag of a type training never saw and at padding: those positions reach neither the loss nor a metric."""

    activation = "softmax"
    label_dtype = tf.int64
    key_metric = "SpanF1"
    keras_metric = "token_accuracy"
    tfma_metrics = ("ExampleCount", "TokenAccuracy", "SpanPrecision", "SpanRecall", "SpanF1", "SpanCountsByType")
    summary_parts = (Part.SPANS,)
    text_labels_allowed = True
    per_token = True

    def __init__(self, config):
        super().__init__(config)
        self.units = 2 * self.class_count + 1

    def check_config(self):
        if not self.config.text_feature:
            raise ConfigError(f"task '{self.name}': sequence_labeling needs text_feature: the text feature whose "
                              "tokens it tags")
        if not self.config.text_labels:
            raise ConfigError(f"task '{self.name}': sequence_labeling tags are text; list the slot types in "
                              "classes, or set label_vocabulary: true")

    def encode_label(self, raw, tokens=None, max_tokens=None):
        tags = raw if isinstance(raw, tf.SparseTensor) else tf.sparse.from_dense(raw)
        values = tags.values
        begins, inside = tf.strings.regex_full_match(values, "B-.+"), tf.strings.regex_full_match(values, "I-.+")
        types = tf.strings.regex_replace(values, "^[BI]-", "")
        type_ids = class_ids(self, types, tf.boolean_mask(types, begins | inside))
        ids = tf.where(tf.equal(values, "O"), tf.constant(0, tf.int64),
                       tf.where(begins & (type_ids >= 0), 2 * type_ids + 1,
                                tf.where(inside & (type_ids >= 0), 2 * type_ids + 2, tf.constant(-1, tf.int64))))
        tag_counts = tf.cast(tensors.row_count(raw), tf.int64)
        aligned = tf.equal(tag_counts, tokens.row_lengths()) & (tag_counts > 0)
        rows, positions = tags.indices[:, 0], tags.indices[:, 1]
        keep = positions < max_tokens
        shape = tf.stack([tags.dense_shape[0], tf.constant(max_tokens, tf.int64)])
        kept = tf.boolean_mask(tags.indices, keep)
        scored = tf.boolean_mask((ids >= 0) & tf.gather(aligned, rows), keep)
        label = tf.sparse.to_dense(tf.SparseTensor(kept, tf.maximum(tf.boolean_mask(ids, keep), 0), shape))
        weight = tf.sparse.to_dense(tf.SparseTensor(kept, tf.cast(scored, tf.float32), shape))
        return label, weight

    def compared(self, labels, weights, prediction):
        """The tags, weights and probabilities of every position ([batch, tokens], [batch, tokens], [batch,
        tokens, units]) from the served prediction; from training's (rows, positions) (``MultiTaskModel.call``),
        those of the real tokens alone ([tokens], [tokens], the rows [tokens, units])."""
        if isinstance(prediction, tuple):
            rows, positions = prediction
            return tf.gather_nd(self.targets(labels), positions), tf.gather_nd(weights, positions), rows
        return super().compared(labels, weights, prediction)

    def per_example_loss(self, labels, predictions):
        """Each token's cross-entropy (the shape of ``labels``: [batch, tokens], or [tokens] for rows), -log of
        its tag's probability clipped to [epsilon, 1 - epsilon] as Keras clips (the base loss averages it over the
        weighted tokens). It reads the one probability per token: Keras' sparse cross-entropy takes the log of every
        tag's."""
        epsilon = tf_keras.backend.epsilon()
        chosen = tf.gather(predictions, labels, batch_dims=labels.shape.rank)
        return -tf.math.log(tf.clip_by_value(chosen, epsilon, 1.0 - epsilon))

    def make_metrics(self):
        return [tf_keras.metrics.SparseCategoricalAccuracy(name=self.keras_metric_name)]

    def served_names(self, class_names):
        """O, then B- and I- of each slot type, in the order of the tag ids."""
        return ["O", *(f"{prefix}-{name}" for name in class_names for prefix in ("B", "I"))]

    def at_positions(self, probabilities, mask):
        """[batch, L, units]: ``probabilities`` [real tokens, units], the rows of the True positions of ``mask``
        [batch, L] in tf.where's (row-major) order, each at its position, and ``O`` with probability 1 at every
        padded position: padding then scores as no span and never changes a real token's decoded tag. One gather
        from the rows, so the gradient reaches the real tokens' rows alone."""
        outside = tf.one_hot([0], self.units, dtype=probabilities.dtype)
        flat = tf.reshape(mask, [-1])
        index = tf.where(flat, tf.cumsum(tf.cast(flat, tf.int32)), 0)  # 1 + a real token's rank; 0 at padding
        spread = tf.gather(tf.concat([outside, probabilities], axis=0), index)
        return tf.reshape(spread, tf.concat([tf.shape(mask), [self.units]], axis=0))

    def named_outputs(self, prediction, names, tokens):
        """``<task>_tags``: [batch, tokens] the tag of each token in the most likely well-formed BIO sequence
        (``models.tag_decoding``), "" at padding."""
        tags = tf.gather(names, tag_decoding.decode_tf(prediction))
        return {f"{self.name}_tags": tf.where(tokens[:, :tf.shape(tags)[1]] > 0, tags, "")}

    def score(self, labels, weights, predictions):
        """Span micro-F1 by the CoNLL rules over the weighted tokens (``models.evaluation.spans``) of the decoded
        tags (``models.tag_decoding``)."""
        return span_f1(labels, predictions, weights > 0)


def _require_classes(config: TaskConfig) -> None:
    if config.label_vocabulary:  # counted from Transform's vocabulary by the Trainer
        return
    count = len(config.classes) or config.num_classes
    if count < 2:
        raise ConfigError(f"task '{config.name}': {config.type} needs num_classes >= 2 (or classes, or "
                          f"label_vocabulary: true for names logged as text), got {count}")


def class_ids(task: Task, names: tf.Tensor, vocabulary_input: tf.Tensor) -> tf.Tensor:
    """The int64 class id of each of ``names`` (strings, any shape): its place in the config's ``classes``, or in
    Transform's vocabulary of ``vocabulary_input`` (the present labels of the analysed split, most frequent first);
    -1 for a name that is in neither."""
    if task.config.classes:
        matches = tf.equal(names[..., None], tf.constant(list(task.config.classes)))
        return tf.where(tf.reduce_any(matches, axis=-1), tf.argmax(tf.cast(matches, tf.int32), axis=-1),
                        tf.constant(-1, tf.int64))
    vocabulary = tft.vocabulary(vocabulary_input, vocab_filename=task.classes_file)
    return tft.apply_vocabulary(names, vocabulary, default_value=-1)


TASK_TYPES: dict[TaskType, type[Task]] = {
    TaskType.BINARY: BinaryTask,
    TaskType.REGRESSION: RegressionTask,
    TaskType.MULTICLASS: MulticlassTask,
    TaskType.MULTILABEL: MultilabelTask,
    TaskType.SEQUENCE_LABELING: SequenceLabelingTask,
}


def class_names(task: Task, tf_transform_output) -> list[str] | None:
    """The names of a text label's classes (the config's ``classes``, or Transform's vocabulary of them, most
    frequent first); None for a label logged as numbers."""
    if task.config.classes:
        return list(task.config.classes)
    if task.config.label_vocabulary:
        return [name.decode("utf-8", "replace") for name in tf_transform_output.vocabulary_by_name(task.classes_file)]
    return None


def with_class_counts(config, tf_transform_output):
    """``config`` (a PipelineConfig) with each ``label_vocabulary`` task's ``num_classes`` set from its vocabulary in
    ``tf_transform_output``; the Trainer builds the model from it. Raises UserError for a vocabulary too small for
    its head."""
    tasks = []
    for task_config in config.tasks:
        if task_config.label_vocabulary:
            task = make_task(task_config)
            count = tf_transform_output.vocabulary_size_by_name(task.classes_file)
            least = 1 if task.per_token else 2
            if count < least:
                raise UserError(f"task '{task.name}': the training split names {count} class(es) in label "
                                f"'{task_config.label_key}'; {task_config.type} needs at least {least}")
            task_config = dataclasses.replace(task_config, num_classes=count)
        tasks.append(task_config)
    return config.replace(tasks=tuple(tasks))


def make_task(config: TaskConfig) -> Task:
    """The Task of ``config``'s type."""
    return TASK_TYPES[config.type](config)


def make_tasks(configs: Iterable[TaskConfig]) -> list[Task]:
    """One Task per task config, in order (callers pass ``PipelineConfig.tasks``)."""
    return [make_task(c) for c in configs]
