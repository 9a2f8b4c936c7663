"""AnomalyGate: stops the pipeline before Transform and Trainer when ExampleValidator found anomalies.

ExampleValidator only records anomalies; nothing downstream reads them. This component fails its own
execution with a message naming each anomalous feature, and the pipeline makes Transform depend on it.
"""

import json
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx

from config import UserError


class AnomaliesFound(UserError):
    """The logs do not match the schema."""


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


@tfx.dsl.components.component
def AnomalyGate(anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies]):
    """Raises AnomaliesFound, naming every anomalous feature, if there is any anomaly."""
    messages = anomaly_messages(anomalies.uri, json.loads(anomalies.split_names))
    if messages:
        raise AnomaliesFound("ExampleValidator found anomalies; Transform and Trainer will not run:\n  "
                             + "\n  ".join(messages))
