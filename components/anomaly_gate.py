"""AnomalyGate: stops the pipeline before Transform and Trainer when ExampleValidator found anomalies, when a
label holds nothing but its missing value in a split (no event could train or judge that head), or when a
feature's distribution drifted from the last validated span beyond its threshold (``validation.drift``) and beyond
what sampling alone moves it at the two spans' sizes (``components.drift``).

ExampleValidator only records anomalies, and judges one span alone; nothing downstream reads them. This component
fails its own execution with one line per anomalous feature and split, and the pipeline makes Transform depend on
it. Drift is measured against the statistics of the last span that passed this gate (its ``validated_statistics``
output), by the distances of the drift comparators that CurateSchema put into the schema.
"""

import json
import os

import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx

from components.drift import JENSEN_SHANNON, L_INFTY, feature_move
from components.schema_curation import schema_file
from config import UserError

STATISTICS_FILE = "FeatureStats.pb"


class AnomaliesFound(UserError):
    """The logs do not match the schema, or moved too far from the previous span."""


def anomaly_messages(uri: str, split_names: list[str]) -> list[str]:
    """One line per anomalous feature and split, read from an ExampleAnomalies artifact's files."""
    messages = []
    for split in split_names:
        for path in sorted(tf.io.gfile.glob(os.path.join(uri, f"Split-{split}", "*.pb"))):
            with tf.io.gfile.GFile(path, "rb") as f:
                anomalies = anomalies_pb2.Anomalies.FromString(f.read())
            for feature, info in sorted(anomalies.anomaly_info.items()):
                reasons = "; ".join(r.description or r.short_description for r in info.reason)
                messages.append(f"split '{split}', feature '{feature}': {reasons}")
    return messages


def missing_label_messages(statistics_uri: str, split_names: list[str], labels: dict[str, float | None]) -> list[str]:
    """One line per split and label (``labels``: {label column: its task's missing value, or None}) whose statistics
    show no present value: absent from every event, or (numbers) equal to the missing value in every event."""
    messages = []
    for split in split_names:
        statistics = tfdv.load_stats_binary(os.path.join(statistics_uri, f"Split-{split}", STATISTICS_FILE))
        by_name = _features(statistics)
        for label, missing_value in sorted(labels.items()):
            feature = by_name.get(label)
            numbers = feature.num_stats if feature is not None and feature.HasField("num_stats") else None
            names = feature.string_stats if feature is not None and feature.HasField("string_stats") else None
            common = numbers.common_stats if numbers is not None else names.common_stats if names else None
            absent = common is None or common.num_non_missing == 0
            only_missing = numbers is not None and numbers.min == numbers.max == missing_value
            if absent or only_missing:
                messages.append(f"split '{split}', label '{label}': no event holds a label (every value is absent"
                                + (f" or the missing value {missing_value:g}" if missing_value is not None else "")
                                + "); its head could neither train nor be judged: fix the logs, or remove the task")
    return messages


def drift_messages(statistics_uri: str, baseline_uri: str, schema_path: str, split_names: list[str]) -> list[str]:
    """One line per feature and split whose distance from the baseline statistics exceeds both the threshold of its
    drift comparator in the schema (``validation.drift``) and what sampling alone reaches at the two spans' sizes
    (``components.drift``)."""
    schema = tfdv.load_schema_text(schema_path)
    thresholds = {}
    for feature in schema.feature:
        comparator = feature.drift_comparator
        if comparator.HasField("infinity_norm"):
            thresholds[feature.name] = (L_INFTY, comparator.infinity_norm.threshold)
        elif comparator.HasField("jensen_shannon_divergence"):
            thresholds[feature.name] = (JENSEN_SHANNON, comparator.jensen_shannon_divergence.threshold)
    messages = []
    for split in split_names:
        current, previous = (os.path.join(uri, f"Split-{split}", STATISTICS_FILE)
                             for uri in (statistics_uri, baseline_uri))
        if not tf.io.gfile.exists(previous):
            continue
        now, before = (_features(tfdv.load_stats_binary(path)) for path in (current, previous))
        for name, (kind, threshold) in sorted(thresholds.items()):
            move = feature_move(now[name], before[name], kind) if name in now and name in before else None
            if move is not None and move.distance > threshold and move.distance > move.noise:
                messages.append(
                    f"split '{split}', feature '{name}': moved {move.distance:.3g} ({kind}) from the last validated "
                    f"span, above validation.drift {threshold:g} and above the {move.noise:.2g} that sampling alone "
                    f"reaches 1 time in 100 at {move.counts[0]:,} and {move.counts[1]:,} values")
    return messages


def _features(statistics) -> dict:
    return {".".join(f.path.step) or f.name: f for f in statistics.datasets[0].features}


@tfx.dsl.components.component
def AnomalyGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    validated_statistics: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    labels: tfx.dsl.components.Parameter[str],
    baseline_statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics] = None,
):
    """Raises AnomaliesFound, naming every anomalous or drifted feature and every label with nothing present
    (``labels``: JSON {label column: its task's missing value}), if there is any. Otherwise copies the span's
    statistics to ``validated_statistics``: the next run's drift baseline is the last span that passed, never one
    that was rejected."""
    splits = json.loads(anomalies.split_names)
    messages = anomaly_messages(anomalies.uri, splits)
    messages += missing_label_messages(statistics.uri, json.loads(statistics.split_names), json.loads(labels))
    if baseline_statistics is not None:
        messages += drift_messages(statistics.uri, baseline_statistics.uri, schema_file(schema.uri), splits)
    if messages:
        raise AnomaliesFound("ExampleValidator found anomalies; Transform and Trainer will not run: "
                             + " | ".join(messages))
    for split in json.loads(statistics.split_names):
        folder = os.path.join(validated_statistics.uri, f"Split-{split}")
        tf.io.gfile.makedirs(folder)
        tf.io.gfile.copy(os.path.join(statistics.uri, f"Split-{split}", STATISTICS_FILE),
                         os.path.join(folder, STATISTICS_FILE), overwrite=True)
    validated_statistics.split_names = statistics.split_names
