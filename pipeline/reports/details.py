"""What the HTML report shows beside TFMA's metrics, read from a run's artifacts with the libraries' own readers:
the data (TFDV statistics per split, ExampleValidator's anomalies), the training (the Trainer's TensorBoard
logs, per epoch) and the names of the classes of labels logged as text (Transform's vocabularies)."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_transform as tft

from components.anomaly_gate import STATISTICS_FILE, anomaly_messages
from config import PipelineConfig
from models.tasks import class_names, make_tasks


@dataclass
class FeatureSummary:
    """One feature in one split: how often it is missing, and its most frequent values or its mean."""

    name: str
    missing_share: float
    top_values: list[tuple[str, float]] = field(default_factory=list)  # (value, count), strings only
    mean: float | None = None  # numbers only


@dataclass
class SplitSummary:
    name: str
    num_examples: int
    features: list[FeatureSummary]


def data_summary(statistics_uri: str | None) -> list[SplitSummary]:
    """Per split of a StatisticsGen artifact: event count and a FeatureSummary per feature (TFDV's reader)."""
    if not statistics_uri:
        return []
    splits = []
    for path in sorted(glob.glob(os.path.join(statistics_uri, "Split-*", STATISTICS_FILE))):
        (dataset,) = tfdv.load_stats_binary(path).datasets
        features = []
        for feature in dataset.features:
            name = ".".join(feature.path.step)
            if feature.HasField("string_stats"):
                common = feature.string_stats.common_stats
                top = [(v.value, v.frequency) for v in feature.string_stats.top_values[:3]]
                summary = FeatureSummary(name, 0.0, top_values=top)
            else:
                common = feature.num_stats.common_stats
                summary = FeatureSummary(name, 0.0, mean=feature.num_stats.mean)
            total = common.num_missing + common.num_non_missing
            summary.missing_share = common.num_missing / total if total else 0.0
            features.append(summary)
        splits.append(SplitSummary(os.path.basename(os.path.dirname(path)).removeprefix("Split-"),
                                   int(dataset.num_examples), sorted(features, key=lambda f: f.name)))
    return splits


def anomalies(anomalies_uri: str | None) -> list[str]:
    """ExampleValidator's anomalies, one line per feature and split (none when it found none)."""
    if not anomalies_uri:
        return []
    splits = [os.path.basename(p).removeprefix("Split-") for p in glob.glob(os.path.join(anomalies_uri, "Split-*"))]
    return anomaly_messages(anomalies_uri, sorted(splits))


@dataclass
class TrainingHistory:
    """Per-epoch values the Trainer logged: {"train" | "validation": {name: [value per epoch]}}."""

    curves: dict[str, dict[str, list[float]]]

    @property
    def best_epoch(self) -> int | None:
        """The epoch (1-based) with the lowest validation loss: the weights early stopping kept."""
        return self._lowest_validation("loss")

    def head_best_epoch(self, task_name: str) -> int | None:
        """The epoch (1-based) with the head's lowest validation loss: the weights that serve it under
        ``model.per_head_selection``."""
        return self._lowest_validation(f"{task_name}_loss")

    def _lowest_validation(self, curve: str) -> int | None:
        losses = self.curves.get("validation", {}).get(curve)
        return 1 + min(range(len(losses)), key=losses.__getitem__) if losses else None

    @property
    def examples_per_second(self) -> float | None:
        """The median training throughput over the epochs."""
        values = sorted(self.curves.get("train", {}).get("examples_per_second", []))
        return values[len(values) // 2] if values else None


def training_history(model_run_uri: str | None) -> TrainingHistory:
    """The epoch_* scalars of the Trainer's TensorBoard logs under ``model_run_uri`` (train and validation)."""
    curves = {}
    for phase in ("train", "validation"):
        by_step: dict[str, dict[int, float]] = {}
        for path in sorted(glob.glob(os.path.join(model_run_uri or "", phase, "events.out.tfevents.*"))):
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    if not value.tag.startswith("epoch_"):
                        continue
                    number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
                    by_step.setdefault(value.tag.removeprefix("epoch_"), {})[event.step] = number
        if by_step:
            curves[phase] = {name: [steps[s] for s in sorted(steps)] for name, steps in by_step.items()}
    return TrainingHistory(curves)



def head_class_names(config: PipelineConfig, transform_graph_uri: str | None) -> dict[str, list[str]]:
    """{head: its class names (a sequence_labeling head's: its slot types)} of the heads whose labels are text,
    from the config or the run's Transform vocabularies; TFMA's class ids index them."""
    output = tft.TFTransformOutput(transform_graph_uri) if transform_graph_uri else None
    names = {}
    for task in make_tasks(config.tasks):
        if task.config.classes or (task.config.label_vocabulary and output is not None):
            names[task.name] = class_names(task, output)
    return names
